"""Fold-in of new users on MovieLens-1M: as good as a refit, in milliseconds.

500 users (drawn with ``--seed``) are held out of training entirely. Each
held-out user's ratings are split in time order (in a random order, drawn with
the seed, when the ratings file has no timestamps): the first half is the
user's *history*, the second half is scored. Compared on those second halves:

* **fold-in**: the model fitted without the 500 users predicts from their
  histories (``predict(X, history=...)``), its networks unchanged;
* **refit**: the same estimator fitted on the other users' ratings *plus*
  the 500 histories (what fold-in tries to match without refitting);
* **fallback**: the fold-in model without histories, i.e. the baseline
  ``global_mean_ + item_bias_`` every unknown user gets;
* **bias fold-in**: the baseline with the user's shrunken bias fitted on the
  history (how much of the gain the bias alone explains).

Each is also reported for the item-based (the paper's) and the user-based
autoencoder alone (the same fitted networks, one at weight 1 and the other at
0, instead of the weights fitted against the bias baseline). Nothing here is
tuned: the fold-in has no parameter, and the estimator runs with its defaults.
Time per folded-in user is measured in two ways: all 500 in one ``predict``
call (divided by 500), and one call per user (median over the users, with
the per-call overhead). The first fold-in call, which computes and caches the
item codes and the prior, is timed separately.

    python benchmarks/bench_fold_in.py [--users 500] [--seed 0] [--threads 1] [--jobs 2]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_home, markdown_table, write_results  # noqa: E402

from skkernelnet import KernelCollaborativeFilter  # noqa: E402
from skkernelnet._fold_in import fold_in_bias  # noqa: E402
from skkernelnet._ratings import lookup  # noqa: E402
from skkernelnet.datasets import fetch_movielens  # noqa: E402


def split(data, n_users, seed):
    """Training ratings, histories (first halves) and test ratings (second halves)."""
    X, t = data.data, data.timestamps
    rng = np.random.RandomState(seed)
    held = rng.choice(np.unique(X[:, 0]), n_users, replace=False)
    is_held = np.isin(X[:, 0], held)
    history, test = [], []
    for user in held:
        rows = np.flatnonzero(X[:, 0] == user)
        if t is None:  # a ratings.dat without timestamps: a random half
            rows = rng.permutation(rows)
        else:  # time order, ties by file order
            rows = rows[np.lexsort((rows, t[rows]))]
        half = len(rows) // 2
        history.append(rows[:half])
        test.append(rows[half:])
    history, test = np.concatenate(history), np.concatenate(test)
    # a history can only use items the fold-in model knows: drop the few items that
    # only held-out users rated (from both models' data, so both see the same ratings)
    known_items = np.unique(X[~is_held, 1])
    dropped = int((~np.isin(X[history, 1], known_items)).sum())
    history = history[np.isin(X[history, 1], known_items)]
    print(f"{dropped} history ratings of items unknown without the held-out users dropped")
    return np.flatnonzero(~is_held), history, test


def fit(X, y, threads, seed, smoke):
    torch.set_num_threads(threads)
    params = {"hidden_layer_sizes": (32,), "max_iter": 5} if smoke else {}
    return KernelCollaborativeFilter(random_state=seed, **params).fit(X, y)


def rmse(pred, y):
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def with_weights(model, weights):
    """The model's predictions with the networks' weights forced (None: as fitted)."""

    class _Forced:
        def __enter__(self):
            self.saved = model.network_weights_
            if weights is not None:
                model.network_weights_ = np.asarray(weights, dtype=np.float64)

        def __exit__(self, *exc):
            model.network_weights_ = self.saved

    return _Forced()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="fit the two models in parallel")
    parser.add_argument("--smoke", action="store_true", help="tiny models, to test the script")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    data = fetch_movielens("1m", data_home=data_home())
    X, y = data.data, data.target
    train, history, test = split(data, args.users, args.seed)
    refit_rows = np.concatenate([train, history])
    print(
        f"{len(train)} training ratings of {len(np.unique(X[train, 0]))} users; "
        f"{args.users} held-out users with {len(history)} history and {len(test)} test ratings",
        flush=True,
    )
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        started = time.perf_counter()
        fold_job = pool.submit(fit, X[train], y[train], args.threads, args.seed, args.smoke)
        refit_job = pool.submit(
            fit, X[refit_rows], y[refit_rows], args.threads, args.seed, args.smoke
        )
        model, refit = fold_job.result(), refit_job.result()
        fit_wall = time.perf_counter() - started
    print(f"fits done in {fit_wall:.0f} s", flush=True)

    hist = (X[history], y[history])
    X_test, y_test = X[test], y[test]
    # the first fold-in call computes and caches the item codes and the prior
    first_user = X_test[0, 0]
    one = X[history][:, 0] == first_user
    started = time.perf_counter()
    model.predict(X_test[X_test[:, 0] == first_user], history=(X[history][one], y[history][one]))
    first_call_ms = 1e3 * (time.perf_counter() - started)
    views = {
        "default (fitted network weights)": None,
        "item-based network alone, weight 1": (1.0, 0.0),
        "user-based network alone, weight 1": (0.0, 1.0),
    }
    rows, results = [], {}
    for label, weights in views.items():
        with with_weights(model, weights), with_weights(refit, weights):
            fold = rmse(model.predict(X_test, history=hist), y_test)
            full = rmse(refit.predict(X_test), y_test)
        results[label] = {"fold_in_rmse": fold, "refit_rmse": full, "ratio": fold / full}

    fallback = rmse(model.predict(X_test), y_test)
    bias_pred = []
    for user in np.unique(X_test[:, 0]):
        h = X[history][:, 0] == user
        items = lookup(model.item_ids_, X[history][h, 1])
        bias = fold_in_bias(model, items, y[history][h])
        queries = lookup(model.item_ids_, X_test[X_test[:, 0] == user, 1])
        pred = model.global_mean_ + bias + np.where(queries >= 0, model.item_bias_[queries], 0)
        bias_pred.append(pred)
    order = np.argsort(X_test[:, 0], kind="stable")
    bias_only = np.empty(len(y_test))
    bias_only[order] = np.concatenate(bias_pred)
    bias_only = rmse(np.clip(bias_only, *model.rating_range_), y_test)

    # timing: first call (builds the cache), all users in one call, one call per user
    started = time.perf_counter()
    model.predict(X_test, history=hist)
    batch_ms = 1e3 * (time.perf_counter() - started) / args.users
    single = []
    for user in np.unique(X_test[:, 0]):
        h = X[history][:, 0] == user
        queries = X_test[X_test[:, 0] == user]
        started = time.perf_counter()
        model.predict(queries, history=(X[history][h], y[history][h]))
        single.append(1e3 * (time.perf_counter() - started))
    single_ms = statistics.median(single)
    started = time.perf_counter()
    model.recommend(np.unique(X_test[:, 0]), n=10, history=hist)
    recommend_ms = 1e3 * (time.perf_counter() - started) / args.users

    for label, r in results.items():
        rows.append(
            [label, f"{r['fold_in_rmse']:.4f}", f"{r['refit_rmse']:.4f}", f"{r['ratio']:.4f}"]
        )
    payload = {
        "config": vars(args),
        "n_train": int(len(train)),
        "n_history": int(len(history)),
        "n_test": int(len(test)),
        "views": results,
        "fallback_rmse": fallback,
        "bias_fold_in_rmse": bias_only,
        "fit_time_s": {"fold_in_model": model.fit_time_, "refit": refit.fit_time_},
        "network_weights": {
            "fold_in_model": model.network_weights_.tolist(),
            "refit": refit.network_weights_.tolist(),
        },
        "first_call_ms": first_call_ms,
        "ms_per_user_batch": batch_ms,
        "ms_per_user_single_call_median": single_ms,
        "recommend_ms_per_user_batch": recommend_ms,
    }
    blend = results["default (fitted network weights)"]
    markdown = (
        "# Fold-in of new users, MovieLens-1M\n\n"
        f"{args.users} users held out of training (seed {args.seed}); each user's ratings "
        f"in {'random' if data.timestamps is None else 'time'} order, first half as history "
        f"({len(history)} ratings), second half "
        f"scored ({len(test)} ratings). Default estimator, random_state={args.seed}.\n\n"
        + markdown_table(["model", "fold-in RMSE", "refit RMSE", "fold-in / refit"], rows)
        + "\n"
        + markdown_table(
            ["reference", "RMSE", "/ refit (blend)"],
            [
                ["fallback (global mean + item bias)", f"{fallback:.4f}",
                 f"{fallback / blend['refit_rmse']:.4f}"],
                ["bias fold-in (baseline + history's user bias)", f"{bias_only:.4f}",
                 f"{bias_only / blend['refit_rmse']:.4f}"],
            ],
        )
        + "\n"
        + markdown_table(
            ["time", "value"],
            [
                ["fold-in, 500 users in one predict call", f"{batch_ms:.2f} ms per user"],
                ["fold-in, one predict call per user (median)", f"{single_ms:.2f} ms"],
                ["first call (computes and caches codes and prior)", f"{first_call_ms:.0f} ms"],
                ["recommend top-10 with history, 500 users in one call",
                 f"{recommend_ms:.2f} ms per user"],
                ["refit (for comparison)", f"{refit.fit_time_:.0f} s"],
                ["network weights (fold-in model; refit)",
                 f"{np.round(model.network_weights_, 3).tolist()}; "
                 f"{np.round(refit.network_weights_, 3).tolist()}"],
            ],
        )
        + "\nWall-clock times were taken on a shared machine and are inflated by contention; "
        "the ratio to the refit's time is what carries over.\n"
    )
    if not args.smoke:
        write_results("bench_fold_in", payload, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
