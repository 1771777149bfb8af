"""Exact top-n selection over score matrices built in bounded row chunks.

Recommending for every user of a large catalogue, or finding the neighbours of
every item, would need a (queries x catalogue) score matrix; these helpers
build it a chunk of rows at a time, keep only each row's ``n`` best entries,
and so bound the memory by ``_CHUNK_ELEMENTS`` scores per chunk whatever the
number of queries.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

__all__ = [
    "BLOCK_ROWS",
    "POPULARITY_WEIGHT",
    "check_n",
    "clip_n",
    "cosine_neighbours",
    "popularity_log_prior",
    "rows_per_chunk",
    "top_n",
    "top_n_chunked",
]

# Rows of scores computed at once by the implicit recommender: bounds the memory of a
# ranking pass to BLOCK_ROWS * n_items floats whatever the number of users asked for.
BLOCK_ROWS = 1024

# Default weight of the log-popularity prior in the rating model's ranking score
# (predicted rating + weight * log popularity share), chosen by
# benchmarks/choose_recommend_prior.py on a validation carve of ML-100K training data.
POPULARITY_WEIGHT = 1.5

# Scores held per chunk (float64): 4M entries, 32 MiB; a few temporaries of that
# size exist at a time while a chunk is scored.
_CHUNK_ELEMENTS = 1 << 22


def check_n(n, n_candidates, what="items"):
    """Validate ``n`` as a positive integer no larger than the number of candidates."""
    if not isinstance(n, Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    if n > n_candidates:
        raise ValueError(
            f"n={n} is larger than the number of {what} that can be returned ({n_candidates})."
        )
    return int(n)


def clip_n(n, n_candidates):
    """Validate ``n`` (a positive integer) and clip it to the number of candidates: the
    implicit recommender pads its lists with ``-inf`` instead of refusing a large ``n``."""
    if not isinstance(n, Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    return min(int(n), int(n_candidates))


def rows_per_chunk(n_cols):
    """Rows of a (rows x n_cols) float64 block that fit in the chunk budget (at least 1)."""
    return max(1, _CHUNK_ELEMENTS // max(int(n_cols), 1))


def top_n(scores, n):
    """Column indices and values of each row's ``n`` largest scores, best first.

    Ties keep the lower column first; ``-inf`` entries come last.
    """
    if n < scores.shape[1]:
        top = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    else:
        top = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    values = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -values), axis=-1) if values.size else np.empty_like(top)
    top = np.take_along_axis(top, order, axis=1)
    return top, np.take_along_axis(values, order, axis=1)


def top_n_chunked(score_rows, n_rows, n_cols, n):
    """Top ``n`` of every row of a score matrix that is built by ``score_rows(rows)``.

    Parameters
    ----------
    score_rows : callable
        ``score_rows(rows) -> ndarray of shape (len(rows), n_cols)`` for an
        array of row indices.
    n_rows, n_cols, n : int

    Returns
    -------
    top : ndarray of int of shape (n_rows, n)
    values : ndarray of shape (n_rows, n)
    """
    top = np.empty((n_rows, n), dtype=np.int64)
    values = np.empty((n_rows, n), dtype=np.float64)
    step = rows_per_chunk(n_cols)
    for start in range(0, n_rows, step):
        rows = np.arange(start, min(start + step, n_rows))
        top[rows], values[rows] = top_n(score_rows(rows), n)
    return top, values


def cosine_neighbours(vectors, query, n, exclude_self=True):
    """The ``n`` rows of ``vectors`` most cosine-similar to each row index in ``query``.

    Exact (every pair is scored), in blocks of queries.

    Returns
    -------
    neighbours : ndarray of int of shape (n_queries, n)
    similarities : ndarray of float of shape (n_queries, n)
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    query = np.asarray(query, dtype=np.int64)
    n = min(n, len(vectors) - (1 if exclude_self else 0))
    out_idx = np.empty((len(query), n), dtype=np.int64)
    out_sim = np.empty((len(query), n), dtype=np.float64)
    for start in range(0, len(query), BLOCK_ROWS):
        rows = query[start : start + BLOCK_ROWS]
        sims = unit[rows] @ unit.T
        if exclude_self:
            sims[np.arange(len(rows)), rows] = -np.inf
        idx, val = top_n(sims, n)
        out_idx[start : start + len(rows)] = idx
        out_sim[start : start + len(rows)] = val
    return out_idx, out_sim


def popularity_log_prior(item_counts, n_users):
    """``log`` of each item's share of users who interacted with it (add-one smoothed)."""
    counts = np.asarray(item_counts, dtype=np.float64)
    return np.log((counts + 1.0) / (n_users + 1.0))
