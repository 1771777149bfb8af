"""Shared pieces of the property-based (hypothesis) fuzz suites, tests/test_fuzz_*.py.

The invariant every public method must keep, whatever it is given: either a
``ValueError``/``TypeError`` whose message names the problem in the user's terms
(users, items, ratings, rows, columns, features, ...), or a finite result of the
documented shape and dtype; never another exception (torch ``RuntimeError``,
``IndexError``, ``KeyError``, ...), never a NaN, and never a change to the fitted model.

Generators describe an input by a *case*: the data, the container it comes in
and whether it is valid. A valid case must succeed; an invalid one must raise
with a message matching the case's ``problem`` pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from hypothesis import event, note
from hypothesis import strategies as st

# What a user-facing message must not mention: the package's internals.
INTERNAL_NAMES = re.compile(
    r"EntryIndex|SparseInput|RatingAutoencoder|KernelNetwork|csr_from_scipy|"
    r"torch|Tensor|sparse_csr|\b_[a-z_]+\(",
)
# The layer is a torch module: its messages may speak of tensors, dtypes and devices.
LAYER_INTERNAL_NAMES = re.compile(r"EntryIndex|SparseInput|csr_from_scipy|\b_[a-z_]+\(")

# Containers of a 2-D numeric array, as data arrives from files, frames and pipelines.
DENSE_CONTAINERS = ["list", "ndarray", "fortran", "noncontiguous", "readonly_memmap", "frame"]
SPARSE_CONTAINERS = ["csr", "csc", "coo"]


@dataclass
class Case:
    """One generated input and what must happen to it."""

    data: object
    problem: str | None = None  # regex the error must match; None: the call must succeed
    description: dict = field(default_factory=dict)

    @property
    def valid(self):
        return self.problem is None


def contain(array, container):
    """The 2-D array ``array`` in the given container (copies; never a view of ``array``)."""
    array = np.array(array)
    if container == "list":
        return array.tolist()
    if container == "ndarray":
        return np.ascontiguousarray(array)
    if container == "fortran":
        return np.asfortranarray(array)
    if container == "noncontiguous":
        wide = np.repeat(array, 2, axis=1)  # every other column: a strided view
        view = wide[:, ::2]
        assert not view.flags.c_contiguous or array.shape[1] <= 1 or array.shape[0] == 0
        return view
    if container == "readonly_memmap":
        from sklearn.utils._testing import create_memmap_backed_data

        if array.dtype == object:  # object arrays cannot be memory-mapped
            out = array.copy()
            out.setflags(write=False)
            return out
        return create_memmap_backed_data(array)
    if container == "frame":
        import pandas as pd

        return pd.DataFrame(array, columns=[f"c{k}" for k in range(array.shape[1])])
    if container in SPARSE_CONTAINERS:
        return getattr(sp, f"{container}_matrix")(array)
    raise AssertionError(container)


def _copy(value):
    if isinstance(value, torch.nn.Module):
        return {k: v.detach().clone() for k, v in value.state_dict().items()}
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if sp.issparse(value):
        return value.copy()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def fingerprint(model):
    """A deep copy of everything a fitted model holds, for :func:`assert_unchanged`."""
    if isinstance(model, torch.nn.Module):
        return {"state": _copy(model)}
    return {name: _copy(value) for name, value in vars(model).items()}


def _same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if sp.issparse(a):
        return sp.issparse(b) and a.shape == b.shape and (a != b).nnz == 0
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and np.isnan(a):
        return isinstance(b, float) and np.isnan(b)
    if isinstance(a, (str, int, float, bool, type(None), np.generic, torch.device, torch.dtype)):
        return a == b
    return True  # objects (kernels, label encoders, generators) are compared by their arrays


def assert_unchanged(model, before):
    after = fingerprint(model)
    assert after.keys() == before.keys(), f"attributes changed: {set(after) ^ set(before)}"
    changed = [k for k in before if not _same(before[k], after[k])]
    assert not changed, f"the call changed the fitted model: {changed}"


def check_call(call, case, check_result, model=None, internal_names=INTERNAL_NAMES):
    """Run ``call()`` and check the fuzz invariant for ``case`` (see the module docstring)."""
    note(f"case: {case.description}")
    event("valid input" if case.valid else "invalid input")
    before = fingerprint(model) if model is not None else None
    try:
        result = call()
    except (ValueError, TypeError) as error:
        message = str(error)
        note(f"raised {type(error).__name__}: {message}")
        assert not case.valid, f"a valid input was refused: {type(error).__name__}: {message}"
        assert re.search(case.problem, message, flags=re.IGNORECASE), (
            f"the message does not name the problem ({case.problem!r}): {message}"
        )
        assert not internal_names.search(message), f"the message names internals: {message}"
    else:
        assert case.valid, f"an invalid input ({case.problem!r}) was accepted: {result!r}"
        check_result(result)
    if model is not None:
        assert_unchanged(model, before)


def assert_finite_array(result, shape, dtype=None):
    assert isinstance(result, np.ndarray), type(result)
    assert result.shape == shape, (result.shape, shape)
    if dtype is not None:
        assert result.dtype == dtype, (result.dtype, dtype)
    if result.dtype.kind in "fc":
        assert np.isfinite(result).all(), result


# Numbers of the odd kinds real files contain.
def nonfinite():
    return st.sampled_from([np.nan, np.inf, -np.inf])


def odd_scale():
    """A scale and an offset of ratings or targets: tiny, huge, negative, shifted."""
    return st.tuples(
        st.sampled_from([1e-6, 1e-3, 1.0, 10.0, 1000.0, 1e6]),
        st.sampled_from([-1e3, -5.0, 0.0, 1.0, 1e4]),
    )
