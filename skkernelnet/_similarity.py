"""Similar items and similar users from a fitted rating autoencoder, exact and batched.

The primary autoencoder's interaction part predicts the matrix ``P = C @ W + b``
(rows: the network's samples, with last hidden codes ``C``; columns: its output
neurons, with effective last-layer weights ``W`` and biases ``b``). Two rows (or
two columns) are similar when they are close in direction in ``P`` after
removing each column's mean over the rows: for the item-based model, when the
model predicts that the same users like both items more (and the same users
less) than their usual, or that two users like the same items more than
their own average.

With ``C0 = C - mean(C)`` the centred matrix is ``C0 @ W`` and never needs to
be formed: for rows, ``C0 @ W`` has the same inner products as ``C0 @ R1.T``
where ``W.T = Q1 R1`` (QR), and for columns ``W.T @ C0.T`` those of
``W.T @ R2.T`` where ``C0 = Q2 R2``. Both are ``(n, h)`` matrices for ``h``
hidden units, so the cosine between any two rows or columns is exact at the
cost of an ``h``-dimensional dot product, and all queries are compared with
all candidates in bounded chunks (:func:`~skkernelnet._ranking.top_n_chunked`).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._ranking import check_n, top_n_chunked
from ._ratings import as_ids, lookup

__all__ = ["similar", "similarity_vectors"]


@torch.no_grad()
def similarity_vectors(model, side):
    """Unit vectors whose dot products are the similarities of all users or all items.

    Parameters
    ----------
    model : fitted KernelCollaborativeFilter
    side : {"user", "item"}

    Returns
    -------
    ndarray of shape (n_users or n_items, hidden_layer_sizes[-1])
        Rows of norm 1 (or 0 for an entity whose centred profile is zero).
    """
    view = model._views[0]
    codes = view.codes().astype(np.float64)
    codes -= codes.mean(axis=0)
    weight = view.module.layers[-1].weight.detach().cpu().numpy().astype(np.float64)
    rows_side = "item" if view.orientation == "item" else "user"
    if side == rows_side:
        vectors = codes @ np.linalg.qr(weight.T, mode="r").T
    else:
        vectors = weight.T @ np.linalg.qr(codes, mode="r").T
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def similar(model, ids, n, side):
    """Top-``n`` most similar users or items (the query itself excluded), best first."""
    check_is_fitted(model, "module_")
    known = model.user_ids_ if side == "user" else model.item_ids_
    ids = as_ids(ids, side)
    if ids.size == 0:
        raise ValueError(f"{side}s is empty: give at least one {side} id.")
    n = check_n(n, len(known) - 1, f"other {side}s")
    index = lookup(known, ids)
    if (index < 0).any():
        unknown = np.unique(np.asarray(ids, dtype=object)[index < 0])[:10].tolist()
        raise ValueError(f"{side}s not seen in fit: {unknown}.")
    vectors = similarity_vectors(model, side)

    def score_rows(rows):
        scores = vectors[index[rows]] @ vectors.T
        scores[np.arange(len(rows)), index[rows]] = -np.inf  # not one's own neighbour
        return scores

    top, scores = top_n_chunked(score_rows, len(ids), len(known), n)
    return known[top], np.clip(scores, -1.0, 1.0)
