"""The rating benchmark suite: skkernelnet against the baselines users would pick instead.

One command runs every part and writes ``results/suite.json`` (with versions,
CPU, threads and date) and ``results/suite.md`` (the tables the documentation
includes)::

    python benchmarks/suite.py                 # everything (about an hour on 2 cores)
    python benchmarks/suite.py --quick         # ML-100K u1 and latest-small only

Parts (``--parts``, default all of them):

* ``accuracy``: the rating protocols below, every method on the same splits;
* ``reference``: the naive dense port of the authors' code (``reference_port.py``)
  on ML-1M seed 0, run for ``--reference-iterations`` L-BFGS-B iterations to time it
  (its RMSE after so few iterations is not a result);
* ``speed``: ``bench_cf_speed.py`` (one evaluation and one L-BFGS iteration at
  ML-1M size against the naive dense formulation, arithmetic rate against matmul);
* ``scale``: ``bench_scale.py`` (a synthetic matrix of MovieLens-10M's shape).

Protocols (seeds fixed; test ratings used only for scoring; nothing tuned on them):

* ``ml-100k``: the official u1.base / u1.test split, and the mean over the five
  official splits u1..u5 (``--quick``: u1 only);
* ``ml-1m``: random 90/10 splits of the ratings, seeds 0..4, mean and std;
* ``ml-latest-small``: a random 90/10 split, seed 0.

Rows: ``KernelCollaborativeFilter`` with default parameters; global mean;
user+item biases; scikit-surprise ``SVD``, ``SVDpp`` (skipped on ML-1M, where
it takes far longer than the rest together) and ``KNNBaseline`` with their
defaults. Columns: RMSE, MAE, fit time, predict time and peak memory (the
growth of this process's resident set during the fit, from psutil sampling:
memory that an earlier fit freed and the allocator reuses is not counted, so
the first split of a protocol gives the most representative figure, and the
means over splits understate it).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_home, item_user_codes, markdown_table, write_results  # noqa: E402

from skkernelnet import KernelCollaborativeFilter  # noqa: E402
from skkernelnet.datasets import fetch_movielens  # noqa: E402
from skkernelnet.recommender import RatingBaseline  # noqa: E402

PARTS = ["accuracy", "reference", "speed", "scale"]


class PeakMemory:
    """Peak resident memory of this process above its level at entry, sampled every 10 ms."""

    def __enter__(self):
        import psutil

        self._process = psutil.Process()
        self._base = self._process.memory_info().rss
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss - self._base)
            self._stop.wait(0.01)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss - self._base)


class SurpriseModel:
    """A scikit-surprise algorithm behind fit/predict on (user, item) pairs."""

    def __init__(self, name, seed):
        self.name, self.seed = name, seed

    def fit(self, X, y):
        import pandas as pd
        import surprise

        low, high = float(np.min(y)), float(np.max(y))
        frame = pd.DataFrame({"u": X[:, 0], "i": X[:, 1], "r": y})
        data = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(low, high)))
        algo_class = getattr(surprise, self.name)
        kwargs = {"random_state": self.seed} if self.name in ("SVD", "SVDpp") else {}
        if self.name == "KNNBaseline":
            kwargs = {"verbose": False}
        self.algo_ = algo_class(**kwargs).fit(data.build_full_trainset())
        return self

    def predict(self, X):
        return np.array([self.algo_.predict(u, i).est for u, i in X.tolist()])


def methods(seed, skip):
    rows = [
        ("KernelCollaborativeFilter", lambda: KernelCollaborativeFilter(random_state=seed)),
        ("global mean", lambda: RatingBaseline(biases=False)),
        ("user + item biases", lambda: RatingBaseline()),
    ]
    try:
        import surprise  # noqa: F401
    except ImportError:
        print("scikit-surprise is not installed (pip install -e '.[bench]'): skipping its rows")
        return rows
    for name in ("SVD", "SVDpp", "KNNBaseline"):
        if name not in skip:
            rows.append((f"surprise {name}", lambda name=name: SurpriseModel(name, seed)))
    return rows


def evaluate(model, X_train, y_train, X_test, y_test):
    with PeakMemory() as memory, threadpool_limits(limits=1, user_api="blas"):
        start = time.perf_counter()
        model.fit(X_train, y_train)
        fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    pred = model.predict(X_test)
    predict_seconds = time.perf_counter() - start
    err = pred - y_test
    return {
        "rmse": root_mean_squared_error(y_test, pred),
        "mae": float(np.mean(np.abs(err))),
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "peak_memory_mb": memory.peak / 2**20,
    }


class ReferencePortModel:
    """The naive dense port behind fit/predict on ``(user, item)`` index pairs."""

    def __init__(self, n_users, n_items, iterations):
        self.n_users, self.n_items, self.iterations = n_users, n_items, iterations

    def fit(self, X, y):
        from reference_port import ReferencePort

        R = torch.zeros(self.n_items, self.n_users)
        R[X[:, 1], X[:, 0]] = torch.as_tensor(y, dtype=torch.float32)
        self.port_ = ReferencePort(max_iter=self.iterations).fit(R)
        return self

    def predict(self, X):
        return self.port_.predict_matrix()[X[:, 1], X[:, 0]].numpy()


def reference_port_row(X_train, y_train, X_test, y_test, iterations):
    """The naive dense port on one split, timed for ``iterations`` L-BFGS-B iterations.

    Its ratings matrix spans the ids of both parts, as the authors built it.
    """
    items, users = item_user_codes(np.concatenate([X_train, X_test]))
    codes = np.column_stack([users, items])
    model = ReferencePortModel(users.max() + 1, items.max() + 1, iterations)
    row = evaluate(model, codes[: len(X_train)], y_train, codes[len(X_train) :], y_test)
    row["iterations"] = model.port_.n_iter_
    row["median_iteration_seconds"] = float(np.median(model.port_.iteration_times_[1:]))
    return row


def protocols(args):
    home = data_home()
    splits = ["u1"] if args.quick else ["u1", "u2", "u3", "u4", "u5"]
    runs = []
    for split in splits:
        train = fetch_movielens("100k", subset="train", split=split, data_home=home)
        test = fetch_movielens("100k", subset="test", split=split, data_home=home)
        runs.append((0, train.data, train.target, test.data, test.target))
    yield f"ml-100k {'/'.join(splits)}", runs, set()
    small = fetch_movielens("latest-small")
    X_train, X_test, y_train, y_test = train_test_split(
        small.data, small.target, test_size=0.1, random_state=0
    )
    yield "ml-latest-small 90/10", [(0, X_train, y_train, X_test, y_test)], set()
    if args.quick:
        return
    data = fetch_movielens("1m", data_home=home)
    runs = []
    for seed in range(args.seeds):
        X_train, X_test, y_train, y_test = train_test_split(
            data.data, data.target, test_size=0.1, random_state=seed
        )
        runs.append((seed, X_train, y_train, X_test, y_test))
    yield f"ml-1m 90/10 x{args.seeds}", runs, {"SVDpp"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="accuracy on ML-100K u1 and latest-small only")
    parser.add_argument("--parts", nargs="+", default=PARTS, choices=PARTS)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--reference-iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.quick:
        args.parts = ["accuracy"]
    torch.set_num_threads(args.threads)
    results, markdown = {}, []
    if "accuracy" in args.parts:
        accuracy(args, results, markdown)
    if "reference" in args.parts:
        data = fetch_movielens("1m", data_home=data_home())
        split = train_test_split(data.data, data.target, test_size=0.1, random_state=0)
        X_train, X_test, y_train, y_test = split
        row = reference_port_row(X_train, y_train, X_test, y_test, args.reference_iterations)
        results["reference port, ml-1m seed 0"] = row
        print(f"reference port: {row}", flush=True)
        markdown.append(
            f"### Naive dense reference port, ML-1M seed 0, {row['iterations']} L-BFGS-B "
            "iterations\n\n" + markdown_table(
                ["fit time", "median iteration", "predict time", "peak memory",
                 f"RMSE after {row['iterations']} iterations"],
                [[f"{row['fit_seconds']:.1f} s", f"{row['median_iteration_seconds']:.2f} s",
                  f"{row['predict_seconds']:.2f} s", f"{row['peak_memory_mb']:.0f} MB",
                  f"{row['rmse']:.4f} (timing only: far from converged)"]]))
    if "speed" in args.parts:
        import bench_cf_speed

        table, payload = bench_cf_speed.main(["--threads", str(args.threads)])
        results["speed"] = {k: v for k, v in payload.items() if k != "environment"}
        markdown.append("### Speed at ML-1M size (`bench_cf_speed.py`)\n\n" + table)
    if "scale" in args.parts:
        import bench_scale

        table, payload = bench_scale.main(["--threads", str(args.threads),
                                           "--fractions", "0.25", "0.5", "1"])
        results["scale"] = {k: v for k, v in payload.items() if k != "environment"}
        markdown.append("### Scale: MovieLens-10M's shape, synthetic (`bench_scale.py`)\n\n"
                        + table)
    write_results("suite", {"threads": args.threads, "parts": args.parts, "results": results},
                  "\n".join(markdown))


def summary_table(scores_by_method, pick=slice(None)):
    """One row per method: mean (and std over several splits) of each column."""
    rows = []
    for name, scores in scores_by_method.items():
        scores = scores[pick]

        def stat(key, fmt, scores=scores):
            values = [s[key] for s in scores]
            text = fmt.format(np.mean(values))
            spread = len(values) > 1 and key in ("rmse", "mae")
            return text + (f" ± {np.std(values):.4f}" if spread else "")

        rows.append([name, stat("rmse", "{:.4f}"), stat("mae", "{:.4f}"),
                     stat("fit_seconds", "{:.1f} s"), stat("predict_seconds", "{:.2f} s"),
                     stat("peak_memory_mb", "{:.0f} MB")])
    return markdown_table(["method", "RMSE", "MAE", "fit time", "predict time", "peak memory"],
                          rows)


def accuracy(args, results, markdown):
    for protocol, runs, skip in protocols(args):
        results[protocol] = {}
        for name, make in methods(0, skip):
            scores = []
            for seed, X_train, y_train, X_test, y_test in runs:
                maker = make if seed == 0 else dict(methods(seed, skip))[name]
                scores.append(evaluate(maker(), X_train, y_train, X_test, y_test))
                print(f"{protocol:<24} {name:<28} RMSE {scores[-1]['rmse']:.4f} "
                      f"fit {scores[-1]['fit_seconds']:.1f} s", flush=True)
            results[protocol][name] = scores
        title = protocol
        if protocol.startswith("ml-100k") and len(runs) > 1:  # u1 alone, then the mean
            markdown.append("### ml-100k u1\n\n" + summary_table(results[protocol], slice(1)))
            title = "ml-100k u1..u5, mean ± std over the five splits"
        markdown.append(f"### {title}\n\n" + summary_table(results[protocol]))
        print(markdown[-1], flush=True)


if __name__ == "__main__":
    main()
