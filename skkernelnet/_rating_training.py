"""The pieces of :meth:`KernelCollaborativeFilter.fit <skkernelnet.KernelCollaborativeFilter.fit>`.

A fit trains one network per orientation (two with ``blend``) in a single
L-BFGS run. :class:`OrientationProblem` holds what one orientation trains on
(its sparse input, the observed entries and their targets, and where its
held-out ratings are); :class:`JointObjective` is the closure L-BFGS
evaluates, the sum of the orientations' objectives; :class:`BlendedValidation`
scores the blend of the orientations on the held-out ratings after each
iteration and fits the networks' weights against the bias baseline there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import root_mean_squared_error

from ._orientation import OrientationView, rating_objective
from .layers import EntryIndex, SparseInput

__all__ = [
    "BlendedValidation",
    "JointObjective",
    "OrientationProblem",
    "network_weights",
    "significant_or_zero",
    "support_factor",
]

# Weights of the primary and secondary networks when there are no held-out ratings to
# fit them on: the blend weights fitted on held-out ratings of ML-100K u1 and ML-1M were
# 0.6-0.75 for the primary network.
DEFAULT_NETWORK_WEIGHTS = (0.7, 0.3)

# Keep the networks only when their gain over the bias baseline on the held-out ratings
# exceeds this many standard errors of the mean gain per rating.
SIGNIFICANT_GAIN = 2.0


def network_weights(outputs, target):
    """Weights ``w`` of ``target ~ sum_k w_k outputs[k]`` with ``w >= 0`` and ``sum(w) <= 1``.

    Least squares over that polytope: each network's output is a correction of the
    bias baseline, so ``w = 0`` is the baseline itself, a sum below 1 shrinks the
    networks toward it, and the networks are never trusted more than as trained.
    With one or two networks the optimum is the best of the optima of the
    polytope's interior and of its edges, which are enumerated here.

    Parameters
    ----------
    outputs : list of one or two ndarray of shape (n,)
    target : ndarray of shape (n,)
        The residual of the bias baseline.

    Returns
    -------
    ndarray of shape (len(outputs),)
    """
    outputs = [np.asarray(o, dtype=np.float64) for o in outputs]
    target = np.asarray(target, dtype=np.float64)
    if len(outputs) > 2:
        raise ValueError(f"at most two networks are weighted, got {len(outputs)}.")

    def combine(w):
        return sum(wk * o for wk, o in zip(w, outputs))

    def loss(w):
        resid = target - combine(w)
        return float(resid @ resid)

    def best_on_segment(start, direction):
        """Best point of ``start + t * direction`` for t in [0, 1]."""
        d = combine(direction)
        denom = float(d @ d)
        t = 0.0 if denom <= 0 else float(np.clip(d @ (target - combine(start)) / denom, 0, 1))
        return np.asarray(start, dtype=np.float64) + t * np.asarray(direction, dtype=np.float64)

    k = len(outputs)
    origin = np.zeros(k)
    candidates = [origin] + [best_on_segment(origin, np.eye(k)[j]) for j in range(k)]
    if k == 2:
        candidates.append(best_on_segment([0.0, 1.0], [1.0, -1.0]))  # the edge w0 + w1 = 1
        gram = np.array([[o @ p for p in outputs] for o in outputs])
        try:
            interior = np.linalg.solve(gram, [o @ target for o in outputs])
        except np.linalg.LinAlgError:
            interior = None
        if interior is not None and (interior >= 0).all() and interior.sum() <= 1:
            candidates.append(interior)
    return min(candidates, key=loss)


# Candidate values of the support shrinkage tau (see support_factor), fitted on the
# held-out ratings with the networks' weights; 0 trusts every output neuron alike.
SUPPORT_GRID = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0)


def support_factor(counts, tau):
    """``n / (n + tau)``: how far to trust a network's output for an output neuron (a user
    of the item-based network, an item of the user-based one) trained on ``n`` ratings.

    An output neuron with a handful of training ratings has weights that are mostly
    their random initialisation; its outputs are noise around the baseline, and a
    user with two ratings should get (nearly) the baseline rather than that noise.
    ``tau = 0`` gives 1 everywhere (also for ``n = 0``).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if tau <= 0:
        return np.ones_like(counts)
    return counts / (counts + tau)


def significant_or_zero(weights, outputs, target):
    """The weights, or zeros when the networks' gain on the held-out ratings is noise.

    The gain per rating is the reduction of the bias baseline's squared error
    (``target`` is its residual). Unless its mean exceeds ``SIGNIFICANT_GAIN``
    standard errors, the networks' apparent help is within what chance and the
    choice of the iteration on the same ratings give, and the model falls back
    to the baseline.
    """
    target = np.asarray(target, dtype=np.float64)
    fitted = sum(w * np.asarray(o, dtype=np.float64) for w, o in zip(weights, outputs))
    gain = target**2 - (target - fitted) ** 2
    if len(gain) < 2:
        return np.asarray(weights, dtype=np.float64)
    standard_error = gain.std(ddof=1) / np.sqrt(len(gain))
    if gain.mean() > SIGNIFICANT_GAIN * standard_error:
        return np.asarray(weights, dtype=np.float64)
    return np.zeros(len(weights))


@dataclass
class OrientationProblem:
    """What the network of one orientation is trained on.

    Entries are listed row-major in the orientation's layout, which makes the
    observed entries a CSR pattern without a permutation.

    Attributes
    ----------
    view : OrientationView
        The orientation and its network.
    inputs : SparseInput
        The network input: the training ratings only (no held-out rating).
    index : EntryIndex
        The observed training entries, where the objective is evaluated.
    target : Tensor of shape (n_train,)
        What the network's output should be at ``index``: the rating minus the
        bias baseline.
    validation_index : EntryIndex or None
        The held-out entries (None without early stopping).
    validation_ratings : ndarray of int or None
        Position in the fit's ``y`` of each held-out entry, in the order of
        ``validation_index``.
    """

    view: OrientationView
    inputs: SparseInput
    index: EntryIndex
    target: torch.Tensor
    validation_index: EntryIndex | None = None
    validation_ratings: np.ndarray | None = None

    @classmethod
    def build(cls, view, user_idx, item_idx, y, target, train, validation):
        """Split the ratings of a fit into one orientation's training problem.

        Parameters
        ----------
        view : OrientationView
        user_idx, item_idx : ndarray of int of shape (n_ratings,)
            Dense indices of every rating of the fit.
        y, target : ndarray of shape (n_ratings,)
            The ratings, and what the network should output for them.
        train : ndarray of int
            Positions of the training ratings.
        validation : ndarray of int or None
            Positions of the held-out ratings.
        """
        rows, cols = view.rows_cols(user_idx, item_idx)
        device, dtype = view.device, view.dtype

        def row_major(positions):
            return positions[np.lexsort((cols[positions], rows[positions]))]

        order = row_major(train)
        problem = cls(
            view=view,
            inputs=view.sparse_input(rows[order], cols[order], y[order]),
            index=EntryIndex(rows[order], cols[order], view.shape).to(device),
            target=torch.as_tensor(target[order], dtype=dtype, device=device),
        )
        if validation is not None:
            held_out = row_major(validation)
            problem.validation_index = EntryIndex(rows[held_out], cols[held_out], view.shape).to(
                device
            )
            problem.validation_ratings = held_out
        return problem

    def objective(self, alpha, kernel_alpha):
        """The training objective and the last hidden activations (see :func:`rating_objective`)."""
        return rating_objective(
            self.view.module, self.inputs, self.index, self.target, alpha, kernel_alpha
        )

    @torch.no_grad()
    def validation_outputs(self, hidden):
        """Network outputs at the held-out entries, from the last hidden activations."""
        module = self.view.module
        return module.output_activation(module.layers[-1].forward_at(hidden, self.validation_index))


class BlendedValidation:
    """Score of the blended prediction on the held-out ratings: the ``validate`` of a fit.

    The objective reports each orientation's outputs at the held-out entries
    (:meth:`observe`) whenever it is evaluated; calling this object then
    weighs the latest outputs against the bias baseline (:func:`network_weights`) and returns
    ``-RMSE`` of the clipped prediction (higher is better).

    Parameters
    ----------
    problems : list of OrientationProblem
        The primary orientation first; each with its held-out entries.
    y : ndarray of shape (n_ratings,)
        The ratings of the fit.
    offset : ndarray of shape (n_ratings,)
        The bias baseline the networks' outputs are added to.
    rating_range : tuple of float
        Predictions are clipped to it.
    """

    def __init__(self, problems, y, offset, rating_range, support=None):
        self.problems = problems
        held_out = problems[0].validation_ratings
        self.ratings = y[held_out]
        self.offset = offset[held_out]
        self.rating_range = rating_range
        # Training ratings of each held-out entry's output neuron, per orientation.
        self.support = (
            [np.asarray(s)[held_out] for s in support]
            if support is not None
            else [np.zeros(len(held_out))] * len(problems)
        )
        self.support_grid = SUPPORT_GRID if support is not None else (0.0,)
        # The orientations list the held-out entries in different orders: map each
        # onto the primary's.
        self._to_primary = []
        for problem in problems:
            position = np.empty(len(y), dtype=np.int64)
            position[problem.validation_ratings] = np.arange(len(problem.validation_ratings))
            self._to_primary.append(position[held_out])
        self._latest = [None] * len(problems)

    def observe(self, k, outputs):
        """Record the outputs of orientation ``k`` at its held-out entries."""
        self._latest[k] = outputs

    def outputs(self):
        """The latest outputs of every orientation, in the primary's order, as float64."""
        return [
            latest.cpu().numpy().astype(np.float64)[to_primary]
            for latest, to_primary in zip(self._latest, self._to_primary)
        ]

    def _fit(self):
        """The support shrinkage, the shrunk outputs and their weights that fit best."""
        outputs, residual = self.outputs(), self.ratings - self.offset
        best = None
        for tau in self.support_grid:
            shrunk = [o * support_factor(s, tau) for o, s in zip(outputs, self.support)]
            weights = network_weights(shrunk, residual)
            fitted = residual - sum(w * o for w, o in zip(weights, shrunk))
            loss = float(fitted @ fitted)
            if best is None or loss < best[0]:
                best = (loss, tau, shrunk, weights)
        return best[1:]

    def weights(self):
        """The support shrinkage ``tau`` and the weights of the networks at the latest
        outputs (:func:`network_weights`), or zero weights when the networks do not
        help significantly (:func:`significant_or_zero`)."""
        tau, shrunk, weights = self._fit()
        return tau, significant_or_zero(weights, shrunk, self.ratings - self.offset)

    def __call__(self):
        _, shrunk, weights = self._fit()
        prediction = self.offset + sum(w * o for w, o in zip(weights, shrunk))
        prediction = np.clip(prediction, *self.rating_range)
        return -root_mean_squared_error(self.ratings, prediction)


class JointObjective:
    """The closure L-BFGS minimises: the sum of the orientations' objectives.

    Each call zeroes the gradients, evaluates and back-propagates every
    orientation's objective and, with a validation, reports the outputs at
    the held-out entries to it.

    Parameters
    ----------
    problems : list of OrientationProblem
    alpha, kernel_alpha : float
        Penalties, already divided by the square root of the number of
        training ratings.
    validation : BlendedValidation or None
    """

    def __init__(self, problems, alpha, kernel_alpha, validation=None):
        self.problems = problems
        self.alpha, self.kernel_alpha = alpha, kernel_alpha
        self.validation = validation
        self.parameters = [
            p for problem in problems for p in problem.view.module.parameters() if p.requires_grad
        ]

    def __call__(self):
        for p in self.parameters:
            p.grad = None
        total = 0.0
        for k, problem in enumerate(self.problems):
            loss, hidden = problem.objective(self.alpha, self.kernel_alpha)
            loss.backward()
            total += loss.item()
            if self.validation is not None:
                self.validation.observe(k, problem.validation_outputs(hidden))
        return total

    @torch.no_grad()
    def observe_validation(self):
        """Report the held-out outputs at the current parameters, without gradients."""
        for k, problem in enumerate(self.problems):
            _, hidden = problem.objective(self.alpha, self.kernel_alpha)
            self.validation.observe(k, problem.validation_outputs(hidden))
