"""KernelNetClassifier / KernelNetRegressor against scikit-learn's MLPs on folds that chose nothing.

Three parts, every comparison within one run (time ratios, not absolute times,
are what carries over between machines):

1. **Small data, fresh folds.** The protocol of ``_tabular.py`` on the
   evaluation seeds 31, 32 and 33 (5-fold CV shuffled with the seed, every
   model's ``random_state`` the same seed, ``Pipeline(StandardScaler(),
   model)``); the defaults were chosen by ``choose_tabular_defaults.py`` on
   seeds 0 to 3 only. Rows: the estimator with its defaults; the other
   documented network (the classifier's compact ``gated=False, alpha=0.1``;
   for the regressor, whose default is compact, gated layers with
   ``alpha=3.0``, the best gated candidate on diabetes); ``MLPClassifier(
   max_iter=500)`` / ``MLPRegressor(max_iter=500)``, the latter also with a
   standardised target.
   Accuracy on digits, breast_cancer, wine, iris; R^2 on diabetes and
   ``make_friedman1(500, noise=1.0)``. Target: mean score >= the MLP's on
   every dataset (for the regressor, >= both MLP rows).
2. **Large dense data.** ``make_classification(n_samples=100_000,
   n_features=50, n_informative=20)``, a stratified 80/20 split, StandardScaler,
   ``solver="adam"`` for both with ``batch_size`` 200 and exactly ``--epochs``
   epochs (``tol=0``, no early stop). Target: fit time <= 1.5x the MLP's,
   test accuracy >= its accuracy.
3. **Sparse high-dimensional data.** A TF-IDF matrix of random documents
   (20,000-word vocabulary with Zipf word frequencies, 100 words per document,
   labels from a random linear score), CSR all the way: the first layer
   computes only the weight rows of the words present in each mini-batch.
   Same Adam settings. Target: faster than MLPClassifier.

Times: wall clock and process CPU time of the fit (one torch/BLAS thread; the
CPU time is less sensitive to other processes on a shared machine), after one
untimed warm-up fit of each model on the same data (imports and first-call
costs are not the estimator's). Each timed fit is repeated ``--repeats`` times
and the fastest kept.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_tabular.py

It prints Markdown and writes ``benchmarks/results/bench_tabular.{json,md}``.
``--parts small dense sparse`` picks the parts to run; the others are read
back from the previous ``bench_tabular.json`` (their environment record is
kept under ``reused_environment``). ``--quick`` is a smoke test (one seed, two
small datasets, small large-data parts; writes nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.feature_extraction.text import TfidfTransformer  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, markdown_table, write_results  # noqa: E402
from _tabular import (  # noqa: E402
    CHOOSING_SEEDS,
    CLASSIFICATION,
    EVALUATION_SEEDS,
    REGRESSION,
    cross_validate_model,
    mlp_baselines,
    plain_params,
)

from skkernelnet import KernelNetClassifier, KernelNetRegressor  # noqa: E402


# -- part 1: small data on fresh folds ---------------------------------------------------
def small_models(task, seed):
    """The defaults, the other documented network, and the MLPs."""
    if task == "classification":
        ours = [
            ("KernelNetClassifier()", KernelNetClassifier(random_state=seed)),
            (
                "KernelNetClassifier(gated=False, alpha=0.1)",  # the compact network
                KernelNetClassifier(gated=False, alpha=0.1, random_state=seed),
            ),
        ]
    else:
        ours = [
            ("KernelNetRegressor()", KernelNetRegressor(random_state=seed)),  # compact
            (
                "KernelNetRegressor(gated=True, alpha=3.0)",
                KernelNetRegressor(gated=True, alpha=3.0, random_state=seed),
            ),
        ]
    return ours + mlp_baselines(task, seed)


def small_data(names, seeds):
    rows = []
    for name in names:
        task = "regression" if name in REGRESSION else "classification"
        for label, _ in small_models(task, 0):
            runs = {}
            for seed in seeds:
                model = dict(small_models(task, seed))[label]
                runs[seed] = cross_validate_model(model, name, seed)
            scores = [s for run in runs.values() for s in run["scores"]]
            row = {
                "dataset": name,
                "metric": "R^2" if task == "regression" else "accuracy",
                "model": label,
                "score_mean": float(np.mean(scores)),
                "score_std": float(np.std(scores)),
                "seed_means": {str(s): float(np.mean(r["scores"])) for s, r in runs.items()},
                "scores": scores,
                "fit_time": float(np.mean([r["fit_time"] for r in runs.values()])),
                "cpu_time": float(np.mean([r["cpu_time"] for r in runs.values()])),
                "n_free_parameters": runs[seeds[0]]["n_free_parameters"],
                "params": plain_params(model.get_params()),
            }
            rows.append(row)
            print(
                f"{name:14s} {label:36s} {row['score_mean']:.4f} +- {row['score_std']:.4f} "
                f"{row['fit_time']:6.2f}s {row['n_free_parameters']:7,d} params",
                flush=True,
            )
    return rows


def small_data_verdict(rows):
    """Per dataset: the default's margin over the best MLP row, and whether it is >= 0."""
    verdict = {}
    for name in dict.fromkeys(r["dataset"] for r in rows):
        here = {r["model"]: r for r in rows if r["dataset"] == name}
        ours = next(r for label, r in here.items() if label.endswith("()"))
        mlps = [r for label, r in here.items() if label.startswith("MLP")]
        best = max(r["score_mean"] for r in mlps)
        verdict[name] = {
            "default": ours["score_mean"],
            "best_mlp": best,
            "margin_points": 100 * (ours["score_mean"] - best),
            "met": bool(ours["score_mean"] >= best),
        }
    return verdict


def small_data_markdown(rows, verdict, seeds):
    header = ["dataset", "model", "score (mean ± std)", "per seed", "fit s", "parameters"]
    body = [
        [
            f"{r['dataset']} ({r['metric']})",
            r["model"],
            f"{r['score_mean']:.4f} ± {r['score_std']:.4f}",
            " / ".join(f"{v:.4f}" for v in r["seed_means"].values()),
            f"{r['fit_time']:.2f}",
            f"{r['n_free_parameters']:,}",
        ]
        for r in rows
    ]
    checks = markdown_table(
        ["dataset", "default", "best MLP", "margin (points)", "default >= MLP"],
        [
            [name, f"{v['default']:.4f}", f"{v['best_mlp']:.4f}",
             f"{v['margin_points']:+.2f}", "yes" if v["met"] else "**no**"]
            for name, v in verdict.items()
        ],
    )
    return (
        f"Evaluation seeds {', '.join(map(str, seeds))} (defaults chosen on seeds "
        f"{', '.join(map(str, CHOOSING_SEEDS))}): 5-fold CV shuffled with the seed, "
        "random_state = seed, StandardScaler + model; mean ± std over the "
        f"{5 * len(seeds)} test folds, the mean of each seed, mean fit time per fold "
        "(seconds, wall clock, one thread, shared machine) and free parameters.\n\n"
        + markdown_table(header, body)
        + "\nDefaults against the better MLP row of each dataset:\n\n"
        + checks
    )


# -- parts 2 and 3: larger data, Adam, same epochs ---------------------------------------
def tfidf_like(n_samples, n_features=20_000, doc_length=100, seed=0):
    """TF-IDF of random documents: Zipf word frequencies, labels from a linear score."""
    rng = np.random.RandomState(seed)
    frequency = 1.0 / np.arange(1, n_features + 1) ** 1.1
    words = rng.choice(n_features, size=(n_samples, doc_length), p=frequency / frequency.sum())
    rows = np.repeat(np.arange(n_samples), doc_length)
    counts = sp.csr_matrix(
        (np.ones(rows.size), (rows, words.ravel())), shape=(n_samples, n_features)
    )
    counts.sum_duplicates()
    X = TfidfTransformer().fit_transform(counts).tocsr()
    score = X @ rng.normal(size=n_features)
    return X, (score > np.median(score)).astype(int)


def timed_fit(model, X, y, repeats):
    """Fastest of ``repeats`` fits: (wall seconds, CPU seconds, fitted model)."""
    best = None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(X, y)
        timing = (time.perf_counter() - wall, time.process_time() - cpu)
        best = timing if best is None or timing[1] < best[1] else best
    return (*best, model)


def same_epochs_comparison(X_train, X_test, y_train, y_test, epochs, repeats, seed=0):
    adam = {
        "solver": "adam",
        "max_iter": epochs,
        "tol": 0.0,
        "n_iter_no_change": epochs + 1,
        "batch_size": 200,
        "random_state": seed,
    }
    models = [
        ("MLPClassifier(solver='adam')", lambda: MLPClassifier(**adam)),
        ("KernelNetClassifier(solver='adam')", lambda: KernelNetClassifier(**adam)),
        (
            "KernelNetClassifier(solver='adam', gated=False)",
            lambda: KernelNetClassifier(gated=False, **adam),
        ),
    ]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for label, make in models:
            make().set_params(max_iter=1).fit(X_train[:2000], y_train[:2000])  # warm-up
            wall, cpu, model = timed_fit(make(), X_train, y_train, repeats)
            rows.append(
                {
                    "model": label,
                    "fit_time": wall,
                    "cpu_time": cpu,
                    "n_iter": int(model.n_iter_),
                    "accuracy": float(model.score(X_test, y_test)),
                }
            )
            print(f"  {label:48s} {wall:7.2f}s wall {cpu:7.2f}s cpu "
                  f"accuracy {rows[-1]['accuracy']:.4f}", flush=True)
    for row in rows:
        row["cpu_time_ratio"] = row["cpu_time"] / rows[0]["cpu_time"]
        row["fit_time_ratio"] = row["fit_time"] / rows[0]["fit_time"]
        row["accuracy_margin_points"] = 100 * (row["accuracy"] - rows[0]["accuracy"])
    return rows


def large_dense(n_samples, epochs, repeats):
    X, y = make_classification(
        n_samples=n_samples, n_features=50, n_informative=20, random_state=0
    )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    return same_epochs_comparison(
        scaler.transform(X_train), scaler.transform(X_test), y_train, y_test, epochs, repeats
    )


def sparse_text(n_samples, epochs, repeats):
    X, y = tfidf_like(n_samples)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    present = [
        np.unique(X_train[i : i + 200].indices).size for i in range(0, X_train.shape[0], 200)
    ]
    info = {
        "shape": list(X.shape),
        "nnz_per_row": X.nnz / X.shape[0],
        "features_present_per_batch": float(np.mean(present)),
    }
    print(f"  {info}", flush=True)
    return info, same_epochs_comparison(X_train, X_test, y_train, y_test, epochs, repeats)


def larger_markdown(rows, title):
    return (
        f"{title}\n\n"
        + markdown_table(
            ["model", "epochs", "fit s (wall)", "fit s (CPU)", "CPU time / MLP's",
             "test accuracy", "vs MLP (points)"],
            [
                [r["model"], r["n_iter"], f"{r['fit_time']:.2f}", f"{r['cpu_time']:.2f}",
                 f"{r['cpu_time_ratio']:.2f}", f"{r['accuracy']:.4f}",
                 f"{r['accuracy_margin_points']:+.2f}"]
                for r in rows
            ],
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    parser.add_argument("--epochs", type=int, default=10, help="Adam epochs, parts 2 and 3")
    parser.add_argument("--repeats", type=int, default=2, help="timed fits, parts 2 and 3")
    parser.add_argument("--quick", action="store_true", help="smoke test, writes nothing")
    parser.add_argument(
        "--parts", nargs="+", choices=["small", "dense", "sparse"],
        default=["small", "dense", "sparse"],
        help="parts to run; the others are read from the previous bench_tabular.json",
    )
    args = parser.parse_args(argv)
    previous = {}
    if set(args.parts) != {"small", "dense", "sparse"}:
        previous = json.loads((RESULTS / "bench_tabular.json").read_text())
    torch.set_num_threads(args.threads)
    np.seterr(all="ignore")
    start = time.perf_counter()
    seeds = EVALUATION_SEEDS[:1] if args.quick else EVALUATION_SEEDS
    assert not set(seeds) & set(CHOOSING_SEEDS)
    names = ["iris", "diabetes"] if args.quick else CLASSIFICATION + REGRESSION
    n_dense, n_sparse = (5_000, 2_000) if args.quick else (100_000, 10_000)
    epochs, repeats = (2, 1) if args.quick else (args.epochs, args.repeats)
    with threadpool_limits(limits=args.threads):
        if "small" in args.parts:
            print("Part 1: small data, evaluation seeds", seeds, flush=True)
            rows = small_data(names, seeds)
        else:
            rows = previous["small_data"]
        verdict = small_data_verdict(rows)
        if "dense" in args.parts:
            print(f"Part 2: make_classification({n_dense}, 50 features)", flush=True)
            dense = large_dense(n_dense, epochs, repeats)
        else:
            dense = previous["large_dense"]
        if "sparse" in args.parts:
            print(f"Part 3: TF-IDF-like CSR, {n_sparse} x 20000", flush=True)
            sparse_info, sparse = sparse_text(n_sparse, epochs, repeats)
        else:
            sparse_info, sparse = previous["sparse"]["data"], previous["sparse"]["rows"]
    dense_ours, sparse_ours = dense[1], sparse[1]
    targets = {
        "small_data": all(v["met"] for v in verdict.values()),
        "large_dense_time": dense_ours["cpu_time_ratio"] <= 1.5,
        "large_dense_accuracy": dense_ours["accuracy_margin_points"] >= 0,
        "sparse_faster": sparse_ours["cpu_time_ratio"] < 1.0,
    }
    markdown = (
        "### Small data, fresh folds\n\n"
        + small_data_markdown(rows, verdict, seeds)
        + "\n### Larger data, Adam, the same number of epochs\n\n"
        "Both with batch_size=200 and exactly the same number of epochs; fit time is the "
        f"fastest of {repeats} fits after a warm-up, one thread; the ratio is of CPU times "
        "measured in this run.\n\n"
        + larger_markdown(
            dense,
            f"make_classification(n_samples={n_dense:,}, n_features=50, n_informative=20), "
            "80/20 split, StandardScaler:",
        )
        + "\n"
        + larger_markdown(
            sparse,
            f"TF-IDF-like CSR input, {sparse_info['shape'][0]:,} x "
            f"{sparse_info['shape'][1]:,}, {sparse_info['nnz_per_row']:.0f} non-zeros per "
            f"row, {sparse_info['features_present_per_batch']:.0f} of the 20,000 features "
            "present in a mini-batch of 200 on average (the first layer computes only "
            "those rows of its weight), 80/20 split:",
        )
        + "\nTargets: "
        + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items())
        + ".\n"
    )
    print()
    print(markdown)
    if not args.quick:
        write_results(
            "bench_tabular",
            {
                "protocol": {
                    "evaluation_seeds": list(seeds),
                    "choosing_seeds": list(CHOOSING_SEEDS),
                    "cv": "StratifiedKFold/KFold(5, shuffle=True, random_state=seed)",
                    "preprocessing": "StandardScaler in a Pipeline",
                    "threads": args.threads,
                    "epochs": epochs,
                    "repeats": repeats,
                },
                "small_data": rows,
                "small_data_verdict": verdict,
                "large_dense": dense,
                "sparse": {"data": sparse_info, "rows": sparse},
                "targets": targets,
                "parts_run": args.parts,
                "reused_environment": previous.get("environment"),
                "total_time_s": time.perf_counter() - start,
            },
            markdown,
        )
    return targets


if __name__ == "__main__":
    main()
