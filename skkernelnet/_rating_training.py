"""The pieces of :meth:`KernelCollaborativeFilter.fit <skkernelnet.KernelCollaborativeFilter.fit>`.

A fit trains one network per orientation (two with ``blend``) in a single
L-BFGS run. :class:`OrientationProblem` holds what one orientation trains on
(its sparse input, the observed entries and their targets, and where its
held-out ratings are); :class:`JointObjective` is the closure L-BFGS
evaluates, the sum of the orientations' objectives; :class:`BlendedValidation`
scores the blend of the orientations on the held-out ratings after each
iteration and fits the blend weight there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._orientation import OrientationView, rating_objective
from .layers import EntryIndex, SparseInput

__all__ = ["BlendedValidation", "JointObjective", "OrientationProblem", "blend_weight"]

# Weight of the primary network when there are no held-out ratings to fit it on:
# the weights fitted on held-out ratings of ML-100K u1 and ML-1M were 0.6-0.75.
DEFAULT_BLEND_WEIGHT = 0.7


def blend_weight(primary, secondary, target):
    """Least-squares weight w of ``w * primary + (1 - w) * secondary``, clipped to [0, 1]."""
    diff = primary - secondary
    denom = float((diff * diff).sum())
    if denom <= 0:
        return 1.0
    return float(np.clip(float((diff * (target - secondary)).sum()) / denom, 0.0, 1.0))


def rmse(prediction, target):
    """Root mean squared error of two arrays of ratings."""
    return float(np.sqrt(np.mean((prediction - target) ** 2)))


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
    blends the latest outputs with the least-squares weight and returns
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

    def __init__(self, problems, y, offset, rating_range):
        self.problems = problems
        held_out = problems[0].validation_ratings
        self.ratings = y[held_out]
        self.offset = offset[held_out]
        self.rating_range = rating_range
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

    def weight(self):
        """Least-squares blend weight of the primary orientation at the latest outputs."""
        return self._weight(self.outputs())

    def _weight(self, outputs):
        if len(outputs) == 1:
            return 1.0
        return blend_weight(outputs[0], outputs[1], self.ratings - self.offset)

    def __call__(self):
        outputs = self.outputs()
        weight = self._weight(outputs)
        prediction = self.offset + weight * outputs[0]
        if len(outputs) > 1:
            prediction = prediction + (1.0 - weight) * outputs[1]
        prediction = np.clip(prediction, *self.rating_range)
        return -rmse(prediction, self.ratings)


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
