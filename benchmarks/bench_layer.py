"""Time forward+backward of a gated finite-support KernelLinear against two baselines.

The layer is the MovieLens-1M item-based model's kernelized input layer,
``KernelLinear(6040, 500, embedding_dim=5)`` gated with the finite-support
kernel, in float32 on 2 threads, on a batch of 3706 rows. It is compared, in
the same run and on the same batch, with

(a) the reference formulation of the authors' TensorFlow code: broadcast
    differences ``u[:, None, :] - v[None, :, :]`` of shape ``(6040, 500, 5)``,
    their norm, its square, ``clamp(1 - dist**2, min=0)``, times ``W``;
(b) ``torch.nn.Linear(6040, 500)``, the cost of any layer of this size.

Two batches are timed (``--batches``):

* ``ratings``: the ML-1M ratings matrix, items x users (3706 x 6040, 4.5% of
  the entries observed), as a sparse CSR tensor. These sizes are the first
  layer of the paper's ML-1M model and this is the batch it gets. All three
  layers take the same CSR tensor (ours wraps it in ``SparseInput``, which
  caches its transpose, as the estimator does for its repeated full-batch
  passes). A random batch of the same density stands in where ML-1M is absent;
* ``dense``: a dense standard-normal batch of the same shape.

Each timing is forward plus backward (gradients of every parameter; the input
does not require grad), after warm-up runs, as the median of ``--repeats``
runs, round-robin. The script also times the effective weight alone (forward
and backward of ``W * K(U, V)``, no product), where the two formulations
differ, and prints ratios of the fastest runs next to the medians, which the
load of other processes on a shared machine inflates. A JSON record is written
to ``benchmarks/results/bench_layer.json``.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_layer.py --repeats 20

Targets: ours within 1.5x of ``nn.Linear``, at least 2x faster than (a).

On the dense batch every layer pays for the same two ``3706 x 6040 x 500``
matrix products that are all of ``nn.Linear``'s cost, so (a) / ours is at most
``(products + (a)'s weight work) / products``: about 1.4 on this machine,
whatever the implementation. On the ratings batch the products are sparse and
the weight computation is what separates the layers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skkernelnet.layers import KernelLinear, SparseInput

IN_FEATURES, OUT_FEATURES, EMBEDDING_DIM, BATCH = 6040, 500, 5, 3706
RESULTS = Path(__file__).resolve().parent / "results" / "bench_layer.json"


class ReferenceKernelLinear(nn.Module):
    """The authors' formulation: broadcast differences, norm, then square."""

    def __init__(self, in_features, out_features, embedding_dim):
        super().__init__()
        self.u = nn.Parameter(torch.empty(in_features, embedding_dim))
        self.v = nn.Parameter(torch.empty(out_features, embedding_dim))
        self.W = nn.Parameter(torch.empty(in_features, out_features))
        self.b = nn.Parameter(torch.zeros(out_features))
        nn.init.trunc_normal_(self.u, std=1e-3, a=-2e-3, b=2e-3)
        nn.init.trunc_normal_(self.v, std=1e-3, a=-2e-3, b=2e-3)
        bound = math.sqrt(6.0 / (in_features + out_features))
        nn.init.uniform_(self.W, -bound, bound)

    @property
    def weight(self):
        dist = torch.norm(self.u[:, None, :] - self.v[None, :, :], dim=2)
        w_hat = torch.clamp(1.0 - dist**2, min=0.0)
        return self.W * w_hat

    def forward(self, x):
        return x @ self.weight + self.b


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_once(module, x):
    """Seconds taken by one forward + backward of ``module(x).sum()``."""
    module.zero_grad(set_to_none=True)
    start = time.perf_counter()
    module(x).sum().backward()
    return time.perf_counter() - start


def run_weight_once(module, grad):
    """Seconds taken by forward + backward of the effective weight alone (no product)."""
    module.zero_grad(set_to_none=True)
    start = time.perf_counter()
    module.weight.backward(grad)
    return time.perf_counter() - start


def _summary(times_ms):
    return {
        "median_ms": statistics.median(times_ms),
        "min_ms": min(times_ms),
        "max_ms": max(times_ms),
        "times_ms": times_ms,
    }


def _interleaved(runs, repeats, warmup):
    """Time each ``runs[name]()`` ``repeats`` times, round-robin, after ``warmup`` runs.

    Round-robin order means that a burst of load from elsewhere on the machine hits
    every contender alike instead of one of them.
    """
    for run in runs.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(1e3 * run())
    return {name: _summary(t) for name, t in times.items()}


OURS, REF, LINEAR = "KernelLinear (ours)", "reference (broadcast, norm, square)", "torch.nn.Linear"
TARGETS = {"ours / nn.Linear": ("<=", 1.5), "reference / ours": (">=", 2.0)}


def ratings_batch(density, seed):
    """The ML-1M items x users ratings matrix, the batch this layer gets in the paper's model.

    Read from the data folder (``$SKKERNELNET_DATA``, see ``get_data_home``); where MovieLens-1M is
    absent, ratings 1..5 at a random ``density`` share of the entries stand in for it.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import data_home, item_user_codes

    from skkernelnet.datasets import fetch_movielens

    try:
        data = fetch_movielens("1m", data_home=data_home(), download_if_missing=False)
    except OSError as exc:
        print(f"MovieLens-1M not found ({exc}); a random batch of density {density} stands in.")
        generator = torch.Generator().manual_seed(seed)
        mask = torch.rand(BATCH, IN_FEATURES, generator=generator) < density
        ratings = torch.randint(1, 6, (BATCH, IN_FEATURES), generator=generator)
        return "random ratings-like", (ratings * mask).float().to_sparse_csr()
    items, users = item_user_codes(data.data)
    values = torch.as_tensor(data.target, dtype=torch.float32)
    matrix = torch.sparse_coo_tensor(torch.as_tensor(np.stack([items, users])), values,
                                     (BATCH, IN_FEATURES), check_invariants=True)
    return "MovieLens-1M ratings (items x users)", matrix.coalesce().to_sparse_csr()


def measure(batch_name, x, args):
    """Time the three layers on one batch (the same tensor for all three) and print a table."""
    dtype = torch.float32
    torch.manual_seed(args.seed)
    ours = KernelLinear(
        IN_FEATURES,
        OUT_FEATURES,
        embedding_dim=EMBEDDING_DIM,
        kernel="finite_support",
        gated=True,
        dtype=dtype,
    )
    reference = ReferenceKernelLinear(IN_FEATURES, OUT_FEATURES, EMBEDDING_DIM).to(dtype)
    with torch.no_grad():  # same parameters: both compute the same thing
        reference.u.copy_(ours.u)
        reference.v.copy_(ours.v)
        reference.W.copy_(ours.W)
    # A sparse batch is fed many times in training, so ours takes it with its cached
    # transpose (SparseInput); the other two get the same CSR tensor.
    x_ours = SparseInput(x) if x.layout != torch.strided else x
    with torch.no_grad():
        max_diff = float((ours(x_ours) - reference(x)).abs().max())
    linear = nn.Linear(IN_FEATURES, OUT_FEATURES, dtype=dtype)

    layer_runs = {
        name: (lambda m=module, inp=inp: run_once(m, inp))
        for name, module, inp in ((OURS, ours, x_ours), (REF, reference, x), (LINEAR, linear, x))
    }
    results = _interleaved(layer_runs, args.repeats, args.warmup)
    grad = torch.randn(IN_FEATURES, OUT_FEATURES, dtype=dtype)
    weight_runs = {
        name: (lambda m=module: run_weight_once(m, grad))
        for name, module in ((OURS, ours), (REF, reference))
    }
    weight_results = _interleaved(weight_runs, args.repeats, args.warmup)

    t_ours, t_ref, t_lin = (results[k]["median_ms"] for k in (OURS, REF, LINEAR))
    w_ours, w_ref = (weight_results[k]["median_ms"] for k in (OURS, REF))
    ratios = {"ours / nn.Linear": t_ours / t_lin, "reference / ours": t_ref / t_ours}
    met = {
        name: (v <= TARGETS[name][1]) if TARGETS[name][0] == "<=" else (v >= TARGETS[name][1])
        for name, v in ratios.items()
    }
    density = (x._nnz() if x.layout != torch.strided else x.count_nonzero().item()) / x.numel()
    print()
    print(
        f"{batch_name}: batch {BATCH} x {IN_FEATURES} (density {density:.2%}) -> {OUT_FEATURES}, "
        f"d={EMBEDDING_DIM}, float32, {torch.get_num_threads()} threads, "
        f"median of {args.repeats} (after {args.warmup} warm-up)"
    )
    print(f"{'layer':<38}{'median ms':>11}{'min ms':>9}{'max ms':>9}")
    for name, res in results.items():
        print(f"{name:<38}{res['median_ms']:>11.1f}{res['min_ms']:>9.1f}{res['max_ms']:>9.1f}")
    for name, value in ratios.items():
        op, target = TARGETS[name]
        verdict = "met" if met[name] else "MISSED"
        print(f"{name:<38}{value:>10.2f}x   (target {op} {target}x: {verdict})")
    best = {
        "ours / nn.Linear": results[OURS]["min_ms"] / results[LINEAR]["min_ms"],
        "reference / ours": results[REF]["min_ms"] / results[OURS]["min_ms"],
    }
    print(
        "ratios of the fastest runs (less sensitive to other load on the machine): "
        + ", ".join(f"{name} {value:.2f}x" for name, value in best.items())
    )
    print("effective weight alone (forward+backward, no matrix product):")
    for name, res in weight_results.items():
        print(f"  {name:<36}{res['median_ms']:>11.1f}{res['min_ms']:>9.1f}{res['max_ms']:>9.1f}")
    print(f"  {'reference / ours':<36}{w_ref / w_ours:>10.2f}x")
    print(
        f"nn.Linear {t_lin:.0f} ms, ours {t_ours:.0f} ms; "
        f"max |ours - reference| output difference {max_diff:.1e}"
    )
    return {
        "input": batch_name,
        "layout": "dense" if x.layout == torch.strided else "sparse CSR",
        "density": density,
        "results": results,
        "weight_only_results": weight_results,
        "ratios": {
            **ratios,
            **{f"{name} (fastest runs)": value for name, value in best.items()},
            "weight only: reference / ours": w_ref / w_ours,
        },
        "targets_met": met,
        "max_output_difference": max_diff,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per layer")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per layer first")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON file written")
    parser.add_argument(
        "--batches",
        nargs="+",
        choices=["ratings", "dense"],
        default=["ratings", "dense"],
        help="ratings: the ML-1M ratings matrix as CSR (the model's input); "
        "dense: standard-normal values",
    )
    parser.add_argument(
        "--density",
        type=float,
        default=0.0447,
        help="share of nonzeros of the random stand-in for the ratings batch when "
        "MovieLens-1M is absent (ML-1M's is 0.0447)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {cpu_model()}, load average {_load()}")
    batches = []
    for batch in args.batches:
        if batch == "ratings":
            batches.append(ratings_batch(args.density, args.seed))
        else:
            generator = torch.Generator().manual_seed(args.seed)
            batches.append(("dense random", torch.randn(BATCH, IN_FEATURES, generator=generator)))
    measurements = [measure(name, x, args) for name, x in batches]

    record = {
        "benchmark": "bench_layer",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "threads": torch.get_num_threads(),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "dtype": "float32",
        "shape": {
            "batch": BATCH,
            "in_features": IN_FEATURES,
            "out_features": OUT_FEATURES,
            "embedding_dim": EMBEDDING_DIM,
        },
        "repeats": args.repeats,
        "warmup": args.warmup,
        "targets": {name: f"{op} {t}" for name, (op, t) in TARGETS.items()},
        "batches": measurements,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(measurements, args))
    print(f"wrote {args.output} and its .md table")
    return record


def markdown(measurements, args):
    """One table per batch: median and fastest times, then the two target ratios."""
    parts = []
    for m in measurements:
        lines = [
            f"#### {m['input']} ({m['layout']}, density {m['density']:.2%}), "
            f"median of {args.repeats}",
            "",
            "| | median | fastest |",
            "|---|---|---|",
        ]
        for name, res in m["results"].items():
            lines.append(f"| {name} | {res['median_ms']:.1f} ms | {res['min_ms']:.1f} ms |")
        for name, (op, target) in TARGETS.items():
            verdict = "met" if m["targets_met"][name] else "missed"
            lines.append(f"| **{name}** (target {op} {target}x) | {m['ratios'][name]:.2f}x "
                         f"({verdict}) | {m['ratios'][name + ' (fastest runs)']:.2f}x |")
        w = m["weight_only_results"]
        lines.append(f"| effective weight alone, reference / ours | "
                     f"{w[REF]['median_ms'] / w[OURS]['median_ms']:.2f}x | |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _load():
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
