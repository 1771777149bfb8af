"""A closed-form item-to-item model and its blend with a network's ranking.

The implicit recommender ranks with two paths: its kernelized autoencoder and
a linear item-to-item model ``x @ B`` fitted in closed form (EASE, Steck,
WWW 2019: ridge regression of every item on all the others, with a zero
diagonal so that no item explains itself)::

    P = (X^T X + lambda I)^-1,   B = I - P diag(P)^-1.

The two capture different things (the network: a low-dimensional code of the
whole history; the item-item model: exact pairwise co-occurrence), and a
blend of the two, with its weight and ``lambda`` chosen on held-out
interactions, ranks at least as well as the better one on those interactions.
The paths are blended on a common scale: each user's scores are standardised
over the catalogue before they are mixed.

Everything here works on SciPy CSR matrices of (users x items) interactions
and torch tensors; nothing knows about estimators.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = [
    "MAX_ITEMS",
    "NETWORK_WEIGHTS",
    "ItemItemSystem",
    "standardised",
    "blend",
    "mix",
    "ndcg_sum",
]

# Largest catalogue for which the item-item path is built by default: its weight
# matrix is n_items^2 float32 (1.6 GB at 20,000 items) and its fit a dense
# n_items^3 factorisation.
MAX_ITEMS = 20_000

# Candidate weights of the network in the blend; 0 is the item-item model alone and
# 1 the network alone, so the choice can never do worse than the better path on the
# held-out interactions it is chosen on.
NETWORK_WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))

# lambda candidates are multiples of the mean diagonal of X^T X (the mean item
# popularity for binary data), so that the search is independent of the
# confidence scale: a coarse pass over factors of 4, then the best one's neighbours
# at factors of 2.
_COARSE_FACTORS = (0.25, 1.0, 4.0, 16.0, 64.0)


class ItemItemSystem:
    """The ridge system of the item-item model of one interaction matrix, solved for any penalty.

    ``P = (X^T X + lambda I)^-1`` is factorised directly when there are at
    least as many users as items, and otherwise through the Woodbury identity
    ``P = (I - X^T (lambda I + X X^T)^-1 X) / lambda``, which factorises a
    (users x users) matrix instead (ml-latest-small: 671 users, 8,747 items).

    Parameters
    ----------
    matrix : sparse matrix of shape (n_users, n_items)
        Interactions (or confidences).
    """

    def __init__(self, matrix):
        matrix = sp.csr_matrix(matrix, dtype=np.float64)
        self.n_users, self.n_items = matrix.shape
        self.by_users = self.n_users < self.n_items
        if self.by_users:
            self._dense = torch.as_tensor(matrix.toarray())
            self._small = self._dense @ self._dense.T
        else:
            self._small = torch.as_tensor((matrix.T @ matrix).toarray())
        # mean diagonal of X^T X: the penalty scale of the candidates
        self.scale = float(matrix.multiply(matrix).sum()) / max(self.n_items, 1)

    def _inverse(self, lam):
        system = self._small.clone()
        system.diagonal().add_(float(lam))
        return torch.cholesky_inverse(torch.linalg.cholesky(system))

    def precision(self, lam):
        """``(X^T X + lam I)^-1`` as a float64 tensor."""
        if not lam > 0:
            raise ValueError(f"the item-item penalty must be positive, got {lam!r}.")
        if not self.by_users:
            return self._inverse(lam)
        out = -(self._dense.T @ (self._inverse(lam) @ self._dense))
        out.diagonal().add_(1.0)
        return out.div_(float(lam))

    def weights(self, lam, dtype=torch.float32):
        """The item-item weight matrix ``B`` (zero diagonal) for ridge penalty ``lam``.

        Returns
        -------
        Tensor of shape (n_items, n_items)
        """
        precision = self.precision(lam)
        weights = precision.div_(-torch.diagonal(precision).clone())
        weights.diagonal().zero_()
        return weights.to(dtype)

    def scorer(self, lam, dtype=torch.float32, device=None):
        """A function giving ``x @ B`` for rows ``x`` (a torch tensor, dense or sparse).

        With fewer users than items, ``B`` is never formed: since ``B = I - P
        diag(P)^-1``, ``x B = x - (x P) / diag(P)``, and the Woodbury form gives
        ``x P`` and ``diag(P)`` from (users x items) products only, which is
        what choosing the penalty on held-out interactions needs. Otherwise
        the weights are built once and multiplied.
        """
        if not self.by_users:
            weights = self.weights(lam, dtype).to(device)
            return lambda rows: _dense_or_sparse_matmul(rows, weights)
        if not lam > 0:
            raise ValueError(f"the item-item penalty must be positive, got {lam!r}.")
        mixed = self._inverse(lam) @ self._dense  # (lambda I + X X^T)^-1 X
        # lambda * diag(P), and X^T whose products give lambda * (x P) with `mixed`
        diagonal = (1.0 - (self._dense * mixed).sum(0)).to(dtype).to(device)
        users_by_items = self._dense.T.to(dtype).to(device)
        mixed = mixed.to(dtype).to(device)

        def scores(rows):
            x = rows.to_dense() if rows.layout != torch.strided else rows
            x_p = x - (x @ users_by_items) @ mixed  # lambda * (x P)
            return x - x_p / diagonal

        return scores

    def lambda_candidates(self, refine_around=None):
        """Penalties to try: the coarse grid, or the neighbours of ``refine_around``."""
        if refine_around is None:
            return [max(self.scale, 1e-12) * f for f in _COARSE_FACTORS]
        return [refine_around / 2.0, refine_around * 2.0]


def _dense_or_sparse_matmul(rows, weights):
    return torch.sparse.mm(rows, weights) if rows.layout != torch.strided else rows @ weights


def standardised(scores):
    """Each row of a score tensor centred and scaled to unit standard deviation."""
    centred = scores - scores.mean(dim=1, keepdim=True)
    spread = centred.std(dim=1, keepdim=True)
    return centred / torch.where(spread > 0, spread, torch.ones_like(spread))


def mix(network_z, item_item_z, network_weight):
    """``w * network_z + (1 - w) * item_item_z`` of already standardised scores."""
    if network_weight >= 1.0:
        return network_z
    if network_weight <= 0.0:
        return item_item_z
    return network_weight * network_z + (1.0 - network_weight) * item_item_z


def blend(network_scores, item_item_scores, network_weight):
    """``w * z(network) + (1 - w) * z(item-item)``, ``z`` standardising each row."""
    if network_weight >= 1.0:
        return standardised(network_scores)
    if network_weight <= 0.0:
        return standardised(item_item_scores)
    return mix(standardised(network_scores), standardised(item_item_scores), network_weight)


def ndcg_sum(scores, seen, truth, k):
    """Sum over rows of NDCG@k (binary gain) of held-out items.

    Parameters
    ----------
    scores : Tensor of shape (n_rows, n_items)
    seen : csr_matrix of shape (n_rows, n_items)
        Items excluded from each row's ranking (its training history).
    truth : csr_matrix of shape (n_rows, n_items)
        The held-out items of each row; every row has at least one.
    k : int

    Returns
    -------
    float
    """
    scores = scores.clone()
    seen = seen.tocoo()
    scores[torch.as_tensor(seen.row), torch.as_tensor(seen.col)] = -torch.inf
    k = min(k, scores.shape[1])
    top = torch.topk(scores, k, dim=1).indices.cpu().numpy()
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)
    hits = np.take_along_axis(truth.toarray() > 0, top, axis=1)
    n_relevant = np.diff(truth.indptr)
    return float(((hits * discount).sum(1) / ideal[np.minimum(n_relevant, k) - 1]).sum())
