"""Tests of skkernelnet.kernels: values, gradients, properties, composition, plumbing."""

import copy
import pickle
import re
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from skkernelnet.kernels import (
    KERNELS,
    CallableKernel,
    FiniteSupportKernel,
    Kernel,
    LaplacianKernel,
    LinearKernel,
    PolynomialKernel,
    ProductKernel,
    RBFKernel,
    ScaledKernel,
    SumKernel,
    get_kernel,
    squared_distances,
)

# --------------------------------------------------------------------------- references


def cosine_kernel(U, V):
    """A module-level (hence picklable) user kernel."""
    return (U / U.norm(dim=1, keepdim=True)) @ (V / V.norm(dim=1, keepdim=True)).T


def np_sqdist(U, V):
    return ((U[:, None, :] - V[None, :, :]) ** 2).sum(-1)


def np_linear(U, V):
    return U @ V.T


def np_poly(U, V, degree=3, gamma=None, coef0=1.0):
    gamma = 1.0 / U.shape[1] if gamma is None else gamma
    return (gamma * U @ V.T + coef0) ** degree


def np_rbf(U, V, gamma=1.0):
    return np.exp(-gamma * np_sqdist(U, V))


def np_laplacian(U, V, gamma=1.0):
    return np.exp(-gamma * np.abs(U[:, None, :] - V[None, :, :]).sum(-1))


def np_finite_support(U, V, radius=1.0):
    return np.maximum(0.0, 1.0 - np_sqdist(U, V) / radius**2)


def np_cosine(U, V):
    return (U / np.linalg.norm(U, axis=1, keepdims=True)) @ (
        V / np.linalg.norm(V, axis=1, keepdims=True)
    ).T


# (kernel, numpy reference) for every kernel type, composites included.
CASES = {
    "linear": (LinearKernel(), np_linear),
    "poly": (PolynomialKernel(), np_poly),
    "poly_2_0.5_0": (
        PolynomialKernel(degree=2, gamma=0.5, coef0=0.0),
        lambda U, V: np_poly(U, V, 2, 0.5, 0.0),
    ),
    "poly_negative_coef0": (
        PolynomialKernel(degree=3, gamma=0.7, coef0=-0.5),
        lambda U, V: np_poly(U, V, 3, 0.7, -0.5),
    ),
    "rbf": (RBFKernel(), np_rbf),
    "rbf_0.3": (RBFKernel(gamma=0.3), lambda U, V: np_rbf(U, V, 0.3)),
    "laplacian": (LaplacianKernel(gamma=0.7), lambda U, V: np_laplacian(U, V, 0.7)),
    "finite_support": (FiniteSupportKernel(), np_finite_support),
    "finite_support_r1.5": (
        FiniteSupportKernel(radius=1.5),
        lambda U, V: np_finite_support(U, V, 1.5),
    ),
    "sum": (
        LinearKernel() + RBFKernel(gamma=0.5),
        lambda U, V: np_linear(U, V) + np_rbf(U, V, 0.5),
    ),
    "product": (
        RBFKernel(gamma=0.5) * FiniteSupportKernel(radius=2.0),
        lambda U, V: np_rbf(U, V, 0.5) * np_finite_support(U, V, 2.0),
    ),
    "scaled": (2.5 * LaplacianKernel(), lambda U, V: 2.5 * np_laplacian(U, V)),
    "nested": (
        0.5 * (LinearKernel() + RBFKernel()) * LaplacianKernel(gamma=0.2),
        lambda U, V: 0.5 * (np_linear(U, V) + np_rbf(U, V)) * np_laplacian(U, V, 0.2),
    ),
    "callable": (CallableKernel(cosine_kernel), np_cosine),
}

NONNEGATIVE = ("rbf", "laplacian", "finite_support")


def points(n, d, scale=0.6, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, d, generator=g, dtype=torch.float64)).to(dtype)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_match_direct_formula(name, dtype):
    kernel, reference = CASES[name]
    U, V = points(7, 3, seed=1, dtype=dtype), points(5, 3, seed=2, dtype=dtype)
    K = kernel(U, V)
    assert K.shape == (7, 5) and K.dtype == dtype
    expected = reference(U.double().numpy(), V.double().numpy())
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(K.double().numpy(), expected, rtol=tol, atol=tol)


def test_finite_support_mixes_zeros_and_nonzeros_in_value_test():
    # The value test above is only meaningful if the support boundary is crossed.
    K = FiniteSupportKernel()(points(7, 3, seed=1), points(5, 3, seed=2))
    assert (K == 0).any() and (K > 0).any()


def test_squared_distances_values_and_clamp():
    U, V = points(6, 4, seed=3), points(9, 4, seed=4)
    np.testing.assert_allclose(squared_distances(U, V).numpy(), np_sqdist(U.numpy(), V.numpy()))
    # Rounding in |u|^2 + |v|^2 - 2 u.v goes negative for nearby large points: clamped at 0.
    g = torch.Generator().manual_seed(0)
    big = 1e3 + torch.randn(50, 3, generator=g) * 1e-3
    raw = (big * big).sum(1, keepdim=True) + (big * big).sum(1) - 2 * big @ big.T
    assert (raw < 0).any()
    assert (squared_distances(big, big) >= 0).all()


def test_known_values():
    z = torch.zeros(1, 2)
    one = torch.tensor([[1.0, 1.0]])
    assert RBFKernel(gamma=0.5)(z, one).item() == pytest.approx(np.exp(-1.0))
    assert LaplacianKernel()(z, torch.tensor([[1.0, -1.0]])).item() == pytest.approx(np.exp(-2))
    fs = FiniteSupportKernel(radius=2.0)
    assert fs(z, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.75)
    assert fs(z, torch.tensor([[2.0, 0.0]])).item() == 0.0
    assert fs(z, torch.tensor([[3.0, 0.0]])).item() == 0.0
    poly = PolynomialKernel(degree=2, gamma=1.0, coef0=1.0)
    assert poly(one, one).item() == pytest.approx(9.0)
    # gamma=None means 1 / d
    assert PolynomialKernel(degree=1, coef0=0.0)(one, one).item() == pytest.approx(1.0)


# --------------------------------------------------------------------------- gradients


def _kink_margins(name, U, V):
    """Distance of every pair from the kernels' non-differentiable points."""
    sq = np_sqdist(U.numpy(), V.numpy())
    absdiff = np.abs(U.numpy()[:, None, :] - V.numpy()[None, :, :])
    return {
        "sqdist_from_0": sq.min(),
        "sqdist_from_1": np.abs(sq - 1.0).min(),
        "sqdist_from_2.25": np.abs(sq - 2.25).min(),
        "sqdist_from_4": np.abs(sq - 4.0).min(),
        "coordinate_from_0": absdiff.min(),
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck_float64(name):
    kernel, _ = CASES[name]
    U = points(5, 3, seed=5).requires_grad_()
    V = points(4, 3, seed=6).requires_grad_()
    # Keep away from the finite-support kink (distance == radius) and |0| of the Laplacian.
    margins = _kink_margins(name, U.detach(), V.detach())
    assert min(margins.values()) > 1e-3, margins
    assert torch.autograd.gradcheck(kernel, (U, V), eps=1e-6, atol=1e-7, rtol=1e-5)
    if "Laplacian" not in repr(kernel):  # torch.cdist has no double backward
        assert torch.autograd.gradgradcheck(kernel, (U, V), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_points_straddle_finite_support_radius():
    U, V = points(5, 3, seed=5), points(4, 3, seed=6)
    for radius in (1.0, 1.5, 2.0):
        K = FiniteSupportKernel(radius=radius)(U, V)
        assert (K == 0).any() and (K > 0).any(), radius


def _reference_sqdist_norm_then_square(U, V):
    """The reference code's formulation: ||u - v|| (a square root) then squared.

    TensorFlow's ``tf.norm`` is ``sqrt(sum(square(.)))``, whose gradient at 0 is
    ``inf * 0 = NaN``. (``torch.norm`` itself special-cases 0 and returns a zero
    subgradient, so the explicit square root is what reproduces the reference.)
    """
    dist = torch.sqrt(((U[:, None, :] - V[None, :, :]) ** 2).sum(dim=2))
    return dist**2


@pytest.mark.parametrize("kernel", [RBFKernel(), FiniteSupportKernel(), LinearKernel()])
def test_no_nan_gradient_when_points_coincide(kernel):
    U = points(4, 3, seed=7)
    V = torch.cat([U[:2], points(2, 3, seed=8)])  # u_0 == v_0, u_1 == v_1
    U.requires_grad_()
    V.requires_grad_()
    kernel(U, V).sum().backward()
    assert torch.isfinite(U.grad).all() and torch.isfinite(V.grad).all()
    # The reference formulation does produce NaN there.
    U2, V2 = U.detach().clone().requires_grad_(), V.detach().clone().requires_grad_()
    torch.clamp(1.0 - _reference_sqdist_norm_then_square(U2, V2), min=0.0).sum().backward()
    assert torch.isnan(U2.grad).any() and torch.isnan(V2.grad).any()


def test_squared_distance_gradient_at_coincident_points_is_exact():
    # d/du ||u - v||^2 = 2 (u - v): zero at u == v, whatever the other pairs contribute.
    U = points(3, 2, seed=9).requires_grad_()
    V = U.detach().clone().requires_grad_()
    squared_distances(U, V).diagonal().sum().backward()
    torch.testing.assert_close(U.grad, torch.zeros_like(U), atol=1e-12, rtol=0)
    torch.testing.assert_close(V.grad, torch.zeros_like(V), atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- properties

dtypes = st.sampled_from([torch.float32, torch.float64])


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted(CASES)),
    n_in=st.integers(1, 9),
    n_out=st.integers(1, 9),
    d=st.integers(1, 5),
    dtype=dtypes,
    seed=st.integers(0, 2**16),
)
def test_shape_dtype_and_finiteness(name, n_in, n_out, d, dtype, seed):
    kernel, reference = CASES[name]
    U = points(n_in, d, seed=seed, dtype=dtype)
    V = points(n_out, d, seed=seed + 1, dtype=dtype)
    K = kernel(U, V)
    assert K.shape == (n_in, n_out) and K.dtype == dtype and K.layout == torch.strided
    assert torch.isfinite(K).all()
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    np.testing.assert_allclose(
        K.double().numpy(), reference(U.double().numpy(), V.double().numpy()), rtol=tol, atol=tol
    )


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted(CASES)),
    n=st.integers(1, 9),
    d=st.integers(1, 5),
    dtype=dtypes,
    seed=st.integers(0, 2**16),
)
def test_symmetric_kernels_are_symmetric(name, n, d, dtype, seed):
    kernel, _ = CASES[name]
    U = points(n, d, seed=seed, dtype=dtype)
    K = kernel(U, U)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(K, K.T, rtol=tol, atol=tol)
    if name.split("_")[0] in ("rbf", "laplacian", "finite"):
        torch.testing.assert_close(K.diagonal(), torch.ones(n, dtype=dtype), rtol=tol, atol=tol)


@settings(max_examples=40, deadline=None)
@given(
    n_in=st.integers(1, 12),
    n_out=st.integers(1, 12),
    d=st.integers(1, 6),
    radius=st.floats(0.1, 5.0),
    scale=st.floats(0.05, 3.0),
    dtype=dtypes,
    seed=st.integers(0, 2**16),
)
def test_finite_support_is_exactly_zero_outside_radius(n_in, n_out, d, radius, scale, dtype, seed):
    U = points(n_in, d, scale=scale, seed=seed, dtype=dtype)
    V = points(n_out, d, scale=scale, seed=seed + 1, dtype=dtype)
    K = FiniteSupportKernel(radius=radius)(U, V)
    assert ((K >= 0) & (K <= 1)).all()
    true_dist = np.sqrt(np_sqdist(U.double().numpy(), V.double().numpy()))
    outside = true_dist >= radius * (1 + 1e-3)  # a hair of slack for float32 rounding
    inside = true_dist <= radius * (1 - 1e-3)
    assert (K.numpy()[outside] == 0).all()
    assert (K.numpy()[inside] > 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1.0, 10.0, 100.0])
@pytest.mark.parametrize("name", NONNEGATIVE)
def test_nonnegative_kernels_stay_in_unit_interval_at_coincident_points(name, scale, dtype):
    # |u|^2 + |v|^2 - 2 u.v rounds to slightly negative values for u == v of large norm;
    # the kernels must not turn that into values above 1 (nor into NaN).
    U = points(60, 5, scale=scale, seed=20, dtype=dtype)
    for kernel in (
        get_kernel(name),
        KERNELS[name](**({"radius": 3.0} if "finite" in name else {})),
    ):
        K = kernel(U, U)
        assert ((K >= 0) & (K <= 1)).all(), (kernel, float(K.max()))
        # the expansion's cancellation error is a few eps * |u|^2 (inherent to the formula)
        atol = 8 * torch.finfo(dtype).eps * float((U * U).sum(1).max())
        torch.testing.assert_close(K.diagonal(), torch.ones(60, dtype=dtype), rtol=0, atol=atol)


@settings(max_examples=20, deadline=None)
@given(
    name=st.sampled_from(NONNEGATIVE),
    n_in=st.integers(1, 8),
    n_out=st.integers(1, 8),
    d=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_nonnegative_kernels_are_nonnegative_and_at_most_one(name, n_in, n_out, d, seed):
    kernel = get_kernel(name)
    assert kernel.nonnegative
    K = kernel(points(n_in, d, scale=2.0, seed=seed), points(n_out, d, scale=2.0, seed=seed + 1))
    assert ((K >= 0) & (K <= 1)).all()


def test_kernel_flags():
    assert not LinearKernel().nonnegative and LinearKernel().positive_definite
    assert RBFKernel().nonnegative and RBFKernel().positive_definite
    assert LaplacianKernel().nonnegative and LaplacianKernel().positive_definite
    assert FiniteSupportKernel().nonnegative and not FiniteSupportKernel().positive_definite
    assert not PolynomialKernel(coef0=-1.0).positive_definite
    assert PolynomialKernel(coef0=0.0).positive_definite
    assert (RBFKernel() + LaplacianKernel()).nonnegative
    assert not (RBFKernel() + LinearKernel()).nonnegative
    assert (RBFKernel() * FiniteSupportKernel()).nonnegative
    assert not (RBFKernel() * FiniteSupportKernel()).positive_definite
    assert (3 * RBFKernel()).nonnegative and not (3 * LinearKernel()).nonnegative
    assert not CallableKernel(cosine_kernel).nonnegative


# --------------------------------------------------------------------------- memory


class _RecordShapes(TorchDispatchMode):
    """Records the shape of every tensor produced by an aten op (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.shapes.append((str(func), tuple(t.shape)))
        return out


@pytest.mark.parametrize(
    "kernel",
    [RBFKernel(), FiniteSupportKernel(radius=3.0), LaplacianKernel(), LinearKernel()],
    ids=repr,
)
def test_no_pairwise_difference_tensor_forward_or_backward(kernel):
    n_in, n_out, d = 13, 11, 4
    U = points(n_in, d, seed=10).requires_grad_()
    V = points(n_out, d, seed=11).requires_grad_()
    with _RecordShapes() as rec:
        kernel(U, V).sum().backward()
    assert rec.shapes, "the dispatch mode saw no ops"
    too_big = [(op, s) for op, s in rec.shapes if len(s) > 2 or np.prod(s) > n_in * n_out]
    assert not too_big, too_big


def _peak_rss_reset():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM, the peak resident set size
        return True
    except OSError:
        return False


def _vm(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


@pytest.mark.slow
def test_squared_distances_at_scale_without_broadcast():
    # A (20000, 20000, 5) float32 broadcast would need 8 GB; the result itself is 1.6 GB.
    n, d = 20_000, 5
    g = torch.Generator().manual_seed(0)
    U, V = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    measure = sys.platform.startswith("linux") and _peak_rss_reset()
    before = _vm("VmRSS") if measure else 0
    D = squared_distances(U, V)
    if measure:
        assert _vm("VmHWM") - before < 4 * 2**30  # well under the 8 GB of a broadcast
    assert D.shape == (n, n) and D.dtype == torch.float32
    rows = torch.randint(0, n, (200,), generator=g)
    cols = torch.randint(0, n, (200,), generator=g)
    expected = ((U[rows].double() - V[cols].double()) ** 2).sum(1)
    torch.testing.assert_close(D[rows, cols].double(), expected, rtol=1e-4, atol=1e-4)
    assert (D >= 0).all()


# --------------------------------------------------------------------------- repr, eq, pickle


@pytest.mark.parametrize(
    "kernel, text",
    [
        (LinearKernel(), "LinearKernel()"),
        (RBFKernel(gamma=0.5), "RBFKernel(gamma=0.5)"),
        (RBFKernel(gamma=2), "RBFKernel(gamma=2.0)"),
        (LaplacianKernel(), "LaplacianKernel(gamma=1.0)"),
        (FiniteSupportKernel(), "FiniteSupportKernel(radius=1.0)"),
        (PolynomialKernel(), "PolynomialKernel(degree=3, gamma=None, coef0=1.0)"),
        (
            PolynomialKernel(degree=2, gamma=0.5, coef0=0),
            "PolynomialKernel(degree=2, gamma=0.5, coef0=0.0)",
        ),
        (2.0 * RBFKernel(gamma=0.5), "ScaledKernel(scale=2.0, kernel=RBFKernel(gamma=0.5))"),
        (LinearKernel() + RBFKernel(), "LinearKernel() + RBFKernel(gamma=1.0)"),
        (
            RBFKernel() * FiniteSupportKernel(radius=2.0),
            "RBFKernel(gamma=1.0) * FiniteSupportKernel(radius=2.0)",
        ),
        (
            (LinearKernel() + RBFKernel()) * LaplacianKernel(),
            "(LinearKernel() + RBFKernel(gamma=1.0)) * LaplacianKernel(gamma=1.0)",
        ),
        (
            2.0 * RBFKernel(gamma=0.5) + LinearKernel(),
            "ScaledKernel(scale=2.0, kernel=RBFKernel(gamma=0.5)) + LinearKernel()",
        ),
    ],
)
def test_repr(kernel, text):
    assert repr(kernel) == text
    assert str(kernel) == text


def test_callable_repr_names_the_function():
    assert repr(CallableKernel(cosine_kernel)).startswith("CallableKernel(func=<function cosine")


@pytest.mark.parametrize("name", sorted(CASES))
def test_equivalence_copy_and_pickle(name):
    kernel, _ = CASES[name]
    for clone in (copy.deepcopy(kernel), pickle.loads(pickle.dumps(kernel))):
        assert clone.equivalent(kernel) and kernel.equivalent(clone)
        assert clone != kernel  # == is identity, as for every torch module
        assert repr(clone) == repr(kernel)
        U, V = points(4, 3), points(3, 3, seed=1)
        assert torch.equal(clone(U, V), kernel(U, V))


def test_not_equivalent():
    assert not RBFKernel(gamma=0.5).equivalent(RBFKernel(gamma=1.0))
    assert not RBFKernel().equivalent(LaplacianKernel())
    assert not (LinearKernel() + RBFKernel()).equivalent(RBFKernel() + LinearKernel())
    assert not (LinearKernel() + RBFKernel()).equivalent(LinearKernel() * RBFKernel())
    assert not (2 * RBFKernel()).equivalent(3 * RBFKernel())
    assert not RBFKernel().equivalent("rbf")


class LearnableRBF(Kernel):
    """An RBF kernel whose log length scale is learned (a user kernel with parameters)."""

    def __init__(self):
        super().__init__()
        self.log_gamma = torch.nn.Parameter(torch.zeros(()))

    def forward(self, U, V):
        return torch.exp(-self.log_gamma.exp() * squared_distances(U, V))


def test_equal_kernels_stay_distinct_modules():
    # torch collects sub-modules in sets: kernels equal by value would be merged there.
    a, b = RBFKernel(gamma=0.5), RBFKernel(gamma=0.5)
    assert len({a, b}) == 2
    container = torch.nn.ModuleList([LearnableRBF(), LearnableRBF(), LearnableRBF()])
    assert len(list(container.modules())) == 4
    assert len(list(container.parameters())) == 3


def test_equivalence_compares_learnable_parameters():
    a, b = LearnableRBF(), LearnableRBF()
    assert a.equivalent(b)
    with torch.no_grad():
        b.log_gamma.add_(1.0)
    assert not a.equivalent(b)


def test_lambda_callable_kernel_does_not_pickle_but_function_does():
    k = CallableKernel(lambda U, V: U @ V.T)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(k)
    assert pickle.loads(pickle.dumps(CallableKernel(cosine_kernel))).equivalent(
        CallableKernel(cosine_kernel)
    )


def test_kernel_is_a_module_without_parameters():
    for kernel, _ in CASES.values():
        assert isinstance(kernel, torch.nn.Module) and isinstance(kernel, Kernel)
        assert list(kernel.parameters()) == []


# --------------------------------------------------------------------------- composition


def test_composition_types_and_values():
    U, V = points(5, 2, seed=12), points(6, 2, seed=13)
    a, b = RBFKernel(gamma=0.3), FiniteSupportKernel(radius=2.0)
    s, p = a + b, a * b
    assert isinstance(s, SumKernel) and (s.k1, s.k2) == (a, b)
    assert isinstance(p, ProductKernel) and (p.k1, p.k2) == (a, b)
    torch.testing.assert_close(s(U, V), a(U, V) + b(U, V))
    torch.testing.assert_close(p(U, V), a(U, V) * b(U, V))
    for scaled in (2.0 * a, a * 2.0, 2 * a, np.float64(2.0) * a):
        assert isinstance(scaled, ScaledKernel) and scaled.scale == 2.0 and scaled.kernel == a
        torch.testing.assert_close(scaled(U, V), 2.0 * a(U, V))
    torch.testing.assert_close((a + b + LinearKernel())(U, V), a(U, V) + b(U, V) + U @ V.T)


@pytest.mark.parametrize("other", [1.0, 2, "rbf", None, torch.ones(1), np.ones(1)])
def test_adding_a_non_kernel_raises_type_error(other):
    with pytest.raises(TypeError, match="compose a Kernel with another Kernel"):
        RBFKernel() + other
    if not isinstance(other, (np.ndarray, torch.Tensor)):  # these implement __add__ themselves
        with pytest.raises(TypeError, match="compose a Kernel with another Kernel"):
            other + RBFKernel()


@pytest.mark.parametrize("other", ["rbf", None, torch.ones(1), [1.0]])
def test_multiplying_by_a_non_kernel_raises_type_error(other):
    with pytest.raises(TypeError, match="compose a Kernel with another Kernel"):
        RBFKernel() * other


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), float("inf"), True])
def test_non_positive_scale_raises_value_error(scale):
    with pytest.raises(ValueError, match=f"scale must be a positive finite number, got {scale!r}"):
        scale * RBFKernel()


def test_callable_kernel_and_composition_with_callable():
    U, V = points(3, 2, seed=14), points(4, 2, seed=15)
    k = get_kernel(cosine_kernel)
    assert isinstance(k, CallableKernel) and k.func is cosine_kernel
    torch.testing.assert_close((k + LinearKernel())(U, V), cosine_kernel(U, V) + U @ V.T)
    with pytest.raises(TypeError, match="kernel must be callable, got int"):
        CallableKernel(3)


@pytest.mark.parametrize(
    "func, got",
    [
        (lambda U, V: U @ U.T, "(3, 3)"),
        (lambda U, V: (U @ V.T).numpy(), "ndarray"),
        (lambda U, V: (U @ V.T).reshape(-1), "(12,)"),
    ],
)
def test_callable_kernel_checks_output_shape(func, got):
    U, V = points(3, 2), points(4, 2)
    with pytest.raises(ValueError, match=re.escape(f"shape (3, 4), got {got}.")):
        CallableKernel(func)(U, V)


# --------------------------------------------------------------------------- get_kernel, errors


@pytest.mark.parametrize(
    "name, cls",
    [
        ("linear", LinearKernel),
        ("poly", PolynomialKernel),
        ("polynomial", PolynomialKernel),
        ("rbf", RBFKernel),
        ("gaussian", RBFKernel),
        ("laplacian", LaplacianKernel),
        ("finite_support", FiniteSupportKernel),
    ],
)
def test_get_kernel_by_name(name, cls):
    k = get_kernel(name)
    assert type(k) is cls and k.equivalent(cls())
    assert get_kernel(name) is not k  # a fresh instance each time
    assert KERNELS[name] is cls


def test_get_kernel_copies_instances():
    k = RBFKernel(gamma=0.25)
    got = get_kernel(k)
    assert got.equivalent(k) and got is not k


@pytest.mark.parametrize("bad", ["RBF", "gauss", "", "finite-support"])
def test_get_kernel_unknown_name(bad):
    with pytest.raises(ValueError, match=f"unknown kernel {bad!r}.*finite_support"):
        get_kernel(bad)


@pytest.mark.parametrize("bad, typename", [(3, "int"), (None, "NoneType"), (2.5, "float")])
def test_get_kernel_bad_type(bad, typename):
    with pytest.raises(ValueError, match=f"got {typename}"):
        get_kernel(bad)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: RBFKernel(gamma=0), "gamma must be a positive finite number, got 0"),
        (lambda: RBFKernel(gamma=-1.5), "got -1.5"),
        (lambda: RBFKernel(gamma=float("nan")), "got nan"),
        (lambda: RBFKernel(gamma="1"), "got '1'"),
        (lambda: LaplacianKernel(gamma=float("inf")), "gamma .* got inf"),
        (
            lambda: FiniteSupportKernel(radius=0.0),
            "radius must be a positive finite number, got 0.0",
        ),
        (lambda: FiniteSupportKernel(radius=True), "radius .* got True"),
        (lambda: PolynomialKernel(degree=0), "degree must be a positive integer, got 0"),
        (lambda: PolynomialKernel(degree=2.5), "degree .* got 2.5"),
        (lambda: PolynomialKernel(degree=True), "degree .* got True"),
        (lambda: PolynomialKernel(gamma=-1), "gamma .* got -1"),
        (lambda: PolynomialKernel(coef0=float("nan")), "coef0 must be a real number, got nan"),
        (lambda: PolynomialKernel(coef0="0"), "coef0 .* got '0'"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_the_value(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_hyperparameters_are_plain_floats():
    k = PolynomialKernel(degree=np.int64(2), gamma=np.float32(0.5), coef0=1)
    assert type(k.degree) is int and type(k.gamma) is float and type(k.coef0) is float
    assert k.hyperparameters == {"degree": 2, "gamma": 0.5, "coef0": 1.0}


def test_kernels_follow_input_dtype_and_do_not_need_module_casting():
    for kernel, _ in CASES.values():
        for dtype in (torch.float32, torch.float64):
            assert (
                kernel.to(dtype)(points(2, 2, dtype=dtype), points(3, 2, dtype=dtype)).dtype
                == dtype
            )


# --------------------------------------------------------------------------- gated weights


@pytest.mark.parametrize("name", sorted(CASES))
def test_gated_is_the_free_weight_times_the_kernel(name):
    # Kernel.gated is W * K(U, V): one autograd node for the kernels written out, the
    # same values and gradients as the product of the two.
    kernel, _ = CASES[name]
    U, V = points(5, 3, seed=12), points(4, 3, seed=13)
    W = points(5, 4, scale=1.0, seed=14)
    grads = []
    for weight in (lambda u, v, w: kernel.gated(u, v, w), lambda u, v, w: w * kernel(u, v)):
        leaves = [t.clone().requires_grad_() for t in (U, V, W)]
        out = weight(*leaves)
        (out * points(5, 4, seed=15)).sum().backward()
        grads.append([out.detach()] + [t.grad for t in leaves])
    for ours, expected in zip(*grads):
        assert torch.equal(ours, expected)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gated_with_penalties_is_the_gated_weight_and_both_half_norms(name):
    # One node for the weight W * K and the penalties 1/2 ||W||^2, 1/2 ||K||^2 of a
    # training objective: the values of the separate terms, their gradients up to rounding.
    kernel, _ = CASES[name]
    U, V = points(5, 3, seed=12), points(4, 3, seed=13)
    W = points(5, 4, scale=1.0, seed=14)
    if kernel._written_out() is None:
        assert kernel.gated_with_penalties(U, V, W) is None
        return
    weights, grads = [], []
    for fused in (True, False):
        leaves = [t.clone().requires_grad_() for t in (U, V, W)]
        if fused:
            terms = kernel.gated_with_penalties(*leaves)
        else:
            K = kernel(leaves[0], leaves[1])
            terms = (leaves[2] * K, 0.5 * (leaves[2] ** 2).sum(), 0.5 * (K**2).sum())
        loss = (terms[0] * points(5, 4, seed=15)).sum() + 0.3 * terms[1] + 1.7 * terms[2]
        loss.backward()
        weights.append([t.detach() for t in terms])
        grads.append([t.grad for t in leaves])
    assert torch.equal(weights[0][0], weights[1][0])
    for ours, expected in zip(weights[0][1:] + grads[0], weights[1][1:] + grads[1]):
        torch.testing.assert_close(ours, expected)


def test_gated_of_a_subclass_uses_its_own_function():
    class Halved(RBFKernel):
        def forward(self, U, V):
            return 0.5 * super().forward(U, V)

    U, V, W = points(3, 2, seed=16), points(2, 2, seed=17), points(3, 2, seed=18)
    assert Halved()._written_out() is None and RBFKernel()._written_out() is not None
    torch.testing.assert_close(Halved().gated(U, V, W), 0.5 * RBFKernel().gated(U, V, W))


def _naive_kernel(name, U, V):
    D = ((U[:, None, :] - V[None, :, :]) ** 2).sum(-1)
    return torch.exp(-0.7 * D) if name == "rbf" else torch.clamp(1.0 - D / 4.0, min=0.0)


@pytest.mark.parametrize("n_in, n_out", [(7, 5), (300, 230)])  # below and above 2**16 entries
@pytest.mark.parametrize("name", ["rbf", "finite_support"])
def test_embedding_gradients_small_and_large_kernel_matrices(name, n_in, n_out):
    # Small kernel matrices get the row and column sums of the embedding gradients from
    # their own reductions, large ones from the matrix product: the same gradients.
    kernel = RBFKernel(gamma=0.7) if name == "rbf" else FiniteSupportKernel(radius=2.0)
    U = points(n_in, 3, scale=0.8, seed=19).requires_grad_()
    V = points(n_out, 3, scale=0.8, seed=20).requires_grad_()
    grad_K = points(n_in, n_out, scale=1.0, seed=21)
    kernel(U, V).backward(grad_K)
    U2, V2 = U.detach().clone().requires_grad_(), V.detach().clone().requires_grad_()
    _naive_kernel(name, U2, V2).backward(grad_K)
    torch.testing.assert_close(U.grad, U2.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(V.grad, V2.grad, rtol=1e-10, atol=1e-10)
