"""Kernel functions ``K(U, V) -> (n_in, n_out)`` as small composable torch modules.

A kernel here maps the embedding vectors of a layer's input neurons, ``U`` of
shape ``(n_in, d)``, and of its output neurons, ``V`` of shape ``(n_out, d)``,
to the matrix of pairwise kernel values of shape ``(n_in, n_out)``.

Kernels hold their hyperparameters as plain Python numbers (they are not
learned), print as ``RBFKernel(gamma=0.5)``, pickle, and compose::

    >>> from skkernelnet.kernels import RBFKernel, LinearKernel
    >>> k = 2.0 * RBFKernel(gamma=0.5) + LinearKernel()
    >>> k
    ScaledKernel(scale=2.0, kernel=RBFKernel(gamma=0.5)) + LinearKernel()

Like every torch module, a kernel is equal only to itself (torch collects a
network's sub-modules in sets, so value equality would merge the kernels of
different layers); :meth:`Kernel.equivalent` compares two kernels by value::

    >>> a, b = RBFKernel(gamma=0.5), RBFKernel(gamma=0.5)
    >>> a == b, a.equivalent(b)
    (False, True)

Squared distances are computed as ``|u|^2 + |v|^2 - 2 u v^T``, clamped at zero,
so that memory stays ``O(n_in * n_out)`` (never an ``(n_in, n_out, d)``
broadcast) and the gradient at ``u_i == v_j`` is finite (``||u - v||`` followed
by a square, as in the reference implementation, gives NaN there).
"""

from __future__ import annotations

import copy
import numbers

import torch
from torch import nn

__all__ = [
    "Kernel",
    "LinearKernel",
    "PolynomialKernel",
    "RBFKernel",
    "LaplacianKernel",
    "FiniteSupportKernel",
    "SumKernel",
    "ProductKernel",
    "ScaledKernel",
    "CallableKernel",
    "KERNELS",
    "get_kernel",
    "squared_distances",
]


def squared_distances(U, V):
    """Pairwise squared Euclidean distances between the rows of ``U`` and ``V``.

    Computed as ``|u|^2 + |v|^2 - 2 u v^T`` in a single fused matrix product and
    clamped at zero (rounding can make it slightly negative).

    Parameters
    ----------
    U : Tensor of shape (n_in, d)
    V : Tensor of shape (n_out, d)

    Returns
    -------
    Tensor of shape (n_in, n_out)

    Examples
    --------
    >>> import torch
    >>> squared_distances(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    tensor([[25.,  0.]])
    """
    u_sq = (U * U).sum(dim=1, keepdim=True)
    v_sq = (V * V).sum(dim=1)  # broadcast as a row
    return (u_sq + v_sq).addmm_(U, V.T, alpha=-2.0).clamp_min_(0.0)  # one (n_in, n_out) tensor


# Above this many kernel entries, the embedding gradients of a distance kernel take the
# row or column sums they need from the same matrix product (an extra column of ones):
# one pass over the large matrix instead of two. Below it, operations are what costs.
_ONE_PASS_ENTRIES = 1 << 16


def _distance_kernel_grads(S, U, V, scale, needs_U, needs_V):
    """``scale * (S @ V - U * rowsum(S))`` and ``scale * (S.T @ U - V * colsum(S))``.

    The gradients of ``U`` and ``V`` (None where not needed) through a kernel of the
    squared distances, ``K_ij = f(||u_i - v_j||^2)``, for ``S = -grad_K * f'(D) * 2 /
    scale``: with ``dD_ij / du_i = 2 (u_i - v_j)``, the gradient of ``u_i`` is ``scale *
    sum_j S_ij (v_j - u_i)``. ``S`` is a temporary of the caller: it is scaled in place
    (one operation instead of one per gradient; exact for the usual scale 2).
    """
    S.mul_(scale)
    grad_U = grad_V = None
    one_pass = S.numel() >= _ONE_PASS_ENTRIES
    if needs_U:
        if one_pass:
            prod = S @ torch.cat([V, V.new_ones(V.shape[0], 1)], dim=1)  # [S @ v, rowsum(S)]
            product, sums = prod[:, :-1], prod[:, -1:]
        else:
            product, sums = S @ V, S.sum(1, keepdim=True)
        grad_U = torch.addcmul(product, U, sums, value=-1.0)
    if needs_V:
        if one_pass:
            prod = S.T @ torch.cat([U, U.new_ones(U.shape[0], 1)], dim=1)  # [S^T @ u, colsum]
            product, sums = prod[:, :-1], prod[:, -1:]
        else:
            product, sums = S.T @ U, S.sum(0).unsqueeze(1)
        grad_V = torch.addcmul(product, V, sums, value=-1.0)
    return grad_U, grad_V


def _check_positive(name, value, *, allow_none=False):
    if value is None and allow_none:
        return None
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not value > 0
        or value != value
        or value == float("inf")
    ):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    return float(value)


class Kernel(nn.Module):
    """Base class of kernels ``K(U, V) -> (n_in, n_out)``.

    Subclasses implement :meth:`forward` and list their hyperparameters in
    ``_hyperparameters``; ``repr``, :meth:`equivalent` and pickling follow. A
    kernel may also hold learnable parameters (``nn.Parameter`` attributes):
    they are trained with the layer that uses the kernel, each layer its own
    copy.

    Attributes
    ----------
    nonnegative : bool
        Whether every value of the kernel is ``>= 0`` (RBF, Laplacian, finite
        support). An ungated :class:`~skkernelnet.layers.KernelLinear` adds
        signed scales to such kernels so that its weights can be negative.
    positive_definite : bool
        Whether the kernel is positive (semi-)definite on ``R^d``.
    pairwise : bool
        Whether entry ``(i, j)`` of ``K(U, V)`` depends on ``u_i`` and ``v_j``
        only, as for every kernel function. A layer fed a sparse mini-batch
        then evaluates the kernel on the rows of the features present in the
        batch only. ``False`` for :class:`CallableKernel`, which cannot know.

    Examples
    --------
    A kernel of one's own: subclass, list the hyperparameters, implement ``forward``.

    >>> import torch
    >>> from torch.nn.functional import normalize
    >>> class CosineKernel(Kernel):
    ...     def forward(self, U, V):
    ...         return normalize(U, dim=1) @ normalize(V, dim=1).T
    >>> CosineKernel()(torch.ones(2, 3), torch.ones(4, 3)).shape
    torch.Size([2, 4])
    >>> CosineKernel() + RBFKernel()
    CosineKernel() + RBFKernel(gamma=1.0)
    """

    _hyperparameters: tuple[str, ...] = ()
    nonnegative = False
    positive_definite = True
    pairwise = True

    def forward(self, U, V):  # pragma: no cover - abstract
        raise NotImplementedError

    def gated(self, U, V, W):
        """``W * K(U, V)``, element-wise: the effective weight of a gated layer.

        Kernels with a hand-written backward (RBF, finite support) compute it
        as one autograd node, which a training step on a small network, bound by
        per-operation overhead, needs a little less time for; the values and
        gradients are those of ``W * self(U, V)``.

        Parameters
        ----------
        U : Tensor of shape (n_in, d)
        V : Tensor of shape (n_out, d)
        W : Tensor of shape (n_in, n_out)

        Returns
        -------
        Tensor of shape (n_in, n_out)

        Examples
        --------
        >>> import torch
        >>> U, V, W = torch.randn(3, 2), torch.randn(4, 2), torch.randn(3, 4)
        >>> kernel = RBFKernel(gamma=0.5)
        >>> torch.equal(kernel.gated(U, V, W), W * kernel(U, V))
        True
        """
        written = self._written_out()
        if written is None:
            return W * self(U, V)
        return _Gated.apply(U, V, W, *written)

    def gated_with_penalties(self, U, V, W):
        """``(W * K(U, V), 1/2 ||W||^2, 1/2 ||K(U, V)||^2)`` as one autograd node, or None.

        What a training objective with both penalties needs of a gated layer. The
        backward forms each gradient of ``W`` and ``K`` in one temporary (the
        weight's gradient times the other factor, plus the penalty's) instead of
        one per term; values equal, gradients equal up to rounding, to those of
        ``W * self(U, V)`` and the two norms. None when the kernel's gradients are
        not written out (see :meth:`gated`).

        Examples
        --------
        >>> import torch
        >>> U, V, W = torch.randn(3, 2), torch.randn(4, 2), torch.randn(3, 4)
        >>> weight, free, kern = FiniteSupportKernel().gated_with_penalties(U, V, W)
        >>> torch.equal(weight, FiniteSupportKernel().gated(U, V, W))
        True
        """
        written = self._written_out()
        if written is None:
            return None
        return _GatedPenalized.apply(U, V, W, *written)

    def _written_out(self):
        """``(function, hyperparameter)`` when the kernel's values and gradients are written out.

        ``function.values(U, V, hyperparameter)`` is the kernel matrix and
        ``function.embedding_grads(U, V, K, hyperparameter, grad_K, needs_U, needs_V)``
        the gradients of ``U`` and ``V`` (see :class:`_RBF`); None otherwise, also for
        a subclass that replaces ``forward``.
        """
        return None

    @property
    def hyperparameters(self):
        """Dictionary of hyperparameter names and values."""
        return {name: getattr(self, name) for name in self._hyperparameters}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({args})"

    def equivalent(self, other):
        """Whether ``other`` is the same kernel function as this one.

        True when both are of the same class with equal hyperparameters
        (kernels among them compared in turn with ``equivalent``) and equal
        learnable parameters and buffers. ``==`` is identity, as for every
        :class:`torch.nn.Module`.

        Parameters
        ----------
        other : object

        Returns
        -------
        bool

        Examples
        --------
        >>> (LinearKernel() + RBFKernel()).equivalent(LinearKernel() + RBFKernel())
        True
        >>> (LinearKernel() + RBFKernel()).equivalent(RBFKernel() + LinearKernel())
        False
        """
        if type(self) is not type(other):
            return False
        mine, theirs = self.hyperparameters, other.hyperparameters
        if mine.keys() != theirs.keys():
            return False
        for name, value in mine.items():
            if isinstance(value, Kernel):
                if not value.equivalent(theirs[name]):
                    return False
            elif value != theirs[name]:
                return False
        own_state = self.state_dict()
        other_state = other.state_dict()
        return own_state.keys() == other_state.keys() and all(
            value.shape == other_state[name].shape
            and torch.equal(value.cpu(), other_state[name].cpu())
            for name, value in own_state.items()
        )

    def __add__(self, other):
        return SumKernel(self, _as_kernel(other))

    def __radd__(self, other):
        return SumKernel(_as_kernel(other), self)

    def __mul__(self, other):
        if isinstance(other, numbers.Real):
            return ScaledKernel(other, self)
        return ProductKernel(self, _as_kernel(other))

    def __rmul__(self, other):
        if isinstance(other, numbers.Real):
            return ScaledKernel(other, self)
        return ProductKernel(_as_kernel(other), self)


def _as_kernel(obj):
    if isinstance(obj, Kernel):
        return obj
    raise TypeError(f"can only compose a Kernel with another Kernel, got {type(obj).__name__}.")


class LinearKernel(Kernel):
    """Linear kernel ``K(u, v) = <u, v>``: the layer is the low-rank ``U V^T``.

    Examples
    --------
    >>> import torch
    >>> LinearKernel()(torch.ones(3, 2), torch.ones(4, 2)).shape
    torch.Size([3, 4])
    """

    def forward(self, U, V):
        return U @ V.T


class PolynomialKernel(Kernel):
    """Polynomial kernel ``K(u, v) = (gamma <u, v> + coef0) ** degree``.

    Parameters
    ----------
    degree : int, default=3
        Positive integer degree.
    gamma : float or None, default=None
        Scale of the inner product; ``None`` means ``1 / d``.
    coef0 : float, default=1.0
        Additive constant, ``>= 0`` for positive definiteness.

    Examples
    --------
    >>> import torch
    >>> k = PolynomialKernel(degree=2, gamma=1.0, coef0=0.0)
    >>> k(torch.tensor([[2.0]]), torch.tensor([[3.0]]))
    tensor([[36.]])
    """

    _hyperparameters = ("degree", "gamma", "coef0")

    def __init__(self, degree=3, gamma=None, coef0=1.0):
        super().__init__()
        if not isinstance(degree, numbers.Integral) or isinstance(degree, bool) or degree < 1:
            raise ValueError(f"degree must be a positive integer, got {degree!r}.")
        self.degree = int(degree)
        self.gamma = _check_positive("gamma", gamma, allow_none=True)
        if not isinstance(coef0, numbers.Real) or coef0 != coef0:
            raise ValueError(f"coef0 must be a real number, got {coef0!r}.")
        self.coef0 = float(coef0)
        self.positive_definite = self.coef0 >= 0

    def forward(self, U, V):
        gamma = self.gamma if self.gamma is not None else 1.0 / U.shape[1]
        return (gamma * (U @ V.T) + self.coef0) ** self.degree


class RBFKernel(Kernel):
    """Gaussian (RBF) kernel ``K(u, v) = exp(-gamma ||u - v||^2)``.

    Parameters
    ----------
    gamma : float, default=1.0
        Inverse squared length scale, ``> 0``.

    Examples
    --------
    >>> import torch
    >>> RBFKernel(gamma=0.5)(torch.zeros(1, 2), torch.tensor([[1.0, 1.0]]))
    tensor([[0.3679]])
    """

    _hyperparameters = ("gamma",)
    nonnegative = True

    def __init__(self, gamma=1.0):
        super().__init__()
        self.gamma = _check_positive("gamma", gamma)

    def forward(self, U, V):
        return _RBF.apply(U, V, self.gamma)

    def _written_out(self):
        return (_RBF, self.gamma) if type(self).forward is RBFKernel.forward else None


class _RBF(torch.autograd.Function):
    """``exp(-gamma ||u - v||^2)`` with a hand-written backward.

    One autograd node instead of about ten: a mini-batch step of a small
    network is bound by per-operation overhead, and the kernel matrix is
    recomputed at every step. The backward needs few operations on a small
    kernel matrix and one pass over a large one (:func:`_distance_kernel_grads`).
    ``values`` and ``embedding_grads`` are shared with :class:`_Gated`.
    """

    @staticmethod
    def values(U, V, gamma):
        return squared_distances(U, V).mul_(-gamma).exp_()

    @staticmethod
    def embedding_grads(U, V, K, gamma, grad_K, needs_U, needs_V):
        # dK/du_i = 2 gamma (v_j - u_i) K
        return _distance_kernel_grads(grad_K * K, U, V, 2.0 * gamma, needs_U, needs_V)

    @staticmethod
    def forward(ctx, U, V, gamma):
        K = _RBF.values(U, V, gamma)
        ctx.save_for_backward(U, V, K)
        ctx.gamma = gamma
        return K

    @staticmethod
    def backward(ctx, grad_K):
        U, V, K = ctx.saved_tensors
        needs_U, needs_V = ctx.needs_input_grad[:2]
        return *_RBF.embedding_grads(U, V, K, ctx.gamma, grad_K, needs_U, needs_V), None


class _Gated(torch.autograd.Function):
    """``W * K(U, V)`` as one autograd node, for a kernel Function such as :class:`_RBF`.

    ``function.values(U, V, hyperparameter)`` gives ``K`` and
    ``function.embedding_grads(U, V, K, hyperparameter, grad_K, needs_U, needs_V)``
    the gradients of ``U`` and ``V``. The same operations as ``W * function.apply(U,
    V, hyperparameter)``, without the product's node: values and gradients are equal.
    """

    @staticmethod
    def forward(ctx, U, V, W, function, hyperparameter):
        K = function.values(U, V, hyperparameter)
        ctx.save_for_backward(U, V, W, K)
        ctx.function, ctx.hyperparameter = function, hyperparameter
        return W * K

    @staticmethod
    def backward(ctx, grad):
        U, V, W, K = ctx.saved_tensors
        needs_U, needs_V, needs_W = ctx.needs_input_grad[:3]
        grad_U = grad_V = None
        if needs_U or needs_V:
            grad_U, grad_V = ctx.function.embedding_grads(
                U, V, K, ctx.hyperparameter, grad * W, needs_U, needs_V
            )
        return grad_U, grad_V, grad * K if needs_W else None, None, None


class _GatedPenalized(torch.autograd.Function):
    """``(W * K, 1/2 ||W||^2, 1/2 ||K||^2)`` for ``K = function.values(U, V, hyperparameter)``.

    See :meth:`Kernel.gated_with_penalties`; ``function`` as for :class:`_Gated`.
    """

    @staticmethod
    def forward(ctx, U, V, W, function, hyperparameter):
        K = function.values(U, V, hyperparameter)
        ctx.save_for_backward(U, V, W, K)
        ctx.function, ctx.hyperparameter = function, hyperparameter
        flat_W, flat_K = W.reshape(-1), K.reshape(-1)
        return W * K, 0.5 * torch.dot(flat_W, flat_W), 0.5 * torch.dot(flat_K, flat_K)

    @staticmethod
    def backward(ctx, grad, grad_free, grad_kern):
        U, V, W, K = ctx.saved_tensors
        needs_U, needs_V, needs_W = ctx.needs_input_grad[:3]
        grad_U = grad_V = grad_W = None
        if needs_U or needs_V:
            grad_K = torch.mul(grad, W).add_(K, alpha=float(grad_kern))
            grad_U, grad_V = ctx.function.embedding_grads(
                U, V, K, ctx.hyperparameter, grad_K, needs_U, needs_V
            )
            del grad_K
        if needs_W:
            grad_W = torch.mul(grad, K).add_(W, alpha=float(grad_free))
        return grad_U, grad_V, grad_W, None, None


class LaplacianKernel(Kernel):
    """Laplacian kernel ``K(u, v) = exp(-gamma ||u - v||_1)``, as in scikit-learn.

    Uses :func:`torch.cdist` with ``p=1``, which never materialises the
    ``(n_in, n_out, d)`` differences; its gradient at ``u == v`` is zero, not NaN.

    Parameters
    ----------
    gamma : float, default=1.0
        Inverse length scale, ``> 0``.

    Examples
    --------
    >>> import torch
    >>> LaplacianKernel(gamma=1.0)(torch.zeros(1, 2), torch.tensor([[1.0, -1.0]]))
    tensor([[0.1353]])
    """

    _hyperparameters = ("gamma",)
    nonnegative = True

    def __init__(self, gamma=1.0):
        super().__init__()
        self.gamma = _check_positive("gamma", gamma)

    def forward(self, U, V):
        return torch.exp(-self.gamma * torch.cdist(U, V, p=1))


class FiniteSupportKernel(Kernel):
    """Finite-support kernel ``K(u, v) = max(0, 1 - ||u - v||^2 / radius^2)``.

    Exactly zero once ``||u - v|| >= radius``, so a layer built on it has exactly
    sparse weights (the "sparsified" layers of Muller et al., ICML 2018). It is
    not positive definite (its Fourier transform takes negative values, already
    for d = 1), which the layer does not need.

    Parameters
    ----------
    radius : float, default=1.0
        Support radius, ``> 0``.

    Examples
    --------
    >>> import torch
    >>> FiniteSupportKernel()(torch.zeros(1, 1), torch.tensor([[0.5], [2.0]]))
    tensor([[0.7500, 0.0000]])
    """

    _hyperparameters = ("radius",)
    nonnegative = True
    positive_definite = False

    def __init__(self, radius=1.0):
        super().__init__()
        self.radius = _check_positive("radius", radius)

    def forward(self, U, V):
        return _FiniteSupport.apply(U, V, self.radius)

    def _written_out(self):
        if type(self).forward is not FiniteSupportKernel.forward:
            return None
        return (_FiniteSupport, self.radius)


class _FiniteSupport(torch.autograd.Function):
    """``max(0, 1 - ||u - v||^2 / r^2)`` with a hand-written backward.

    The kernel matrix is large and the work per entry tiny, so its cost is
    memory traffic: the forward is one matrix product into a prefilled buffer
    and one in-place clamp; the backward masks the incoming gradient once and,
    for a large matrix, gets each embedding's gradient *and* the row or column
    sums it needs from a single product with an extra column of ones
    (:func:`_distance_kernel_grads`).
    """

    @staticmethod
    def values(U, V, radius):
        scale = 1.0 / (radius * radius)
        u_sq = (U * U).sum(dim=1, keepdim=True)
        v_sq = (V * V).sum(dim=1)  # broadcast as a row
        # 1 - (|u|^2 + |v|^2 - 2 u.v) / r^2, clamped to [0, 1] (rounding in the expansion
        # can exceed 1 at coincident points); in place in one (n_in, n_out) tensor, with
        # the values of 1.0 - scale * (u_sq + v_sq) + 2 scale U V^T: -a + 1 is 1 - a exactly
        K = (u_sq + v_sq).mul_(-scale).add_(1.0)
        return K.addmm_(U, V.T, alpha=2.0 * scale).clamp_(0.0, 1.0)

    @staticmethod
    def embedding_grads(U, V, K, radius, grad_K, needs_U, needs_V):
        # dK/du_i = 2 (v_j - u_i) / r^2 where K > 0
        masked = torch.where(K > 0, grad_K, 0.0)
        two_scale = 2.0 * (1.0 / (radius * radius))
        return _distance_kernel_grads(masked, U, V, two_scale, needs_U, needs_V)

    @staticmethod
    def forward(ctx, U, V, radius):
        K = _FiniteSupport.values(U, V, radius)
        ctx.save_for_backward(U, V, K)
        ctx.radius = radius
        return K

    @staticmethod
    def backward(ctx, grad_K):
        U, V, K = ctx.saved_tensors
        needs_U, needs_V = ctx.needs_input_grad[:2]
        grads = _FiniteSupport.embedding_grads(U, V, K, ctx.radius, grad_K, needs_U, needs_V)
        return *grads, None


class _PairKernel(Kernel):
    """Shared machinery of kernels combining two kernels ``k1`` and ``k2``."""

    def __init__(self, k1, k2):
        super().__init__()
        self.k1, self.k2 = _as_kernel(k1), _as_kernel(k2)
        self.nonnegative = self.k1.nonnegative and self.k2.nonnegative
        self.positive_definite = self.k1.positive_definite and self.k2.positive_definite
        self.pairwise = self.k1.pairwise and self.k2.pairwise

    @property
    def hyperparameters(self):
        return {"k1": self.k1, "k2": self.k2}


class SumKernel(_PairKernel):
    """Sum of two kernels, ``k1 + k2``.

    Examples
    --------
    >>> LinearKernel() + RBFKernel()
    LinearKernel() + RBFKernel(gamma=1.0)
    """

    def __repr__(self):
        return f"{self.k1!r} + {self.k2!r}"

    def forward(self, U, V):
        return self.k1(U, V) + self.k2(U, V)


class ProductKernel(_PairKernel):
    """Element-wise product of two kernels, ``k1 * k2`` (positive definite if both are).

    Examples
    --------
    >>> RBFKernel() * FiniteSupportKernel(radius=2.0)
    RBFKernel(gamma=1.0) * FiniteSupportKernel(radius=2.0)
    """

    def __repr__(self):
        return f"{_wrap_sum(self.k1)} * {_wrap_sum(self.k2)}"

    def forward(self, U, V):
        return self.k1(U, V) * self.k2(U, V)


def _wrap_sum(kernel):
    return f"({kernel!r})" if isinstance(kernel, SumKernel) else repr(kernel)


class ScaledKernel(Kernel):
    """A kernel times a positive constant, ``scale * kernel``.

    Examples
    --------
    >>> 2 * LinearKernel()
    ScaledKernel(scale=2.0, kernel=LinearKernel())
    """

    _hyperparameters = ("scale", "kernel")

    def __init__(self, scale, kernel):
        super().__init__()
        self.scale = _check_positive("scale", scale)
        self.kernel = _as_kernel(kernel)
        self.nonnegative = kernel.nonnegative
        self.positive_definite = kernel.positive_definite
        self.pairwise = self.kernel.pairwise

    def forward(self, U, V):
        return self.scale * self.kernel(U, V)


class CallableKernel(Kernel):
    """Wrap any callable ``(U, V) -> Tensor of shape (n_in, n_out)`` as a kernel.

    The result's shape is checked on every call. Pickling works when the
    callable itself pickles (a module-level function, not a lambda).

    Examples
    --------
    >>> import torch
    >>> k = CallableKernel(torch.cdist)
    >>> k(torch.zeros(2, 3), torch.ones(4, 3)).shape
    torch.Size([2, 4])
    """

    _hyperparameters = ("func",)
    positive_definite = False
    pairwise = False  # an arbitrary function of the whole matrices

    def __init__(self, func):
        super().__init__()
        if not callable(func):
            raise TypeError(f"kernel must be callable, got {type(func).__name__}.")
        self.func = func

    def forward(self, U, V):
        K = self.func(U, V)
        expected = (U.shape[0], V.shape[0])
        if not isinstance(K, torch.Tensor) or tuple(K.shape) != expected:
            shape = tuple(K.shape) if isinstance(K, torch.Tensor) else type(K).__name__
            raise ValueError(
                f"kernel callable must return a tensor of shape {expected}, got {shape}."
            )
        return K


KERNELS = {
    "linear": LinearKernel,
    "poly": PolynomialKernel,
    "polynomial": PolynomialKernel,
    "rbf": RBFKernel,
    "gaussian": RBFKernel,
    "laplacian": LaplacianKernel,
    "finite_support": FiniteSupportKernel,
}


def get_kernel(kernel):
    """Resolve a kernel specification to a fresh :class:`Kernel` instance.

    Parameters
    ----------
    kernel : str, Kernel or callable
        A name from ``KERNELS`` ("linear", "poly", "rbf", "laplacian",
        "finite_support", ...) with default hyperparameters, a :class:`Kernel`
        (deep-copied, so estimators never share state with the caller), or a
        callable ``(U, V) -> Tensor``.

    Returns
    -------
    Kernel

    Examples
    --------
    >>> get_kernel("rbf")
    RBFKernel(gamma=1.0)
    """
    if isinstance(kernel, str):
        try:
            return KERNELS[kernel]()
        except KeyError:
            raise ValueError(
                f"unknown kernel {kernel!r}; expected one of {sorted(KERNELS)}, "
                "a Kernel instance or a callable (U, V) -> Tensor."
            ) from None
    if isinstance(kernel, Kernel):
        return copy.deepcopy(kernel)
    if callable(kernel):
        return CallableKernel(kernel)
    raise ValueError(
        f"kernel must be a string, a Kernel or a callable, got {type(kernel).__name__}."
    )
