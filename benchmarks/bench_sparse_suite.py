"""Sparse-data development suite: rating data of every density, scale and shape.

The defaults of :class:`~skkernelnet.KernelCollaborativeFilter` must carry to
rating data nobody here tuned on. This suite builds such data from the
MovieLens sets we have and runs, on the same splits, our defaults, the
user+item bias baseline (:class:`~skkernelnet.RatingBaseline`), scikit-surprise's
SVD++ (where it runs in reasonable time) and a Bayesian factorization machine
(myFM, Gibbs sampling, configured as below). Every protocol reports the mean
test RMSE over its splits and the ratio to the bias baseline of the same split.

Protocols (``--protocols``; seeds fixed; test ratings used only for scoring):

* ``dense-1.5``, ``sparse-0.3``, ``sparse-0.06``: Monti et al.'s construction,
  the 3,000 most active users x 3,000 most rated items of ML-1M with ratings
  kept at random down to 1.5%, 0.3% and 0.06% density.
* ``scale-100``: ``sparse-0.3`` with ratings mapped linearly from 1-5 to 1-100.
* ``wide-2``: every ML-1M user and item, 2% of the ratings kept (about 20K).
* ``ml-1m``: all of ML-1M.
* ``half-star``: ml-latest-small (0.5-5 in half stars), random 90/10 splits.
* ``cold-users``: ML-100K u1 where a fifth of u1.test's users keep only 1-5 of
  their u1.base ratings; scored on those users' u1.test ratings.
* ``ml-100k-u1``: the official u1.base / u1.test split.

Clean test ratings: ML-1M is cut once into 10 random folds (permutation seed
2026). Split s of an ML-1M-derived protocol (the first six above) tests on the
protocol's ratings that lie in fold 7 + s and trains on its others: a random
90/10 split whose test ratings are all in folds 7-9. Everything chosen for the
library's defaults in this suite's development runs
(``choose_cf_mechanism.py``) used ML-1M ratings of folds 0-6 only; ML-100K and
ml-latest-small were used for no choice in those runs (see
``benchmarks/README.md`` for the earlier choice of ``alpha``). Random protocols
use split seeds 0, 1, 2 (``--splits``), which draw the subsample and the split.

Methods (``--methods``):

* ``ours``: ``KernelCollaborativeFilter(random_state=seed)``, defaults;
* ``bias``: ``RatingBaseline()`` (global mean + shrunken user and item biases);
* ``svdpp``: ``surprise.SVDpp`` with its defaults (skipped when the training
  set has more than 50,000 ratings: on 90K ratings it took about 10 minutes a split);
* ``myfm``: ``myfm.MyFMRegressor(rank=10, random_seed=0)``, 200 Gibbs sweeps,
  features user one-hot and item one-hot, each with the SVD++-style implicit
  block (the items the user rated, and the users who rated the item, scaled by
  1/sqrt(count)) built from the training pairs only, as ``RelationBlock``s;
* ``myfm32``: the same with ``rank=32`` (run on ``ml-1m``, where rank 32 is the
  stronger comparison).

Every prediction is clipped to the training ratings' range. Results are merged
into ``results/bench_sparse_suite.json`` keyed by (protocol, split, method), so
that methods can be run separately (``--methods bias myfm``) and the table is
rebuilt from everything recorded; ``--fresh`` discards earlier results.

    python benchmarks/bench_sparse_suite.py                       # everything
    python benchmarks/bench_sparse_suite.py --protocols sparse-0.06 --methods ours bias
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, data_home, markdown_table, write_results  # noqa: E402

from skkernelnet import KernelCollaborativeFilter, RatingBaseline  # noqa: E402
from skkernelnet.datasets import fetch_movielens  # noqa: E402

NAME = "bench_sparse_suite"
PROTOCOLS = [
    "dense-1.5",
    "sparse-0.3",
    "sparse-0.06",
    "scale-100",
    "wide-2",
    "half-star",
    "cold-users",
    "ml-100k-u1",
    "ml-1m",
]
METHODS = ["ours", "bias", "svdpp", "myfm", "myfm32"]
LABELS = {
    "ours": "KernelCollaborativeFilter()",
    "bias": "user + item biases",
    "svdpp": "Surprise SVD++",
    "myfm": "Bayesian FM (myFM, rank 10)",
    "myfm32": "Bayesian FM (myFM, rank 32)",
}
SVDPP_MAX_RATINGS = 50_000
ML1M_FOLD_SEED = 2026
ML1M_TEST_FOLDS = (7, 8, 9)


def rmse(pred, target):
    return float(np.sqrt(np.mean((np.asarray(pred, float) - np.asarray(target, float)) ** 2)))


# -- data ---------------------------------------------------------------------------------
def _split(X, y, seed, test_size=0.1):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_test = int(round(test_size * len(y)))
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]


def _top_block(X, n_users=3000, n_items=3000):
    """Indices of the ratings among the most active users and the most rated items."""
    users, user_counts = np.unique(X[:, 0], return_counts=True)
    items, item_counts = np.unique(X[:, 1], return_counts=True)
    top_users = users[np.argsort(-user_counts, kind="stable")[:n_users]]
    top_items = items[np.argsort(-item_counts, kind="stable")[:n_items]]
    return np.flatnonzero(np.isin(X[:, 0], top_users) & np.isin(X[:, 1], top_items))


def _pick(index, n_keep, seed):
    rng = np.random.default_rng(10_000 + seed)
    return np.sort(rng.choice(index, size=min(n_keep, len(index)), replace=False))


ML1M_PROTOCOLS = ("dense-1.5", "sparse-0.3", "sparse-0.06", "scale-100", "wide-2", "ml-1m")
DENSITY = {"dense-1.5": 0.015, "sparse-0.3": 0.003, "sparse-0.06": 0.0006, "scale-100": 0.003}


def ml1m_folds(home):
    """ML-1M with each rating's fold (0-9) of one fixed random permutation."""
    data = fetch_movielens("1m", data_home=home)
    folds = np.random.default_rng(ML1M_FOLD_SEED).permutation(len(data.target)) % 10
    return data.data, data.target, folds


def _ml1m_protocol(name, X, y, seed):
    """Indices of the ratings of X an ML-1M-derived protocol keeps, and its ratings."""
    if name == "ml-1m":
        kept = np.arange(len(y))
    elif name == "wide-2":
        kept = _pick(np.arange(len(y)), int(0.02 * len(y)), seed)
    else:
        kept = _pick(_top_block(X), int(DENSITY[name] * 3000 * 3000), seed)
    ratings = y[kept]
    if name == "scale-100":
        ratings = np.round(1.0 + (ratings - 1.0) * 99.0 / 4.0)
    return kept, ratings


def protocol_splits(name, n_splits, home, development=False):
    """Yield (split label, X_train, y_train, X_test, y_test) of a protocol.

    The test ratings of every ML-1M-derived protocol lie in folds 7-9 of
    :func:`ml1m_folds` (split s tests on the protocol's ratings of fold 7 + s
    and trains on the others, a random 90/10 split). ``development=True``
    builds the same protocol from folds 0-6 only and splits it 90/10 at random:
    the data that choices are made on, disjoint from every reported test rating.
    """
    if name in ML1M_PROTOCOLS:
        X_all, y_all, folds = ml1m_folds(home)
        if development:
            X_dev, y_dev = X_all[folds < 7], y_all[folds < 7]
            kept, y = _ml1m_protocol(name, X_dev, y_dev, 0)
            yield "dev", *_split(X_dev[kept], y, 0)
            return
        for seed in range(n_splits):
            kept, y = _ml1m_protocol(name, X_all, y_all, seed)
            X = X_all[kept]
            test = folds[kept] == ML1M_TEST_FOLDS[seed]
            yield str(seed), X[~test], y[~test], X[test], y[test]
    elif name == "half-star":
        data = fetch_movielens("latest-small", data_home=home)
        for seed in range(n_splits):
            yield str(seed), *_split(data.data, data.target, seed)
    elif name == "cold-users":
        # cold users are drawn among u1.test's users: their test ratings are their
        # u1.test ratings, their training ratings 1-5 of their u1.base ratings
        train = fetch_movielens("100k", subset="train", split="u1", data_home=home)
        test = fetch_movielens("100k", subset="test", split="u1", data_home=home)
        candidates = np.intersect1d(np.unique(test.data[:, 0]), np.unique(train.data[:, 0]))
        for seed in range(n_splits):
            rng = np.random.default_rng(seed)
            cold = rng.choice(candidates, size=len(candidates) // 5, replace=False)
            drop = np.zeros(len(train.target), dtype=bool)
            for user in cold:
                rows = np.flatnonzero(train.data[:, 0] == user)
                rows = rows[rng.permutation(len(rows))]
                drop[rows[rng.integers(1, 6):]] = True
            scored = np.isin(test.data[:, 0], cold)
            yield (str(seed), train.data[~drop], train.target[~drop], test.data[scored],
                   test.target[scored])
    elif name == "ml-100k-u1":
        train = fetch_movielens("100k", subset="train", split="u1", data_home=home)
        test = fetch_movielens("100k", subset="test", split="u1", data_home=home)
        yield "u1", train.data, train.target, test.data, test.target
    else:
        raise ValueError(f"unknown protocol {name!r}; choose from {PROTOCOLS}")


# -- methods ------------------------------------------------------------------------------
def fit_ours(X_train, y_train, X_test, seed, verbose=0):
    model = KernelCollaborativeFilter(random_state=seed, verbose=verbose)
    model.fit(X_train, y_train)
    info = {
        "n_iter": int(model.n_iter_),
        "best_iter": int(model.best_iter_),
        "network_weights": [float(w) for w in model.network_weights_],
        "support_shrinkage": float(model.support_shrinkage_),
        "hidden": [int(layer.out_features) for layer in model.module_.layers[:-1]],
    }
    return model.predict(X_test), info


def fit_bias(X_train, y_train, X_test, seed, verbose=0):
    return RatingBaseline().fit(X_train, y_train).predict(X_test), {}


def fit_svdpp(X_train, y_train, X_test, seed, verbose=0):
    import pandas as pd
    from surprise import Dataset, Reader, SVDpp

    low, high = float(y_train.min()), float(y_train.max())
    frame = pd.DataFrame({"u": X_train[:, 0].astype(str), "i": X_train[:, 1].astype(str),
                          "r": y_train})
    data = Dataset.load_from_df(frame, Reader(rating_scale=(low, high)))
    algo = SVDpp(random_state=seed).fit(data.build_full_trainset())
    pred = [algo.predict(str(u), str(i)).est for u, i in X_test]
    return np.asarray(pred), {}


def _implicit_block(own_idx, other_idx, n_own, n_other):
    """One-hot of each entity next to its training partners scaled by 1/sqrt(count)."""
    counts = np.bincount(own_idx, minlength=n_own).astype(float)
    scale = 1.0 / np.sqrt(np.maximum(counts, 1.0))
    partners = sp.csr_matrix((scale[own_idx], (own_idx, other_idx)), shape=(n_own, n_other))
    return sp.hstack([sp.identity(n_own, format="csr"), partners], format="csr")


def fit_myfm(X_train, y_train, X_test, seed, verbose=0, rank=10):
    import warnings

    with warnings.catch_warnings():  # myfm imports pkg_resources
        warnings.simplefilter("ignore", UserWarning)
        import myfm
    from myfm import RelationBlock

    users, user_codes = np.unique(np.r_[X_train[:, 0], X_test[:, 0]], return_inverse=True)
    items, item_codes = np.unique(np.r_[X_train[:, 1], X_test[:, 1]], return_inverse=True)
    n_train = len(y_train)
    u_train, i_train = user_codes[:n_train], item_codes[:n_train]
    user_block = _implicit_block(u_train, i_train, len(users), len(items))
    item_block = _implicit_block(i_train, u_train, len(items), len(users))

    def blocks(u, i):
        return [RelationBlock(u.astype(np.int64), user_block),
                RelationBlock(i.astype(np.int64), item_block)]

    fm = myfm.MyFMRegressor(rank=rank, random_seed=0)
    fm.fit(None, y_train, X_rel=blocks(u_train, i_train), n_iter=200, n_kept_samples=195,
           callback=lambda *state: (False, None))  # no progress bar
    pred = fm.predict(None, blocks(user_codes[n_train:], item_codes[n_train:]))
    return np.asarray(pred), {}


FITTERS = {
    "ours": fit_ours,
    "bias": fit_bias,
    "svdpp": fit_svdpp,
    "myfm": fit_myfm,
    "myfm32": lambda *a, **k: fit_myfm(*a, **k, rank=32),
}


def applies(method, protocol, n_train):
    if method == "svdpp":
        return n_train <= SVDPP_MAX_RATINGS
    if method == "myfm32":
        return protocol == "ml-1m"
    return True


# -- results ------------------------------------------------------------------------------
def load_records(fresh):
    path = RESULTS / f"{NAME}.json"
    if fresh or not path.exists():
        return {}
    for _attempt in range(10):  # another run may be replacing the file right now
        try:
            records = json.loads(path.read_text()).get("records", [])
            break
        except (json.JSONDecodeError, FileNotFoundError):
            time.sleep(0.5)
    else:
        raise RuntimeError(f"{path} is not valid JSON; rerun with --fresh")
    return {f"{r['protocol']}|{r['split']}|{r['method']}": r for r in records}


def summary_rows(records):
    rows = []
    for protocol in PROTOCOLS:
        by_method = {}
        for record in records.values():
            if record["protocol"] == protocol:
                by_method.setdefault(record["method"], {})[record["split"]] = record
        bias = by_method.get("bias", {})
        for method in METHODS:
            runs = by_method.get(method)
            if not runs:
                continue
            scores = [r["rmse"] for r in runs.values()]
            ratios = [r["rmse"] / bias[s]["rmse"] for s, r in runs.items() if s in bias]
            first = next(iter(runs.values()))
            rows.append([
                protocol, LABELS[method], f"{np.mean(scores):.4f}",
                f"{np.std(scores):.4f}" if len(scores) > 1 else "",
                f"{np.mean(ratios):.4f}" if ratios else "",
                f"{np.mean([r['fit_seconds'] for r in runs.values()]):.1f} s",
                f"{len(scores)}", f"{first['n_train']:,} / {first['n_test']:,}",
            ])
    return rows


def render_table(records, note=""):
    table = markdown_table(
        ["protocol", "method", "mean RMSE", "std", "RMSE / biases", "fit", "splits",
         "train / test ratings"],
        summary_rows(records),
    )
    return table + (f"\n{note}\n" if note else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocols", nargs="+", default=PROTOCOLS, choices=PROTOCOLS)
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--splits", type=int, default=3, help="splits of random protocols")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="discard recorded results")
    parser.add_argument("--note", default="",
                        help="a line printed under the table (e.g. the machine's load)")
    parser.add_argument("--table-only", action="store_true",
                        help="rebuild the Markdown table from the recorded results")
    parser.add_argument("--split-labels", nargs="+", default=None,
                        help="run only these splits (e.g. 1 2); the default runs all")
    parser.add_argument("--resume", action="store_true",
                        help="skip (protocol, split, method) runs already recorded")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    home = data_home()
    records = load_records(args.fresh)
    if args.table_only:
        table = render_table(records, args.note)
        write_results(NAME, {"threads": args.threads, "records": list(records.values())}, table)
        print(table)
        return
    mine = {}
    if args.fresh:
        write_results(NAME, {"threads": args.threads, "records": []})
    for protocol in args.protocols:
        for split, X_train, y_train, X_test, y_test in protocol_splits(
            protocol, args.splits, home
        ):
            if args.split_labels is not None and split not in args.split_labels:
                continue
            low, high = float(y_train.min()), float(y_train.max())
            for method in args.methods:
                if not applies(method, protocol, len(y_train)) or (
                    args.resume and f"{protocol}|{split}|{method}" in load_records(False)
                ):
                    continue
                start = time.perf_counter()
                with threadpool_limits(limits=1, user_api="blas"):
                    pred, info = FITTERS[method](X_train, y_train, X_test, int(split[-1]),
                                                 args.verbose)
                seconds = time.perf_counter() - start
                record = {
                    "protocol": protocol, "split": split, "method": method,
                    "rmse": rmse(np.clip(pred, low, high), y_test), "fit_seconds": seconds,
                    "n_train": int(len(y_train)), "n_test": int(len(y_test)),
                    "n_users": int(len(np.unique(X_train[:, 0]))),
                    "n_items": int(len(np.unique(X_train[:, 1]))),
                    **info,
                }
                # merge with what other runs recorded meanwhile (methods may run in parallel)
                records = {**load_records(False), **mine}
                mine[f"{protocol}|{split}|{method}"] = record
                records.update(mine)
                print(f"{protocol:12s} {split:6s} {method:7s} RMSE {record['rmse']:.4f} "
                      f"({seconds:.1f} s)", flush=True)
                table = render_table(records, args.note)
                write_results(NAME, {"threads": args.threads,
                                     "records": list(records.values())}, table)
    print()
    print(table)


if __name__ == "__main__":
    main()
