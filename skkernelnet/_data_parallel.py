"""Data-parallel full-batch training of the rating autoencoders with torch.distributed.

Every process of the default process group runs the same ``fit`` on the same
data (launched with ``torchrun``; gloo on CPUs, nccl on GPUs). Each builds the
same networks from the same seed, but keeps only its shard of every
orientation's rows (row ``r`` belongs to process ``r % world_size``): the
inputs, the observed entries and the held-out entries of those rows. A row's
hidden activations depend on that row's ratings only, so each process computes
exactly its part of the objective. Per evaluation the processes then sum:

* the objective and its gradient (one all-reduce of a flat vector): the data
  term of each process is its sum of squared errors divided by the number of
  training ratings of the whole fit, and each adds ``1 / world_size`` of the
  penalties, so the sums are the single-process objective and gradient;
* the outputs at the held-out entries (an all-gather), which every process
  needs for the validation score and the network weights.

Every process thus sees the same objective, gradient and validation score, and
L-BFGS takes the same step everywhere: the parameters stay identical, and the
loss curve equals a single-process fit's up to the order of floating-point sums.

What this does not divide: the kernel matrices ``K(U, V)``, ``W * K`` and their
gradients, whose size is that of the weights, are computed in full by every
process. Their share of an iteration bounds the speed-up (see the user guide).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.distributed as dist

from ._rating_training import BlendedValidation, JointObjective, OrientationProblem
from .layers import EntryIndex, SparseInput, csr_from_scipy, reuse_kernel_matrices

__all__ = [
    "process_group",
    "data_parallel_objective",
    "shard_problems",
    "DataParallelObjective",
    "GatheredValidation",
]


def process_group():
    """``(rank, world_size)`` of the default process group; a clear error without one."""
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(
            "distributed=True needs an initialised torch.distributed process group: launch "
            "the script with torchrun and call torch.distributed.init_process_group('gloo') "
            "(or 'nccl' on GPUs) before fit."
        )
    return dist.get_rank(), dist.get_world_size()


def _shard_of(rows, rank, world):
    return rows % world == rank


def _row_major(positions, rows, cols, keep):
    positions = positions[keep[rows[positions]]]
    return positions[np.lexsort((cols[positions], rows[positions]))]


def held_out_shards(views, user_idx, item_idx, validation, world):
    """``[k][r]``: positions of the held-out ratings of view ``k`` on process ``r``."""
    shards = []
    for view in views:
        rows, cols = view.rows_cols(user_idx, item_idx)
        owner = np.arange(view.shape[0]) % world
        shards.append([_row_major(validation, rows, cols, owner == r) for r in range(world)])
    return shards


def shard_problems(views, user_idx, item_idx, y, target, train, validation, rank, world):
    """This process's :class:`OrientationProblem` of every view, on its rows only.

    Rows are renumbered ``0..n_local-1`` in their order, so that the hidden layers
    run over this process's rows only. ``validation_ratings`` keeps positions in
    the fit's ``y``.
    """
    problems = []
    for view in views:
        rows, cols = view.rows_cols(user_idx, item_idx)
        n_rows, n_cols = view.shape
        keep = _shard_of(np.arange(n_rows), rank, world)
        local = np.cumsum(keep) - 1  # local row number of each row kept
        shape = (int(keep.sum()), n_cols)
        order = _row_major(train, rows, cols, keep)
        matrix = sp.csr_matrix((y[order], (local[rows[order]], cols[order])), shape=shape)
        problem = OrientationProblem(
            view=view,
            inputs=SparseInput(csr_from_scipy(matrix, view.dtype, view.device)),
            index=EntryIndex(local[rows[order]], cols[order], shape).to(view.device),
            target=torch.as_tensor(target[order], dtype=view.dtype, device=view.device),
        )
        if validation is not None:
            held_out = _row_major(validation, rows, cols, keep)
            index = EntryIndex(local[rows[held_out]], cols[held_out], shape)
            problem.validation_index = index.to(view.device)
            problem.validation_ratings = held_out
        problems.append(problem)
    return problems


def data_parallel_objective(
    views,
    user_idx,
    item_idx,
    y,
    offset,
    train,
    validation,
    rating_range,
    alpha,
    kernel_alpha,
    support=None,
):
    """The objective and validation of this process's share of a fit (see module doc).

    ``alpha`` and ``kernel_alpha`` are the penalties already scaled by the fit;
    ``support`` is passed on to :class:`BlendedValidation`. Returns
    ``(objective, validation)``; ``validation`` is None without held-out ratings.
    """
    rank, world = process_group()
    problems = shard_problems(
        views, user_idx, item_idx, y, y - offset, train, validation, rank, world
    )
    gathered = None
    if validation is not None:
        shards = held_out_shards(views, user_idx, item_idx, validation, world)
        gathered = GatheredValidation(shards, y, offset, rating_range, support=support)
    objective = DataParallelObjective(
        problems, alpha, kernel_alpha, len(train), world, validation=gathered
    )
    return objective, gathered


class _AllShards:
    """Stand-in problem listing the held-out positions of every process, rank order."""

    def __init__(self, validation_ratings):
        self.validation_ratings = validation_ratings


class GatheredValidation(BlendedValidation):
    """:class:`BlendedValidation` over every process's held-out outputs.

    Each process knows every other's shard (they are computed from the same data),
    so only the outputs travel: padded to the largest shard and all-gathered.
    """

    def __init__(self, shards, y, offset, rating_range, support=None):
        # shards[k][r]: held-out positions of view k on process r (held_out_shards)
        self.counts = [[len(positions) for positions in per_rank] for per_rank in shards]
        merged = [_AllShards(np.concatenate(per_rank)) for per_rank in shards]
        super().__init__(merged, y, offset, rating_range, support=support)

    def observe(self, k, outputs):
        counts = self.counts[k]
        padded = outputs.new_zeros(max(counts))
        padded[: outputs.numel()] = outputs
        gathered = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(gathered, padded)
        super().observe(k, torch.cat([g[:n] for g, n in zip(gathered, counts, strict=True)]))


class DataParallelObjective(JointObjective):
    """:class:`JointObjective` of this process's shard, summed over the processes.

    Parameters
    ----------
    problems : list of OrientationProblem
        This process's shards (:func:`shard_problems`).
    alpha, kernel_alpha : float
        Penalties, already divided by the square root of ``n_train``.
    n_train : int
        Training ratings of the whole fit (every process).
    world : int
        Number of processes.
    validation : GatheredValidation or None
    """

    def __init__(self, problems, alpha, kernel_alpha, n_train, world, validation=None):
        super().__init__(problems, alpha, kernel_alpha, validation=validation)
        self.n_train, self.world = n_train, world

    def _objective(self, problem):
        network = problem.view.module
        with reuse_kernel_matrices(network, penalties=True):
            hidden = network.hidden(problem.inputs)
            output = network.output_activation(network.layers[-1].forward_at(hidden, problem.index))
            free, kern = network.regularization()
        squared = 0.5 * (output - problem.target).pow(2).sum() / self.n_train
        return squared + (self.alpha * free + self.kernel_alpha * kern) / self.world, hidden

    def __call__(self):
        for p in self.parameters:
            p.grad = None
        total = None
        for k, problem in enumerate(self.problems):
            loss, hidden = self._objective(problem)
            loss.backward()
            total = loss.detach() if total is None else total + loss.detach()
            if self.validation is not None:
                self.validation.observe(k, problem.validation_outputs(hidden))
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.parameters]
        flat = torch.cat([g.reshape(-1) for g in grads] + [total.reshape(1)])
        dist.all_reduce(flat)
        offset = 0
        for p, g in zip(self.parameters, grads, strict=True):
            p.grad = flat[offset : offset + g.numel()].view_as(g).clone()
            offset += g.numel()
        return float(flat[-1])

    @torch.no_grad()
    def observe_validation(self):
        for k, problem in enumerate(self.problems):
            _, hidden = self._objective(problem)
            self.validation.observe(k, problem.validation_outputs(hidden))
