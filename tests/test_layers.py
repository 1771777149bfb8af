"""Tests of skkernelnet.layers (KernelLinear and its input paths) and skkernelnet.networks."""

import copy
import math
import pickle
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from skkernelnet import layers
from skkernelnet.kernels import FiniteSupportKernel, LinearKernel, RBFKernel, squared_distances
from skkernelnet.layers import (
    EntryIndex,
    KernelLinear,
    SparseInput,
    kernel_linear,
    kernel_weight,
)
from skkernelnet.networks import KernelNetwork

# Truncated at +-2 standard deviations, a normal keeps this fraction of its std.
TRUNC2_STD_FACTOR = math.sqrt(
    1 - 4 * math.exp(-2) / math.sqrt(2 * math.pi) / math.erf(2 / math.sqrt(2))
)


def make_x(n, p, seed=0, density=0.4, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, p, generator=g, dtype=dtype)
    return x * (torch.rand(n, p, generator=g) < density)


def smooth_layer(in_features, out_features, d=3, seed=0, **kwargs):
    """A float64 layer whose kernel is nowhere near the finite-support kink."""
    kwargs.setdefault("embedding_init_std", 0.5)
    for s in range(seed, seed + 100):
        torch.manual_seed(s)
        layer = KernelLinear(
            in_features, out_features, embedding_dim=d, dtype=torch.float64, **kwargs
        )
        with torch.no_grad():
            layer.bias.normal_() if layer.bias is not None else None
            sq = squared_distances(layer.u, layer.v)
        if (sq - 1).abs().min() > 1e-3 and sq.min() > 1e-3:
            return layer
    raise AssertionError("no smooth layer found")  # pragma: no cover


def params_of(layer):
    return dict(layer.named_parameters())


def grads_of(layer):
    return {n: p.grad.clone() for n, p in layer.named_parameters()}


CONFIGS = {
    "gated_finite_support": dict(kernel="finite_support", gated=True),
    "ungated_signed_rbf": dict(kernel="rbf", gated=False),
    "ungated_linear": dict(kernel="linear", gated=False),
    "gated_rbf_no_bias": dict(kernel="rbf", gated=True, bias=False),
    "ungated_rbf_scale_rank_3": dict(kernel="rbf", gated=False, scale_rank=3),
}


# --------------------------------------------------------------------------- construction


def test_shapes_parameters_and_weight():
    layer = KernelLinear(7, 4, embedding_dim=3)
    assert layer.u.shape == (7, 3) and layer.v.shape == (4, 3)
    assert layer.W.shape == (7, 4) and layer.bias.shape == (4,)
    assert layer.input_scale is None and layer.output_scale is None
    assert set(params_of(layer)) == {"u", "v", "W", "bias"}
    assert isinstance(layer.kernel, FiniteSupportKernel)  # the default
    assert layer.weight.shape == (7, 4)
    assert layer(torch.randn(5, 7)).shape == (5, 4)
    assert layer.kernel_matrix().shape == (7, 4)


def test_input_shapes_like_nn_linear():
    layer = KernelLinear(6, 2)
    assert layer(torch.randn(6)).shape == (2,)
    assert layer(torch.randn(3, 4, 6)).shape == (3, 4, 2)
    assert layer(torch.randn(0, 6)).shape == (0, 2)
    x = torch.randn(3, 4, 6)
    torch.testing.assert_close(layer(x), x @ layer.weight + layer.bias)


def test_ungated_linear_kernel_is_exactly_low_rank_product():
    layer = KernelLinear(9, 6, embedding_dim=2, kernel="linear", gated=False, bias=False)
    assert layer.W is None and not layer.signed
    assert set(params_of(layer)) == {"u", "v"}
    assert torch.equal(layer.weight, layer.u @ layer.v.T)
    x = torch.randn(4, 9)
    assert torch.equal(layer(x), x @ (layer.u @ layer.v.T))


@pytest.mark.parametrize("kernel", ["rbf", "finite_support", "laplacian"])
def test_ungated_nonnegative_kernel_gets_signed_scales(kernel):
    layer = KernelLinear(20, 30, embedding_dim=2, kernel=kernel, gated=False)
    assert layer.signed
    assert layer.input_scale.shape == (20,) and layer.output_scale.shape == (30,)
    assert set(params_of(layer)) == {"u", "v", "input_scale", "output_scale", "bias"}
    K = layer.kernel_matrix()
    expected = layer.input_scale[:, None] * K * layer.output_scale[None, :]
    torch.testing.assert_close(layer.weight, expected)
    w = layer.weight
    assert (w < 0).any() and (w > 0).any()  # signed weights from the start
    pure = KernelLinear(20, 30, embedding_dim=2, kernel=kernel, gated=False, signed=False)
    assert not pure.signed and pure.input_scale is None
    assert (pure.weight >= 0).all() and torch.equal(pure.weight, pure.kernel_matrix())


def test_scale_rank_gives_each_output_neuron_its_own_signs():
    torch.manual_seed(0)
    layer = KernelLinear(20, 30, embedding_dim=2, kernel="rbf", gated=False, scale_rank=3)
    A, B = layer.input_scale, layer.output_scale
    assert A.shape == (20, 3) and B.shape == (30, 3)
    torch.testing.assert_close(layer.weight, layer.kernel_matrix() * (A @ B.T))
    x = torch.randn(4, 20)
    torch.testing.assert_close(layer(x), x @ layer.weight + layer.bias)
    # rank 1 ties every output neuron to one sign pattern over the inputs; rank 3 does not
    signs = torch.sign(layer.weight)
    assert torch.linalg.matrix_rank(signs) > 1
    rank1 = KernelLinear(20, 30, embedding_dim=2, kernel="rbf", gated=False)
    assert torch.linalg.matrix_rank(torch.sign(rank1.weight)) == 1
    # same variance of the scale product as rank 1 (2000 x 300 for the statistics)
    big = KernelLinear(2000, 300, kernel="rbf", gated=False, scale_rank=4)
    glorot_var = 2.0 / 2300  # Var(a b) = 1 * glorot^2 / 3 summed over the channels
    product = big.input_scale @ big.output_scale.T
    assert product.var().item() == pytest.approx(glorot_var, rel=0.1)
    assert "scale_rank=4" in repr(big) and "scale_rank" not in repr(rank1)
    n_params = sum(p.numel() for p in big.parameters())
    assert n_params == (2000 + 300) * (5 + 4) + 300


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel="rbf", gated=True),
        dict(kernel="linear", gated=False),
        dict(kernel="rbf", gated=False, signed=False),
    ],
)
def test_scale_rank_needs_signed_scales(kwargs):
    with pytest.raises(ValueError, match="scale_rank=2 needs signed scales"):
        KernelLinear(3, 2, scale_rank=2, **kwargs)


def test_signed_default_logic():
    assert not KernelLinear(3, 2, kernel="rbf", gated=True).signed
    assert not KernelLinear(3, 2, kernel="linear", gated=False).signed
    assert not KernelLinear(3, 2, kernel="poly", gated=False).signed
    assert KernelLinear(3, 2, kernel=RBFKernel() + FiniteSupportKernel(), gated=False).signed
    assert not KernelLinear(3, 2, kernel=RBFKernel() + LinearKernel(), gated=False).signed
    assert KernelLinear(3, 2, kernel="linear", gated=False, signed=True).signed
    with pytest.raises(ValueError, match="signed scales are for ungated layers"):
        KernelLinear(3, 2, gated=True, signed=True)


@pytest.mark.parametrize("kernel", ["rbf", "finite_support"])
def test_ungated_signed_layer_learns_a_negative_weight(kernel):
    # Start with the wrong sign (a * K * b = +0.1, K = 1 since u == v) and fit y = -1.5 x.
    x = torch.linspace(-2, 2, 64, dtype=torch.float64)[:, None]
    y = -1.5 * x
    fits = {}
    for signed in (True, False):
        layer = KernelLinear(
            1, 1, embedding_dim=2, kernel=kernel, gated=False, signed=signed, bias=False
        ).double()
        with torch.no_grad():
            layer.u.fill_(0.1)
            layer.v.fill_(0.1)
            if signed:
                layer.input_scale.fill_(1.0)
                layer.output_scale.fill_(0.1)
        opt = torch.optim.SGD(layer.parameters(), lr=0.05)
        for _ in range(300):
            opt.zero_grad()
            loss = ((layer(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
        fits[signed] = (loss.item(), layer.weight.item())
    loss, w = fits[True]
    assert w == pytest.approx(-1.5, abs=1e-3) and loss < 1e-5
    assert fits[False][1] >= 0 and fits[False][0] > 1.0  # the pure kernel cannot


def test_gated_weight_is_free_weight_times_kernel():
    layer = KernelLinear(8, 5, embedding_dim=3, kernel="rbf", embedding_init_std=0.5)
    assert torch.equal(layer.weight, layer.W * layer.kernel(layer.u, layer.v))
    assert torch.equal(layer.weight, layer.W * layer.kernel_matrix())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(in_features=0, out_features=2), "in_features must be a positive integer, got 0"),
        (dict(in_features=2, out_features=-1), "out_features must be a positive integer, got -1"),
        (dict(in_features=2, out_features=2.0), "out_features .* got 2.0"),
        (dict(in_features=True, out_features=2), "in_features .* got True"),
        (dict(in_features=2, out_features=2, embedding_dim=0), "embedding_dim .* got 0"),
        (dict(in_features=2, out_features=2, scale_rank=0), "scale_rank .* got 0"),
        (dict(in_features=2, out_features=2, kernel="nope"), "unknown kernel 'nope'"),
    ],
)
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KernelLinear(**kwargs)


def test_callable_and_kernel_instance_are_accepted():
    k = RBFKernel(gamma=0.1)
    layer = KernelLinear(3, 2, kernel=k)
    assert layer.kernel.equivalent(k) and layer.kernel is not k  # a private copy
    layer = KernelLinear(3, 2, kernel=lambda U, V: U @ V.T, gated=False)
    assert torch.allclose(layer.weight, layer.u @ layer.v.T)


# --------------------------------------------------------------------------- initialisation


def test_reset_parameters_statistics():
    torch.manual_seed(0)
    layer = KernelLinear(3000, 400, embedding_dim=5)
    std = 1e-3
    for p in (layer.u, layer.v):
        assert p.abs().max() <= 2 * std
        assert p.std().item() == pytest.approx(std * TRUNC2_STD_FACTOR, rel=0.05)
        assert abs(p.mean().item()) < 1e-4
    bound = math.sqrt(6.0 / (3000 + 400))
    assert layer.W.abs().max() <= bound
    assert layer.W.abs().max() > 0.99 * bound
    assert layer.W.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.01)
    assert torch.equal(layer.bias, torch.zeros(400))
    # Gated with the reference init, K is ~1 everywhere: the layer starts as its free weight.
    assert layer.kernel_matrix().min() > 0.99
    before = layer.W.detach().clone()
    with torch.no_grad():
        layer.bias.fill_(3.0)
    layer.reset_parameters()
    assert not torch.equal(layer.W, before) and torch.equal(layer.bias, torch.zeros(400))


def test_reset_parameters_ungated_scales():
    torch.manual_seed(1)
    d = 4
    layer = KernelLinear(2000, 300, embedding_dim=d, kernel="rbf", gated=False)
    s = d**-0.5  # non-negative kernels: spread the kernel values
    assert layer.u.abs().max() <= 2 * s
    assert layer.u.std().item() == pytest.approx(s * TRUNC2_STD_FACTOR, rel=0.05)
    assert layer.input_scale.abs().max() <= math.sqrt(3)
    assert layer.input_scale.std().item() == pytest.approx(1.0, rel=0.1)
    glorot = math.sqrt(6.0 / 2300)
    assert layer.output_scale.abs().max() <= glorot
    linear = KernelLinear(2000, 300, embedding_dim=d, kernel="linear", gated=False)
    # Glorot-matching: Var(<u, v>) = d s^4 = 2 / (fan_in + fan_out), before truncation.
    expected = math.sqrt(2.0 / 2300) * TRUNC2_STD_FACTOR**2
    assert linear.weight.std().item() == pytest.approx(expected, rel=0.1)
    custom = KernelLinear(500, 40, embedding_init_std=0.25)
    assert custom.u.abs().max() <= 0.5
    assert custom.u.std().item() == pytest.approx(0.25 * TRUNC2_STD_FACTOR, rel=0.1)


def test_extra_repr():
    layer = KernelLinear(10, 3, embedding_dim=2, kernel="rbf", gated=False, bias=False)
    assert layer.extra_repr() == (
        "in_features=10, out_features=3, embedding_dim=2, gated=False, signed=True, bias=False"
    )
    assert "(kernel): RBFKernel(gamma=1.0)" in repr(layer)
    assert repr(KernelLinear(4, 5)).startswith(
        "KernelLinear(\n  in_features=4, out_features=5, embedding_dim=5, gated=True, "
        "signed=False, bias=True"
    )


# --------------------------------------------------------------------------- penalties, sparsity


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_regularization_values(name):
    torch.manual_seed(2)
    layer = KernelLinear(6, 4, embedding_dim=3, embedding_init_std=0.5, **CONFIGS[name])
    free, kern = layer.regularization()
    assert free.shape == () and kern.shape == ()
    K = layer.kernel(layer.u, layer.v)
    torch.testing.assert_close(kern, 0.5 * (K**2).sum())
    if layer.gated:
        expected_free = 0.5 * (layer.W**2).sum()
    elif layer.signed:
        expected_free = 0.5 * ((layer.input_scale**2).sum() + (layer.output_scale**2).sum())
    else:
        expected_free = torch.zeros(())
    torch.testing.assert_close(free, expected_free)
    (free + kern).backward()  # differentiable
    assert layer.u.grad is not None


def test_sparsity():
    torch.manual_seed(3)
    layer = KernelLinear(50, 20, embedding_dim=3)
    assert layer.sparsity() == 0.0  # the reference init puts every pair inside the support
    with torch.no_grad():
        layer.u.add_(10.0)  # every u_i far from every v_j: all weights exactly zero
    assert layer.sparsity() == 1.0
    assert torch.equal(layer.weight, torch.zeros(50, 20))
    assert torch.equal(layer(torch.randn(2, 50)), layer.bias.expand(2, 20))
    with torch.no_grad():
        layer.u[:10] = 0.0  # 10 of 50 rows back inside
    assert layer.sparsity() == pytest.approx(0.8)
    assert isinstance(layer.sparsity(), float)
    assert KernelLinear(5, 5, kernel="linear", gated=False).sparsity() == 0.0
    ungated = KernelLinear(300, 200, embedding_dim=5, gated=False)
    assert 0.2 < ungated.sparsity() < 0.95  # a finite-support layer spread at init


# --------------------------------------------------------------------------- input paths

SPARSE_KINDS = ["coo", "coo_uncoalesced", "csr", "SparseInput_from_csr", "SparseInput_from_coo"]


def as_kind(x, kind):
    if kind == "coo":
        return x.to_sparse()
    if kind == "coo_uncoalesced":
        coo = x.to_sparse()
        idx, val = coo.indices(), coo.values()
        # every entry split in two halves: same matrix, uncoalesced
        return torch.sparse_coo_tensor(
            torch.cat([idx, idx], 1),
            torch.cat([val / 2, val / 2]),
            x.shape,
            check_invariants=True,
        )
    if kind == "csr":
        return x.to_sparse_csr()
    if kind == "SparseInput_from_csr":
        return SparseInput(x.to_sparse_csr())
    if kind == "SparseInput_from_coo":
        return SparseInput(x.to_sparse())
    raise ValueError(kind)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("kind", SPARSE_KINDS)
def test_sparse_input_matches_dense_in_values_and_gradients(name, kind):
    layer = smooth_layer(9, 5, **CONFIGS[name])
    x = make_x(7, 9, seed=4)
    g = torch.randn(7, 5, dtype=torch.float64)
    out = layer(x)
    (out * g).sum().backward()
    dense_grads = grads_of(layer)
    layer.zero_grad()
    out_sparse = layer(as_kind(x, kind))
    assert out_sparse.layout == torch.strided
    torch.testing.assert_close(out_sparse, out)
    (out_sparse * g).sum().backward()
    for pname, grad in grads_of(layer).items():
        torch.testing.assert_close(grad, dense_grads[pname], msg=pname)


class _RecordOutputs(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.outputs = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.outputs.append((str(func), t.layout, tuple(t.shape)))
        return out


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("kind", SPARSE_KINDS)
def test_sparse_path_never_densifies(kind, monkeypatch):
    n, p = 11, 7  # shapes distinct from every parameter's
    layer = KernelLinear(p, 3, embedding_dim=2, kernel="rbf", embedding_init_std=0.5)
    xs = as_kind(make_x(n, p, seed=5, dtype=torch.float32), kind)

    def refuse(*args, **kwargs):
        raise AssertionError("the input was densified")

    monkeypatch.setattr(torch.Tensor, "to_dense", refuse)
    with _RecordOutputs() as rec:
        layer(xs).sum().backward()
    dense_like_input = [
        (op, shape)
        for op, layout, shape in rec.outputs
        if layout == torch.strided and shape in ((n, p), (p, n))
    ]
    assert not dense_like_input, dense_like_input
    assert any(layout != torch.strided for _, layout, _ in rec.outputs) or kind.startswith(
        "SparseInput"
    )
    assert layer.u.grad is not None and layer.W.grad is not None


def _few_features(n, p, present, seed):
    """Sparse-looking dense rows in which only the columns ``present`` are non-zero."""
    x = make_x(n, p, seed=seed, density=0.7)
    mask = torch.zeros(p, dtype=torch.bool)
    mask[list(present)] = True
    return x * mask


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("kind", ["coo", "csr"])
def test_sparse_batch_computes_only_the_weight_rows_of_present_features(name, kind):
    in_features, out_features = 12, 5
    layer = smooth_layer(in_features, out_features, **CONFIGS[name])
    x = _few_features(6, in_features, present=[1, 4, 5, 10], seed=7)
    g = torch.randn(6, out_features, dtype=torch.float64)
    out = layer(x)
    (out * g).sum().backward()
    dense_grads = grads_of(layer)
    layer.zero_grad()
    with _RecordOutputs() as rec:
        out_sparse = layer(as_kind(x, kind))
    torch.testing.assert_close(out_sparse, out)
    (out_sparse * g).sum().backward()
    for pname, grad in grads_of(layer).items():
        torch.testing.assert_close(grad, dense_grads[pname], msg=pname)
    # the full (in_features, out_features) weight was never built, only 4 of its 12 rows
    shapes = {shape for _, _, shape in rec.outputs}
    assert (in_features, out_features) not in shapes
    assert (4, out_features) in shapes


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_sparse_batch_with_most_features_present_or_a_callable_kernel_uses_the_full_weight():
    def rbf(U, V):  # a CallableKernel cannot promise to be a function of pairs
        return torch.exp(-squared_distances(U, V))

    x = _few_features(6, 12, present=[1, 4, 5, 10], seed=7)
    for layer, x_in in (
        (smooth_layer(12, 5, kernel=rbf, gated=True), x),
        (smooth_layer(12, 5, kernel="rbf", gated=True), make_x(30, 12, seed=1, density=0.9)),
    ):
        with _RecordOutputs() as rec:
            out = layer(x_in.to_sparse_csr())
        torch.testing.assert_close(out, layer(x_in))
        assert (12, 5) in {shape for _, _, shape in rec.outputs}


def test_sparse_input_object():
    x = make_x(6, 4, seed=6, dtype=torch.float32)
    si = SparseInput(x.to_sparse())
    assert si.shape == (6, 4) and si.csr.layout == torch.sparse_csr
    assert torch.equal(si.csr_t.to_dense(), x.T)
    si64 = si.to(torch.float64)
    assert si64.csr.dtype == torch.float64 and si64.csr_t.dtype == torch.float64
    assert si.csr.dtype == torch.float32  # a copy
    with pytest.raises(ValueError, match="sparse COO or CSR"):
        SparseInput(x)


# --------------------------------------------------------------------------- forward_at


def random_pairs(n_rows, n_cols, n_pairs, seed):
    g = torch.Generator().manual_seed(seed)
    flat = torch.randperm(n_rows * n_cols, generator=g)[:n_pairs]  # distinct, arbitrary order
    return flat // n_cols, flat % n_cols


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("as_index", ["EntryIndex", "tuple_of_tensors", "tuple_of_lists", "numpy"])
def test_forward_at_matches_gather(name, as_index):
    layer = smooth_layer(8, 6, **CONFIGS[name])
    rows, cols = random_pairs(10, 6, 25, seed=7)
    index = {
        "EntryIndex": lambda: EntryIndex(rows, cols, shape=(10, 6)),
        "tuple_of_tensors": lambda: (rows, cols),
        "tuple_of_lists": lambda: (rows.tolist(), cols.tolist()),
        "numpy": lambda: (rows.numpy(), cols.numpy()),
    }[as_index]()
    x = make_x(10, 8, seed=8, density=0.7).requires_grad_()
    g = torch.randn(25, dtype=torch.float64)
    at = assert_forward_at_matches_gather(layer, x, rows, cols, index, g)
    assert at.shape == (25,)


def assert_forward_at_matches_gather(layer, x, rows, cols, index, weights):
    """forward_at's values, input gradient and parameter gradients equal those of
    gathering the full output at (rows, cols); returns forward_at's values."""
    full = layer(x)[rows, cols]
    (full * weights).sum().backward()
    expected_grads, expected_x_grad = grads_of(layer), x.grad.clone()
    layer.zero_grad()
    x.grad = None

    at = layer.forward_at(x, index)
    torch.testing.assert_close(at, full)
    (at * weights).sum().backward()
    torch.testing.assert_close(x.grad, expected_x_grad)
    for pname, grad in grads_of(layer).items():
        torch.testing.assert_close(grad, expected_grads[pname], msg=pname)
    return at


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("kind", ["coo", "csr", "SparseInput_from_csr"])
def test_forward_at_with_sparse_input(kind):
    layer = smooth_layer(8, 6, kernel="finite_support")
    x = make_x(10, 8, seed=9)
    rows, cols = random_pairs(10, 6, 12, seed=10)
    torch.testing.assert_close(
        layer.forward_at(as_kind(x, kind), (rows, cols)), layer(x)[rows, cols]
    )


@pytest.mark.parametrize("row_major", [True, False])
def test_forward_at_in_column_blocks_matches_gather(row_major, monkeypatch):
    # Large products are computed over column blocks (see layers._BLOCK_BYTES); blocks of
    # 3 columns here, some of them without a pair.
    layer = smooth_layer(8, 30, kernel="rbf")
    monkeypatch.setattr(layers, "_BLOCK_BYTES", 3 * 8 * 8)
    g = torch.Generator().manual_seed(11)
    mask = torch.rand(40, 30, generator=g) < 0.3
    mask[:, 3:6] = False
    rows, cols = mask.nonzero(as_tuple=True)
    if not row_major:
        order = torch.randperm(rows.numel(), generator=g)
        rows, cols = rows[order], cols[order]
    x = make_x(40, 8, seed=12, density=0.7).requires_grad_()
    w = torch.randn(rows.numel(), dtype=torch.float64, generator=g)
    index = EntryIndex(rows, cols, shape=(40, 30))
    assert_forward_at_matches_gather(layer, x, rows, cols, index, w)
    assert index._blocks  # the blocked products were used


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_sparse_input_in_column_blocks_matches_dense(monkeypatch):
    layer = smooth_layer(30, 7, kernel="finite_support")
    monkeypatch.setattr(layers, "_BLOCK_BYTES", 4 * 8 * 7)  # blocks of 4 columns (or rows)
    x = make_x(25, 30, seed=13, density=0.3)
    x[:, 8:12] = 0.0  # an empty block
    g = torch.randn(25, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(14))
    (layer(x) * g).sum().backward()
    expected = grads_of(layer)
    layer.zero_grad()
    prepared = SparseInput(x.to_sparse_csr())
    out = layer(prepared)
    assert prepared._blocks
    torch.testing.assert_close(out, layer(x))
    (out * g).sum().backward()
    for pname, grad in grads_of(layer).items():
        torch.testing.assert_close(grad, expected[pname], msg=pname)


def test_forward_at_index_errors():
    layer = KernelLinear(4, 3)
    x = torch.randn(5, 4)
    with pytest.raises(ValueError, match=r"distinct.*1 repeat.*\(row 0, column 2\)"):
        layer.forward_at(x, ([0, 1, 0], [2, 2, 2]))
    with pytest.raises(ValueError, match="distinct"):
        EntryIndex([3, 3], [1, 1], shape=(5, 3))
    with pytest.raises(ValueError, match=r"row indices must lie in \[0, 5\)"):
        layer.forward_at(x, ([5], [0]))
    with pytest.raises(ValueError, match=r"column indices must lie in \[0, 3\)"):
        layer.forward_at(x, ([0], [-1]))
    with pytest.raises(ValueError, match="differ in length: 2 != 1"):
        layer.forward_at(x, ([0, 1], [0]))
    with pytest.raises(ValueError, match=r"index shape \(6, 3\) does not match .* \(5, 3\)"):
        layer.forward_at(x, EntryIndex([0], [0], shape=(6, 3)))
    with pytest.raises(ValueError, match="input has 3 features, but KernelLinear expects 4"):
        layer.forward_at(torch.randn(5, 3), ([0], [0]))


def test_forward_at_empty_and_full_index():
    layer = KernelLinear(4, 3)
    x = torch.randn(5, 4)
    assert layer.forward_at(x, ([], [])).shape == (0,)
    rows, cols = np.divmod(np.arange(15)[::-1], 3)
    idx = EntryIndex(rows, cols, shape=(5, 3))
    assert idx.n_pairs == 15
    torch.testing.assert_close(layer.forward_at(x, idx), layer(x)[rows, cols])


def _tensors(obj):
    return {name: value for name, value in vars(obj).items() if isinstance(value, torch.Tensor)}


def test_entry_index_to_moves_every_tensor_and_leaves_the_original():
    # "meta" is a device every machine has: a CPU-to-CPU move could not tell a copy that
    # moved from one that stayed.
    idx = EntryIndex([0, 2], [1, 0], shape=(3, 2))
    moved = idx.to("meta")
    assert moved is not idx and moved.shape == idx.shape and moved.n_pairs == idx.n_pairs
    assert _tensors(moved).keys() == _tensors(idx).keys() and _tensors(moved)
    assert all(t.device.type == "meta" for t in _tensors(moved).values())
    assert all(t.device.type == "cpu" for t in _tensors(idx).values())


def test_sparse_input_to_casts_the_matrix_and_its_transpose():
    x = SparseInput(torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]).to_sparse_csr())
    cast = x.to(torch.float64)
    assert cast.csr.dtype == cast.csr_t.dtype == torch.float64
    assert x.csr.dtype == x.csr_t.dtype == torch.float32
    torch.testing.assert_close(cast.csr_t.to_dense(), cast.csr.to_dense().T)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_forward_at_on_cuda_matches_cpu():
    layer = KernelLinear(6, 4, kernel="finite_support", gated=True).double()
    x = make_x(5, 6, seed=3, density=0.5)
    rows, cols = random_pairs(5, 4, 8, seed=4)
    index = EntryIndex(rows, cols, shape=(5, 4))
    expected = layer.forward_at(x, index)
    on_gpu = copy.deepcopy(layer).to("cuda").forward_at(x.to("cuda"), index.to("cuda"))
    torch.testing.assert_close(on_gpu.cpu(), expected)


# --------------------------------------------------------------------------- gradcheck


class _At(nn.Module):
    def __init__(self, layer, index):
        super().__init__()
        self.layer, self.index = layer, index

    def forward(self, x):
        return self.layer.forward_at(x, self.index)


def _gradcheck_params(module, x, names_prefix=""):
    names = [name for name, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for _, p in module.named_parameters())

    def f(*ps):
        return torch.func.functional_call(module, dict(zip(names, ps)), (x,))

    return torch.autograd.gradcheck(f, params, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("path", ["dense", "coo", "csr", "SparseInput_from_csr", "forward_at"])
def test_gradcheck_all_parameters(name, path):
    layer = smooth_layer(5, 4, **CONFIGS[name])
    x = make_x(6, 5, seed=11, density=0.6)
    if path == "forward_at":
        rows, cols = random_pairs(6, 4, 9, seed=12)
        module = _At(layer, EntryIndex(rows, cols, shape=(6, 4)))
    else:
        module, x = layer, (x if path == "dense" else as_kind(x, path))
    assert _gradcheck_params(module, x)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_gradcheck_forward_at_wrt_input(name):
    layer = smooth_layer(5, 4, **CONFIGS[name])
    index = EntryIndex(*random_pairs(6, 4, 10, seed=13), shape=(6, 4))
    x = make_x(6, 5, seed=14, density=1.0).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: layer.forward_at(x, index), (x,))


# --------------------------------------------------------------------------- dtype, device, io


def test_double_and_to_follow_the_module():
    layer = KernelLinear(5, 3, kernel="rbf", gated=False)
    assert all(p.dtype == torch.float32 for p in layer.parameters())
    layer.double()
    assert all(p.dtype == torch.float64 for p in layer.parameters())
    x = torch.randn(4, 5, dtype=torch.float64)
    assert layer(x).dtype == torch.float64 and layer.weight.dtype == torch.float64
    assert layer.forward_at(x, ([0, 3], [2, 1])).dtype == torch.float64
    assert layer(x.to_sparse()).dtype == torch.float64
    layer.to(torch.float32)
    assert layer.weight.dtype == torch.float32
    layer.to("cpu", dtype=torch.float64)
    assert layer.u.dtype == torch.float64 and layer.u.device.type == "cpu"
    explicit = KernelLinear(5, 3, dtype=torch.float64, device="cpu")
    assert all(p.dtype == torch.float64 for p in explicit.parameters())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_state_dict_round_trip(name):
    torch.manual_seed(15)
    layer = KernelLinear(6, 4, embedding_dim=2, embedding_init_std=0.5, **CONFIGS[name])
    state = layer.state_dict()
    expected_keys = {"u", "v"} | {k for k in ("W", "bias") if getattr(layer, k) is not None}
    if layer.signed:
        expected_keys |= {"input_scale", "output_scale"}
    assert set(state) == expected_keys
    torch.manual_seed(16)
    other = KernelLinear(6, 4, embedding_dim=2, embedding_init_std=0.5, **CONFIGS[name])
    assert not torch.equal(other.weight, layer.weight)
    other.load_state_dict(state)
    x = torch.randn(3, 6)
    assert torch.equal(other(x), layer(x))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_pickle_round_trip(name):
    layer = KernelLinear(6, 4, embedding_dim=2, embedding_init_std=0.5, **CONFIGS[name])
    clone = pickle.loads(pickle.dumps(layer))
    x = torch.randn(3, 6)
    assert torch.equal(clone(x), layer(x))
    assert repr(clone) == repr(layer) and clone.kernel.equivalent(layer.kernel)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_wrong_input_width_raises_value_error_naming_sizes():
    layer = KernelLinear(4, 2)
    message = re.escape("input has 3 features, but KernelLinear expects 4.")
    for x in (
        torch.randn(5, 3),
        torch.randn(3),
        torch.randn(5, 3).to_sparse(),
        torch.randn(5, 3).to_sparse_csr(),
        SparseInput(torch.randn(5, 3).to_sparse()),
    ):
        with pytest.raises(ValueError, match=message):
            layer(x)


def test_functional_twins():
    layer = KernelLinear(5, 3, kernel="rbf", gated=False, embedding_init_std=0.5)
    args = (layer.u, layer.v, layer.kernel, layer.W)
    scales = (layer.input_scale, layer.output_scale)
    assert torch.equal(kernel_weight(*args, *scales), layer.weight)
    x = torch.randn(4, 5)
    out = kernel_linear(x, *args, layer.bias, *scales)
    assert torch.equal(out, layer(x))
    assert torch.equal(
        kernel_linear(x, layer.u, layer.v, LinearKernel()), x @ (layer.u @ layer.v.T)
    )


# --------------------------------------------------------------------------- properties


@settings(max_examples=30, deadline=None)
@given(
    in_features=st.integers(1, 12),
    out_features=st.integers(1, 12),
    d=st.integers(1, 6),
    batch=st.integers(1, 9),
    kernel=st.sampled_from(["linear", "poly", "rbf", "laplacian", "finite_support"]),
    gated=st.booleans(),
    bias=st.booleans(),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    data=st.data(),
)
def test_layer_properties(in_features, out_features, d, batch, kernel, gated, bias, dtype, data):
    torch.manual_seed(data.draw(st.integers(0, 2**16), label="seed"))
    layer = KernelLinear(
        in_features,
        out_features,
        embedding_dim=d,
        kernel=kernel,
        gated=gated,
        bias=bias,
        embedding_init_std=0.5,
        dtype=dtype,
    )
    x = torch.randn(batch, in_features, dtype=dtype)
    out = layer(x)
    assert out.shape == (batch, out_features) and out.dtype == dtype
    W = layer.weight
    assert W.shape == (in_features, out_features)
    expected = x @ W + (layer.bias if bias else 0)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, expected, rtol=tol, atol=tol)
    n_pairs = data.draw(st.integers(0, batch * out_features), label="n_pairs")
    rows, cols = random_pairs(batch, out_features, n_pairs, seed=n_pairs)
    torch.testing.assert_close(
        layer.forward_at(x, (rows, cols)), out[rows, cols], rtol=tol, atol=tol
    )
    torch.testing.assert_close(layer(x.to_sparse()), out, rtol=tol, atol=tol)
    free, kern = layer.regularization()
    assert free.shape == kern.shape == () and kern.item() >= 0 and free.item() >= 0
    assert 0.0 <= layer.sparsity() <= 1.0


# --------------------------------------------------------------------------- KernelNetwork


@pytest.mark.parametrize("hidden", [(), (7,), (6, 5)])
def test_network_shapes_and_regularization(hidden):
    torch.manual_seed(17)
    net = KernelNetwork(8, hidden, 3, embedding_dim=2, kernel="rbf", activation="tanh")
    assert len(net.layers) == len(hidden) + 1
    x = torch.randn(4, 8)
    assert net(x).shape == (4, 3)
    assert net.hidden(x).shape == (4, hidden[-1] if hidden else 8)
    if not hidden:
        assert torch.equal(net.hidden(x), x)
    free, kern = net.regularization()
    assert free.shape == kern.shape == ()
    per_layer = [layer.regularization() for layer in net.layers]
    torch.testing.assert_close(free, sum(f for f, _ in per_layer))
    torch.testing.assert_close(kern, sum(k for _, k in per_layer))
    assert net.n_free_parameters() == sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("gated", [True, False])
def test_network_free_penalty_value_is_the_free_weight_penalty(gated):
    torch.manual_seed(19)
    net = KernelNetwork(6, (5, 4), 2, kernel="rbf", gated=gated, scale_rank=2)
    expected = float(net.regularization(kernel=False)[0].detach())
    assert net.free_penalty_value() == pytest.approx(expected, rel=1e-6)
    assert net.free_penalty_value(net.penalized_parameters()) == net.free_penalty_value()
    linear = KernelNetwork(6, (5,), 2, kernel="linear", gated=False)
    assert linear.penalized_parameters() == [] and linear.free_penalty_value() == 0.0


def test_network_forward_is_the_composition_of_its_layers():
    net = KernelNetwork(5, (4,), 2, embedding_dim=2, activation="relu", output_activation="sigmoid")
    x = torch.randn(3, 5)
    expected = torch.sigmoid(net.layers[1](torch.relu(net.layers[0](x))))
    torch.testing.assert_close(net(x), expected)


def test_network_forward_at_matches_gather_in_values_and_gradients():
    torch.manual_seed(18)
    net = KernelNetwork(
        6,
        (5,),
        4,
        embedding_dim=2,
        kernel="finite_support",
        output_activation="sigmoid",
        dtype=torch.float64,
    )
    x = torch.randn(7, 6, dtype=torch.float64)
    rows, cols = random_pairs(7, 4, 11, seed=19)
    full = net(x)[rows, cols]
    full.sum().backward()
    expected = {n: p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad()
    at = net.forward_at(x, EntryIndex(rows, cols, shape=(7, 4)))
    torch.testing.assert_close(at, full)
    at.sum().backward()
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], msg=name)


def test_network_layers_share_nothing_and_errors():
    net = KernelNetwork(3, (4,), 2, kernel=RBFKernel(gamma=0.3))
    assert net.layers[0].kernel.equivalent(net.layers[1].kernel)
    assert net.layers[0].kernel is not net.layers[1].kernel
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        KernelNetwork(3, (4,), 2, activation="swish")
    net64 = KernelNetwork(3, (4,), 2, dtype=torch.float64)
    assert net64(torch.randn(2, 3, dtype=torch.float64)).dtype == torch.float64
    clone = pickle.loads(pickle.dumps(net64))
    x = torch.randn(2, 3, dtype=torch.float64)
    assert torch.equal(clone(x), net64(x))


def test_weight_is_the_transpose_of_nn_linear_layout_and_options_are_keyword_only():
    layer = KernelLinear(5, 3, kernel="rbf", gated=False).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    assert layer.weight.shape == (5, 3)
    dense = nn.Linear(5, 3).double()
    with torch.no_grad():
        dense.weight.copy_(layer.weight.T)
        dense.bias.copy_(layer.bias)
    torch.testing.assert_close(layer(x), dense(x))
    assert not isinstance(layer.weight, nn.Parameter)
    with pytest.raises(TypeError):
        KernelLinear(5, 3, 4)
