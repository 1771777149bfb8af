"""Where an evaluation's time goes at MovieLens-10M's shape: torch.profiler over a short fit.

Fits the default KernelCollaborativeFilter for two L-BFGS iterations on
``make_ratings`` data of ML-10M's shape scaled by FRACTION (users and ratings),
as ``bench_scale.py`` does, and prints the operators with the most self CPU
time. Comparing two fractions shows which operators grow faster than the
number of ratings::

    OPENBLAS_NUM_THREADS=1 python benchmarks/profile_scale.py 0.5
    OPENBLAS_NUM_THREADS=1 python benchmarks/profile_scale.py 1
"""

from __future__ import annotations

import argparse

import torch
from threadpoolctl import threadpool_limits
from torch.profiler import ProfilerActivity, profile

from skkernelnet import KernelCollaborativeFilter
from skkernelnet.datasets import make_ratings

N_USERS, N_ITEMS, N_RATINGS = 69_878, 10_677, 9_000_000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fraction", type=float)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=12)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, y = make_ratings(int(N_USERS * args.fraction), N_ITEMS,
                        n_ratings=int(N_RATINGS * args.fraction), random_state=0,
                        return_X_y=True)
    model = KernelCollaborativeFilter(max_iter=2, early_stopping=False, random_state=0)
    with threadpool_limits(limits=1, user_api="blas"), profile(
        activities=[ProfilerActivity.CPU]
    ) as prof:
        model.fit(X, y)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
