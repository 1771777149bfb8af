"""Property-based fuzzing of the layer, KernelLinear (see fuzz_support.py).

Generated: layers of every kernel, gating, bias and dtype; inputs of every dtype and
layout (dense, transposed and sliced views, COO, CSR and CSC sparse tensors, prepared
SparseInput, NumPy arrays), with NaN and inf anywhere, empty and one-row; index pairs
for forward_at of every kind (lists, arrays, tensors, floats, repeats, out of range).
The layer's invariant is the estimators' one, with one difference: like every torch
layer it propagates NaN and inf from its input rather than checking for them.
"""

import warnings

import numpy as np
import pytest
import torch
from fuzz_support import LAYER_INTERNAL_NAMES, Case, assert_unchanged, check_call, fingerprint
from hypothesis import given
from hypothesis import strategies as st

from skkernelnet.layers import KernelLinear, SparseInput

pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSC tensor support:UserWarning")

KERNELS = ["linear", "poly", "rbf", "laplacian", "finite_support"]
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@st.composite
def layers(draw):
    config = {
        "in_features": draw(st.integers(1, 5)),
        "out_features": draw(st.integers(1, 5)),
        "embedding_dim": draw(st.integers(1, 3)),
        "kernel": draw(st.sampled_from(KERNELS)),
        "gated": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "dtype": DTYPES[draw(st.sampled_from(sorted(DTYPES)))],
    }
    torch.manual_seed(draw(st.integers(0, 3)))
    layer = KernelLinear(**config)
    with torch.no_grad():  # a trained-looking layer: embeddings spread out, so K varies
        layer.u.normal_(0, 0.6)
        layer.v.normal_(0, 0.6)
    return layer


LAYOUTS = ["dense", "transposed", "sliced", "coo", "csr", "csc", "sparse_input", "numpy"]


@st.composite
def input_cases(draw, layer):
    n = draw(st.integers(0, 5) | st.integers(1, 5))
    p = draw(st.sampled_from([layer.in_features] * 6 + [layer.in_features + 1]))
    values = torch.tensor(
        [
            [draw(st.floats(-3, 3) | st.sampled_from([0.0, 1e-30, 1e3])) for _ in range(p)]
            for _ in range(n)
        ],
        dtype=torch.float64,
    ).reshape(n, p)
    hole = draw(st.sampled_from([None] * 6 + [np.nan, np.inf, -np.inf])) if n else None
    if hole is not None:
        values[draw(st.integers(0, n - 1)), draw(st.integers(0, p - 1))] = hole
    dtype_name = draw(st.sampled_from(["same"] * 6 + ["float32", "float64", "int64", "bool"]))
    dtype = layer.u.dtype if dtype_name == "same" else getattr(torch, dtype_name)
    layout = draw(st.sampled_from(LAYOUTS))
    if dtype in (torch.int64, torch.bool):
        values = torch.nan_to_num(values, nan=0.0, posinf=2.0, neginf=-2.0)
        hole = None
    x = values.to(dtype)
    if layout == "transposed":
        x = x.T.contiguous().T
    elif layout == "sliced":
        x = torch.repeat_interleave(x, 2, dim=1)[:, ::2]
    elif layout == "coo":
        x = x.to_sparse()
    elif layout == "csr":
        x = x.to_sparse_csr()
    elif layout == "csc":
        x = x.to_sparse_csc()
    elif layout == "sparse_input":
        x = SparseInput(x.to_sparse_csr())
    elif layout == "numpy":
        x = x.numpy()
    problems = []
    if layout == "numpy":
        problems.append("must be a torch.Tensor")
    if p != layer.in_features:
        problems.append("features")
    if dtype != layer.u.dtype:
        problems.append("dtype")
    description = {"n": n, "p": p, "hole": hole, "dtype": dtype_name, "layout": layout}
    case = Case(x, "|".join(problems) or None, description)
    return case, values, n


@given(data=st.data())
def test_forward_on_any_input(data):
    layer = data.draw(layers())
    case, values, n = data.draw(input_cases(layer))

    def check(out):
        assert isinstance(out, torch.Tensor) and out.layout == torch.strided
        assert out.shape == (n, layer.out_features) and out.dtype == layer.u.dtype
        if torch.isfinite(values).all():
            assert torch.isfinite(out).all()
            expected = values.to(layer.u.dtype) @ layer.weight
            if layer.bias is not None:
                expected = expected + layer.bias
            torch.testing.assert_close(out, expected)

    check_call(lambda: layer(case.data), case, check, layer, LAYER_INTERNAL_NAMES)


@st.composite
def index_cases(draw, n_rows, n_cols):
    n_pairs = draw(st.integers(0, 6))
    rows = [draw(st.integers(0, max(n_rows - 1, 0))) for _ in range(n_pairs)]
    cols = [draw(st.integers(0, n_cols - 1)) for _ in range(n_pairs)]
    problems = []
    if n_rows == 0 and n_pairs:
        problems.append("row indices must lie")
    trouble = draw(st.sampled_from([None] * 6 + ["float", "range", "negative", "short", "bool"]))
    if n_pairs and trouble == "float":
        rows = [r + 0.5 for r in rows]
        problems.append("integer indices")
    elif n_pairs and trouble == "range":
        cols[0] = n_cols
        problems.append("column indices must lie")
    elif n_pairs and trouble == "negative":
        rows[0] = -1
        problems.append("row indices must lie")
    elif trouble == "short":
        cols = cols + [0]
        problems.append("differ in length")
    elif n_pairs and trouble == "bool":
        rows = [bool(r % 2) for r in rows]
        problems.append("integer indices")
    if len({(r, c) for r, c in zip(rows, cols)}) < min(len(rows), len(cols)) and not problems:
        problems.append("must be distinct")
    kind = draw(st.sampled_from(["list", "numpy", "tensor"]))
    if kind == "numpy":
        rows, cols = np.asarray(rows), np.asarray(cols)
    elif kind == "tensor":
        rows, cols = torch.as_tensor(rows), torch.as_tensor(cols)
    description = {"n_pairs": n_pairs, "trouble": trouble, "kind": kind}
    return (rows, cols), "|".join(problems) or None, description


@given(data=st.data())
def test_forward_at_on_any_pairs(data):
    layer = data.draw(layers())
    case, values, n = data.draw(input_cases(layer))
    index, index_problem, index_description = data.draw(index_cases(n, layer.out_features))
    problems = [p for p in (case.problem, index_problem) if p]
    pair_case = Case(
        case.data, "|".join(problems) or None, {**case.description, **index_description}
    )

    def check(out):
        rows, cols = (torch.as_tensor(np.asarray(i), dtype=torch.int64) for i in index)
        assert out.shape == (len(rows),) and out.dtype == layer.u.dtype
        if torch.isfinite(values).all():
            full = layer(case.data)
            torch.testing.assert_close(out, full[rows, cols])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_call(
            lambda: layer.forward_at(case.data, index),
            pair_case,
            check,
            layer,
            LAYER_INTERNAL_NAMES,
        )


@given(
    in_features=st.sampled_from([0, -1, 2.5, True, "3", None, 3]),
    embedding_dim=st.sampled_from([0, 1.0, 2]),
    kernel=st.sampled_from(KERNELS + ["cosine", 3]),
)
def test_constructor_on_any_parameters(in_features, embedding_dim, kernel):
    valid_size = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1  # noqa: E731
    problems = []
    if not valid_size(in_features):
        problems.append("in_features must be a positive integer")
    if not valid_size(embedding_dim):
        problems.append("embedding_dim must be a positive integer")
    if kernel not in KERNELS:
        problems.append("kernel")
    case = Case(None, "|".join(problems) or None, {"in": in_features, "d": embedding_dim})

    def check(layer):
        assert layer.weight.shape == (in_features, 2)
        assert torch.isfinite(layer.weight).all()

    check_call(
        lambda: KernelLinear(in_features, 2, embedding_dim=embedding_dim, kernel=kernel),
        case,
        check,
        internal_names=LAYER_INTERNAL_NAMES,
    )


def test_found_layer_input_errors():
    layer = KernelLinear(4, 3)
    x = torch.randn(5, 4)
    with pytest.raises(TypeError, match="dtype torch.float64 but the layer's parameters are"):
        layer(x.double())
    with pytest.raises(TypeError, match="must be a torch.Tensor, got ndarray"):
        layer(x.numpy())
    with pytest.raises(TypeError, match="rows must hold integer indices"):
        layer.forward_at(x, ([0.5], [1]))
    with pytest.raises(ValueError, match="2-D input"):
        layer.forward_at(x[None], ([0], [0]))
    before = fingerprint(layer)
    with pytest.raises(ValueError, match=r"distinct.*\(row 1, column 2\)"):
        layer.forward_at(x, ([1, 1], [2, 2]))
    assert_unchanged(layer, before)
