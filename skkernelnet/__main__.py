"""The main job: ``python -m skkernelnet``.

Trains :class:`~skkernelnet.KernelCollaborativeFilter` with its default
parameters on the bundled MovieLens latest-small (a random 90/10 split of the
ratings, seed 0), prints its test RMSE next to the global-mean and user+item
bias baselines, and a user's top-5 recommendations with movie titles.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m skkernelnet", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--user", type=int, default=None, help="user id to recommend for")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the model")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    from sklearn.metrics import root_mean_squared_error
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    from . import KernelCollaborativeFilter
    from .datasets import fetch_movielens
    from .recommender import RatingBaseline

    data = fetch_movielens("latest-small")
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.1, random_state=args.seed
    )
    print(
        f"MovieLens latest-small: {len(data.target):,} ratings, "
        f"{len(np.unique(data.data[:, 0])):,} users, {len(np.unique(data.data[:, 1])):,} movies; "
        f"training on {len(y_train):,}, testing on {len(y_test):,}."
    )

    rows = []
    for name, model in [
        ("global mean", RatingBaseline(biases=False)),
        ("user + item biases", RatingBaseline()),
        (
            "KernelCollaborativeFilter",
            KernelCollaborativeFilter(random_state=args.seed, verbose=0 if args.quiet else 1),
        ),
    ]:
        start = time.perf_counter()
        # torch and BLAS share the cores: keep BLAS (scipy, numpy) to one thread.
        with threadpool_limits(limits=1, user_api="blas"):
            model.fit(X_train, y_train)
        rmse = root_mean_squared_error(y_test, model.predict(X_test))
        rows.append((name, rmse, time.perf_counter() - start))
    print()
    print(f"{'model':<28}{'test RMSE':>10}{'fit time':>11}")
    for name, score, seconds in rows:
        print(f"{name:<28}{score:>10.4f}{seconds:>10.1f}s")

    user = args.user if args.user is not None else int(data.data[0, 0])
    items, scores = model.recommend([user], n=5)
    titles = dict(zip(data.item_ids.tolist(), data.item_titles.tolist()))
    print(f"\nTop 5 recommendations for user {user} (unseen movies, predicted rating):")
    for rank, (item, score) in enumerate(zip(items[0], scores[0]), start=1):
        print(f"  {rank}. {titles.get(item, item)}  ({min(score, 5.0):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
