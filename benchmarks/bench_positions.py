"""Imposed structure on digits: fixed 8 x 8 pixel-grid positions against learned positions and MLP.

Does telling the first layer where the pixels are help? Four models, each a
one-hidden-layer network of 100 units on digits scaled to [0, 1] (``X / 16``):

* ``fixed grid``: ``KernelNetClassifier`` whose first layer's input neurons sit
  at their pixel's coordinates (``grid_positions((8, 8))``, one unit between
  neighbours), frozen, under a local kernel; every hidden unit learns where
  its receptive field lies (``embedding_dim=2``: nothing else is learned
  about the inputs' points);
* ``grid start, learned``: the same, but the pixel coordinates are only the
  initial value of the learned positions (``freeze_input_positions=False``);
* ``learned positions``: the same network with every position learned from a
  random start, the library's usual model;
* ``MLPClassifier(hidden_layer_sizes=(100,), max_iter=500)``, scikit-learn's
  defaults otherwise.

Which data chose what. digits is split once (stratified, seed 20) into a
*selection* third (599 images) and an *evaluation* two thirds (1198 images).
On the selection third only, 3-fold CV (seed 20) picks each kernel network's
kernel (RBF with gamma 0.5 or 0.125, i.e. a width of about 1 or 2 pixels,
finite support of radius 1.5 or 2.5 pixels) and ``gated`` (False: weights
``K(u_i, v_j) (A B^T)_ij``, few parameters; True: a free weight per
connection times the kernel, a locally connected layer when the positions
are fixed): the highest mean accuracy wins, ties to the first listed. Other
parameters are pinned below (not the library defaults, which may change). The
evaluation third is scored by 5-fold stratified CV with shuffle seeds 21, 22
and 23, which chose nothing; each model's ``random_state`` is the CV seed.
Every training fold is used whole (about 958 images) and cut to a stratified
10 % (about 96 images, seed ``1000 * cv_seed + fold``), scored on the same
test fold.

Columns: accuracy (mean +- std over the 15 test folds), trainable parameters
(``n_free_parameters_``; MLP: ``coefs_`` and ``intercepts_``), share of the
first layer's effective weights that are exactly zero, mean fit time per fold
in seconds and its ratio to the MLP's in the same run (one torch/BLAS thread;
on a shared machine the times are inflated, the ratios less so). Paired
differences compare two models on the same folds.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_positions.py

It prints the tables and writes ``benchmarks/results/bench_positions.json``
(every fold, the selection scores, versions, CPU, date) and
``benchmarks/results/bench_positions.md``. ``--quick`` runs one CV seed with
2 folds and 50 iterations, to check the script, and writes nothing.
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
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import StratifiedKFold, train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_results  # noqa: E402

from skkernelnet import KernelNetClassifier  # noqa: E402
from skkernelnet.kernels import FiniteSupportKernel, RBFKernel  # noqa: E402
from skkernelnet.positions import grid_positions  # noqa: E402

SELECTION_SEED = 20
EVALUATION_SEEDS = (21, 22, 23)
N_SPLITS = 5
SMALL_FRACTION = 0.1
HIDDEN = (100,)

KERNELS = {
    "rbf(gamma=0.5)": RBFKernel(gamma=0.5),
    "rbf(gamma=0.125)": RBFKernel(gamma=0.125),
    "finite_support(radius=1.5)": FiniteSupportKernel(radius=1.5),
    "finite_support(radius=2.5)": FiniteSupportKernel(radius=2.5),
}
CANDIDATES = [(k, gated) for gated in (False, True) for k in KERNELS]

# Pinned, so that a change of the library's defaults does not change this benchmark.
PINNED = dict(
    hidden_layer_sizes=HIDDEN,
    embedding_dim=2,
    scale_rank=2,
    activation="relu",
    solver="lbfgs",
    alpha=0.1,
    kernel_alpha=0.0,
    max_iter=500,
    tol=1e-5,
    n_iter_no_change=10,
    dtype="float64",
)

POSITIONED = {
    "fixed grid": dict(input_positions=grid_positions((8, 8)), freeze_input_positions=True),
    "grid start, learned": dict(
        input_positions=grid_positions((8, 8)), freeze_input_positions=False
    ),
    "learned positions": dict(input_positions=None),
}


def kernel_net(family, kernel, gated, seed, max_iter):
    return KernelNetClassifier(
        **{**PINNED, "max_iter": max_iter},
        **POSITIONED[family],
        kernel=KERNELS[kernel],
        gated=gated,
        random_state=seed,
    )


def mlp(seed, max_iter):
    return MLPClassifier(hidden_layer_sizes=HIDDEN, max_iter=max_iter, random_state=seed)


def n_free_parameters(model):
    if hasattr(model, "module_"):
        return int(model.n_free_parameters_)
    return int(sum(c.size for c in model.coefs_) + sum(b.size for b in model.intercepts_))


def first_layer_zero_share(model):
    if not hasattr(model, "module_"):
        return 0.0
    return float(model.module_.layers[0].sparsity())


def fit_score(model, X_train, y_train, X_test, y_test):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    return {
        "accuracy": float(model.score(X_test, y_test)),
        "fit_time": fit_time,
        "n_free_parameters": n_free_parameters(model),
        "first_layer_zero_share": first_layer_zero_share(model),
    }


def select(X, y, n_splits, max_iter):
    """Each kernel family's (kernel, gated) by CV on the selection third."""
    cv = StratifiedKFold(n_splits, shuffle=True, random_state=SELECTION_SEED)
    table, chosen = [], {}
    for family in POSITIONED:
        best = None
        for kernel, gated in CANDIDATES:
            scores = [
                fit_score(
                    kernel_net(family, kernel, gated, SELECTION_SEED, max_iter),
                    X[tr],
                    y[tr],
                    X[te],
                    y[te],
                )["accuracy"]
                for tr, te in cv.split(X, y)
            ]
            mean = float(np.mean(scores))
            table.append({"model": family, "kernel": kernel, "gated": gated, "accuracy": mean})
            print(f"select {family:20s} {kernel:28s} gated={gated!s:5s} {mean:.4f}", flush=True)
            if best is None or mean > best[0]:
                best = (mean, kernel, gated)
        chosen[family] = {"kernel": best[1], "gated": best[2], "selection_accuracy": best[0]}
    return table, chosen


def evaluate(X, y, chosen, seeds, n_splits, max_iter):
    records = []
    for seed in seeds:
        cv = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
        for fold, (tr, te) in enumerate(cv.split(X, y)):
            small, _ = train_test_split(
                tr,
                train_size=SMALL_FRACTION,
                stratify=y[tr],
                random_state=1000 * seed + fold,
            )
            models = {
                family: kernel_net(family, c["kernel"], c["gated"], seed, max_iter)
                for family, c in chosen.items()
            }
            models["MLPClassifier"] = mlp(seed, max_iter)
            for size, train in (("full", tr), ("10%", small)):
                for name, model in models.items():
                    result = fit_score(clone(model), X[train], y[train], X[te], y[te])
                    records.append(
                        {
                            "model": name,
                            "training_set": size,
                            "n_train": int(len(train)),
                            "cv_seed": seed,
                            "fold": fold,
                            **result,
                        }
                    )
                    print(
                        f"seed {seed} fold {fold} {size:4s} {name:20s} "
                        f"{result['accuracy']:.4f} {result['fit_time']:6.2f}s",
                        flush=True,
                    )
    return records


def summarise(records, models):
    summary = []
    for size in ("full", "10%"):
        mlp_time = np.mean(
            [
                r["fit_time"]
                for r in records
                if r["model"] == "MLPClassifier" and r["training_set"] == size
            ]
        )
        for name in models:
            rows = [r for r in records if r["model"] == name and r["training_set"] == size]
            acc = np.array([r["accuracy"] for r in rows])
            fit_time = float(np.mean([r["fit_time"] for r in rows]))
            summary.append(
                {
                    "model": name,
                    "training_set": size,
                    "n_train_mean": float(np.mean([r["n_train"] for r in rows])),
                    "accuracy_mean": float(acc.mean()),
                    "accuracy_std": float(acc.std()),
                    "n_free_parameters": int(np.median([r["n_free_parameters"] for r in rows])),
                    "first_layer_zero_share": float(
                        np.mean([r["first_layer_zero_share"] for r in rows])
                    ),
                    "fit_time": fit_time,
                    "fit_time_ratio_to_mlp": float(fit_time / mlp_time),
                }
            )
    return summary


def paired(records, a, b):
    """Accuracy of a minus accuracy of b on the same folds, per training-set size."""
    out = []
    for size in ("full", "10%"):
        key = {
            (r["cv_seed"], r["fold"]): r["accuracy"]
            for r in records
            if r["model"] == b and r["training_set"] == size
        }
        diffs = np.array(
            [
                r["accuracy"] - key[(r["cv_seed"], r["fold"])]
                for r in records
                if r["model"] == a and r["training_set"] == size
            ]
        )
        out.append(
            {
                "a": a,
                "b": b,
                "training_set": size,
                "mean_difference_points": float(100 * diffs.mean()),
                "std_difference_points": float(100 * diffs.std()),
                "a_better_folds": int((diffs > 0).sum()),
                "b_better_folds": int((diffs < 0).sum()),
                "n_folds": int(len(diffs)),
            }
        )
    return out


def to_markdown(chosen, selection, summary, pairs, seeds, n_splits):
    header = [
        "model",
        "training set",
        "accuracy (mean ± std)",
        "trainable parameters",
        "first-layer zeros",
        "fit time (s)",
        "time / MLP",
    ]
    body = [
        [
            s["model"],
            f"{s['training_set']} (~{s['n_train_mean']:.0f} images)",
            f"{s['accuracy_mean']:.4f} ± {s['accuracy_std']:.4f}",
            f"{s['n_free_parameters']:,}",
            f"{100 * s['first_layer_zero_share']:.0f} %",
            f"{s['fit_time']:.2f}",
            f"{s['fit_time_ratio_to_mlp']:.2f}",
        ]
        for s in summary
    ]
    pair_rows = [
        [
            f"{p['a']} − {p['b']}",
            p["training_set"],
            f"{p['mean_difference_points']:+.2f} ± {p['std_difference_points']:.2f}",
            f"{p['a_better_folds']} / {p['b_better_folds']} / {p['n_folds']}",
        ]
        for p in pairs
    ]
    chosen_rows = [
        [family, c["kernel"], str(c["gated"]), f"{c['selection_accuracy']:.4f}"]
        for family, c in chosen.items()
    ]
    selection_rows = [
        [r["model"], r["kernel"], str(r["gated"]), f"{r['accuracy']:.4f}"] for r in selection
    ]
    return (
        "digits (X / 16), one hidden layer of 100 units. Kernel and `gated` of each kernel "
        "network chosen by 3-fold CV (seed 20) on a selection third of digits (599 images); "
        f"scores from {n_splits}-fold stratified CV with shuffle seeds "
        f"{', '.join(map(str, seeds))} on the other two thirds (1198 images), which chose "
        "nothing; the 10 % rows train on a stratified tenth of each training fold and test on "
        "the same fold. Fit times: one thread, a shared machine; compare the ratios.\n\n"
        + markdown_table(header, body)
        + "\nPaired accuracy differences (points, same folds; folds won by the first / by "
        "the second / all):\n\n"
        + markdown_table(["comparison", "training set", "difference", "folds"], pair_rows)
        + "\nChosen on the selection third:\n\n"
        + markdown_table(["model", "kernel", "gated", "selection CV accuracy"], chosen_rows)
        + "\nAll candidates on the selection third:\n\n"
        + markdown_table(["model", "kernel", "gated", "selection CV accuracy"], selection_rows)
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    parser.add_argument("--quick", action="store_true", help="smoke test; writes nothing")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds, n_splits, max_iter, select_splits = EVALUATION_SEEDS, N_SPLITS, 500, 3
    if args.quick:
        seeds, n_splits, max_iter, select_splits = EVALUATION_SEEDS[:1], 2, 50, 2

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_eval, X_select, y_eval, y_select = train_test_split(
        X, y, test_size=1 / 3, stratify=y, random_state=SELECTION_SEED
    )
    with threadpool_limits(args.threads):
        selection, chosen = select(X_select, y_select, select_splits, max_iter)
        records = evaluate(X_eval, y_eval, chosen, seeds, n_splits, max_iter)
    models = [*chosen, "MLPClassifier"]
    summary = summarise(records, models)
    pairs = [
        *paired(records, "fixed grid", "learned positions"),
        *paired(records, "fixed grid", "MLPClassifier"),
        *paired(records, "grid start, learned", "learned positions"),
        *paired(records, "learned positions", "MLPClassifier"),
    ]
    markdown = to_markdown(chosen, selection, summary, pairs, seeds, n_splits)
    print(markdown)
    if not args.quick:
        write_results(
            "bench_positions",
            {
                "selection_seed": SELECTION_SEED,
                "evaluation_seeds": list(seeds),
                "n_splits": n_splits,
                "pinned_parameters": {k: str(v) for k, v in PINNED.items()},
                "selection": selection,
                "chosen": chosen,
                "summary": summary,
                "paired_differences": pairs,
                "records": records,
            },
            markdown,
        )


if __name__ == "__main__":
    main()
