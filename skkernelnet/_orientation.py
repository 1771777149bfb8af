"""One orientation's view of the ratings: its data layout, network and objective.

In the item-based orientation (the paper's) each item is a sample whose input
is its row of ratings by all users, and the network's output neurons are the
users; in the user-based orientation the roles swap. :class:`OrientationView`
maps (user, item) indices to the network's (row, column) pairs and computes
outputs, codes and scores for one orientation. It knows nothing of scikit-learn.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp
import torch

from .layers import (
    EntryIndex,
    SparseInput,
    csr_from_scipy,
    kernel_weight,
    reuse_kernel_matrices,
)

__all__ = ["OrientationView", "other_orientation", "rating_objective"]

# Inference runs the network on blocks of a fixed number of samples (the last one padded).
# Matrix-product kernels are chosen by shape, and a product of 1 or 3 rows can round
# differently from one of 300: with a fixed shape, a sample's result does not depend on
# which other samples are computed with it, so a query gives the same number alone, in a
# batch, repeated or reordered. Passes over the whole table use large blocks; passes over
# the samples a query names use small ones, so that one query stays cheap.
_TABLE_BLOCK = 256
_QUERY_BLOCK = 64


def _blocks(rows, size):
    """``rows`` cut into blocks of ``size``, each padded by repeating its last row.

    Yields ``(start, padded_rows, n_real)``: the block holds ``rows[start:start + n_real]``.
    """
    for start in range(0, len(rows), size):
        block = rows[start : start + size]
        padded = np.empty(size, dtype=np.int64)
        padded[: len(block)] = block
        padded[len(block) :] = block[-1]
        yield start, padded, len(block)


def _kernels_once(method):
    """Run an inference method with each kernel matrix computed once, not once per block."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with reuse_kernel_matrices(self.module):
            return method(self, *args, **kwargs)

    return wrapper


def rating_objective(network, ratings, index, target, alpha, kernel_alpha):
    """Training objective of the rating autoencoder, evaluated only where ratings exist.

    ``mean_k 1/2 (target_k - output[index_k])^2 + alpha * sum_l 1/2 ||W_l||^2
    + kernel_alpha * sum_l 1/2 ||K_l||^2``: the authors' loss divided by the
    number of observed ratings, so ``alpha = lambda_2 / n_ratings``.

    Parameters
    ----------
    network : KernelNetwork
    ratings : SparseInput or Tensor of shape (n_rows, n_cols)
        Network input, zero where unobserved.
    index : EntryIndex
        Observed (row, col) pairs.
    target : Tensor of shape (n_pairs,)
    alpha, kernel_alpha : float

    Returns
    -------
    loss : Tensor
    hidden : Tensor of shape (n_rows, hidden_layer_sizes[-1])
        Last hidden activations, for outputs at other pairs.

    Examples
    --------
    >>> import torch
    >>> from skkernelnet.networks import KernelNetwork
    >>> from skkernelnet.layers import EntryIndex
    >>> net = KernelNetwork(4, (3,), 4, activation="logistic")
    >>> R = torch.tensor([[5.0, 0, 3, 0], [0, 4, 0, 1]])
    >>> index = EntryIndex([0, 0, 1, 1], [0, 2, 1, 3], shape=(2, 4))
    >>> loss, hidden = rating_objective(net, R, index, torch.tensor([5.0, 3, 4, 1]), 1e-3, 1e-3)
    >>> hidden.shape
    torch.Size([2, 3])
    """
    with reuse_kernel_matrices(network, penalties=True):
        hidden = network.hidden(ratings)
        output = network.output_activation(network.layers[-1].forward_at(hidden, index))
        free, kern = network.regularization()
    loss = 0.5 * (output - target).pow(2).mean() + alpha * free + kernel_alpha * kern
    return loss, hidden


def other_orientation(orientation):
    """The orientation that is not ``orientation``."""
    return "user" if orientation == "item" else "item"


class OrientationView:
    """The ratings seen from one orientation ("item" or "user"), with that orientation's network.

    Built once per fit and kept for inference: the oriented copy of the
    ratings is the network's input for every prediction.

    Parameters
    ----------
    orientation : {"item", "user"}
    module : KernelNetwork
        The trained (or to be trained) network.
    ratings : scipy.sparse matrix of shape (n_users, n_items)
        Every training rating (zero where unobserved): the network's input at
        prediction time.
    dtype, device : torch dtype and device of the network.
    """

    def __init__(self, orientation, module, ratings, dtype, device):
        self.orientation = orientation
        self.module = module
        self.dtype, self.device = dtype, device
        matrix = ratings.T if orientation == "item" else ratings
        self.ratings = sp.csr_matrix(matrix)
        self.ratings.sort_indices()

    @property
    def shape(self):
        """(n_samples, n_outputs) of the network: (items, users) when item-based."""
        return self.ratings.shape

    def rows_cols(self, user_idx, item_idx):
        """Network sample rows and output columns of (user, item) index pairs."""
        return (item_idx, user_idx) if self.orientation == "item" else (user_idx, item_idx)

    def sparse_input(self, rows, cols, values):
        """The network input built from the given entries only, prepared for training."""
        matrix = sp.csr_matrix((values, (rows, cols)), shape=self.shape)
        return SparseInput(csr_from_scipy(matrix, self.dtype, self.device))

    def _input_rows(self, rows):
        return csr_from_scipy(self.ratings[rows], self.dtype, self.device)

    @torch.no_grad()
    @_kernels_once
    def output_at(self, user_idx, item_idx):
        """Network output (a deviation from the offset) at known (user, item) indices.

        Pairs may repeat and come in any order: each distinct pair is computed
        once, and every pair gets the value it gets when asked alone.
        """
        out = np.empty(len(user_idx), dtype=np.float64)
        if len(user_idx) == 0:
            return out
        rows, cols = self.rows_cols(
            np.asarray(user_idx, dtype=np.int64), np.asarray(item_idx, dtype=np.int64)
        )
        n_cols = self.shape[1]
        pairs, pair_of_query = np.unique(rows * n_cols + cols, return_inverse=True)
        unique_rows, local_rows = np.unique(pairs // n_cols, return_inverse=True)
        index = EntryIndex(local_rows, pairs % n_cols, (len(unique_rows), n_cols))
        hidden = self._hidden_tensor(unique_rows, _QUERY_BLOCK)
        values = self.module.output_activation(
            self.module.layers[-1].forward_at(hidden, index.to(self.device))
        )
        out[:] = values.cpu().numpy()[pair_of_query.reshape(-1)]
        return out

    def _hidden_tensor(self, rows, block_size):
        """Last hidden activations of the given samples as one dense tensor, block by block."""
        blocks = []
        for _, padded, n_real in _blocks(rows, block_size):
            hidden = self.module.hidden(self._input_rows(padded))
            if hidden.layout != torch.strided:  # no hidden layer: the input itself
                hidden = hidden.to_dense()
            blocks.append(hidden[:n_real])
        if not blocks:
            width = self.module.layers[-1].in_features
            return torch.empty((0, width), dtype=self.dtype, device=self.device)
        return torch.cat(blocks)

    @torch.no_grad()
    @_kernels_once
    def codes(self, rows=None):
        """Last hidden activations of the network's samples (all of them by default)."""
        rows = np.arange(self.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        return self._hidden_tensor(rows, _TABLE_BLOCK).cpu().numpy()

    def neuron_vectors(self):
        """First layer's input embedding ``u`` next to the last layer's output embedding ``v``."""
        first, last = self.module.layers[0], self.module.layers[-1]
        return torch.cat([first.u, last.v], dim=1).detach().cpu().numpy()

    @torch.no_grad()
    @_kernels_once
    def all_item_outputs(self, user_idx, item_codes=None):
        """Network outputs for every item of the given users, shape (n_users, n_items).

        ``item_codes`` (item-based only) are the precomputed :meth:`codes` of
        every item, for callers that score many batches of users.
        """
        last = self.module.layers[-1]
        user_idx = np.asarray(user_idx, dtype=np.int64)
        scores = np.empty((len(user_idx), self.shape[0 if self.orientation == "item" else 1]))
        if self.orientation == "item":
            codes = self.codes() if item_codes is None else item_codes
            codes = torch.as_tensor(codes, device=self.device)
            for start, padded, n_real in _blocks(user_idx, _QUERY_BLOCK):
                cols = torch.as_tensor(padded, device=self.device)
                # only the users' columns of the weight matrix, as many in every block
                weight = kernel_weight(
                    last.u,
                    last.v[cols],
                    last.kernel,
                    None if last.W is None else last.W[:, cols],
                    last.input_scale,
                    None if last.output_scale is None else last.output_scale[cols],
                )
                bias = last.bias[cols] if last.bias is not None else 0.0
                block = self.module.output_activation(codes @ weight + bias).T
                scores[start : start + n_real] = block[:n_real].cpu().numpy()
        else:
            for start, padded, n_real in _blocks(user_idx, _QUERY_BLOCK):
                block = self.module(self._input_rows(padded))
                scores[start : start + n_real] = block[:n_real].cpu().numpy()
        return scores
