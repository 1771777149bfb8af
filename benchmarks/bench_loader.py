"""Time and peak memory of loading a MovieLens-32M-sized ratings.csv.

Writes a synthetic ``ml-32m/ratings.csv`` (the official layout: header, then
``userId,movieId,rating,timestamp``; 32,000,204 lines, about 0.9 GB by default) and
a small ``movies.csv`` to a temporary folder, then loads it in fresh processes:

* ``fetch_movielens("32m")`` (block parser into int64/float64 arrays), and
* ``pandas.read_csv`` with the C engine and numeric dtypes given (no strings): a
  strong baseline for speed, measured in the same run.

Reported: seconds and peak resident memory of each process (VmHWM, which
includes the interpreter and imports, also measured alone), and the size of the
arrays returned.

    python benchmarks/bench_loader.py [--n-ratings 32000204] [--keep DIR]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_results  # noqa: E402

N_USERS, N_ITEMS = 200_948, 84_432


def write_ratings(folder, n_ratings, seed=0, block=1 << 20):
    """The synthetic ratings.csv (ids drawn uniformly; only the file's size matters here)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "ratings.csv", "w") as out:
        out.write("userId,movieId,rating,timestamp\n")
        for start in range(0, n_ratings, block):
            n = min(block, n_ratings - start)
            columns = (
                rng.integers(1, N_USERS + 1, n).astype(str),
                rng.integers(1, N_ITEMS + 1, n).astype(str),
                (rng.integers(1, 11, n) / 2).astype(str),
                rng.integers(789_652_009, 1_697_000_000, n).astype(str),
            )
            out.write("\n".join(",".join(row) for row in zip(*columns)) + "\n")
    (folder / "movies.csv").write_text("movieId,title,genres\n1,Toy Story (1995),Animation\n")
    return (folder / "ratings.csv").stat().st_size


def _peak_mb():
    # VmHWM is this process's own high-water mark; ru_maxrss would carry over the parent's
    # (Linux keeps it across fork and exec), and the parent wrote the big file.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _baseline():
    import skkernelnet.datasets  # noqa: F401  (same imports as the loaders)

    return {"seconds": 0.0, "peak_rss_mb": _peak_mb(), "array_mb": 0.0}


def _skkernelnet(home):
    from skkernelnet.datasets import fetch_movielens

    start = time.perf_counter()
    b = fetch_movielens("32m", data_home=home, download_if_missing=False)
    seconds = time.perf_counter() - start
    arrays = b.data.nbytes + b.target.nbytes + b.timestamps.nbytes
    return {"seconds": seconds, "peak_rss_mb": _peak_mb(), "array_mb": arrays / 2**20,
            "n_ratings": len(b.target)}  # fmt: skip


def _pandas(home):
    import pandas as pd

    import skkernelnet.datasets  # noqa: F401

    start = time.perf_counter()
    frame = pd.read_csv(
        Path(home) / "ml-32m" / "ratings.csv",
        engine="c",
        dtype={"userId": np.int64, "movieId": np.int64, "rating": np.float64,
               "timestamp": np.int64},
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": _peak_mb(),
            "array_mb": frame.memory_usage(index=False).sum() / 2**20,
            "n_ratings": len(frame)}  # fmt: skip


def isolated(function, *args):
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-ratings", type=int, default=32_000_204)
    parser.add_argument("--keep", type=Path, default=None, help="write the data here and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = args.keep or Path(tmp)
        start = time.perf_counter()
        size = write_ratings(home / "ml-32m", args.n_ratings)
        print(f"wrote {size / 2**20:.0f} MB in {time.perf_counter() - start:.0f} s", flush=True)
        results = {"imports only": isolated(_baseline)}
        results["fetch_movielens('32m')"] = isolated(_skkernelnet, str(home))
        try:
            results["pandas.read_csv (C engine, numeric dtypes)"] = isolated(_pandas, str(home))
        except ImportError:
            pass
    for name, r in results.items():
        print(name, r, flush=True)
    rows = [[name, f"{r['seconds']:.1f} s", f"{r['peak_rss_mb']:,.0f} MB",
             f"{r['array_mb']:,.0f} MB"] for name, r in results.items()]  # fmt: skip
    table = markdown_table(
        ["loader", "time", "peak resident memory (process)", "arrays returned"], rows
    )
    note = (f"{args.n_ratings:,} ratings, ratings.csv of {size / 2**20:,.0f} MB (synthetic, "
            "ML-32M layout); each loader in a fresh process.\n\n")  # fmt: skip
    print(note + table)
    payload = {"n_ratings": args.n_ratings, "file_mb": size / 2**20, "results": results}
    return write_results("bench_loader", payload, note + table)


if __name__ == "__main__":
    main()
