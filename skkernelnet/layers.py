"""Kernelized linear layers: ``W_ij = K(u_i, v_j)``, optionally gating a free weight.

:class:`KernelLinear` maps ``(..., in_features)`` to ``(..., out_features)``
like :class:`torch.nn.Linear`, but its weight matrix is produced by a kernel
(:mod:`skkernelnet.kernels`) from one learned vector per input neuron
(``u``, shape ``(in_features, d)``) and one per output neuron (``v``, shape
``(out_features, d)``). That matrix is laid out ``(in_features, out_features)``
(``y = x @ weight + bias``), the transpose of ``nn.Linear``'s ``(out_features,
in_features)`` Parameter, and it is a computed property, not a Parameter.
:func:`kernel_weight` and :func:`kernel_linear` are its functional twins.

Two input paths avoid work a rating model does not need:

* sparse input (torch COO or CSR tensors, or a prepared :class:`SparseInput`
  that caches the transpose needed by the backward pass) is multiplied without
  ever being densified;
* :meth:`KernelLinear.forward_at` computes the output only at given
  ``(row, column)`` pairs (an :class:`EntryIndex`), with a sampled dense-dense
  product forward and sparse-dense products backward. This is all a loss on
  observed ratings needs, and at MovieLens-1M size it is several times faster
  than the dense product followed by a gather.
"""

from __future__ import annotations

import math
import numbers
import threading
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from .kernels import Kernel, get_kernel
from .positions import check_positions

__all__ = [
    "KernelLinear",
    "kernel_weight",
    "kernel_linear",
    "EntryIndex",
    "SparseInput",
    "csr_from_scipy",
    "reuse_kernel_matrices",
    "half_squared_norm",
]


def kernel_weight(u, v, kernel, W=None, input_scale=None, output_scale=None):
    """Effective weight matrix of a kernelized layer.

    ``K(u, v)``, times the free weight ``W`` element-wise when given (the
    gated form), times ``input_scale[:, None] * output_scale[None, :]`` when
    given (the signed form of an ungated layer over a non-negative kernel), or
    times ``input_scale @ output_scale.T`` for scales with several channels.

    Parameters
    ----------
    u : Tensor of shape (in_features, d)
    v : Tensor of shape (out_features, d)
    kernel : callable
        ``kernel(u, v) -> Tensor of shape (in_features, out_features)``.
    W : Tensor of shape (in_features, out_features), optional
    input_scale : Tensor of shape (in_features,) or (in_features, r), optional
    output_scale : Tensor of shape (out_features,) or (out_features, r), optional

    Returns
    -------
    Tensor of shape (in_features, out_features)

    Examples
    --------
    >>> import torch
    >>> from skkernelnet.kernels import LinearKernel
    >>> u, v = torch.randn(4, 2), torch.randn(3, 2)
    >>> torch.equal(kernel_weight(u, v, LinearKernel()), u @ v.T)
    True
    """
    if W is not None and isinstance(kernel, Kernel):
        weight = kernel.gated(u, v, W)  # W * kernel(u, v), as one autograd node where it can
    else:
        weight = kernel(u, v)
        if W is not None:
            weight = W * weight
    if input_scale is not None:
        if input_scale.dim() == 1:
            weight = input_scale.unsqueeze(1) * weight * output_scale.unsqueeze(0)
        else:
            weight = weight * (input_scale @ output_scale.T)
    return weight


def _signed_by_default(kernel, gated):
    """Whether a layer with ``signed=None`` learns signed scales: ungated, non-negative kernel."""
    return not gated and kernel.nonnegative


class SparseInput:
    """A sparse CSR batch together with its transpose, for repeated full-batch passes.

    Multiplying a sparse input by the weight needs the input's transpose in
    the backward pass; torch recomputes it on every call. Wrapping a batch that
    is fed many times (an L-BFGS loop) computes it once.

    Parameters
    ----------
    x : sparse Tensor of shape (n_samples, in_features), COO or CSR

    Examples
    --------
    >>> import torch
    >>> x = SparseInput(torch.eye(3).to_sparse_csr())
    >>> x.shape
    torch.Size([3, 3])
    """

    def __init__(self, x):
        if x.layout not in (torch.sparse_coo, torch.sparse_csr):
            raise ValueError(f"SparseInput needs a sparse COO or CSR tensor, got {x.layout}.")
        self.csr = x.to_sparse_csr() if x.layout == torch.sparse_coo else x
        self._csr_t = None
        self._blocks = {}  # column blocks of the batch and of its transpose (see _ColumnBlocks)

    @property
    def shape(self):
        return self.csr.shape

    @property
    def csr_t(self):
        """The transpose, as CSR; computed on first use."""
        if self._csr_t is None:
            self._csr_t = _transpose_csr(self.csr)
        return self._csr_t

    def to(self, *args, **kwargs):
        """Return a copy moved or cast like :meth:`torch.Tensor.to`."""
        out = object.__new__(SparseInput)
        out.csr = self.csr.to(*args, **kwargs)
        out._csr_t = None if self._csr_t is None else self._csr_t.to(*args, **kwargs)
        out._blocks = {}
        return out

    def _column_blocks(self, transposed, block_cols):
        """The batch (or its transpose) cut into blocks of ``block_cols`` columns, cached."""
        key = (transposed, block_cols)
        if key not in self._blocks:
            crow, col = self.csr.crow_indices(), self.csr.col_indices()
            rows = _expand_compressed(crow, col.numel())
            if transposed:
                rows, col = col, rows
            shape = tuple(self.csr.shape)[:: -1 if transposed else 1]
            self._blocks[key] = _ColumnBlocks(rows, col, shape, block_cols, self.csr.values())
        return self._blocks[key]


def _quiet_csr(crow, col, values, shape, **kwargs):
    # torch warns once per process that CSR support is "beta"; the operations used here
    # (construction, CSR @ dense, sampled_addmm) are covered by this package's tests.
    # Invariant checks are skipped on purpose: the indices are built by this package.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support", category=UserWarning)
        warnings.filterwarnings("ignore", message="Sparse invariant checks", category=UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, shape, **kwargs)


def csr_from_scipy(matrix, dtype=None, device=None):
    """A scipy sparse matrix as a torch CSR tensor (indices int64, values cast to ``dtype``).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> csr_from_scipy(sp.eye(3, format="csr")).layout
    torch.sparse_csr
    """
    matrix = matrix.tocsr()
    if not matrix.has_sorted_indices:
        matrix = matrix.sorted_indices()
    return _quiet_csr(
        torch.as_tensor(matrix.indptr, dtype=torch.int64),
        torch.as_tensor(matrix.indices, dtype=torch.int64),
        torch.as_tensor(matrix.data, dtype=dtype),
        matrix.shape,
    ).to(device)


# Kernel matrices cached by reuse_kernel_matrices, per thread and per layer: the cache lives
# outside the layers, so that a model serving several threads is never written to.
_kernel_caches = threading.local()


@contextmanager
def reuse_kernel_matrices(module, *, penalties=False):
    """Compute each kernel matrix of ``module``'s KernelLinear layers at most once in a block.

    A training objective uses ``K(U, V)`` twice, in the weights and in the
    kernel penalty, and inference over many blocks of samples uses the weights
    once per block; inside this block every use shares one tensor (and one
    autograd node), for the kernel matrix and for the effective weight.
    Parameters must not change inside the block. The cache is private to the
    calling thread, and blocks may nest.

    With ``penalties=True`` (an objective that uses each layer's weight and both
    penalties of :meth:`KernelLinear.regularization`, and no kernel matrix
    otherwise), a gated layer over a kernel with written-out gradients computes
    its weight and penalties as one autograd node while gradients are recorded
    (:meth:`~skkernelnet.kernels.Kernel.gated_with_penalties`).

    Examples
    --------
    >>> layer = KernelLinear(3, 2)
    >>> with reuse_kernel_matrices(layer):
    ...     layer.kernel_matrix() is layer.kernel_matrix()
    True
    """
    caches = getattr(_kernel_caches, "by_layer", None)
    if caches is None:
        caches = _kernel_caches.by_layer = {}
    added = [id(m) for m in module.modules() if isinstance(m, KernelLinear) and id(m) not in caches]
    for key in added:
        caches[key] = {"penalties": penalties}
    try:
        yield module
    finally:
        for key in added:
            caches.pop(key, None)


class _HalfSquaredNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        flat = x.reshape(-1)
        return 0.5 * torch.dot(flat, flat)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return x * grad


def half_squared_norm(x):
    """``1/2 ||x||^2`` in one pass forward and one backward (penalties on large matrices).

    Examples
    --------
    >>> import torch
    >>> half_squared_norm(torch.tensor([3.0, 4.0]))
    tensor(12.5000)
    """
    return _HalfSquaredNorm.apply(x)


def _transpose_csr(csr):
    return csr.to_sparse_coo().t().coalesce().to_sparse_csr()


# A sparse-dense product on the CPU reads, for each stored entry (i, k) of the sparse
# matrix, row k of the dense operand. Once the dense operand outgrows the caches (a
# first-layer weight of 70,000 inputs x 500 units is 140 MB) each of those reads is a
# cache miss, and the product slows down several-fold. The product is then computed
# over column blocks of the sparse matrix, each meeting only a slice of the dense
# operand's rows of about this many bytes, and the blocks' products are summed.
_BLOCK_BYTES = 1 << 22


def _block_columns(n_cols, width, dtype, device):
    """Columns per block for ``sparse (., n_cols) @ dense (n_cols, width)``, or None for one block.

    Blocks only on the CPU; a product whose dense operand fits in one block is left whole.
    """
    if torch.device(device).type != "cpu":
        return None
    per_row = max(1, int(width)) * torch.empty((), dtype=dtype).element_size()
    block_cols = max(1, _BLOCK_BYTES // per_row)
    return None if block_cols >= n_cols else block_cols


def _expand_compressed(crow, nnz):
    """The row of every stored entry of a CSR structure (the inverse of :func:`_compressed`)."""
    counts = crow[1:] - crow[:-1]
    return torch.repeat_interleave(
        torch.arange(counts.numel(), device=crow.device), counts, output_size=nnz
    )


class _ColumnBlocks:
    """A fixed sparse pattern cut into blocks of columns, for cache-friendly CPU products.

    The pattern's entries are given in a reference order (the order of the values
    the products receive); internally they are listed block by block, row-major
    inside each block, and every block is a CSR matrix of ``block_cols`` columns.
    Products are those of the whole pattern up to the order of summation.

    Parameters
    ----------
    rows, cols : int64 Tensor of shape (nnz,)
        The entries, in the reference order.
    shape : tuple of int
    block_cols : int
    values : Tensor of shape (nnz,), optional
        Fixed values of the entries (a network input), kept in block order; the
        products then take no values.
    """

    def __init__(self, rows, cols, shape, block_cols, values=None):
        n_rows, n_cols = (int(n) for n in shape)
        self.shape, self.nnz = (n_rows, n_cols), int(rows.numel())
        block = torch.div(cols, block_cols, rounding_mode="floor")
        # stable: entries of the same block keep their order when it is already row-major
        order = torch.argsort(block * (n_rows * n_cols) + rows * n_cols + cols, stable=True)
        small = max(n_rows, n_cols, self.nnz) < 2**31 - 1
        index_dtype = torch.int32 if small else torch.int64
        counts = torch.bincount(block, minlength=-(-n_cols // block_cols)).tolist()
        block_rows, block_cols_of = rows[order], cols[order]
        del block
        self.blocks = []  # (first column, last column + 1, first entry, last entry + 1, crow, col)
        lo = 0
        for b, count in enumerate(counts):
            hi, start, stop = lo + count, b * block_cols, min(n_cols, (b + 1) * block_cols)
            if count:
                crow = _compressed(block_rows[lo:hi], n_rows).to(index_dtype)
                col = (block_cols_of[lo:hi] - start).to(index_dtype)
                self.blocks.append((start, stop, lo, hi, crow, col))
            lo = hi
        del block_rows, block_cols_of
        if values is None:
            self.order = order.to(index_dtype)
            self.values = None
        else:
            self.order = None
            self.values = values[order]
        self._inverse = None

    def _block_values(self, values):
        # index_select: plain indexing of a large tensor takes several times longer
        return self.values if values is None else values.index_select(0, self.order)

    def matmul(self, dense, values=None):
        """``csr(values) @ dense``, for ``values`` in the reference order (or the fixed ones)."""
        values = self._block_values(values)
        # every block added in place (a product into a new tensor would zero it, then copy it)
        out = dense.new_zeros((self.shape[0], dense.shape[1]))
        for start, stop, lo, hi, crow, col in self.blocks:
            part = _quiet_csr(
                crow, col, values[lo:hi], (self.shape[0], stop - start), check_invariants=False
            )
            out.addmm_(part, dense[start:stop])
        return out

    def sampled(self, x, weight):
        """``(x @ weight)`` at the entries, in the reference order."""
        if self._inverse is None:
            inverse = torch.empty_like(self.order)
            inverse[self.order.long()] = torch.arange(
                self.nnz, dtype=inverse.dtype, device=inverse.device
            )
            self._inverse = inverse
        values = x.new_empty(self.nnz)
        zeros = x.new_zeros(max((hi - lo for _, _, lo, hi, _, _ in self.blocks), default=0))
        for start, stop, lo, hi, crow, col in self.blocks:
            pattern = _quiet_csr(
                crow, col, zeros[: hi - lo], (self.shape[0], stop - start), check_invariants=False
            )
            block = torch.sparse.sampled_addmm(pattern, x, weight[:, start:stop], beta=0.0)
            values[lo:hi] = block.values()
        return values.index_select(0, self._inverse)


class _SparseInputMatmul(torch.autograd.Function):
    """``x @ weight`` for a sparse ``x`` whose transpose is known (a :class:`SparseInput`)."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.x = x
        block_cols = _block_columns(x.shape[1], weight.shape[1], weight.dtype, weight.device)
        if block_cols is None:
            return x.csr @ weight
        return x._column_blocks(False, block_cols).matmul(weight)

    @staticmethod
    def backward(ctx, grad_out):
        x = ctx.x
        block_cols = _block_columns(x.shape[0], grad_out.shape[1], grad_out.dtype, grad_out.device)
        if block_cols is None:
            return None, x.csr_t @ grad_out
        return None, x._column_blocks(True, block_cols).matmul(grad_out)


class EntryIndex:
    """Fixed ``(row, column)`` pairs of a layer's output, for :meth:`KernelLinear.forward_at`.

    Builds once the CSR structure of the pairs and of their transpose, so that
    the output at the pairs (a sampled matrix product) and its gradients
    (two sparse-dense products) cost time proportional to the number of
    pairs, not to ``n_rows * n_cols``.

    Parameters
    ----------
    rows, cols : array-like of int of shape (n_pairs,)
        Row (sample) and column (output neuron) of each pair. Pairs must be
        distinct (``ValueError`` otherwise): compute the distinct pairs and
        index the result to repeat them.
    shape : tuple of int
        ``(n_rows, n_cols)`` of the full output.

    Examples
    --------
    >>> idx = EntryIndex([0, 2], [1, 0], shape=(3, 2))
    >>> idx.n_pairs
    2
    """

    def __init__(self, rows, cols, shape):
        rows, cols = _as_indices(rows, "rows"), _as_indices(cols, "cols")
        n_rows, n_cols = (int(s) for s in shape)
        if rows.shape != cols.shape:
            raise ValueError(f"rows and cols differ in length: {rows.numel()} != {cols.numel()}.")
        if rows.numel() and (rows.min() < 0 or rows.max() >= n_rows):
            raise ValueError(f"row indices must lie in [0, {n_rows}).")
        if cols.numel() and (cols.min() < 0 or cols.max() >= n_cols):
            raise ValueError(f"column indices must lie in [0, {n_cols}).")
        self.rows, self.cols, self.shape = rows, cols, (n_rows, n_cols)
        flat = rows * n_cols + cols
        if flat.numel() > 1 and bool((flat[1:] < flat[:-1]).any()):
            # CSR order is row-major; `_order` maps CSR slots back to the caller's order.
            self._order = torch.argsort(flat)
            self._inverse = torch.empty_like(self._order)
            self._inverse[self._order] = torch.arange(self._order.numel(), device=flat.device)
        else:  # already in CSR order: no permutation on the hot path
            self._order = self._inverse = None
        sorted_rows = rows if self._order is None else rows[self._order]
        sorted_cols = cols if self._order is None else cols[self._order]
        sorted_flat = sorted_rows * n_cols + sorted_cols
        if sorted_flat.numel() > 1:
            repeated = torch.nonzero(sorted_flat[1:] == sorted_flat[:-1])
            if repeated.numel():
                first = int(repeated[0, 0])
                raise ValueError(
                    f"the (row, column) pairs must be distinct, but {repeated.numel()} repeat "
                    f"an earlier pair, e.g. (row {int(sorted_rows[first])}, column "
                    f"{int(sorted_cols[first])}). Each output entry is computed once: pass the "
                    "distinct pairs and index the result to repeat them."
                )
        self._plain = None  # the CSR structures of the pairs and of their transpose, on first use
        self._blocks = {}  # the pairs in column blocks (see _ColumnBlocks), on first use

    def _plain_csr(self):
        """``(crow, col, t_order, crow_t, col_t)``: the pairs in CSR order and transposed."""
        if self._plain is None:
            n_rows, n_cols = self.shape
            sorted_rows, sorted_cols = self._to_csr_order(self.rows), self._to_csr_order(self.cols)
            t_order = torch.argsort(sorted_cols * n_rows + sorted_rows)
            self._plain = (
                _compressed(sorted_rows, n_rows),
                sorted_cols,
                t_order,
                _compressed(sorted_cols[t_order], n_cols),
                sorted_rows[t_order],
            )
        return self._plain

    def _column_blocks(self, transposed, block_cols):
        """The pairs (or their transpose) in blocks of ``block_cols`` columns, cached; values
        are taken in the caller's order."""
        key = (transposed, block_cols)
        if key not in self._blocks:
            rows, cols = (self.cols, self.rows) if transposed else (self.rows, self.cols)
            shape = self.shape[::-1] if transposed else self.shape
            self._blocks[key] = _ColumnBlocks(rows, cols, shape, block_cols)
        return self._blocks[key]

    def _to_csr_order(self, values):
        return values if self._order is None else values.index_select(0, self._order)

    def _from_csr_order(self, values):
        return values if self._inverse is None else values.index_select(0, self._inverse)

    @property
    def n_pairs(self):
        return self.rows.numel()

    def to(self, device):
        """Return a copy whose index tensors live on ``device``."""
        out = object.__new__(EntryIndex)
        out.__dict__ = {
            key: value.to(device) if isinstance(value, torch.Tensor) else value
            for key, value in self.__dict__.items()
        }
        if self._plain is not None:
            out._plain = tuple(t.to(device) for t in self._plain)
        out._blocks = {}
        return out

    def _csr(self, values_csr_order):
        crow, col, _, _, _ = self._plain_csr()
        return _quiet_csr(crow, col, values_csr_order, self.shape, check_invariants=False)

    def _csr_t(self, values_csr_order):
        _, _, t_order, crow_t, col_t = self._plain_csr()
        return _quiet_csr(
            crow_t, col_t, values_csr_order[t_order], self.shape[::-1], check_invariants=False
        )


def _as_indices(values, name):
    """Integer positions as a flat int64 tensor; refuses floats and booleans (no truncation)."""
    tensor = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    if tensor.numel() and (
        tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool
    ):
        raise TypeError(f"{name} must hold integer indices, got {tensor.dtype}.")
    return tensor.to(torch.int64).reshape(-1)


def _compressed(sorted_index, n):
    crow = torch.zeros(n + 1, dtype=torch.int64, device=sorted_index.device)
    crow[1:] = torch.cumsum(torch.bincount(sorted_index, minlength=n), 0)
    return crow


class _SampledMatmul(torch.autograd.Function):
    """``(x @ weight)[rows, cols]`` with sparse gradients."""

    @staticmethod
    def forward(ctx, x, weight, index):
        ctx.save_for_backward(x, weight)
        ctx.index = index
        block_cols = _block_columns(index.shape[1], x.shape[1], x.dtype, x.device)
        if block_cols is not None:
            return index._column_blocks(False, block_cols).sampled(x, weight)
        pattern = index._csr(torch.zeros(index.n_pairs, dtype=x.dtype, device=x.device))
        values = torch.sparse.sampled_addmm(pattern, x, weight, beta=0.0).values()
        return index._from_csr_order(values)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        index = ctx.index
        grad_x = grad_w = None
        n_rows, n_cols = index.shape
        if ctx.needs_input_grad[0]:
            block_cols = _block_columns(n_cols, weight.shape[0], x.dtype, x.device)
            if block_cols is None:
                grad_x = index._csr(index._to_csr_order(grad_out).contiguous()) @ weight.T
            else:
                grad_x = index._column_blocks(False, block_cols).matmul(weight.T, grad_out)
        if ctx.needs_input_grad[1]:
            block_cols = _block_columns(n_rows, x.shape[1], x.dtype, x.device)
            if block_cols is None:
                grad_t = index._csr_t(index._to_csr_order(grad_out).contiguous()) @ x
            else:
                grad_t = index._column_blocks(True, block_cols).matmul(x, grad_out)
            # contiguous, so that the element-wise backward of the gating stays fast
            grad_w = grad_t.T.contiguous()
        return grad_x, grad_w, None


def _matmul(x, weight):
    if isinstance(x, SparseInput):
        return _SparseInputMatmul.apply(x, weight)
    if x.layout in (torch.sparse_coo, torch.sparse_csr):
        return torch.sparse.mm(x, weight)
    return x @ weight


def kernel_linear(input, u, v, kernel, W=None, bias=None, input_scale=None, output_scale=None):
    """Functional twin of :class:`KernelLinear`: ``input @ kernel_weight(...) + bias``.

    Parameters
    ----------
    input : Tensor of shape (n_samples, in_features), dense or sparse, or SparseInput
    u, v, kernel, W, input_scale, output_scale
        See :func:`kernel_weight`.
    bias : Tensor of shape (out_features,), optional

    Returns
    -------
    Tensor of shape (n_samples, out_features)

    Examples
    --------
    >>> import torch
    >>> from skkernelnet.kernels import RBFKernel
    >>> kernel_linear(torch.ones(2, 4), torch.zeros(4, 3), torch.zeros(5, 3), RBFKernel()).shape
    torch.Size([2, 5])
    """
    out = _matmul(input, kernel_weight(u, v, kernel, W, input_scale, output_scale))
    return out if bias is None else out + bias


class KernelLinear(nn.Module):
    r"""Linear layer whose weight matrix is a kernel between neuron embeddings.

    ``y = x @ weight + bias`` where ``weight[i, j] = K(u_i, v_j)``, or
    ``W[i, j] * K(u_i, v_j)`` when ``gated``.

    It takes and returns the same shapes as :class:`torch.nn.Linear` of the
    same ``in_features`` and ``out_features``, but it is not a drop-in
    replacement where the weight itself is used: ``weight`` has shape
    ``(in_features, out_features)``, the transpose of ``nn.Linear.weight``
    (``(out_features, in_features)``), and is recomputed from ``u``, ``v``
    (and ``W``, the scales) on each access rather than being a Parameter, so
    code that loads, initialises or ties ``layer.weight`` must go through
    those parameters instead (``layer.weight.T`` is what ``nn.Linear`` would
    hold). ``W``, when gated, is also ``(in_features, out_features)``. The
    options after ``out_features`` are keyword-only.

    Ungated layers over kernels that are never negative (RBF, Laplacian,
    finite support) could only express non-negative weights. For them the
    layer learns two signed scale vectors, one entry per input and per output
    neuron, and uses ``weight[i, j] = a_i K(u_i, v_j) b_j``: ``in_features +
    out_features`` extra parameters, the kernel still decides the magnitudes
    and the sparsity pattern, and signs follow the neurons. Set ``signed=False``
    to keep the pure kernel. With ``scale_rank=r > 1`` each neuron has ``r``
    scales and the weight is ``K(U, V) * (A @ B.T)`` for ``A`` of shape
    (in_features, r) and ``B`` of shape (out_features, r): the signs then
    vary from output neuron to output neuron instead of following one pattern,
    for ``(r - 1) * (in_features + out_features)`` more parameters.

    Parameters
    ----------
    in_features : int
        Size of each input sample.
    out_features : int
        Size of each output sample.
    embedding_dim : int or None, default=None
        Dimension ``d`` of the neuron embeddings ``u_i`` and ``v_j``. ``None``
        means the number of coordinates of the given positions (the larger
        of the two when both sides have some), and 5 when none are given.
    kernel : str, Kernel or callable, default="finite_support"
        See :func:`skkernelnet.kernels.get_kernel`.
    gated : bool, default=True
        Multiply the kernel into a free weight ``W`` (the MovieLens model of
        Muller et al., 2018). Ungated, the weight is the kernel itself.
    bias : bool, default=True
        Learn an additive bias.
    signed : bool or None, default=None
        Learn signed neuron scales when ungated; ``None`` means "when the kernel
        is non-negative".
    scale_rank : int, default=1
        Number of signed scales per neuron (the rank of the sign-and-scale
        matrix ``A @ B.T``); only for a signed layer.
    embedding_init_std : float or None, default=None
        Standard deviation of the truncated-normal initial embeddings. ``None``
        uses the reference ``1e-3`` when gated (so that ``K ~ 1`` and the layer
        starts as its free weight) and a value that spreads the kernel values
        when ungated (``d ** -0.5`` for non-negative kernels, a Glorot-matching
        scale for the others).
    device, dtype
        As for :class:`torch.nn.Linear`.
    input_positions : array-like of shape (in_features, p), default=None
        Known positions of the input neurons (e.g. pixel coordinates, see
        :func:`~skkernelnet.positions.grid_positions`): the first ``p <=
        embedding_dim`` coordinates of every ``u_i``. Any further coordinates
        are learned.
    freeze_input_positions : bool, default=True
        Keep the given input positions fixed (a buffer, saved in the state
        dict, never trained); ``False`` uses them as the initial value of
        the learned ``u`` (as :meth:`torch.nn.Embedding.from_pretrained`'s
        ``freeze``).
    output_positions : array-like of shape (out_features, p), default=None
        Known positions of the output neurons, as ``input_positions``.
    freeze_output_positions : bool, default=True
        As ``freeze_input_positions``, for the output neurons.

    Attributes
    ----------
    u : Parameter of shape (in_features, embedding_dim - p) or None
        The learned coordinates of the input neurons: all ``embedding_dim``
        of them, unless ``p`` are fixed by frozen ``input_positions`` (None
        when all are).
    v : Parameter of shape (out_features, embedding_dim - p) or None
        The learned coordinates of the output neurons, likewise.
    input_positions, output_positions : buffer of shape (n_neurons, p) or None
        The frozen given positions; None when a side has none or they are
        learned.
    input_embeddings, output_embeddings : Tensor of shape (n_neurons, embedding_dim)
        The points ``u_i`` and ``v_j`` the kernel sees: frozen positions
        followed by learned coordinates.
    W : Parameter of shape (in_features, out_features) or None
    input_scale, output_scale : Parameter or None
        Signed scales of an ungated layer over a non-negative kernel, of shape
        (in_features,) and (out_features,), or (in_features, scale_rank) and
        (out_features, scale_rank) when ``scale_rank > 1``.
    bias : Parameter of shape (out_features,) or None

    Examples
    --------
    >>> import torch
    >>> from skkernelnet.layers import KernelLinear
    >>> layer = KernelLinear(20, 30, embedding_dim=3, kernel="rbf")
    >>> layer(torch.randn(8, 20)).shape
    torch.Size([8, 30])
    >>> layer.weight.shape
    torch.Size([20, 30])

    Inputs that are the pixels of an 8 x 8 image, each at its fixed place on
    the grid; every output neuron learns where its receptive field lies:

    >>> from skkernelnet.positions import grid_positions
    >>> layer = KernelLinear(64, 16, kernel="rbf", input_positions=grid_positions((8, 8)))
    >>> layer.embedding_dim, layer.u, layer.input_positions.shape, layer.v.shape
    (2, None, torch.Size([64, 2]), torch.Size([16, 2]))

    Two fixed coordinates and one learned one per pixel:

    >>> layer = KernelLinear(64, 16, embedding_dim=3, input_positions=grid_positions((8, 8)))
    >>> layer.u.shape, layer.input_embeddings.shape
    (torch.Size([64, 1]), torch.Size([64, 3]))
    """

    def __init__(
        self,
        in_features,
        out_features,
        *,
        embedding_dim=None,
        kernel="finite_support",
        gated=True,
        bias=True,
        signed=None,
        embedding_init_std=None,
        device=None,
        dtype=None,
        scale_rank=1,
        input_positions=None,
        freeze_input_positions=True,
        output_positions=None,
        freeze_output_positions=True,
    ):
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("out_features", out_features),
            ("embedding_dim", 1 if embedding_dim is None else embedding_dim),
            ("scale_rank", scale_rank),
        ):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        factory = {"device": device, "dtype": dtype}
        in_features, out_features = int(in_features), int(out_features)
        self.in_features = in_features
        self.out_features = out_features
        given = {
            "input": _given_positions(input_positions, in_features, "input"),
            "output": _given_positions(output_positions, out_features, "output"),
        }
        if embedding_dim is None:
            embedding_dim = max((p.shape[1] for p in given.values() if p is not None), default=5)
        self.embedding_dim = embedding_dim = int(embedding_dim)
        for side, positions in given.items():
            if positions is not None and positions.shape[1] > embedding_dim:
                raise ValueError(
                    f"{side}_positions has {positions.shape[1]} coordinates per neuron, more "
                    f"than embedding_dim={embedding_dim}; embedding_dim counts the given "
                    "coordinates and any learned ones after them."
                )
        self.kernel = get_kernel(kernel)
        self.gated = bool(gated)
        self.signed = _signed_by_default(self.kernel, self.gated) if signed is None else signed
        if self.signed and self.gated:
            raise ValueError("signed scales are for ungated layers; a gated layer is signed by W.")
        self.scale_rank = int(scale_rank)
        if self.scale_rank > 1 and not self.signed:
            raise ValueError(
                f"scale_rank={scale_rank} needs signed scales, which only an ungated layer "
                f"has (gated={self.gated}, signed={self.signed})."
            )
        self.embedding_init_std = embedding_init_std
        for side, name, n, freeze in (
            ("input", "u", in_features, freeze_input_positions),
            ("output", "v", out_features, freeze_output_positions),
        ):
            positions = given[side]
            if positions is not None:  # float64 arrays take the layer's dtype, as parameters do
                positions = torch.tensor(
                    positions, dtype=dtype or torch.get_default_dtype(), device=device
                )
            n_fixed = 0 if positions is None or not freeze else positions.shape[1]
            if n_fixed:
                self.register_buffer(f"{side}_positions", positions)
                self.register_buffer(f"_initial_{side}_positions", None, persistent=False)
            else:
                self.register_buffer(f"{side}_positions", None)
                self.register_buffer(f"_initial_{side}_positions", positions, persistent=False)
            if n_fixed < embedding_dim:
                learned = torch.empty(n, embedding_dim - n_fixed, **factory)
                self.register_parameter(name, nn.Parameter(learned))
            else:
                self.register_parameter(name, None)
        self.W = nn.Parameter(torch.empty(in_features, out_features, **factory)) if gated else None
        if self.signed:
            channels = () if self.scale_rank == 1 else (self.scale_rank,)
            self.input_scale = nn.Parameter(torch.empty(in_features, *channels, **factory))
            self.output_scale = nn.Parameter(torch.empty(out_features, *channels, **factory))
        else:
            self.register_parameter("input_scale", None)
            self.register_parameter("output_scale", None)
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.reset_parameters()

    def _init_std(self):
        if self.embedding_init_std is not None:
            return float(self.embedding_init_std)
        if self.gated:
            return 1e-3
        if self.kernel.nonnegative:
            return self.embedding_dim**-0.5
        # <u, v> with u, v ~ N(0, s^2) has variance d s^4: match Glorot's 2 / (fan_in + fan_out).
        glorot_var = 2.0 / (self.in_features + self.out_features)
        return (glorot_var / self.embedding_dim) ** 0.25

    def reset_parameters(self):
        """Re-initialise: embeddings truncated normal, ``W`` Glorot uniform, bias zero.

        Given positions that are not frozen are copied back into the first
        coordinates of the embeddings. When only one side has given positions,
        each neuron of the other side starts its first coordinates at the
        position of a randomly drawn neuron of the given side (plus its usual
        random initial value), so that, over a local kernel, every receptive
        field starts where there are inputs.
        """
        std = self._init_std()
        for learned in (self.u, self.v):
            if learned is not None:
                nn.init.trunc_normal_(learned, std=std, a=-2 * std, b=2 * std)
        with torch.no_grad():
            for side, learned in (("input", self.u), ("output", self.v)):
                initial = getattr(self, f"_initial_{side}_positions")
                if initial is not None:
                    learned[:, : initial.shape[1]] = initial
            sides = {"input": self.u, "output": self.v}
            for side, other in (("input", "output"), ("output", "input")):
                source = self._given_positions_of(other)
                learned = sides[side]
                if self._given_positions_of(side) is None and source is not None:
                    draw = torch.randint(source.shape[0], (learned.shape[0],))
                    learned[:, : source.shape[1]] += source[draw.to(source.device)]
        glorot = math.sqrt(6.0 / (self.in_features + self.out_features))
        if self.W is not None:
            nn.init.uniform_(self.W, -glorot, glorot)
        if self.signed:
            # a_i ~ unit variance, b_j Glorot over the r channels: (A B^T)_ij keeps the
            # variance of the rank-1 case.
            nn.init.uniform_(self.input_scale, -math.sqrt(3.0), math.sqrt(3.0))
            bound = glorot / math.sqrt(self.scale_rank)
            nn.init.uniform_(self.output_scale, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _given_positions_of(self, side):
        """The given positions of a side (frozen or initial value), or None."""
        frozen = getattr(self, f"{side}_positions")
        return frozen if frozen is not None else getattr(self, f"_initial_{side}_positions")

    @property
    def input_embeddings(self):
        """The points ``u_i``, Tensor of shape (in_features, embedding_dim)."""
        return _concat_coordinates(self.input_positions, self.u)

    @property
    def output_embeddings(self):
        """The points ``v_j``, Tensor of shape (out_features, embedding_dim)."""
        return _concat_coordinates(self.output_positions, self.v)

    def _reuse_cache(self):
        caches = getattr(_kernel_caches, "by_layer", None)
        return caches.get(id(self)) if caches else None

    def kernel_matrix(self):
        """``K(u, v)`` of shape (in_features, out_features), before gating or scaling.

        Inside :func:`reuse_kernel_matrices` it is computed once and shared by
        the forward pass and :meth:`regularization`.
        """
        cache = self._reuse_cache()
        if cache is None:
            return self.kernel(self.input_embeddings, self.output_embeddings)
        if "K" not in cache:
            cache["K"] = self.kernel(self.input_embeddings, self.output_embeddings)
        return cache["K"]

    @property
    def weight(self):
        """Effective weight matrix of shape (in_features, out_features), computed on access.

        The transpose of :class:`torch.nn.Linear`'s ``weight`` layout, and not
        a Parameter: gradients reach ``u``, ``v``, ``W`` and the scales.
        """
        cache = self._reuse_cache()
        if cache is None:  # a gated layer's weight is then one autograd node (Kernel.gated)
            return kernel_weight(
                self.input_embeddings,
                self.output_embeddings,
                self.kernel,
                self.W,
                self.input_scale,
                self.output_scale,
            )
        fused = self._fused_weight_and_penalties(cache)
        if fused is not None:
            return fused[0]
        if "weight" not in cache:
            cache["weight"] = kernel_weight(
                None,  # the points are read by kernel_matrix(), which reuses a cached K
                None,
                lambda u, v: self.kernel_matrix(),
                self.W,
                self.input_scale,
                self.output_scale,
            )
        return cache["weight"]

    def _fused_weight_and_penalties(self, cache):
        """``(weight, free penalty, kernel penalty)`` as one node, or None (see
        :func:`reuse_kernel_matrices`'s ``penalties``)."""
        if not cache["penalties"] or self.W is None or self.input_scale is not None:
            return None
        if not torch.is_grad_enabled() or not isinstance(self.kernel, Kernel):
            return None
        if "fused" not in cache:
            cache["fused"] = self.kernel.gated_with_penalties(
                self.input_embeddings, self.output_embeddings, self.W
            )
        return cache["fused"]

    def forward(self, input):
        """``input @ weight + bias`` for a dense or sparse input (or :class:`SparseInput`).

        For a sparse input in which at most three quarters of the features
        occur (a mini-batch of text, say), only the rows of the weight of those
        features are computed, and only they receive a gradient: the cost
        follows the features present, not ``in_features``. This needs a
        pairwise kernel (every kernel but a :class:`~skkernelnet.kernels.CallableKernel`),
        and is skipped inside :func:`reuse_kernel_matrices`, where the whole weight
        is computed once anyway.
        """
        self._check_input(input)
        out = None
        # Inside reuse_kernel_matrices the whole weight is computed once and shared, which
        # also keeps a row's output independent of the features its batch happens to hold.
        sparse = not isinstance(input, SparseInput) and input.layout != torch.strided
        if sparse and self._reuse_cache() is None:
            out = self._sparse_rows_matmul(input)
        if out is None:
            out = _matmul(input, self.weight)
        # in place: the product is a new tensor that no backward needs (one weight-sized
        # temporary less for a layer of many samples)
        return out if self.bias is None else out.add_(self.bias)

    def _sparse_rows_matmul(self, input):
        """``input @ weight`` with the weight evaluated on the features present, or None."""
        if not self.kernel.pairwise or input.requires_grad:
            return None
        csr = input.to_sparse_csr() if input.layout == torch.sparse_coo else input
        if csr.layout != torch.sparse_csr:
            return None
        columns = csr.col_indices()
        present, compact_columns = torch.unique(columns, sorted=True, return_inverse=True)
        if present.numel() == 0 or 4 * present.numel() > 3 * self.in_features:
            return None

        def rows(param):
            return None if param is None else param[present]

        weight = kernel_weight(
            self.input_embeddings[present],
            self.output_embeddings,
            self.kernel,
            rows(self.W),
            rows(self.input_scale),
            self.output_scale,
        )
        compact = _quiet_csr(
            csr.crow_indices(),
            compact_columns,
            csr.values(),
            (csr.shape[0], present.numel()),
            check_invariants=False,
        )
        return torch.sparse.mm(compact, weight)

    def forward_at(self, input, index):
        """The layer's output only at the ``(row, column)`` pairs of ``index``.

        Equal, in values and gradients, to ``self(input)[rows, cols]``, at a
        cost proportional to the number of pairs.

        Parameters
        ----------
        input : dense Tensor of shape (n_samples, in_features)
        index : EntryIndex or tuple (rows, cols)

        Returns
        -------
        Tensor of shape (n_pairs,)

        Examples
        --------
        >>> import torch
        >>> layer = KernelLinear(4, 3)
        >>> x = torch.randn(5, 4)
        >>> out = layer.forward_at(x, ([0, 4], [2, 1]))
        >>> torch.allclose(out, layer(x)[[0, 4], [2, 1]])
        True
        """
        self._check_input(input)
        if len(input.shape) != 2:
            raise ValueError(
                f"forward_at needs a 2-D input of shape (n_samples, in_features), got shape "
                f"{tuple(input.shape)}."
            )
        if not isinstance(index, EntryIndex):
            rows, cols = index
            index = EntryIndex(rows, cols, (input.shape[0], self.out_features))
        if index.shape != (input.shape[0], self.out_features):
            raise ValueError(
                f"index shape {index.shape} does not match the output shape "
                f"{(input.shape[0], self.out_features)}."
            )
        if isinstance(input, SparseInput) or input.layout != torch.strided:
            out = self(input)
            return out[index.rows, index.cols]
        if index.rows.device != input.device:
            index = index.to(input.device)
        out = _SampledMatmul.apply(input, self.weight, index)
        # index_select, whose backward adds into the bias gradient (indexing's sorts first)
        return out if self.bias is None else out + self.bias.index_select(0, index.cols)

    def regularization(self, *, kernel=True):
        """The two penalties of the reference loss, unweighted.

        Parameters
        ----------
        kernel : bool, default=True
            Compute the kernel penalty; ``False`` returns zero for it without
            computing ``K(U, V)`` (for a loss that does not weight it).

        Returns
        -------
        free_weight_penalty : Tensor
            ``1/2 ||W||^2`` (gated), ``1/2 (||a||^2 + ||b||^2)`` for the signed
            scales, else zero.
        kernel_penalty : Tensor
            ``1/2 ||K(U, V)||^2``.
        """
        # u is None when every input coordinate is a given, fixed position
        zero = self.input_embeddings.new_zeros(())
        cache = self._reuse_cache()
        fused = None if cache is None else self._fused_weight_and_penalties(cache)
        if fused is not None:
            return fused[1], fused[2] if kernel else zero
        if self.W is not None:
            free = half_squared_norm(self.W)
        elif self.signed:
            free = half_squared_norm(self.input_scale) + half_squared_norm(self.output_scale)
        else:
            free = zero
        return free, half_squared_norm(self.kernel_matrix()) if kernel else zero

    def penalized_parameters(self):
        """The parameters in the free-weight penalty of :meth:`regularization`."""
        if self.W is not None:
            return [self.W]
        if self.signed:
            return [self.input_scale, self.output_scale]
        return []

    @torch.no_grad()
    def sparsity(self):
        """Fraction of effective weights that are exactly zero."""
        return float((self.weight == 0).float().mean())

    def _check_input(self, input):
        # dtype and device of the layer (u is None when every input coordinate is given)
        reference = self.u if self.u is not None else self.input_embeddings
        if not isinstance(input, (torch.Tensor, SparseInput)):
            raise TypeError(
                f"input must be a torch.Tensor, got {type(input).__name__}; convert it "
                f"with torch.as_tensor(x, dtype={reference.dtype})."
            )
        n_features = input.shape[-1]
        if n_features != self.in_features:
            raise ValueError(
                f"input has {n_features} features, but KernelLinear expects {self.in_features}."
            )
        values = input.csr if isinstance(input, SparseInput) else input
        if values.dtype != reference.dtype:
            raise TypeError(
                f"input has dtype {values.dtype} but the layer's parameters are "
                f"{reference.dtype}: convert one, e.g. x.to({reference.dtype}) or "
                f"layer.to({values.dtype})."
            )
        if values.device != reference.device:
            raise ValueError(
                f"input is on {values.device} but the layer is on {reference.device}; move one "
                "of them (x.to(device) or layer.to(device))."
            )

    def extra_repr(self):
        fixed = [
            f", fixed_{side}_coordinates={getattr(self, f'{side}_positions').shape[1]}"
            for side in ("input", "output")
            if getattr(self, f"{side}_positions") is not None
        ]
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"embedding_dim={self.embedding_dim}, gated={self.gated}, "
            f"signed={self.signed}, bias={self.bias is not None}"
            + (f", scale_rank={self.scale_rank}" if self.scale_rank != 1 else "")
            + "".join(fixed)
        )


def _given_positions(positions, n_neurons, side):
    if positions is None:
        return None
    return check_positions(positions, n_neurons, name=f"{side}_positions", of=f"{side} neurons")


def _concat_coordinates(fixed, learned):
    if fixed is None:
        return learned
    if learned is None:
        return fixed
    return torch.cat([fixed, learned], dim=1)
