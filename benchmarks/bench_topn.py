"""Top-N recommendation on MovieLens: our implicit and rating models, EASE, ALS, BPR, popularity.

Protocol (the issue's): random 90/10 splits of the ratings (``--seeds``); a test
rating of at least 4 stars is relevant (binary gain); every test user with a
relevant item ranks all catalogue items they did not rate in training; P@10,
R@10, NDCG@10, MAP@10 (:mod:`skkernelnet.metrics`), catalogue coverage of the
top-10 lists and fit time. Every implicit model is trained on all training
ratings as binary interactions; the rating model on the ratings themselves.

Hyperparameters are chosen only on validation data carved from each split's
training part: 10% of the training ratings are held out (relevant: >= 4), each
candidate is fitted on the other 90% and scored by NDCG@10 on them, and the
best candidate is refitted on the whole training part. The test ratings are
used for nothing but the final scores. Our implicit model runs one
configuration (``GRIDS["ours_implicit"]``; ``--ours-alpha`` with several values
makes it a grid) and chooses its epoch, its item-item penalty and its blend
weight on a held-out share of its own training interactions. The rating model
uses its defaults (``recommend`` with its default ranking).

    python benchmarks/bench_topn.py [--datasets latest-small 100k 1m] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_home, markdown_table, write_results  # noqa: E402

from skkernelnet import KernelCollaborativeFilter, KernelImplicitRecommender  # noqa: E402
from skkernelnet._ratings import factorize, lookup  # noqa: E402
from skkernelnet.datasets import fetch_movielens  # noqa: E402
from skkernelnet.metrics import ranking_metrics  # noqa: E402

K = 10
THRESHOLD = 4.0
NAMES = {
    "ours_implicit": "KernelImplicitRecommender",
    "ours_rating": "KernelCollaborativeFilter.recommend",
    "ours_rating_raw": "same, popularity_weight=0 (by predicted rating)",
    "popular": "most popular",
    "als": "implicit ALS",
    "bpr": "implicit BPR",
    "ease": "EASE",
}

# Candidate hyperparameters, each scored on the validation carve of the training part.
GRIDS = {
    # one configuration: the model itself chooses its epoch, its item-item penalty and its
    # blend weight on a held-out share of its training interactions
    "ours_implicit": [
        {"hidden_layer_sizes": (600,), "alpha": 0.01, "dropout": 0.5, "max_iter": 150,
         "learning_rate_init": 3e-3, "n_iter_no_change": 15}
    ],
    "ease": [{"lambda_": lam} for lam in (100.0, 200.0, 500.0, 1000.0, 2000.0)],
    "als": [
        {"factors": f, "regularization": r, "alpha": a, "iterations": 15}
        for f in (32, 64, 128)
        for r in (0.1, 1.0, 10.0)
        for a in (1.0, 5.0)
    ],
    "bpr": [
        {"factors": f, "learning_rate": lr, "regularization": 0.01, "iterations": 100}
        for f in (64, 128)
        for lr in (0.01, 0.05)
    ],
    "popular": [{}],
    "ours_rating": [{}],
    "ours_rating_raw": [{}],
}


# -- data -------------------------------------------------------------------------------------
class Split:
    """Training pairs as a users x items binary matrix, and the test relevance."""

    def __init__(self, X_train, y_train, X_test, y_test):
        self.X_train, self.y_train = X_train, y_train
        self.user_ids, users = factorize(X_train[:, 0])
        self.item_ids, items = factorize(X_train[:, 1])
        self.matrix = sp.csr_matrix(
            (np.ones(len(users), np.float32), (users, items)),
            shape=(len(self.user_ids), len(self.item_ids)),
        )
        relevant = y_test >= THRESHOLD
        test_users = lookup(self.user_ids, X_test[relevant, 0])
        test_items = lookup(self.item_ids, X_test[relevant, 1])
        # an item never seen in training cannot be recommended by any model: it stays
        # relevant (it lowers every model's recall alike), with a code of its own
        unseen = test_items < 0
        test_items[unseen] = len(self.item_ids) + np.arange(unseen.sum())
        known = test_users >= 0
        self.eval_users = np.unique(test_users[known])
        by_user = {u: [] for u in self.eval_users}
        for u, i in zip(test_users[known], test_items[known]):
            by_user[u].append(i)
        self.relevant = [np.asarray(by_user[u]) for u in self.eval_users]

    def score(self, top):
        """Metrics of top-K lists (item indices) for ``eval_users``."""
        return ranking_metrics(self.relevant, top, K, n_items=len(self.item_ids))


def random_split(X, y, seed, test_size=0.1):
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed
    )
    return Split(X_train, y_train, X_test, y_test)


# -- methods: fit(split, params) -> recommend(user indices) -> top-K item indices -------------
def _top_from_scores(scores, seen_rows):
    scores = np.array(scores, dtype=np.float64)
    coo = seen_rows.tocoo()
    scores[coo.row, coo.col] = -np.inf
    top = np.argpartition(-scores, K - 1, axis=1)[:, :K]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def fit_popular(split, params):
    counts = np.asarray(split.matrix.sum(axis=0)).ravel()

    def recommend(users):
        return _top_from_scores(np.tile(counts, (len(users), 1)), split.matrix[users])

    return recommend


def fit_ease(split, params):
    # float32: with lambda >= 100 the system is well conditioned, and it halves the time
    X = split.matrix.astype(np.float32)
    lam = params["lambda_"]
    n_users, n_items = X.shape
    if n_users < n_items:
        # Woodbury: (X'X + lam I)^-1 = (I - X' (lam I + X X')^-1 X) / lam, an inversion of
        # users x users instead of items x items (latest-small: 671 users, 8,747 items)
        small = (X @ X.T).toarray().astype(np.float64)
        small[np.diag_indices_from(small)] += lam
        inner = np.linalg.inv(small).astype(np.float32)
        P = -np.asarray(X.T @ (inner @ X.toarray()))
        P[np.diag_indices_from(P)] += 1.0
        P /= lam
    else:
        gram = (X.T @ X).toarray()
        gram[np.diag_indices_from(gram)] += lam
        P = np.linalg.inv(gram)
    B = -P / np.diag(P)
    B[np.diag_indices_from(B)] = 0.0

    def recommend(users):
        out = []
        for s in range(0, len(users), 1024):
            block = users[s : s + 1024]
            out.append(_top_from_scores(X[block] @ B, split.matrix[block]))
        return np.concatenate(out)

    return recommend


def _implicit_model(kind, params, seed):
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    params = dict(params)
    if kind == "als":
        return AlternatingLeastSquares(random_state=seed, num_threads=1, **params)
    return BayesianPersonalizedRanking(random_state=seed, num_threads=1, **params)


def fit_implicit_lib(kind):
    def fit(split, params, seed=0):
        model = _implicit_model(kind, params, seed)
        model.fit(split.matrix.tocsr(), show_progress=False)

        def recommend(users):
            ids, _ = model.recommend(
                users, split.matrix[users], N=K, filter_already_liked_items=True
            )
            return ids

        return recommend

    return fit


def fit_ours_implicit(split, params, seed=0, verbose=0):
    model = KernelImplicitRecommender(random_state=seed, verbose=verbose, **params)
    model.fit(split.X_train)
    # the model numbers users and items as Split does (sorted ids)
    assert np.array_equal(model.item_ids_, split.item_ids)

    def recommend(users):
        items, _ = model.recommend(split.user_ids[users], n=K)
        return lookup(split.item_ids, items)

    recommend.model = model
    return recommend


def fit_ours_rating(split, params, seed=0, verbose=0, popularity_weight=None):
    """The rating model with its defaults; one fit per split serves both rankings."""
    key = (seed, tuple(sorted(params.items())))
    cached = getattr(split, "rating_models", {})
    if key not in cached:
        model = KernelCollaborativeFilter(random_state=seed, verbose=verbose, **params)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(split.X_train, split.y_train)
        cached[key] = (model, time.perf_counter() - start)
        split.rating_models = cached
    model, fit_seconds = cached[key]
    extra = {} if popularity_weight is None else {"popularity_weight": popularity_weight}

    def recommend(users):
        items, _ = model.recommend(split.user_ids[users], n=K, **extra)
        return lookup(split.item_ids, items)

    recommend.fit_seconds = fit_seconds
    return recommend


FIT = {
    "popular": lambda split, params, seed=0: fit_popular(split, params),
    "ease": lambda split, params, seed=0: fit_ease(split, params),
    "als": fit_implicit_lib("als"),
    "bpr": fit_implicit_lib("bpr"),
    "ours_implicit": fit_ours_implicit,
    "ours_rating": fit_ours_rating,
    "ours_rating_raw": lambda split, params, seed=0: fit_ours_rating(
        split, params, seed, popularity_weight=0.0
    ),
}


def evaluate(method, split, params, seed):
    start = time.perf_counter()
    recommend = FIT[method](split, params, seed=seed)
    fit_time = getattr(recommend, "fit_seconds", time.perf_counter() - start)
    top = recommend(split.eval_users)
    result = {**split.score(top), "fit_seconds": fit_time}
    model = getattr(recommend, "model", None)
    if model is not None:
        result["n_iter"], result["best_iter"] = model.n_iter_, model.best_iter_
        for name in ("network_weight_", "item_item_alpha_", "item_item_validation_"):
            if hasattr(model, name):
                result[name.rstrip("_")] = getattr(model, name)
    return result


def select(method, split, seed, log, grid):
    """Best candidate of ``grid`` by NDCG@10 on a validation carve of the training part.

    The winner is refitted on the whole training part. Our implicit model, with
    its defaults, also holds out a share of its training interactions to pick
    its epoch, the item-item penalty and the blend weight, in every fit.
    """
    if len(grid) == 1:
        return grid[0], []
    inner = random_split(split.X_train, split.y_train, seed + 1000)
    trials = []
    for params in grid:
        result = evaluate(method, inner, params, seed)
        trials.append({"params": params, "val_ndcg": result["ndcg"],
                       "best_iter": result.get("best_iter")})
        log(f"    {method} {params}: validation NDCG@10 {result['ndcg']:.4f}"
            + (f" (epoch {result['best_iter']})" if "best_iter" in result else ""))
    best = max(trials, key=lambda t: t["val_ndcg"])
    return best["params"], trials


# -- driver -------------------------------------------------------------------------------------
def load(name):
    X, y = fetch_movielens(name, data_home=data_home(), return_X_y=True)
    return X, y


def run_dataset(name, seeds, methods, log, grids, save=lambda runs: None):
    """Every method on every split; ``save(runs)`` after each method (partial results)."""
    X, y = load(name)
    runs = []
    for seed in seeds:
        split = random_split(X, y, seed)
        log(f"{name} seed {seed}: {split.matrix.shape[0]} users x {split.matrix.shape[1]} items, "
            f"{len(split.eval_users)} test users")
        per_method = {}
        runs.append({"seed": seed, "methods": per_method})
        for method in methods:
            params, trials = select(method, split, seed, log, grids[method])
            result = evaluate(method, split, params, seed)
            per_method[method] = {"params": params, "validation": trials, **result}
            log(f"  {NAMES[method]:38s} P@10 {result['precision']:.4f}  "
                f"NDCG@10 {result['ndcg']:.4f}  cov {result['coverage']:.3f}  "
                f"fit {result['fit_seconds']:.1f} s  {params}")
            save(runs)
    return runs


def summarise(results, methods):
    """One table per dataset: means over the splits each method completed.

    The NDCG ratio to EASE is the mean over the splits that both completed.
    """
    lines = []
    for name, runs in results.items():
        rows = []
        for method in methods:
            done = [r for r in runs if method in r["methods"]]
            if not done:
                continue
            vals = {key: [r["methods"][method][key] for r in done]
                    for key in ("precision", "recall", "ndcg", "map", "coverage", "fit_seconds")}
            ndcg = np.mean(vals["ndcg"])
            spread = f" ± {np.std(vals['ndcg']):.3f}" if len(done) > 1 else ""
            both = [r for r in done if "ease" in r["methods"]]
            ratio = (np.mean([r["methods"][method]["ndcg"] / r["methods"]["ease"]["ndcg"]
                              for r in both]) if both else None)
            rows.append([
                NAMES[method],
                ", ".join(str(r["seed"]) for r in done),
                f"{np.mean(vals['precision']):.3f}",
                f"{np.mean(vals['recall']):.3f}",
                f"{ndcg:.3f}{spread}",
                f"{np.mean(vals['map']):.3f}",
                f"{np.mean(vals['coverage']):.3f}",
                f"{np.mean(vals['fit_seconds']):.1f} s",
                f"{ratio:.3f}" if ratio is not None else "",
            ])
        lines.append(f"### {name}: random 90/10 splits\n")
        lines.append(markdown_table(
            ["method", "splits (seeds)", "P@10", "R@10", "NDCG@10", "MAP@10", "coverage", "fit",
             "NDCG / EASE"],
            rows,
        ))
    return "\n".join(lines)


def merge(paths):
    """Results, methods and grids of several results files, run by run."""
    results, methods, grids = {}, [], {}
    for path in paths:
        payload = json.loads(Path(path).read_text())
        for name, runs in payload["results"].items():
            by_seed = {r["seed"]: r for r in results.get(name, [])}
            for run in runs:
                by_seed.setdefault(run["seed"], {"seed": run["seed"], "methods": {}})
                by_seed[run["seed"]]["methods"].update(run["methods"])
                methods += [m for m in run["methods"] if m not in methods]
                for method in run["methods"]:  # the candidates each dataset's runs used
                    grids.setdefault(name, {})[method] = payload["protocol"]["grids"][method]
            results[name] = [by_seed[s] for s in sorted(by_seed)]
    return results, [m for m in NAMES if m in methods], grids


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["latest-small", "100k", "1m"])
    parser.add_argument("--seeds", type=int, default=3, help="random splits per dataset")
    parser.add_argument("--methods", nargs="+", default=list(NAMES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--ours-alpha", type=float, nargs="+",
        help="alpha candidates of our implicit model (one value: no selection, the epoch "
        "by early stopping on its training interactions; for ML-1M on a small machine)",
    )
    parser.add_argument(
        "--ours-params", help="JSON of parameters of our implicit model overriding the grid's",
    )
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--output", default="bench_topn", help="results/<output>.{json,md}")
    parser.add_argument(
        "--merge", nargs="+", metavar="JSON",
        help="combine results files of runs split over processes (same protocol) into "
        "--output instead of running anything",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    def log(msg):
        print(msg, flush=True)

    grids = dict(GRIDS)
    if args.ours_alpha or args.ours_params:
        first = {**GRIDS["ours_implicit"][0], **json.loads(args.ours_params or "{}")}
        alphas = args.ours_alpha or [c["alpha"] for c in GRIDS["ours_implicit"]]
        grids["ours_implicit"] = [{**first, "alpha": a} for a in alphas]
    if args.merge:
        results, methods, grids = merge(args.merge)
    else:
        methods = args.methods
        results = {}

        def save(runs, name=None):  # partial results, in case the run is cut short
            write_results(args.output, {"protocol": protocol(grids), "results": results})

        with threadpool_limits(limits=args.threads):
            for name in args.datasets:
                seeds = range(args.first_seed, args.first_seed + args.seeds)
                results[name] = []
                results[name] = run_dataset(
                    name, seeds, methods, log, grids,
                    save=lambda runs, name=name: (results.__setitem__(name, runs), save(runs)),
                )
    table = summarise(results, methods)
    print(table)
    markdown = (
        "Relevant: test rating >= 4; all items unseen in training ranked; binary gain; "
        "means over the splits (NDCG: ± its standard deviation). Hyperparameters chosen "
        "on a validation carve of each training part.\n\n" + table
    )
    write_results(args.output, {"protocol": protocol(grids), "results": results}, markdown)


def protocol(grids):
    return {"k": K, "threshold": THRESHOLD, "test_size": 0.1, "grids": grids}


if __name__ == "__main__":
    main()
