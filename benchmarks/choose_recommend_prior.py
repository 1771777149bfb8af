"""Validation behind KernelCollaborativeFilter.recommend's default popularity_weight.

``recommend`` ranks by ``predicted rating + popularity_weight * log(share of
training users who rated the item)``. For each dataset, the split of seed 0 of
``bench_topn.py`` is taken, 10% of its *training* ratings are carved out as
validation (as ``bench_topn.py`` does for every method's hyperparameters), the
rating model is fitted with its defaults on the rest, and every candidate
weight ranks all unseen items for each validation user (relevant: rating >= 4).
The test ratings of ``bench_topn.py`` are never read. The rule: the weight with
the highest mean validation NDCG@10 over the datasets becomes the default.

    python benchmarks/choose_recommend_prior.py [--datasets 100k 1m]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_results  # noqa: E402
from bench_topn import K, load, random_split  # noqa: E402

from skkernelnet import KernelCollaborativeFilter  # noqa: E402
from skkernelnet._ratings import lookup  # noqa: E402

WEIGHTS = [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 1e6]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["100k", "1m"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {}
    with threadpool_limits(limits=args.threads):
        for name in args.datasets:
            X, y = load(name)
            split = random_split(X, y, 0)
            inner = random_split(split.X_train, split.y_train, 1000)
            model = KernelCollaborativeFilter(random_state=0)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(inner.X_train, inner.y_train)
            fit_time = time.perf_counter() - start
            rows = {}
            for weight in WEIGHTS:
                items, _ = model.recommend(
                    inner.user_ids[inner.eval_users], n=K, popularity_weight=weight
                )
                rows[weight] = inner.score(lookup(inner.item_ids, items))
                print(f"{name} weight {weight:g}: validation NDCG@10 {rows[weight]['ndcg']:.4f} "
                      f"P@10 {rows[weight]['precision']:.4f}", flush=True)
            results[name] = {"fit_seconds": fit_time, "by_weight": rows}
            report(results)


def report(results):
    """Write the table of the datasets done so far, with the weight the rule picks."""
    mean_ndcg = {w: float(np.mean([results[n]["by_weight"][w]["ndcg"] for n in results]))
                 for w in WEIGHTS}
    best = max(mean_ndcg, key=mean_ndcg.get)
    header = ["popularity_weight"] + [f"{n} NDCG@10" for n in results] + ["mean"]
    table = [[("popularity only" if w >= 1e6 else f"{w:g}")]
             + [f"{results[n]['by_weight'][w]['ndcg']:.4f}" for n in results]
             + [f"{mean_ndcg[w]:.4f}" + (" (chosen)" if w == best else "")]
             for w in WEIGHTS]
    markdown = (
        "Validation NDCG@10 of `KernelCollaborativeFilter().recommend(n=10, "
        "popularity_weight=w)` on a carve of the training part of split 0 (relevant: "
        "rating >= 4; all unseen items ranked). `w = 0` ranks by predicted rating alone; "
        "\"popularity only\" is the most-popular list.\n\n" + markdown_table(header, table)
    )
    print(markdown)
    write_results("choose_recommend_prior", {"weights": WEIGHTS, "results": results,
                                             "mean_ndcg": mean_ndcg, "chosen": best}, markdown)


if __name__ == "__main__":
    main()
