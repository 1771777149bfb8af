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

__all__ = ["check_n", "top_n", "top_n_chunked", "rows_per_chunk"]

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
