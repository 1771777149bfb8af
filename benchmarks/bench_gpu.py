"""KernelCollaborativeFilter on a GPU: an ML-1M fit and fits at MovieLens-10M's shape.

Run by ``benchmarks/gpu_check.sh``. Two cases, each also timed on the CPU of the
same machine for a few iterations (a baseline measured in the same run):

* **ML-1M**, the default model (item-based + user-based, 500-500, float32, early
  stopping) fitted to a random 90 % of the ratings (``random_state=0``); reported:
  fit time, iterations, time per iteration, RMSE on the other 10 % and peak GPU
  memory. The ratings come from ``$SKKERNELNET_DATA/ml-1m``; without them a
  synthetic set of ML-1M's shape (``make_ratings``) is used and labelled so.
* **10M shape**: ``make_ratings(69_878, 10_677, n_ratings=9_000_000)``, the default
  model without early stopping for ``--scale-iterations`` L-BFGS iterations; time
  per iteration (median, the first excluded as warm-up) and peak GPU memory.

Nothing here chooses a default or a hyperparameter: every model is the library's
default, so the test RMSE is not tuned on the test ratings.

    python benchmarks/bench_gpu.py [--device cuda] [--scale-iterations 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_home, markdown_table, write_results  # noqa: E402

from skkernelnet import KernelCollaborativeFilter  # noqa: E402
from skkernelnet.datasets import fetch_movielens, make_ratings  # noqa: E402

SCALE_SHAPE = (69_878, 10_677, 9_000_000)


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed_fit(X, y, device, **params):
    """Fit the default model; return it with the seconds of each L-BFGS iteration."""
    times, last = [], [0.0]

    def clock(_monitor):
        _sync(device)
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    model = KernelCollaborativeFilter(random_state=0, device=device, callbacks=[clock], **params)
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = last[0] = time.perf_counter()
    model.fit(X, y)
    _sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if torch.device(device).type == "cuda" else 0
    return model, times, seconds, peak / 2**30


def per_iteration(times):
    return statistics.median(times[1:]) if len(times) > 1 else times[0]


def ml1m(device, cpu_iterations, max_iter=None):
    home = data_home()
    if (home / "ml-1m" / "ratings.dat").is_file():
        X, y = fetch_movielens("1m", data_home=home, return_X_y=True)
        source = "MovieLens 1M"
    else:
        X, y = make_ratings(6_040, 3_706, n_ratings=1_000_209, random_state=0, return_X_y=True)
        source = "synthetic, ML-1M shape (make_ratings; no ml-1m in SKKERNELNET_DATA)"
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=0)
    limit = {} if max_iter is None else {"max_iter": max_iter}
    model, times, seconds, peak = timed_fit(X_train, y_train, device, **limit)
    rmse = float(np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2)))
    cpu_model, cpu_times, _, _ = timed_fit(
        X_train, y_train, "cpu", max_iter=cpu_iterations, early_stopping=False
    )
    return {
        "case": "ML-1M, default model",
        "data": source,
        "n_ratings_train": len(y_train),
        "device": str(model._device),
        "fit_seconds": seconds,
        "n_iter": model.n_iter_,
        "stop_reason": model.stop_reason_,
        "iteration_seconds": per_iteration(times),
        "test_rmse": rmse,
        "peak_gpu_memory_gib": peak,
        "cpu_iteration_seconds": per_iteration(cpu_times),
        "cpu_iterations_timed": len(cpu_times),
    }


def scale(device, iterations, cpu_iterations):
    n_users, n_items, n_ratings = SCALE_SHAPE
    X, y = make_ratings(n_users, n_items, n_ratings=n_ratings, random_state=0, return_X_y=True)
    model, times, seconds, peak = timed_fit(X, y, device, max_iter=iterations, early_stopping=False)
    cpu_times = []
    if cpu_iterations:
        _, cpu_times, _, _ = timed_fit(X, y, "cpu", max_iter=cpu_iterations, early_stopping=False)
    return {
        "case": "10M shape, default model, no early stopping",
        "data": f"make_ratings({n_users}, {n_items}, n_ratings={n_ratings}, random_state=0)",
        "n_ratings_train": len(y),
        "device": str(model._device),
        "fit_seconds": seconds,
        "n_iter": model.n_iter_,
        "iteration_seconds": per_iteration(times),
        "peak_gpu_memory_gib": peak,
        "cpu_iteration_seconds": per_iteration(cpu_times) if cpu_times else None,
        "cpu_iterations_timed": len(cpu_times),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scale-iterations", type=int, default=10)
    parser.add_argument(
        "--cpu-iterations",
        type=int,
        default=3,
        help="iterations timed on the CPU as the same-run baseline",
    )
    parser.add_argument(
        "--max-iter",
        type=int,
        default=None,
        help="ML-1M iterations (default: the library's, with early stopping)",
    )
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args(argv)
    gpu = torch.device(args.device).type == "cuda"
    if gpu and not torch.cuda.is_available():
        parser.error("--device cuda, but CUDA is not available on this machine")
    results = [ml1m(args.device, args.cpu_iterations, args.max_iter)]
    print(results[-1], flush=True)
    if not args.skip_scale:
        results.append(scale(args.device, args.scale_iterations, max(2, args.cpu_iterations - 1)))
        print(results[-1], flush=True)
    rows = []
    for r in results:
        cpu = r["cpu_iteration_seconds"]
        rows.append([
            r["case"], r["data"], f"{r['n_ratings_train']:,}", r["device"],
            f"{r['n_iter']} ({r.get('stop_reason', 'max_iter')})", f"{r['fit_seconds']:.1f} s",
            f"{r['iteration_seconds']:.3f} s", f"{cpu:.2f} s" if cpu else "n/a",
            f"{cpu / r['iteration_seconds']:.1f}x" if cpu else "n/a",
            f"{r['test_rmse']:.4f}" if "test_rmse" in r else "n/a",
            f"{r['peak_gpu_memory_gib']:.2f} GiB" if gpu else "n/a",
        ])  # fmt: skip
    table = markdown_table(
        ["case", "data", "training ratings", "device", "iterations", "fit time",
         "time per iteration", "CPU time per iteration (same machine)", "speed-up",
         "test RMSE (10 % held out)", "peak GPU memory"], rows)  # fmt: skip
    environment = {"torch_threads": torch.get_num_threads()}
    if gpu:
        environment.update(gpu=torch.cuda.get_device_name(args.device),
                           cuda=torch.version.cuda)  # fmt: skip
    header = ", ".join(f"{k}: {v}" for k, v in environment.items())
    markdown = f"GPU check ({header}; {time.strftime('%Y-%m-%d', time.gmtime())})\n\n{table}"
    print(markdown)
    name = "bench_gpu" if gpu else "bench_gpu_cpu_dry_run"
    return write_results(name, {**environment, "results": results}, markdown)


if __name__ == "__main__":
    main()
