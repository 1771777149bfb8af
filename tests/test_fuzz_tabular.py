"""Property-based fuzzing of KernelNetClassifier and KernelNetRegressor (see fuzz_support.py).

Generated inputs: feature matrices of every numeric dtype and of strings and objects,
in lists, arrays (C, Fortran, strided, read-only memmaps), pandas frames with
nullable-integer, categorical and string columns, and CSR/CSC/COO matrices; NaN and
inf anywhere; empty, one-row and wrongly shaped inputs; targets on odd scales.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from fuzz_support import (
    DENSE_CONTAINERS,
    SPARSE_CONTAINERS,
    Case,
    assert_finite_array,
    assert_unchanged,
    check_call,
    contain,
    fingerprint,
    odd_scale,
)
from hypothesis import given
from hypothesis import strategies as st

from skkernelnet import KernelNetClassifier, KernelNetRegressor

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning",
    "ignore:X has feature names:UserWarning",
    "ignore:X does not have valid feature names:UserWarning",
)

N_FEATURES = 4
TINY = {"hidden_layer_sizes": (5,), "max_iter": 3, "random_state": 0}
LABELS = np.array(["ant", "bee", "cat"])


def _train_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, N_FEATURES))
    return X, LABELS[np.arange(40) % 3], X @ [1.0, -2.0, 0.5, 0.0] + 100.0


@pytest.fixture(scope="module", params=["classifier", "regressor"])
def model(request):
    X, labels, target = _train_data()
    if request.param == "classifier":
        return KernelNetClassifier(**TINY).fit(X, labels)
    return KernelNetRegressor(**TINY).fit(X, target)


@pytest.fixture(scope="module")
def refit_target(model):
    import copy

    return copy.deepcopy(model)


# -- generators --------------------------------------------------------------------------
ODD_VALUES = [0.0, -0.0, 1.0, -1.0, 1e-300, 1e-8, 3.5, -7.25, 1e6, -1e6, 1e30]
NONFINITE = [np.nan, np.inf, -np.inf]
DTYPES = [
    "float64",
    "float32",
    "int64",
    "int8",
    "uint16",
    "bool",
    "object",
    "str",
    "text",
    "complex",
]
FRAME_STYLES = ["float", "nullable_int", "nullable_float", "category", "string", "object"]


@st.composite
def feature_cases(draw, n_features=N_FEATURES, min_rows=0):
    """A feature matrix in every container, and what must happen to it."""
    n = draw(st.integers(min_rows, 6) | st.integers(max(min_rows, 1), 6))
    p = draw(st.sampled_from([n_features] * 8 + [n_features - 1, n_features + 1]))
    values = np.array(
        [
            [draw(st.floats(-5, 5, width=32) | st.sampled_from(ODD_VALUES)) for _ in range(p)]
            for _ in range(n)
        ],
        dtype=float,
    ).reshape(n, p)
    problems = []
    hole = draw(st.sampled_from([None] * 8 + NONFINITE)) if n else None
    if hole is not None:
        values[draw(st.integers(0, n - 1)), draw(st.integers(0, p - 1))] = hole
    dtype = draw(st.sampled_from(["float64"] * 6 + DTYPES))
    container = draw(
        st.sampled_from(DENSE_CONTAINERS * 2 + ["typed_frame"] * 3 + SPARSE_CONTAINERS)
    )
    if container in SPARSE_CONTAINERS and dtype in ("object", "str", "text"):
        dtype = "float64"
    description = {"n": n, "p": p, "hole": hole, "dtype": dtype, "container": container}

    if container == "typed_frame":
        import pandas as pd

        styles = [draw(st.sampled_from(FRAME_STYLES)) for _ in range(p)]
        description["styles"] = styles
        columns = {}
        for k, style in enumerate(styles):
            column = values[:, k]
            if style == "nullable_int":
                if np.isinf(column).any() or (np.abs(np.nan_to_num(column)) > 2**53).any():
                    style = styles[k] = "float"
                else:
                    rounded = [None if np.isnan(v) else int(round(v)) for v in column]
                    columns[f"f{k}"] = pd.array(rounded, dtype="Int64")
                    if any(v is None for v in rounded):
                        problems.append("NaN|missing|NA")
                    continue
            if style == "float":
                columns[f"f{k}"] = pd.Series(column)
            elif style == "nullable_float":
                columns[f"f{k}"] = pd.array(column.tolist(), dtype="Float64")
            elif style == "category":
                columns[f"f{k}"] = pd.Series(column).astype("category")
            elif style == "string":
                columns[f"f{k}"] = pd.Series([f"x{v:g}" for v in column], dtype="string")
            else:
                columns[f"f{k}"] = pd.Series(column.tolist(), dtype=object)
        data = pd.DataFrame(columns, index=range(n))
        if hole is not None and not problems:
            problems.append("NaN|infinity|missing|NA")
        if "string" in styles and n:
            problems.append("string|could not convert|dtype")
    else:
        if dtype == "text":  # words, not numbers written as text
            array = np.array([[f"x{v:g}" for v in row] for row in values], dtype=str)
            array = array.reshape(n, p)
            if n:
                problems.append("string|could not convert|dtype")
        elif dtype in ("object", "str", "complex"):  # "str": numbers as text, e.g. from a CSV
            array = values.astype(dtype)
            if dtype == "complex":
                problems.append("complex")
        elif dtype in ("float64", "float32"):
            array = values.astype(dtype)
        else:  # integers and booleans cannot hold NaN: the hole is dropped
            with np.errstate(invalid="ignore", over="ignore"):
                array = np.nan_to_num(values, posinf=9, neginf=-9).astype(dtype)
            hole = description["hole"] = None
        data = contain(array, container)
        if hole is not None:
            problems.append("NaN|infinity")
    if p != n_features and n:
        problems.append("features")
    if n == 0:
        problems.append("0 sample|minimum of 1|empty|Expected 2D")
    return Case(data, "|".join(problems) or None, description), n


# -- inference ---------------------------------------------------------------------------
@given(data=st.data())
def test_inference_on_any_features(model, data):
    case, n = data.draw(feature_cases())
    width = model.module_.layers[-1].in_features
    check_call(
        lambda: model.transform(case.data),
        case,
        lambda Z: assert_finite_array(Z, (n, width), np.float64),
        model,
    )
    if isinstance(model, KernelNetClassifier):

        def check_proba(proba):
            assert_finite_array(proba, (n, len(model.classes_)), np.float64)
            np.testing.assert_allclose(proba.sum(axis=1), 1.0)

        check_call(lambda: model.predict_proba(case.data), case, check_proba, model)

        def check_labels(labels):
            assert labels.shape == (n,) and np.isin(labels, model.classes_).all()

        check_call(lambda: model.predict(case.data), case, check_labels, model)
    else:
        check_call(
            lambda: model.predict(case.data),
            case,
            lambda pred: assert_finite_array(pred, (n,), np.float64),
            model,
        )


@given(data=st.data())
def test_score_on_any_features(model, data):
    case, n = data.draw(feature_cases())
    if isinstance(model, KernelNetClassifier):
        y = data.draw(st.lists(st.sampled_from(LABELS), min_size=n, max_size=n))
    else:
        y = data.draw(st.lists(st.floats(-1e3, 1e3), min_size=n, max_size=n))

    def check_score(score):
        assert isinstance(score, float)
        assert np.isfinite(score) or n == 1  # R^2 of one sample is undefined (NaN, warned)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_call(lambda: model.score(case.data, y), case, check_score, model)


# -- fitting -----------------------------------------------------------------------------
@st.composite
def target_cases(draw, n, classifier):
    problems = []
    if classifier:
        kind = draw(st.sampled_from(["str", "int", "float", "fraction", "bool", "mixed"]))
        pool = {
            "str": ["a", "b", "c"],
            "int": [0, 7, -3],
            "float": [0.0, 1.0, 2.0],
            "fraction": [0.5, 1.5, 2.0],  # not labels: a continuous target
            "bool": [True, False],
            "mixed": ["a", 1],
        }[kind]
        y = [draw(st.sampled_from(pool)) for _ in range(n)]
        if kind == "mixed" and any(not isinstance(v, str) for v in y):
            problems.append("mix of|label type")  # nor is an object array of ints
        elif kind == "fraction" and any(v != int(v) for v in y):
            problems.append("label type: 'continuous'")
        elif n and len(set(y)) < 2:
            problems.append("only one class|at least 2 classes")
        y = np.array(y, dtype=object if kind == "mixed" else None)
        if n and kind == "float" and draw(st.integers(0, 5)) == 0:
            y[0] = np.nan
            problems = ["NaN"]
        description = {"labels": kind}
    else:
        scale, shift = draw(odd_scale())
        y = shift + scale * np.asarray(draw(st.lists(st.floats(-2, 2), min_size=n, max_size=n)))
        if n and draw(st.integers(0, 5)) == 0:
            y[draw(st.integers(0, n - 1))] = draw(st.sampled_from(NONFINITE))
            problems.append("NaN|infinity")
        if draw(st.integers(0, 5)) == 0:
            y = np.column_stack([y, -y])  # two outputs
        description = {"targets": (scale, shift, y.ndim)}
    return y, problems, description


@given(data=st.data())
def test_fit_on_any_data(model, refit_target, data):
    case, n = data.draw(feature_cases(min_rows=1))
    classifier = isinstance(model, KernelNetClassifier)
    y, y_problems, y_description = data.draw(target_cases(n, classifier))
    problems = ([case.problem] if case.problem else []) + y_problems
    if not case.valid and "features" in case.problem:  # any width is fine for a fresh fit
        problems = [p for p in problems if p != case.problem]
        rest = case.problem.replace("|features", "").replace("features", "")
        problems += [rest] if rest else []
    fit_case = Case(case.data, "|".join(problems) or None, {**case.description, **y_description})
    fresh = (KernelNetClassifier if classifier else KernelNetRegressor)(**TINY)

    def check_fitted(fitted):
        assert fitted is fresh
        Z = fitted.transform(case.data)
        assert_finite_array(Z, (n, TINY["hidden_layer_sizes"][-1]), np.float64)
        if not classifier:
            pred = fitted.predict(case.data)
            assert_finite_array(pred, np.shape(y), np.float64)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_call(lambda: fresh.fit(case.data, y), fit_case, check_fitted)
        if not fit_case.valid:  # a failed refit leaves the fitted model as it was
            before = fingerprint(refit_target)
            with pytest.raises((ValueError, TypeError)):
                refit_target.fit(case.data, y)
            assert_unchanged(refit_target, before)


def test_sparse_formats_agree(model):
    X = _train_data()[0][:7]
    dense = model.transform(X)
    for fmt in SPARSE_CONTAINERS:
        assert np.array_equal(model.transform(getattr(sp, f"{fmt}_matrix")(X)), dense)


# -- failures the fuzzing found, kept as regular tests ------------------------------------------
@pytest.mark.parametrize(
    "labels, match",
    [
        (np.array(["a", "a", "b", 1], dtype=object), r"Mix of label types in y \(int, str\)"),
        (np.array([1, 2, 1, 2], dtype=object), "object array of int values"),
        (np.array([0.5, 1.5, 0.5, 2.0]), "non-integer numbers; .* use KernelNetRegressor"),
    ],
)
def test_found_label_type_errors_name_the_problem(labels, match):
    with pytest.raises(ValueError, match=match):
        KernelNetClassifier(**TINY).fit(np.zeros((4, N_FEATURES)), labels)
