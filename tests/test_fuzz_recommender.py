"""Property-based fuzzing of KernelCollaborativeFilter's public API (see fuzz_support.py).

Generated inputs: (user, item) pairs with int, float, string and mixed ids, known and
unknown, in lists, arrays (C, Fortran, strided, read-only memmaps), pandas frames with
categorical, nullable-integer and string columns, and sparse matrices; missing, NaN and
infinite ids anywhere; empty, one-row and wrongly shaped inputs; ratings on odd scales.
"""

import warnings
from numbers import Integral

import numpy as np
import pytest
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
from sklearn.exceptions import UndefinedMetricWarning

from skkernelnet import KernelCollaborativeFilter
from skkernelnet.datasets import make_ratings

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TINY = {"hidden_layer_sizes": (4,), "max_iter": 2, "embedding_dim": 2, "random_state": 0}


def _ratings(string_ids):
    X, y = make_ratings(30, 20, density=0.3, random_state=0, return_X_y=True)
    if string_ids:
        X = np.column_stack([[f"u{u}" for u in X[:, 0]], [f"i{i}" for i in X[:, 1]]])
    else:
        X = X + np.array([0, 1000])  # user and item ids that differ
    return X, y


@pytest.fixture(scope="module", params=["int_ids", "string_ids"])
def model(request):
    string_ids = request.param == "string_ids"
    X, y = _ratings(string_ids)
    params = {**TINY, "orientation": "user", "blend": False} if string_ids else TINY
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return KernelCollaborativeFilter(**params).fit(X, y)


# -- generators --------------------------------------------------------------------------
ID_KINDS = ["int", "float", "str", "mixed"]
UNKNOWN_IDS = {
    "int": st.sampled_from([-1, 0, 10**6, 2**62, -(2**40)]),
    "float": st.sampled_from([0.5, -0.0, 1e300, -1e-300, 3.0]),
    "str": st.sampled_from(["", "zz", "0", "nan", "u", "\u00e9t\u00e9", " u1"]),
}
HOLES = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"), "none": None, "na": "NA"}


@st.composite
def an_id(draw, known, kind):
    if kind == "mixed":
        kind = draw(st.sampled_from(["int", "float", "str"]))
    if draw(st.booleans()):  # an id the model knows, as this kind if it can be
        value = draw(st.sampled_from(known.tolist()))
        if kind == "str":
            return str(value)
        if isinstance(value, str):
            return draw(UNKNOWN_IDS[kind])
        return float(value) if kind == "float" else int(value)
    return draw(UNKNOWN_IDS[kind])


def _typed_column(values, kind, style):
    import pandas as pd

    if style == "category":
        return pd.Series(values).astype("category")
    if kind == "int" and style == "nullable":
        return pd.array(values, dtype="Int64")
    if kind == "int":
        return pd.Series(values)
    if kind == "float":
        return pd.array(values, dtype="Float64" if style == "nullable" else "float64")
    return pd.array(values, dtype="string" if style == "nullable" else "str")


def _is_hole(value):
    return (
        value is None
        or type(value).__name__ == "NAType"
        or (isinstance(value, float) and not np.isfinite(value))
    )


def _frame(columns, kinds, typed):
    import pandas as pd

    data = {}
    for name, values, kind in zip(("user", "item"), columns, kinds):
        column = None
        if typed and kind != "mixed":
            try:
                column = _typed_column(values, kind, typed[name])
            except (TypeError, ValueError, OverflowError):
                pass  # this dtype cannot hold the hole
            # a column that turned its hole into text ("inf", "nan") is not the case wanted
            if column is not None and any(
                _is_hole(v) and isinstance(c, str) for v, c in zip(values, list(column))
            ):
                column = None
        data[name] = column if column is not None else pd.Series(values, dtype=object)
    return pd.DataFrame(data)


def _pd_na():
    import pandas as pd

    return pd.NA


@st.composite
def pair_cases(draw, model):
    """(user, item) pairs in every container, and what must happen to them."""
    n = draw(st.integers(0, 6) | st.integers(1, 6))
    kinds = [draw(st.sampled_from(ID_KINDS)) for _ in range(2)]
    # mostly valid inputs: those must succeed, which is the stronger check
    container = draw(
        st.sampled_from(DENSE_CONTAINERS * 3 + ["typed_frame"] * 4 + SPARSE_CONTAINERS)
    )
    if container in SPARSE_CONTAINERS:  # a sparse matrix holds numbers only
        kinds = [draw(st.sampled_from(["int", "float"])) for _ in range(2)]
    columns = [
        [draw(an_id(ids, kind)) for _ in range(n)]
        for ids, kind in zip((model.user_ids_, model.item_ids_), kinds)
    ]
    problems = []
    hole = draw(st.sampled_from([None] * 12 + list(HOLES))) if n else None
    if hole is not None:
        row, col = draw(st.integers(0, n - 1)), draw(st.integers(0, 1))
        value = HOLES[hole]
        columns[col][row] = _pd_na() if value == "NA" else value
        if not (container in SPARSE_CONTAINERS and hole == "none"):
            problems.append("missing|NaN|infinite")
    shape = draw(st.sampled_from([None] * 12 + ["3cols", "1col", "1d", "3d"]))
    if container in SPARSE_CONTAINERS or container == "typed_frame":
        shape = draw(st.sampled_from([None] * 6 + ["3cols", "1col"]))
    typed = {}
    if container == "typed_frame":
        style = st.sampled_from(["category", "nullable", "plain"])
        typed = {"user": draw(style), "item": draw(style)}
    description = {"n": n, "kinds": kinds, "container": container, "hole": hole, "shape": shape}
    description["typed"] = typed

    if container in ("frame", "typed_frame"):
        data = _frame(columns, kinds, typed)
        if shape == "3cols":
            data["extra"] = 1
        elif shape == "1col":
            data = data[["user"]]
        elif shape in ("1d", "3d"):
            shape = None
    else:
        same_kind = kinds[0] == kinds[1] != "mixed"
        array = np.empty((n, 2), dtype=object)
        for c in range(2):
            array[:, c] = columns[c] if n else []
        if same_kind and hole is None:
            try:
                array = np.array(array.tolist() if n else np.empty((0, 2)))
            except (TypeError, ValueError):
                pass
        if container in SPARSE_CONTAINERS:
            array = np.array(
                [
                    [v if isinstance(v, (int, float)) else np.nan for v in row]
                    for row in array.tolist()
                ],
                dtype=float,
            ).reshape(n, 2)
        if shape == "3cols":
            array = np.column_stack([array, np.ones(n, dtype=array.dtype)])
        elif shape == "1col":
            array = array[:, :1]
        if container == "list" and shape == "1d":
            data = array[:, 0].tolist()
        elif container == "list" and shape == "3d":
            data = array[:, :, None].tolist()
        else:
            data = contain(array, container)
            if shape == "1d":
                data = np.asarray(data)[:, 0]
            elif shape == "3d":
                data = np.asarray(data)[:, :, None]
    if container in SPARSE_CONTAINERS:
        problems.append("sparse")
    if shape is not None:
        problems.append(r"2 columns|shape|minimum of 2")
    if n == 0:
        problems.append("empty|0 \\(user, item\\) pairs|shape|minimum")
    problem = "|".join(problems) if problems else None
    return Case(data, problem, description), n


# -- inference ---------------------------------------------------------------------------
@given(data=st.data())
def test_predict_and_transform_on_any_pairs(model, data):
    case, n = data.draw(pair_cases(model))
    low, high = model.rating_range_

    def check_predict(pred):
        assert_finite_array(pred, (n,), np.float64)
        assert ((pred >= low) & (pred <= high)).all()

    check_call(lambda: model.predict(case.data), case, check_predict, model)
    width = model.user_embeddings_.shape[1] + model.item_embeddings_.shape[1]
    check_call(
        lambda: model.transform(case.data),
        case,
        lambda Z: assert_finite_array(Z, (n, width), np.float32),
        model,
    )


@given(data=st.data())
def test_score_on_any_pairs_and_ratings(model, data):
    case, n = data.draw(pair_cases(model))
    scale, shift = data.draw(odd_scale())
    y = list(
        shift + scale * np.asarray(data.draw(st.lists(st.floats(1, 5), min_size=n, max_size=n)))
    )
    trouble = data.draw(st.sampled_from([None] * 8 + ["nan", "inf", "short", "text", "2d"]))
    problems = [case.problem] if case.problem else []
    if trouble in ("nan", "inf") and n:
        y[0] = np.nan if trouble == "nan" else np.inf
        problems.append("NaN|infinite")
    elif trouble == "short":
        y = y[:-1] if n else [1.0]
        problems.append("inconsistent|samples")
    elif trouble == "text" and n:
        y[0] = "five"
        problems.append("numeric|could not convert|string")
    elif trouble == "2d":
        y = np.column_stack([y, y])
        problems.append("1-D|shape|column")
    score_case = Case(case.data, "|".join(problems) or None, {**case.description, "y": trouble})

    def check_score(score):
        assert isinstance(score, float)
        assert np.isfinite(score) or n == 1  # R^2 of one rating is undefined (NaN, warned)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        check_call(lambda: model.score(case.data, y), score_case, check_score, model)


@st.composite
def user_cases(draw, model):
    n = draw(st.integers(0, 5))
    kind = draw(st.sampled_from(ID_KINDS))
    users = [draw(an_id(model.user_ids_, kind)) for _ in range(n)]
    problems = []
    container = draw(st.sampled_from(["list", "ndarray", "series", "column", "tuple", "row"]))
    if n and draw(st.booleans()) and draw(st.booleans()):
        hole = draw(st.sampled_from(list(HOLES)))
        users[0] = _pd_na() if hole == "na" else HOLES[hole]
        users = draw(st.permutations(users)) if container != "row" else users
        problems.append("missing|NaN|infinite")
    if container == "ndarray":
        users = np.array(users, dtype=object if kind == "mixed" or problems else None)
    elif container == "series":
        import pandas as pd

        users = pd.Series(users, dtype=object if kind == "mixed" or problems else None)
    elif container == "column":
        users = np.array(users, dtype=object).reshape(-1, 1)
    elif container == "tuple":
        users = tuple(users)
    elif container == "row" and n:
        users = users[0]  # a single id, not in a list
    count = draw(st.sampled_from([1, 3, 10**9, np.int64(2)] * 3 + [0, -2, 2.5, True, "3"]))
    if not (isinstance(count, Integral) and not isinstance(count, bool) and count >= 1):
        problems.append("n must be a positive integer")
    elif count > len(model.item_ids_):
        problems.append("larger than the number of items")
    if n == 0 and container != "row":
        problems.append("empty")
    exclude_seen = draw(st.sampled_from([True, False, np.True_] * 3 + [1, "yes"]))
    if not isinstance(exclude_seen, (bool, np.bool_)):
        problems.append("exclude_seen")
    description = {"n": n, "kind": kind, "container": container, "count": count}
    description["exclude_seen"] = exclude_seen
    n_users = 1 if container == "row" and n else n
    return Case((users, count, exclude_seen), "|".join(problems) or None, description), n_users


@given(data=st.data())
def test_recommend_on_any_users(model, data):
    case, n_users = data.draw(user_cases(model))
    users, count, exclude_seen = case.data

    def check(result):
        items, scores = result
        width = count
        assert items.shape == scores.shape == (n_users, width)
        assert scores.dtype == np.float64
        assert np.isin(items, model.item_ids_).all()
        assert not np.isnan(scores).any()
        # best first; -inf only pads the tail of a user with fewer than n unseen items
        assert (np.isfinite(scores) | (scores == -np.inf)).all()
        assert (np.diff(np.maximum(scores, -1e300), axis=1) <= 0).all()

    check_call(
        lambda: model.recommend(users, n=count, exclude_seen=exclude_seen), case, check, model
    )


# -- fitting -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def refit_target(model):
    """A fitted copy to refit with invalid data: the failed fits must leave it unchanged."""
    import copy

    return copy.deepcopy(model)


@given(data=st.data())
def test_fit_on_any_ratings(model, refit_target, data):
    case, n = data.draw(pair_cases(model))
    scale, shift = data.draw(odd_scale())
    ratings = shift + scale * np.asarray(
        data.draw(st.lists(st.sampled_from([1.0, 2.0, 3.0, 4.5, 5.0]), min_size=n, max_size=n))
    )
    problems = [case.problem] if case.problem else []
    if n and data.draw(st.integers(0, 4)) == 0:
        ratings[data.draw(st.integers(0, n - 1))] = data.draw(st.sampled_from([np.nan, np.inf]))
        problems.append("NaN|infinite")
    if case.valid and n:
        # the generated pairs may repeat; fit rejects repeated ratings by design
        users, items = (np.asarray(c, dtype=object) for c in _columns(case.data))
        keys = {(repr(u), repr(i)) for u, i in zip(users, items)}
        if len(keys) < n:
            problems.append("duplicate")
    early_stopping = data.draw(st.booleans())
    if early_stopping and n == 1:
        problems.append("early_stopping needs at least 2")
    fit_case = Case(
        case.data, "|".join(problems) or None, {**case.description, "es": early_stopping}
    )
    fresh = KernelCollaborativeFilter(**TINY, early_stopping=early_stopping)

    def check_fitted(fitted):
        assert fitted is fresh
        pred = fitted.predict(case.data)
        assert_finite_array(pred, (n,), np.float64)
        items, scores = fitted.recommend(fitted.user_ids_[:2], n=min(2, len(fitted.item_ids_)))
        assert not np.isnan(scores).any()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_call(lambda: fresh.fit(case.data, ratings), fit_case, check_fitted)
        # a failed fit leaves a fitted model as it was
        if not fit_case.valid:
            refit_target.set_params(early_stopping=early_stopping)
            before = fingerprint(refit_target)
            with pytest.raises((ValueError, TypeError)):
                refit_target.fit(case.data, ratings)
            assert_unchanged(refit_target, before)


def _columns(data):
    if hasattr(data, "iloc"):
        return data.iloc[:, 0].tolist(), data.iloc[:, 1].tolist()
    array = np.asarray(data, dtype=object)
    return array[:, 0].tolist(), array[:, 1].tolist()


# -- failures the fuzzing found, kept as regular tests ------------------------------------------
@pytest.mark.parametrize(
    "X, match",
    [
        ([[np.inf, 1000], [1, 1000]], "NaN or infinite user ids, first at row 0"),
        (np.array([[1, 1000], [2, -np.inf]], dtype=object), "NaN or infinite item ids"),
        ([[1, "i"], [float("nan"), "j"]], "missing .* user ids, first at row 1"),
    ],
)
def test_found_nonfinite_ids_in_object_data(model, X, match):
    with pytest.raises(ValueError, match=match):
        model.predict(X)


def test_found_pandas_missing_ids(model):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(
        {"user": pd.array(["u1", None], dtype="string"), "item": pd.array([1000, 1001], "Int64")}
    )
    with pytest.raises(ValueError, match="missing .* user ids, first at row 1"):
        model.predict(X)
    with pytest.raises(ValueError, match="missing .* user ids"):
        model.recommend(pd.Series([1, None], dtype="Int64"))


def test_found_mixed_type_rows_keep_their_ids():
    # numpy turns [[1, "a"], ...] into strings; the ids must stay what they were
    X, y = [[1, "a"], [1, "b"], [2, "a"], [2, "c"]], [4.0, 3.0, 5.0, 2.0]
    model = KernelCollaborativeFilter(**TINY, early_stopping=False).fit(X, y)
    assert model.user_ids_.dtype.kind == "i" and model.item_ids_.dtype.kind == "U"
    strict = KernelCollaborativeFilter(**TINY, early_stopping=False, handle_unknown="error")
    strict.fit(X, y).predict([[2, "b"]])  # user 2 and item "b" are known


def test_found_score_with_nonfinite_ratings_names_them(model):
    X = np.column_stack([model.user_ids_[:2], model.item_ids_[:2]])
    with pytest.raises(ValueError, match="NaN or infinite ratings"):
        model.score(X, [np.inf, 3.0])


def test_found_recommend_checks_exclude_seen(model):
    with pytest.raises(TypeError, match="exclude_seen must be True or False, got 1"):
        model.recommend([], exclude_seen=1)
    with pytest.raises(ValueError, match="1-D sequence of user ids"):
        model.recommend(np.column_stack([model.user_ids_[:2], model.user_ids_[:2]]))


def test_found_failed_refit_leaves_model_unchanged(refit_target):
    before = fingerprint(refit_target)
    refit_target.set_params(early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping needs at least 2 ratings"):
        refit_target.fit([[0, 1000]], [3.0])
    refit_target.set_params(early_stopping=before["early_stopping"])
    assert_unchanged(refit_target, before)
