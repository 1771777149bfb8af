"""Fold-in: predicted ratings for users unseen in fit, from their rating history alone.

A fitted :class:`~skkernelnet.KernelCollaborativeFilter` holds one or two
autoencoders, and a user plays a different part in each:

* where the user is a *sample* (the user-based autoencoder), the user's
  history is simply the network's input: the code of the history row and the
  outputs over every item follow from one forward pass, exactly as for a user
  seen in fit;
* where the user is an *output neuron* (the paper's item-based autoencoder),
  a new user needs a new output neuron: the last layer's weights ``w`` (one per
  hidden unit of the last hidden layer) and bias ``b`` such that ``code_i . w +
  b`` predicts the user's rating residual of every item ``i`` they rated. Those
  ``h + 1`` numbers are the posterior mean of a Bayesian linear regression on
  the fixed item codes: the prior is the Gaussian fitted to the output neurons
  of the users seen in fit (their mean and covariance), the noise variance is
  the network's mean squared residual on its training ratings. Nothing is
  tuned, and with a long history the solution tends to the least-squares fit
  while a user with three ratings stays close to the typical user.

The new user's rating bias is fitted as in fit (the shrunken mean deviation
from ``global_mean_ + item_bias_``), each network's output is shrunk by its
output neuron's support (``n / (n + support_shrinkage_)``, with ``n`` the
history's length for the folded-in neuron) and weighted by
``network_weights_``, as for a user seen in fit, and the fitted networks are
never changed. A new user's
ratings do not enter the item codes: in the item-based network that would need
a new *input* neuron, whose kernel embedding and weights have no closed form.

The same holds for new items with the roles swapped (``item_history`` of
``predict``); :func:`fold_in_scores` takes the side (``"user"`` or ``"item"``)
to fold in.
"""

from __future__ import annotations

import weakref

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch

from ._rating_training import support_factor
from ._ratings import as_ids, as_pairs, check_ratings, deduplicate_ratings, factorize, lookup
from .layers import csr_from_scipy

__all__ = [
    "FoldedHistory",
    "fold_in_scores",
    "check_history",
    "fold_in_bias",
    "fill_folded",
    "network_mask",
]

# Folded-in users scored at a time: bounds the (users x items) block in memory.
_FOLD_CHUNK = 512

# Same shrinkage as fit's biases (:func:`skkernelnet._ratings.fit_biases` default).
_BIAS_SHRINKAGE = 10.0
# Training ratings sampled to estimate the noise variance of a view.
_NOISE_SAMPLE = 100_000
# Relative ridge added to the prior covariance, which is singular when there are
# fewer output neurons than hidden units.
_PRIOR_JITTER = 1e-6

_CACHE = weakref.WeakKeyDictionary()


def _parameter_versions(module):
    return tuple(p._version for p in module.parameters())


def _output_side(view, side):
    """Whether ``side`` ("user" or "item") is the output neurons of ``view``."""
    return (view.orientation == "item") == (side == "user")


class _OutputNeuronPrior:
    """Codes of the view's samples and the Gaussian prior over its output neurons."""

    def __init__(self, model, view):
        last = view.module.layers[-1]
        with torch.no_grad():
            weight = last.weight.detach().cpu().numpy().astype(np.float64)  # (h, n_out)
            bias = (
                last.bias.detach().cpu().numpy().astype(np.float64)
                if last.bias is not None
                else np.zeros(weight.shape[1])
            )
        neurons = np.vstack([weight, bias[None, :]]).T  # (n_out, h + 1)
        self.has_bias = last.bias is not None
        self.mean = neurons.mean(axis=0)
        centred = neurons - self.mean
        cov = centred.T @ centred / max(len(neurons) - 1, 1)
        jitter = _PRIOR_JITTER * max(float(np.trace(cov)) / len(cov), 1e-12)
        if not self.has_bias:  # a bias that is always zero: pin it with a tiny variance
            cov[-1, :] = cov[:, -1] = 0.0
        self.cov = cov + jitter * np.eye(len(cov))
        self.codes = view.codes().astype(np.float64)  # (n_rows, h)
        self.noise = _noise_variance(model, view)


def _noise_variance(model, view):
    """Mean squared residual of the view's network on (a sample of) its training ratings."""
    ratings = model._ratings.tocoo()
    n = ratings.nnz
    pick = np.arange(n)
    if n > _NOISE_SAMPLE:
        pick = np.random.RandomState(0).choice(n, _NOISE_SAMPLE, replace=False)
    users, items = ratings.row[pick], ratings.col[pick]
    target = ratings.data[pick] - model._offset(users, items)
    residual = target - view.output_at(users, items)
    return max(float(np.mean(residual**2)), 1e-6)


def _prior(model, view):
    """The view's prior, computed once per fitted network (and recomputed after a refit)."""
    per_model = _CACHE.setdefault(model, {})
    key = (
        view.orientation,
        id(view.module),
        _parameter_versions(view.module),
        id(model._ratings),
    )
    prior = per_model.get(view.orientation)
    if prior is None or prior[0] != key:
        prior = (key, _OutputNeuronPrior(model, view))
        per_model[view.orientation] = prior
    return prior[1]


def _posterior_neuron(prior, rows, residuals):
    """Posterior mean of ``[w, b]`` given ``codes[rows] @ w + b ~ residuals``."""
    design = np.hstack([prior.codes[rows], np.ones((len(rows), 1))])  # (k, h + 1)
    misfit = residuals - design @ prior.mean
    if len(rows) <= design.shape[1]:
        # Woodbury form: a k x k system for a history of k ratings
        cov_dt = prior.cov @ design.T
        gram = design @ cov_dt + prior.noise * np.eye(len(rows))
        return prior.mean + cov_dt @ scipy.linalg.solve(gram, misfit, assume_a="pos")
    precision = design.T @ design + prior.noise * _inverse_cov(prior)
    return prior.mean + scipy.linalg.solve(precision, design.T @ misfit, assume_a="pos")


def _inverse_cov(prior):
    if not hasattr(prior, "cov_inv"):
        prior.cov_inv = scipy.linalg.inv(prior.cov)
    return prior.cov_inv


def check_history(model, history, side="user", name="history"):
    """Validate a rating history and map it to (entity index, other-side index, rating).

    Parameters
    ----------
    model : fitted KernelCollaborativeFilter
    history : tuple (X, y)
        ``X`` of shape (n_ratings, 2) holds (user id, item id) pairs, ``y``
        the ratings, as for ``fit``.
    side : {"user", "item"}
        The side being folded in; every id of the other side must be known.
    name : str
        What to call the history in error messages.

    Returns
    -------
    ids : ndarray
        The distinct ids folded in.
    entity, other, ratings : ndarray
        For each (deduplicated) history rating: index into ``ids``, index of
        the other side's id in the fitted model, rating.
    """
    if not isinstance(history, (tuple, list)) or len(history) != 2:
        raise ValueError(
            f"{name} must be a pair (X, y): X the (user id, item id) pairs of the ratings "
            f"to fold in, y the ratings; got {type(history).__name__}."
        )
    X, y = history
    try:
        users, items = as_pairs(X)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    try:
        ratings = check_ratings(y, len(users))
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    folded, other = (users, items) if side == "user" else (items, users)
    other_ids = model.item_ids_ if side == "user" else model.user_ids_
    other_idx = lookup(other_ids, other)
    if (other_idx < 0).any():
        unknown = np.unique(np.asarray(other, dtype=object)[other_idx < 0])[:10].tolist()
        other_side = "item" if side == "user" else "user"
        raise ValueError(
            f"{name} contains {other_side}s not seen in fit: {unknown}. A history can only "
            f"use {other_side}s the model knows; drop those ratings first."
        )
    ids, entity = factorize(folded)
    entity, other_idx, ratings = deduplicate_ratings(
        entity, other_idx, ratings, len(other_ids), model.duplicates, where=name
    )
    return ids, entity, other_idx, ratings


def fold_in_bias(model, other, ratings, side="user"):
    """Shrunken rating bias of one new user (or item) given the other side's known biases."""
    other_bias = model.item_bias_ if side == "user" else model.user_bias_
    deviation = ratings - model.global_mean_ - other_bias[other]
    return float(deviation.sum() / (len(ratings) + _BIAS_SHRINKAGE))


@torch.no_grad()
def fold_in_scores(model, entity, other, ratings, n_entities, side="user"):
    """Predicted ratings of folded-in users (or items) for every item (or user).

    Parameters
    ----------
    model : fitted KernelCollaborativeFilter
    entity, other, ratings : ndarray
        The histories as returned by :func:`check_history`.
    n_entities : int
        Number of folded-in users (rows of the result).
    side : {"user", "item"}

    Returns
    -------
    scores : ndarray of shape (n_entities, n_other)
        Unclipped predicted ratings (``global_mean_ +`` both biases ``+`` the
        blended networks) of each folded-in entity for every known id of the
        other side.
    biases : ndarray of shape (n_entities,)
        The folded-in rating biases.
    """
    n_other = len(model.item_ids_ if side == "user" else model.user_ids_)
    order = np.argsort(entity, kind="stable")
    entity, other, ratings = entity[order], other[order], ratings[order]
    bounds = np.searchsorted(entity, np.arange(n_entities + 1))
    biases = np.array(
        [
            fold_in_bias(model, other[a:b], ratings[a:b], side)
            for a, b in zip(bounds[:-1], bounds[1:])
        ]
    )
    other_bias = model.item_bias_ if side == "user" else model.user_bias_
    offset = model.global_mean_ + biases[:, None] + other_bias[None, :]
    residuals = ratings - offset[entity, other]
    outputs = []
    for view in model._views:
        if _output_side(view, side):
            prior = _prior(model, view)
            neurons = np.stack(
                [
                    _posterior_neuron(prior, other[a:b], residuals[a:b])
                    for a, b in zip(bounds[:-1], bounds[1:])
                ]
            )  # (n_entities, h + 1)
            outputs.append(neurons[:, :-1] @ prior.codes.T + neurons[:, -1:])
        else:
            matrix = sp.csr_matrix((ratings, (entity, other)), shape=(n_entities, n_other))
            matrix.sort_indices()
            x = csr_from_scipy(matrix, view.dtype, view.device)
            module = view.module
            out = module.output_activation(module.layers[-1](module.hidden(x)))
            outputs.append(out.cpu().numpy().astype(np.float64))
    # As for a known user or item: each network's output is weighted, and shrunk by its
    # output neuron's support (here the history's length for the folded-in neuron).
    tau = model.support_shrinkage_
    other_support = model.item_support_ if side == "user" else model.user_support_
    counts = np.diff(bounds)
    blended = np.zeros((n_entities, n_other))
    for weight, view, out in zip(model.network_weights_, model._views, outputs):
        support = counts[:, None] if _output_side(view, side) else other_support[None, :]
        blended += weight * out * support_factor(support, tau)
    return offset + blended, biases


class FoldedHistory:
    """Validated rating histories of users (or items) to fold in, scored on demand.

    Parameters
    ----------
    model : fitted KernelCollaborativeFilter
    history : tuple (X, y)
        See :func:`check_history`.
    side : {"user", "item"}
    """

    def __init__(self, model, history, side="user"):
        self.model, self.side = model, side
        name = "history" if side == "user" else "item_history"
        self.ids, self.entity, self.other, self.ratings = check_history(
            model, history, side, name
        )

    def positions(self, ids):
        """Index of each id among the folded-in ids, -1 for an id without a history."""
        return lookup(self.ids, as_ids(ids, self.side))

    def _subset(self, positions):
        keep = np.isin(self.entity, positions)
        local = np.searchsorted(positions, self.entity[keep])
        return local, self.other[keep], self.ratings[keep]

    def scores(self, positions):
        """Unclipped predicted ratings for every other-side id, and the folded-in biases.

        ``positions`` must be sorted and distinct (indices into ``ids``).
        """
        local, other, ratings = self._subset(positions)
        return fold_in_scores(self.model, local, other, ratings, len(positions), self.side)

    def seen(self, positions, n_other):
        """Sparse (len(positions), n_other) pattern of the histories' ratings."""
        local, other, _ = self._subset(positions)
        data = np.ones(len(local), dtype=bool)
        return sp.csr_matrix((data, (local, other)), shape=(len(positions), n_other))

    def predict(self, positions, other_idx):
        """Unclipped predicted ratings at (folded-in position, other-side index) pairs.

        An other-side index of -1 (unknown to the model) gets the baseline
        ``global_mean_ +`` the folded-in bias.
        """
        out = np.empty(len(positions), dtype=np.float64)
        unique, inverse = np.unique(positions, return_inverse=True)
        for start in range(0, len(unique), _FOLD_CHUNK):
            block = unique[start : start + _FOLD_CHUNK]
            scores, biases = self.scores(block)
            rows = np.flatnonzero((inverse >= start) & (inverse < start + len(block)))
            local = inverse[rows] - start
            known = other_idx[rows] >= 0
            out[rows[known]] = scores[local[known], other_idx[rows[known]]]
            out[rows[~known]] = self.model.global_mean_ + biases[local[~known]]
        return out

    def biases(self, positions):
        """Folded-in rating biases of the entities at ``positions`` (any order, repeats)."""
        unique, inverse = np.unique(positions, return_inverse=True)
        local, other, ratings = self._subset(unique)
        values = np.array(
            [fold_in_bias(self.model, other[local == k], ratings[local == k], self.side)
             for k in range(len(unique))]
        )
        return values[inverse] if len(values) else np.empty(0)


def fill_folded(model, pred, indices, folded_users, folded_items):
    """Overwrite the predictions of pairs whose user or item is folded in.

    ``indices`` is ``(user_idx, item_idx, user_pos, item_pos)``: known indices
    (-1 for unknown or folded-in ids) and positions among the folded-in ones.
    A pair whose user and item are both folded in gets ``global_mean_`` plus
    both folded-in biases (no network has either of them).
    """
    user_idx, item_idx, user_pos, item_pos = indices
    if folded_users is not None:
        rows = user_pos >= 0
        pred[rows] = folded_users.predict(user_pos[rows], item_idx[rows])
    if folded_items is not None:
        rows = item_pos >= 0
        pred[rows] = folded_items.predict(item_pos[rows], user_idx[rows])
        both = rows & (user_pos >= 0)
        if both.any():
            pred[both] = (
                model.global_mean_
                + folded_users.biases(user_pos[both])
                + folded_items.biases(item_pos[both])
            )
    return pred


def network_mask(indices):
    """Pairs answered by a network: known or folded-in user with a known item, or vice versa."""
    user_idx, item_idx, user_pos, item_pos = indices
    users, items = user_idx >= 0, item_idx >= 0
    return (users & items) | ((user_pos >= 0) & items) | (users & (item_pos >= 0))
