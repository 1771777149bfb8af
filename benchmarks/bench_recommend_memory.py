"""Memory of recommending for every user of a MovieLens-10M-shaped model.

A users x items score matrix at ML-10M's shape (69,878 users x 10,677 items)
would take 6 GB in float64; ``recommend`` scores a bounded chunk of users at a
time instead. This script fits a small model (one hidden layer of
``--hidden`` units, ``--iterations`` L-BFGS iterations: the memory of
``recommend`` does not depend on how well the model is trained) on synthetic
ratings of that shape (``skkernelnet.datasets.make_ratings``), saves it with
``model.save``, and then, in a fresh process, loads it and asks for the
top-10 of every user. Reported: the process's resident memory before the
call (the loaded model) and its peak during the call (sampled every 5 ms from
``/proc/self/status``, and ``ru_maxrss``), their difference, and the peak of
the NumPy/Python allocations traced by ``tracemalloc`` during the call.

    python benchmarks/bench_recommend_memory.py [--hidden 64] [--iterations 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_results  # noqa: E402

from skkernelnet import KernelCollaborativeFilter  # noqa: E402
from skkernelnet.datasets import make_ratings  # noqa: E402

N_USERS, N_ITEMS, N_RATINGS = 69_878, 10_677, 10_000_054
GIB = 1 << 30


def rss_bytes():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def fit_and_save(path, hidden, iterations, seed):
    X, y = make_ratings(N_USERS, N_ITEMS, n_ratings=N_RATINGS, random_state=seed,
                        return_X_y=True)
    model = KernelCollaborativeFilter(
        hidden_layer_sizes=(hidden,), max_iter=iterations, early_stopping=False,
        random_state=seed,
    )
    started = time.perf_counter()
    model.fit(X, y)
    model.save(path)
    return time.perf_counter() - started, len(y)


def measure(path):
    """Run in a fresh process: memory of recommend() for every user of the saved model."""
    model = KernelCollaborativeFilter.load(path)
    users = model.user_ids_
    model.recommend(users[:10], n=10)  # warm-up: torch and BLAS workspaces
    before = rss_bytes()
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    tracemalloc.start()
    sampler.start()
    started = time.perf_counter()
    items, scores = model.recommend(users, n=10)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert items.shape == (len(users), 10) and np.isfinite(scores).all()
    return {
        "n_users": int(len(users)),
        "n_items": int(len(model.item_ids_)),
        "rss_before_bytes": before,
        "rss_peak_during_bytes": max(peak[0], rss_bytes()),
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "tracemalloc_peak_bytes": traced_peak,
        "recommend_seconds": seconds,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the fresh process
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.measure:
        import json

        print(json.dumps(measure(args.measure)))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "ml10m_shape.skkn")
        fit_seconds, n_ratings = fit_and_save(path, args.hidden, args.iterations, args.seed)
        print(f"fitted and saved in {fit_seconds:.0f} s", flush=True)
        out = subprocess.run(
            [sys.executable, __file__, "--measure", path, "--threads", str(args.threads)],
            check=True, capture_output=True, text=True,
        )
        import json

        result = json.loads(out.stdout.strip().splitlines()[-1])
        file_bytes = Path(path).stat().st_size
    extra = result["rss_peak_during_bytes"] - result["rss_before_bytes"]
    dense = result["n_users"] * result["n_items"] * 8
    payload = {
        "config": vars(args),
        "n_ratings": n_ratings,
        "model_file_bytes": file_bytes,
        **result,
        "rss_extra_bytes": extra,
        "dense_score_matrix_bytes": dense,
        "within_1_gib": extra <= GIB,
    }
    rows = [
        ["users x items", f"{result['n_users']:,} x {result['n_items']:,}"],
        ["dense float64 score matrix (not built)", f"{dense / GIB:.2f} GiB"],
        ["model file", f"{file_bytes / GIB:.3f} GiB"],
        ["RSS before recommend (loaded model)", f"{result['rss_before_bytes'] / GIB:.3f} GiB"],
        ["peak RSS during recommend", f"{result['rss_peak_during_bytes'] / GIB:.3f} GiB"],
        ["**extra memory of recommend (peak - before)**", f"**{extra / GIB:.3f} GiB**"],
        ["tracemalloc peak (NumPy/Python) during recommend",
         f"{result['tracemalloc_peak_bytes'] / GIB:.3f} GiB"],
        ["time, top-10 for every user", f"{result['recommend_seconds']:.0f} s"],
    ]
    markdown = (
        "# Memory of recommend() for every user at MovieLens-10M shape\n\n"
        f"Synthetic ratings (`make_ratings`, {n_ratings:,} ratings), model with one hidden "
        f"layer of {args.hidden} units fitted for {args.iterations} L-BFGS iterations, "
        "saved, then loaded in a fresh process that asks for the top-10 of every user.\n\n"
        + markdown_table(["quantity", "value"], rows)
        + "\nTimes were taken on a shared machine and are inflated by contention.\n"
    )
    write_results("bench_recommend_memory", payload, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
