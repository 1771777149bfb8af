"""Speed of KernelCollaborativeFilter's training objective against the naive dense formulation.

At MovieLens-1M size (items x users = 3,706 x 6,040, 90% of the ratings, the
paper's 500-500 network, float32) this times, in one run:

* one function-and-gradient evaluation of the objective as the library computes
  it (sparse input, output only at observed ratings; ``rating_objective``);
* the same evaluation in the naive dense formulation of the authors' code
  (dense ratings matrix, broadcast kernel, dense output, masked loss;
  ``skkernelnet._reference.reference_loss``), on the same parameters;
* one L-BFGS iteration of the library's solver, against one L-BFGS-B iteration
  of the naive dense port of the authors' code (``reference_port.py``: scipy's
  L-BFGS-B on a flat float64 copy of the parameters, as their TensorFlow code ran);
* a dense float32 matrix product, to express the evaluation's arithmetic rate as
  a share of what this machine's BLAS reaches.

Warm-up runs are excluded; each figure is the median of ``--repeats`` timings.

    python benchmarks/bench_cf_speed.py [--repeats 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_home, item_user_codes, markdown_table, write_results  # noqa: E402
from reference_port import ReferencePort  # noqa: E402

from skkernelnet._reference import reference_loss  # noqa: E402
from skkernelnet.datasets import fetch_movielens  # noqa: E402
from skkernelnet.layers import EntryIndex, SparseInput, csr_from_scipy  # noqa: E402
from skkernelnet.networks import KernelNetwork  # noqa: E402
from skkernelnet.recommender import rating_objective  # noqa: E402
from skkernelnet.training import TrainingMonitor, lbfgs  # noqa: E402


def median_time(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_problem(seed=0):
    import scipy.sparse as sp

    data = fetch_movielens("1m", data_home=data_home())
    rng = np.random.RandomState(seed)
    train = rng.permutation(len(data.target))[: int(0.9 * len(data.target))]
    items, users = item_user_codes(data.data)
    rows, cols, r = items[train], users[train], data.target[train]
    order = np.lexsort((cols, rows))
    rows, cols, r = rows[order], cols[order], r[order]
    shape = (items.max() + 1, users.max() + 1)
    return rows, cols, r, sp.csr_matrix((r, (rows, cols)), shape=shape), shape


def objective_flops(shape, hidden, n_obs, nnz):
    """Multiply-adds x 2 of one evaluation (forward and backward), kernels excluded."""
    n_rows, n_cols = shape
    sizes = [n_cols, *hidden]
    dense = sum(n_rows * a * b for a, b in zip(sizes[1:-1], sizes[2:]))
    first = nnz * hidden[0]  # sparse input layer
    last = n_obs * hidden[-1]  # output at observed entries only
    return 2 * 3 * (dense + first + last)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hidden", type=int, nargs="+", default=[500, 500])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows, cols, r, matrix, shape = load_problem()
    n = len(r)
    alpha, kernel_alpha = 60.0 / n, 0.013 / n  # the reference's lambdas, per rating
    net = KernelNetwork(shape[1], args.hidden, shape[1], activation="logistic")
    params = list(net.parameters())
    x = SparseInput(csr_from_scipy(matrix, torch.float32))
    index = EntryIndex(rows, cols, shape)
    target = torch.as_tensor(r, dtype=torch.float32)

    def ours():
        for p in params:
            p.grad = None
        loss, _ = rating_objective(net, x, index, target, alpha, kernel_alpha)
        loss.backward()
        return loss.item()

    R = torch.as_tensor(matrix.toarray(), dtype=torch.float32)
    mask = (R > 0).to(torch.float32)
    layers = [(layer.u, layer.v, layer.W, layer.bias) for layer in net.layers]

    def naive():
        for p in params:
            p.grad = None
        loss = reference_loss(R, mask, layers, 60.0, 0.013)
        loss.backward()
        return loss.item()

    # Both formulations must agree before they are timed.
    ours_value, naive_value = ours() * n, naive()
    if not np.isclose(ours_value, naive_value, rtol=1e-3):
        raise AssertionError(f"objectives differ: {ours_value} vs {naive_value}")

    t_ours = median_time(ours, args.repeats)
    t_naive = median_time(naive, max(3, args.repeats // 2))

    iters = []
    monitor = TrainingMonitor(net, max_iter=args.repeats + 2, tol=0.0, n_iter_no_change=10**9)
    last = [time.perf_counter()]

    def clock(_monitor):
        now = time.perf_counter()
        iters.append(now - last[0])
        last[0] = now

    monitor.callbacks.append(clock)
    with monitor:
        last[0] = time.perf_counter()
        lbfgs(params, ours, monitor)
    t_iter = statistics.median(iters[2:])
    # The reference port from the same initial parameters; its first iterations are warm-up.
    port = ReferencePort(max_iter=max(5, args.repeats // 2) + 2, seed=0)
    port.fit(R, init=[[t.detach().clone() for t in layer] for layer in layers])
    t_iter_naive = statistics.median(port.iteration_times_[2:])

    a = torch.randn(4096, 4096)
    b = torch.randn(4096, 4096)
    t_mm = median_time(lambda: a @ b, 5)
    matmul_gflops = 2 * 4096**3 / t_mm / 1e9
    flops = objective_flops(shape, args.hidden, n, matrix.nnz)
    eval_gflops = flops / t_ours / 1e9

    rows_md = [
        ["function + gradient, skkernelnet", f"{t_ours * 1e3:.0f} ms", "1.00"],
        ["function + gradient, naive dense (reference)", f"{t_naive * 1e3:.0f} ms",
         f"{t_naive / t_ours:.2f}"],
        ["one L-BFGS iteration, skkernelnet", f"{t_iter * 1e3:.0f} ms", "1.00"],
        ["one L-BFGS-B iteration, naive dense port (scipy)", f"{t_iter_naive * 1e3:.0f} ms",
         f"{t_iter_naive / t_iter:.2f}"],
    ]
    table = markdown_table(["measurement (ML-1M size)", "median time", "naive / ours"], rows_md)
    table += (
        f"\nEvaluation arithmetic: {flops / 1e9:.1f} GFLOP at {eval_gflops:.1f} GFLOP/s, "
        f"{100 * eval_gflops / matmul_gflops:.0f}% of this machine's dense float32 matmul "
        f"({matmul_gflops:.1f} GFLOP/s, {args.threads} threads).\n"
    )
    print(table)
    return table, write_results(
        "bench_cf_speed",
        {
            "shape": list(shape),
            "n_ratings": n,
            "hidden": args.hidden,
            "threads": args.threads,
            "repeats": args.repeats,
            "eval_seconds_ours": t_ours,
            "eval_seconds_naive_dense": t_naive,
            "speedup_vs_naive": t_naive / t_ours,
            "lbfgs_iteration_seconds": t_iter,
            "lbfgs_iteration_seconds_naive_port": t_iter_naive,
            "iteration_speedup_vs_naive_port": t_iter_naive / t_iter,
            "eval_gflop": flops / 1e9,
            "eval_gflops_per_second": eval_gflops,
            "matmul_gflops_per_second": matmul_gflops,
        },
        markdown=table,
    )


if __name__ == "__main__":
    main()
