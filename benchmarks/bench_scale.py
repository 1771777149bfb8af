"""Cost of KernelCollaborativeFilter at MovieLens-10M's shape, on synthetic ratings.

``skkernelnet.datasets.make_ratings`` draws a rating matrix of ML-10M's shape
and density (10,677 items x 69,878 users, about 9M training ratings, skewed
popularity); the default model (item-based, 500-500, float32) is then fitted
for a few L-BFGS iterations without early stopping. Reported: time per
iteration (median, the first excluded as warm-up), the objective evaluations each
iteration needed (line-search steps) and the time per evaluation, peak resident memory of the
process (each size is fitted in a fresh process), and the same figures at
smaller fractions of the users (``--fractions``) so that growth can be read
against the number of ratings.

    python benchmarks/bench_scale.py [--iterations 4] [--fractions 0.25 0.5 1]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_results  # noqa: E402

from skkernelnet import KernelCollaborativeFilter, _rating_training  # noqa: E402
from skkernelnet.datasets import make_ratings  # noqa: E402

N_USERS, N_ITEMS, N_RATINGS = 69_878, 10_677, 9_000_000


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(fraction, iterations, seed=0):
    n_users = int(N_USERS * fraction)
    n_ratings = int(N_RATINGS * fraction)
    X, y = make_ratings(n_users, N_ITEMS, n_ratings=n_ratings, random_state=seed,
                        return_X_y=True)
    times, evals_per_iter = [], []
    last = [0.0]
    # Count objective evaluations (one per orientation per closure call) to separate the cost
    # of an evaluation from the number of line-search evaluations an iteration needs.
    calls = [0]
    objective = _rating_training.rating_objective

    def counted(*args, **kwargs):
        calls[0] += 1
        return objective(*args, **kwargs)

    _rating_training.rating_objective = counted

    def clock(_monitor):
        now = time.perf_counter()
        times.append(now - last[0])
        evals_per_iter.append(calls[0])
        calls[0] = 0
        last[0] = now

    model = KernelCollaborativeFilter(max_iter=iterations, early_stopping=False,
                                      random_state=seed, callbacks=[clock])
    start = time.perf_counter()
    last[0] = start
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            model.fit(X, y)
    finally:
        _rating_training.rating_objective = objective
    n_views = 2 if model.blend_module_ is not None else 1
    # the first iteration also pays for set-up and the initial evaluation: left out
    per_eval = [t / (e / n_views) for t, e in zip(times[1:], evals_per_iter[1:]) if e]
    return {
        "fraction": fraction,
        "n_users": n_users,
        "n_items": N_ITEMS,
        "n_ratings": len(y),
        "n_parameters": model.module_.n_free_parameters()
        + (model.blend_module_.n_free_parameters() if model.blend_module_ is not None else 0),
        "fit_seconds": time.perf_counter() - start,
        "iteration_seconds": statistics.median(times[1:]) if len(times) > 1 else times[0],
        "evaluations_per_iteration": [e / n_views for e in evals_per_iter],
        "evaluation_seconds": statistics.median(per_eval) if per_eval else None,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_isolated(fraction, iterations, threads):
    """``run`` in a fresh process, so that its peak resident memory is its own."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_child, fraction, iterations, threads).result()


def _child(fraction, iterations, threads):
    torch.set_num_threads(threads)
    return run(fraction, iterations)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for fraction in sorted(args.fractions):
        results.append(run_isolated(fraction, args.iterations, args.threads))
        r = results[-1]
        print(f"{r['n_users']:,} users, {r['n_ratings']:,} ratings: "
              f"{r['iteration_seconds']:.1f} s per iteration, peak RSS {r['peak_rss_mb']:.0f} MB",
              flush=True)
    rows = [[f"{r['n_items']:,} x {r['n_users']:,}", f"{r['n_ratings']:,}",
             f"{r['n_parameters']:,}", f"{r['iteration_seconds']:.1f} s",
             " ".join(f"{e:g}" for e in r["evaluations_per_iteration"][1:]),
             f"{r['evaluation_seconds']:.1f} s", f"{r['peak_rss_mb'] / 1024:.1f} GiB"]
            for r in results]
    table = markdown_table(["items x users", "ratings", "parameters", "time per L-BFGS iteration",
                            "evaluations per iteration", "time per evaluation",
                            "peak resident memory"], rows)
    print(table)
    payload = {"threads": args.threads, "iterations": args.iterations, "results": results}
    return table, write_results("bench_scale", payload, table)


if __name__ == "__main__":
    main()
