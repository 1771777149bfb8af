"""Test RMSE of KernelCollaborativeFilter with its default parameters on MovieLens.

Protocols (the test ratings are used for nothing but the final score):

* ML-100K: the official ``u1.base`` / ``u1.test`` split (``--splits`` adds u2..u5);
* ML-1M: random 90/10 splits of the ratings with seeds 0..4 (``--seeds``),
  the paper's protocol (RMSE 0.824 reported).

Each fit uses the defaults, with ``random_state`` set to the split's seed; early
stopping holds out part of the *training* ratings. Prints a table and writes
``results/bench_cf_accuracy.{json,md}``.

    python benchmarks/bench_cf_accuracy.py [--datasets 100k 1m] [--seeds 5] [--splits u1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_home, markdown_table, write_results  # noqa: E402

from skkernelnet import KernelCollaborativeFilter  # noqa: E402
from skkernelnet.datasets import fetch_movielens  # noqa: E402


def run(X_train, y_train, X_test, y_test, seed, verbose):
    model = KernelCollaborativeFilter(random_state=seed, verbose=verbose)
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        model.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    return {
        "seed": seed,
        "rmse": root_mean_squared_error(y_test, model.predict(X_test)),
        "fit_seconds": fit_time,
        "n_iter": model.n_iter_,
        "best_iter": model.best_iter_,
        "n_train": len(y_train),
        "n_test": len(y_test),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["100k", "1m"])
    parser.add_argument("--seeds", type=int, default=5, help="ML-1M random splits")
    parser.add_argument("--splits", nargs="+", default=["u1"], help="ML-100K official splits")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    home = data_home()
    results, rows = {}, []
    if "100k" in args.datasets:
        runs = []
        for split in args.splits:
            train = fetch_movielens("100k", subset="train", split=split, data_home=home)
            test = fetch_movielens("100k", subset="test", split=split, data_home=home)
            runs.append({"split": split, **run(train.data, train.target, test.data, test.target,
                                               0, args.verbose)})
            print(f"ML-100K {split}: RMSE {runs[-1]['rmse']:.4f} "
                  f"({runs[-1]['fit_seconds']:.0f} s)", flush=True)
        results["ml-100k"] = runs
        scores = [r["rmse"] for r in runs]
        rows.append([f"ML-100K {'/'.join(args.splits)}", f"{np.mean(scores):.4f}",
                     f"{np.std(scores):.4f}" if len(scores) > 1 else "",
                     f"{np.mean([r['fit_seconds'] for r in runs]):.0f} s", "0.900"])
    if "1m" in args.datasets:
        data = fetch_movielens("1m", data_home=home)
        runs = []
        for seed in range(args.seeds):
            X_train, X_test, y_train, y_test = train_test_split(
                data.data, data.target, test_size=0.1, random_state=seed
            )
            runs.append(run(X_train, y_train, X_test, y_test, seed, args.verbose))
            print(f"ML-1M seed {seed}: RMSE {runs[-1]['rmse']:.4f} "
                  f"({runs[-1]['fit_seconds']:.0f} s, best iteration {runs[-1]['best_iter']})",
                  flush=True)
        results["ml-1m"] = runs
        scores = [r["rmse"] for r in runs]
        rows.append([f"ML-1M 90/10, {args.seeds} seeds", f"{np.mean(scores):.4f}",
                     f"{np.std(scores):.4f}",
                     f"{np.mean([r['fit_seconds'] for r in runs]):.0f} s", "0.824"])
    table = markdown_table(["protocol", "mean test RMSE", "std", "mean fit time", "target"], rows)
    print()
    print(table)
    write_results("bench_cf_accuracy", {"threads": args.threads, "results": results}, table)


if __name__ == "__main__":
    main()
