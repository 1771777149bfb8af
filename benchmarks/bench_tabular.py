"""KernelNetClassifier / KernelNetRegressor against scikit-learn's MLPs, in one run.

Every model is a ``Pipeline(StandardScaler(), model)`` scored by 5-fold
cross-validation (shuffled, seed 0) on the datasets bundled with scikit-learn:
digits, breast_cancer, wine, iris (accuracy) and diabetes (R^2). Rows:

* ``KernelNet*`` with its default parameters (chosen by
  ``choose_tabular_defaults.py``, see ``docs/tabular_defaults.rst``);
* ``KernelNet* gated``: the same with ``gated=True`` (a free weight per
  connection times the kernel), for reference; on diabetes also
  ``early_stopping=True``, the remedy for small noisy data;
* ``MLPClassifier`` / ``MLPRegressor`` with their default parameters but the
  same ``hidden_layer_sizes`` and ``max_iter`` as ours;
* ``MLPRegressor`` inside ``TransformedTargetRegressor(StandardScaler())``: ours
  standardises y internally, the plain MLP does not, which is what makes it
  score poorly on diabetes; this row is the fair comparison.

Columns: mean +- std of the 5 test scores, mean fit time per fold (seconds, one
torch/BLAS thread unless ``--threads``), and the number of free parameters
(MLP: the sizes of ``coefs_`` and ``intercepts_``; ours:
``module_.n_free_parameters()``), counted on the first fold's model.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_tabular.py

It prints a Markdown table and writes ``benchmarks/results/bench_tabular.json``
(with versions, CPU, threads and date) and ``benchmarks/results/bench_tabular.md``.

Target (issue 3): on digits, accuracy within 1 point of ``MLPClassifier`` with
at most a quarter of its free parameters.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn import datasets  # noqa: E402
from sklearn.compose import TransformedTargetRegressor  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_results  # noqa: E402

from skkernelnet import KernelNetClassifier, KernelNetRegressor  # noqa: E402

CLASSIFICATION = ["digits", "breast_cancer", "wine", "iris"]
REGRESSION = ["diabetes"]


def load(name):
    return getattr(datasets, f"load_{name}")(return_X_y=True)


def models(task, seed):
    """(label, estimator) pairs; MLPs get our hidden sizes and max_iter."""
    if task == "classification":
        ours = KernelNetClassifier(random_state=seed)
        mlp = MLPClassifier(
            hidden_layer_sizes=ours.hidden_layer_sizes, max_iter=ours.max_iter, random_state=seed
        )
        return [
            ("KernelNetClassifier", ours),
            ("KernelNetClassifier gated", KernelNetClassifier(gated=True, random_state=seed)),
            ("MLPClassifier", mlp),
        ]
    ours = KernelNetRegressor(random_state=seed)
    mlp = MLPRegressor(
        hidden_layer_sizes=ours.hidden_layer_sizes, max_iter=ours.max_iter, random_state=seed
    )
    return [
        ("KernelNetRegressor", ours),
        ("KernelNetRegressor gated", KernelNetRegressor(gated=True, random_state=seed)),
        (
            "KernelNetRegressor early_stopping",
            KernelNetRegressor(early_stopping=True, random_state=seed),
        ),
        ("MLPRegressor", mlp),
        (
            "MLPRegressor, y standardised",
            TransformedTargetRegressor(regressor=mlp, transformer=StandardScaler()),
        ),
    ]


def n_free_parameters(model):
    """Trained scalars of a fitted (possibly wrapped) model."""
    if isinstance(model, TransformedTargetRegressor):
        model = model.regressor_
    if hasattr(model, "module_"):
        return int(model.module_.n_free_parameters())
    return int(sum(c.size for c in model.coefs_) + sum(b.size for b in model.intercepts_))


def _plain(params):
    """Parameters as JSON-friendly values (nested estimators left out)."""
    out = {}
    for key, value in params.items():
        if hasattr(value, "get_params"):
            continue
        ok = value is None or isinstance(value, (str, int, float, bool, list, tuple))
        out[key] = value if ok else repr(value)
    return out


def run(names, seed, n_splits):
    rows = []
    for name in names:
        X, y = load(name)
        task = "classification" if name in CLASSIFICATION else "regression"
        splitter = StratifiedKFold if task == "classification" else KFold
        cv = splitter(n_splits, shuffle=True, random_state=0)
        for label, model in models(task, seed):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                result = cross_validate(
                    make_pipeline(StandardScaler(), model), X, y, cv=cv, return_estimator=True
                )
            scores = result["test_score"]
            row = {
                "dataset": name,
                "metric": "accuracy" if task == "classification" else "R^2",
                "model": label,
                "score_mean": float(scores.mean()),
                "score_std": float(scores.std()),
                "scores": scores.tolist(),
                "fit_time": float(result["fit_time"].mean()),
                "n_free_parameters": n_free_parameters(result["estimator"][0][-1]),
                "params": _plain(model.get_params()),
            }
            rows.append(row)
            print(
                f"{name:14s} {label:30s} {row['score_mean']:.4f} +- {row['score_std']:.4f}  "
                f"{row['fit_time']:7.2f}s  {row['n_free_parameters']:6d} params",
                flush=True,
            )
    return rows


def target(rows):
    """The digits target: within 1 point of MLPClassifier with <= 1/4 of its parameters."""
    digits = {r["model"]: r for r in rows if r["dataset"] == "digits"}
    if not {"KernelNetClassifier", "MLPClassifier"} <= set(digits):
        return None
    ours, mlp = digits["KernelNetClassifier"], digits["MLPClassifier"]
    gap = 100 * (mlp["score_mean"] - ours["score_mean"])
    ratio = ours["n_free_parameters"] / mlp["n_free_parameters"]
    return {
        "accuracy_gap_points": gap,
        "parameter_ratio": ratio,
        "met": bool(gap <= 1.0 and ratio <= 0.25),
    }


def digits_over_seeds(seeds, n_splits):
    """Digits accuracy of ours and the MLP for several random_state (same CV folds)."""
    X, y = load("digits")
    cv = StratifiedKFold(n_splits, shuffle=True, random_state=0)
    out = []
    for seed in seeds:
        scores = {}
        candidates = dict(models("classification", seed))
        for label in ("KernelNetClassifier", "MLPClassifier"):
            model = candidates[label]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                result = cross_validate(make_pipeline(StandardScaler(), model), X, y, cv=cv)
            scores[label] = float(result["test_score"].mean())
        gap = 100 * (scores["MLPClassifier"] - scores["KernelNetClassifier"])
        out.append({"seed": seed, **scores, "gap_points": gap})
        print(f"digits random_state={seed}: ours {scores['KernelNetClassifier']:.4f} "
              f"MLP {scores['MLPClassifier']:.4f} gap {gap:+.2f} points", flush=True)
    return out


def to_markdown(rows, n_splits):
    header = ["dataset", "model", "score (mean ± std)", "fit time (s)", "free parameters"]
    body = [
        [
            f"{r['dataset']} ({r['metric']})",
            r["model"],
            f"{r['score_mean']:.4f} ± {r['score_std']:.4f}",
            f"{r['fit_time']:.2f}",
            f"{r['n_free_parameters']:,}",
        ]
        for r in rows
    ]
    return (
        f"{n_splits}-fold CV (shuffled, seed 0), StandardScaler + model, hidden_layer_sizes and "
        "max_iter of KernelNet's defaults for every model; fit time is the mean per fold.\n\n"
        + markdown_table(header, body)
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="random_state of every model")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    parser.add_argument("--datasets", nargs="+", default=CLASSIFICATION + REGRESSION)
    parser.add_argument("--n-splits", type=int, default=5)
    parser.add_argument("--digits-seeds", type=int, nargs="*", default=[0, 1, 2, 3],
                        help="random_state values for the digits comparison over seeds")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    with threadpool_limits(limits=args.threads):
        rows = run(args.datasets, args.seed, args.n_splits)
    markdown = to_markdown(rows, args.n_splits)
    check = target(rows)
    if check is not None:
        markdown += (
            f"\nDigits target (within 1 point of MLPClassifier with at most 1/4 of its "
            f"parameters): gap {check['accuracy_gap_points']:+.2f} points, "
            f"{check['parameter_ratio']:.2f} of its parameters -> "
            f"{'met' if check['met'] else 'NOT met'}.\n"
        )
    seeds = []
    if args.digits_seeds and "digits" in args.datasets:
        with threadpool_limits(limits=args.threads):
            seeds = digits_over_seeds(args.digits_seeds, args.n_splits)
        gaps = [r["gap_points"] for r in seeds]
        markdown += (
            "\nDigits over random_state (same folds; the seed changes both models' "
            "initialisation):\n\n"
            + markdown_table(
                ["random_state", "KernelNetClassifier", "MLPClassifier", "gap (points)"],
                [[r["seed"], f"{r['KernelNetClassifier']:.4f}", f"{r['MLPClassifier']:.4f}",
                  f"{r['gap_points']:+.2f}"] for r in seeds],
            )
            + f"\nMean gap {np.mean(gaps):+.2f} points (min {min(gaps):+.2f}, "
            f"max {max(gaps):+.2f}).\n"
        )
    print()
    print(markdown)
    write_results(
        "bench_tabular",
        {
            "protocol": {
                "cv": f"StratifiedKFold/KFold({args.n_splits}, shuffle=True, random_state=0)",
                "preprocessing": "StandardScaler in a Pipeline",
                "random_state": args.seed,
                "threads": args.threads,
            },
            "rows": rows,
            "digits_target": check,
            "digits_over_seeds": seeds,
            "total_time_s": time.perf_counter() - start,
        },
        markdown,
    )
    return rows


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
