"""Validation behind KernelCollaborativeFilter's defaults, on training ratings only.

No test rating is read:

* ``--dataset 100k``: ML-100K ``u1.base`` (``u1.test`` is never loaded); 10% of it is held
  out as the validation set, once per seed in ``--seeds`` (different held-out ratings and
  initialisations), and the table gives the mean validation RMSE over the seeds;
* ``--dataset 1m``: the *training* part of ``bench_cf_accuracy.py``'s ML-1M split with
  seed 0 (its test part is never used); 10% of it is held out as the validation set.

Candidates (each fit uses the defaults except for the listed parameters):

* ``alpha``, the penalty on the free weights, is the reference's ``lambda_2 / sqrt(n)``.
  The reference's ML-1M value (lambda_2 = 60, n = 900k ratings) is alpha = 0.063;
* ``kernel_alpha`` around the reference's lambda_s, scaled the same way;
* ``tol``, the improvement in validation RMSE that resets the early-stopping patience;
* ``blend`` (item- plus user-based autoencoders) against the paper's single autoencoder.

    python benchmarks/choose_cf_defaults.py --dataset 100k --seeds 0 1 2
    python benchmarks/choose_cf_defaults.py --dataset 1m --candidates alpha=0.045 alpha=0.065

Writes ``results/choose_cf_defaults_<dataset>.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_home, markdown_table, write_results  # noqa: E402

from skkernelnet import KernelCollaborativeFilter  # noqa: E402
from skkernelnet.datasets import fetch_movielens  # noqa: E402

DEFAULT_CANDIDATES = [
    "alpha=0.02", "alpha=0.03", "alpha=0.045", "alpha=0.065", "alpha=0.1",
    "kernel_alpha=1.4e-4", "kernel_alpha=1.4e-6", "tol=1e-5", "blend=False",
]


def parse_candidate(text):
    """``"alpha=0.045,blend=False"`` -> ``{"alpha": 0.045, "blend": False}``."""
    params = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if value in ("True", "False"):
            params[name] = value == "True"
        else:
            params[name] = float(value)
    return params


def training_ratings(dataset):
    home = data_home()
    if dataset == "100k":
        base = fetch_movielens("100k", subset="train", split="u1", data_home=home)
        return base.data, base.target
    data = fetch_movielens("1m", data_home=home)
    X_train, _, y_train, _ = train_test_split(data.data, data.target, test_size=0.1,
                                              random_state=0)
    return X_train, y_train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["100k", "1m"], default="100k")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--candidates", nargs="+", default=DEFAULT_CANDIDATES,
                        help='parameter settings such as "alpha=0.045,blend=False"')
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, y = training_ratings(args.dataset)
    defaults = KernelCollaborativeFilter().get_params()
    rows, results = [], {}
    for candidate in args.candidates:
        params = parse_candidate(candidate)
        runs = []
        for seed in args.seeds:
            X_fit, X_val, y_fit, y_val = train_test_split(X, y, test_size=0.1,
                                                          random_state=seed)
            start = time.perf_counter()
            with threadpool_limits(limits=1, user_api="blas"):
                model = KernelCollaborativeFilter(random_state=seed, **params).fit(X_fit, y_fit)
            seconds = time.perf_counter() - start
            rmse = float(np.sqrt(np.mean((model.predict(X_val) - y_val) ** 2)))
            runs.append({"seed": seed, "validation_rmse": rmse, "fit_seconds": seconds,
                         "best_iter": model.best_iter_, "n_iter": model.n_iter_})
            print(f"{candidate:<30} seed {seed}: validation RMSE {rmse:.4f} "
                  f"(best iteration {model.best_iter_}, {seconds:.0f} s)", flush=True)
        scores = [r["validation_rmse"] for r in runs]
        results[candidate] = {"params": params, "runs": runs,
                              "mean_validation_rmse": float(np.mean(scores))}
        is_default = all(defaults[k] == v for k, v in params.items())
        rows.append([candidate + (" (default)" if is_default else ""),
                     f"{np.mean(scores):.4f}",
                     f"{np.std(scores):.4f}" if len(scores) > 1 else "",
                     f"{np.mean([r['best_iter'] for r in runs]):.0f}",
                     f"{np.mean([r['fit_seconds'] for r in runs]):.0f} s"])
    source = ("ML-100K u1.base" if args.dataset == "100k"
              else "ML-1M, training part of seed 0's 90/10 split")
    header = [f"candidate ({source}, 10% held out)", "mean validation RMSE", "std",
              "mean best iteration", "mean fit time"]
    table = markdown_table(header, rows)
    print(table)
    write_results(f"choose_cf_defaults_{args.dataset}",
                  {"dataset": args.dataset, "seeds": args.seeds, "threads": args.threads,
                   "results": results}, table)


if __name__ == "__main__":
    main()
