"""Speed-up of data-parallel training (``distributed=True``) with 1 and 2 processes.

Launches ``torchrun --standalone --nproc-per-node N`` for each N of ``--processes``
(gloo backend, ``--threads`` torch threads per process). Every process fits the
default KernelCollaborativeFilter without early stopping for ``--iterations``
L-BFGS iterations on the same ratings (MovieLens 1M from ``$SKKERNELNET_DATA``, or
a synthetic set of its shape without it); reported is the median time per
iteration, the first excluded as warm-up, and the speed-up over one process
measured in the same run.

    python benchmarks/bench_data_parallel.py [--processes 1 2] [--iterations 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_home, markdown_table, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import json, statistics, sys, time
sys.path.insert(0, {root!r})
import torch
import torch.distributed as dist

torch.set_num_threads({threads})
dist.init_process_group("gloo")
from skkernelnet import KernelCollaborativeFilter
from skkernelnet.datasets import fetch_movielens, make_ratings
from pathlib import Path

home = Path({home!r})
if (home / "ml-1m" / "ratings.dat").is_file():
    X, y = fetch_movielens("1m", data_home=home, return_X_y=True)
    data = "MovieLens 1M"
else:
    X, y = make_ratings(6040, 3706, n_ratings=1_000_209, random_state=0, return_X_y=True)
    data = "synthetic, ML-1M shape"
times, last = [], [0.0]

def clock(_monitor):
    now = time.perf_counter()
    times.append(now - last[0])
    last[0] = now

model = KernelCollaborativeFilter(random_state=0, max_iter={iterations}, early_stopping=False,
                                  distributed=True, callbacks=[clock])
dist.barrier()
last[0] = time.perf_counter()
model.fit(X, y)
if dist.get_rank() == 0:
    with open({out!r}, "w") as f:
        json.dump({{"data": data, "n_ratings": len(y), "times": times,
                   "iteration_seconds": statistics.median(times[1:]),
                   "loss_curve": model.loss_curve_}}, f)
dist.destroy_process_group()
"""


def run(processes, iterations, threads, home):
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result.json")
        script = Path(tmp) / "worker.py"
        script.write_text(
            textwrap.dedent(WORKER).format(
                root=str(ROOT), threads=threads, home=str(home), iterations=iterations, out=out
            )
        )
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(processes),
            str(script),
        ]
        subprocess.run(command, env=env, check=True)
        return {"processes": processes, **json.loads(Path(out).read_text())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = parser.parse_args(argv)
    results = [run(n, args.iterations, args.threads, data_home()) for n in args.processes]
    base = results[0]["iteration_seconds"]
    rows = [
        [
            r["processes"],
            r["data"],
            f"{r['n_ratings']:,}",
            f"{r['iteration_seconds']:.2f} s",
            f"{base / r['iteration_seconds']:.2f}x",
        ]
        for r in results
    ]
    table = markdown_table(
        [
            "processes",
            "data",
            "ratings",
            "time per L-BFGS iteration",
            f"speed-up over {results[0]['processes']}",
        ],
        rows,
    )
    note = (
        f"Default model, no early stopping, {args.iterations} iterations (first excluded), "
        f"gloo, {args.threads} torch thread(s) per process, all processes on this "
        f"machine ({os.cpu_count()} cores).\n\n"
    )
    print(note + table)
    payload = {
        "iterations": args.iterations,
        "threads_per_process": args.threads,
        "results": results,
    }
    return write_results("bench_data_parallel", payload, note + table)


if __name__ == "__main__":
    main()
