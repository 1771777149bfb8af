"""Rating data helpers and the bias baseline shared by the rating models.

``X`` of a rating model holds ``(user id, item id)`` pairs with ids of any
hashable type; these helpers validate such pairs, map ids to dense indices and
fit the global-mean-plus-biases baseline (:class:`RatingBaseline`) that is both
a yardstick and the fallback for ids unseen in fit.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

__all__ = ["RatingBaseline"]


def as_pairs(X):
    """Validate X as (n, 2) pairs of ids; return the two id columns as 1-D arrays."""
    if hasattr(X, "iloc") and hasattr(X, "columns"):  # pandas DataFrame
        if X.shape[1] != 2:
            raise ValueError(
                f"X must have exactly 2 columns (user id, item id), got {X.shape[1]}: "
                f"{list(X.columns)}."
            )
        users, items = X.iloc[:, 0].to_numpy(), X.iloc[:, 1].to_numpy()
    else:
        if hasattr(X, "toarray"):
            raise ValueError("X must be a dense (n, 2) array of (user id, item id), not sparse.")
        from_sequence = not isinstance(X, np.ndarray)
        if from_sequence:
            # Object first: numpy would turn [[1, "a"], [nan, "b"]] into strings ("1", "nan").
            try:
                X = np.asarray(X, dtype=object)
            except ValueError as error:
                raise ValueError(
                    "X must be a rectangular (n_ratings, 2) array of (user id, item id) "
                    f"pairs: {error}"
                ) from None
        if X.dtype.kind == "c":
            raise ValueError("Complex data not supported: X must hold (user id, item id) pairs.")
        if X.ndim == 2 and X.shape[1] < 2:
            raise ValueError(
                f"Found array with {X.shape[1]} feature(s) (shape={X.shape}) while a minimum "
                "of 2 is required: X must hold (user id, item id) pairs."
            )
        if X.ndim != 2 or X.shape[1] != 2:
            raise ValueError(
                f"X must be of shape (n_ratings, 2) holding (user id, item id) pairs, "
                f"got shape {X.shape}."
            )
        users, items = X[:, 0], X[:, 1]
        if from_sequence:
            users, items = _typed_column(users), _typed_column(items)
    if users.shape[0] == 0:
        raise ValueError(
            "X is empty: found 0 (user, item) pairs, while a minimum of 1 is required."
        )
    frame_columns = (X.iloc[:, 0], X.iloc[:, 1]) if hasattr(X, "iloc") else (None, None)
    for name, ids, column in zip(("user", "item"), (users, items), frame_columns):
        _check_ids(name, ids, column)
    return users, items


def as_ids(ids, name="user"):
    """Validate a 1-D sequence of user (or item) ids, one id per entry, as an array."""
    if hasattr(ids, "iloc"):  # pandas Series or one-column DataFrame
        if ids.ndim == 2 and ids.shape[1] != 1:
            raise ValueError(f"{name}s must be one column of {name} ids, got {ids.shape[1]}.")
        column = ids.iloc[:, 0] if ids.ndim == 2 else ids
        values = column.to_numpy()
    else:
        column = None
        values = ids if isinstance(ids, np.ndarray) else np.asarray(ids, dtype=object)
    if values.ndim > 1 and not (values.ndim == 2 and values.shape[1] == 1):
        raise ValueError(
            f"{name}s must be a 1-D sequence of {name} ids, got an array of shape {values.shape}."
        )
    values = values.reshape(-1)
    if values.dtype == object and column is None:
        values = _typed_column(values)
    _check_ids(name, values, column, where=f"{name}s")
    return values


def _typed_column(ids):
    """An object column of ids as int, float or str when all its ids are of that type."""
    values = ids.tolist()
    for kind, dtype in ((str, str), (Integral, np.int64), (Real, np.float64)):
        if all(isinstance(v, kind) and not isinstance(v, (bool, np.bool_)) for v in values):
            try:
                return np.asarray(values, dtype=dtype)
            except (OverflowError, ValueError):
                break
    return ids


def _is_missing(value):
    """None, pandas' NA or NaT, or a NaN."""
    if value is None or (isinstance(value, Real) and value != value):
        return True
    kind = type(value)
    return kind.__module__.startswith("pandas") and kind.__name__ in ("NAType", "NaTType")


def _check_ids(name, ids, column=None, where="X"):
    """Reject missing and infinite ids, naming the first row that has one."""
    if column is not None:
        missing = np.asarray(column.isna(), dtype=bool)
    elif ids.dtype.kind == "O":
        missing = np.fromiter((_is_missing(i) for i in ids), bool, len(ids))
    else:
        missing = np.isnan(ids) if ids.dtype.kind in "fc" else np.zeros(len(ids), bool)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(f"{where} contains missing (None/NaN) {name} ids, first at row {row}.")
    if ids.dtype.kind in "fc":
        infinite = ~np.isfinite(ids)
    elif ids.dtype.kind == "O":
        infinite = np.fromiter(
            (isinstance(i, Real) and not math.isfinite(i) for i in ids), bool, len(ids)
        )
    else:
        return
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        raise ValueError(f"{where} contains NaN or infinite {name} ids, first at row {row}.")


def factorize(ids):
    """Sorted unique ids and the index of each entry among them."""
    try:
        return np.unique(ids, return_inverse=True)
    except TypeError:  # mixed, unorderable ids: keep first-seen order
        lookup = {}
        codes = np.fromiter((lookup.setdefault(i, len(lookup)) for i in ids), np.int64, len(ids))
        uniques = np.empty(len(lookup), dtype=object)
        uniques[:] = list(lookup)
        return uniques, codes


def lookup(uniques, ids):
    """Index of each id in ``uniques`` (as built by _factorize), -1 when unseen."""
    if uniques.dtype != object:
        try:
            ids_cast = np.asarray(ids).astype(uniques.dtype, casting="same_kind")
        except (TypeError, ValueError):
            ids_cast = None
        if ids_cast is not None and np.array_equal(ids_cast, ids):
            pos = np.searchsorted(uniques, ids_cast).clip(0, len(uniques) - 1)
            return np.where(uniques[pos] == ids_cast, pos, -1)
    table = {u: k for k, u in enumerate(uniques.tolist())}
    return np.fromiter(
        (table.get(i, -1) for i in np.asarray(ids, dtype=object).tolist()), np.int64, len(ids)
    )


def check_ratings(y, n):
    """Validate ratings: numeric, finite, 1-D, one per pair."""
    if y is None:
        raise ValueError(
            "KernelCollaborativeFilter requires y to be passed, but the target y is None."
        )
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of ratings, got shape {y.shape}.")
    if y.shape[0] != n:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: {n} pairs, {len(y)} ratings."
        )
    if y.dtype.kind not in "biuf":
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"ratings must be numeric, got dtype {y.dtype}.") from None
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinite ratings.")
    return y


def fit_biases(user_idx, item_idx, y, n_users, n_items, shrinkage=10.0, n_passes=5):
    """Global mean and shrunken user and item biases by alternating regularised means.

    Minimises ``sum (r - mu - b_u - b_i)^2 + shrinkage (|b_u|^2 + |b_i|^2)`` by
    a few exact coordinate passes (each pass solves the items given the users,
    then the users given the items).
    """
    mean = float(y.mean())
    resid = y - mean
    user_bias = np.zeros(n_users)
    item_n = np.bincount(item_idx, minlength=n_items) + shrinkage
    user_n = np.bincount(user_idx, minlength=n_users) + shrinkage
    for _ in range(n_passes):
        item_bias = np.bincount(item_idx, resid - user_bias[user_idx], minlength=n_items) / item_n
        user_bias = np.bincount(user_idx, resid - item_bias[item_idx], minlength=n_users) / user_n
    return mean, user_bias, item_bias


class RatingBaseline(RegressorMixin, BaseEstimator):
    """Global mean, optionally plus shrunken user and item biases: the yardstick of rating models.

    ``r_hat(u, i) = mu + b_u + b_i`` with biases minimising the squared error
    plus ``shrinkage * (b_u^2 + b_i^2)``; unseen users or items get a zero bias.
    This is also :class:`KernelCollaborativeFilter`'s fallback.

    Parameters
    ----------
    biases : bool, default=True
        False predicts the global mean only.
    shrinkage : float, default=10.0
        Pulls the biases of users and items with few ratings towards zero.

    Attributes
    ----------
    global_mean_ : float
    user_ids_, item_ids_ : ndarray
    user_bias_, item_bias_ : ndarray
    rating_range_ : tuple of float

    Examples
    --------
    >>> from skkernelnet import RatingBaseline
    >>> X = [[1, "a"], [1, "b"], [2, "a"]]
    >>> RatingBaseline().fit(X, [4, 2, 5]).predict([[2, "b"], [3, "c"]]).round(2)
    array([3.63, 3.67])
    """

    _parameter_constraints = {
        "biases": ["boolean"],
        "shrinkage": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, biases=True, shrinkage=10.0):
        self.biases = biases
        self.shrinkage = shrinkage

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the mean and biases to (user, item) pairs X and ratings y."""
        users, items = as_pairs(X)
        y = check_ratings(y, len(users))
        self.user_ids_, user_idx = factorize(users)
        self.item_ids_, item_idx = factorize(items)
        self.global_mean_, self.user_bias_, self.item_bias_ = fit_biases(
            user_idx, item_idx, y, len(self.user_ids_), len(self.item_ids_), self.shrinkage
        )
        if not self.biases:
            self.user_bias_[:] = 0.0
            self.item_bias_[:] = 0.0
        self.rating_range_ = (float(y.min()), float(y.max()))
        return self

    def predict(self, X):
        """Baseline ratings for (user, item) pairs, clipped to the training range."""
        check_is_fitted(self, "global_mean_")
        users, items = as_pairs(X)
        return baseline_predict(self, lookup(self.user_ids_, users), lookup(self.item_ids_, items))


def baseline_predict(model, user_idx, item_idx):
    pred = model.global_mean_ + np.where(item_idx >= 0, model.item_bias_[item_idx], 0.0)
    pred = pred + np.where(user_idx >= 0, model.user_bias_[user_idx], 0.0)
    return np.clip(pred, *model.rating_range_)


DUPLICATE_POLICIES = ("error", "last", "mean")


def deduplicate_ratings(rows, cols, y, n_cols, how="error", where="X"):
    """Resolve repeated (row, col) pairs: raise, keep the last occurrence, or average them.

    Returns the arrays unchanged (same order) when every pair is distinct;
    otherwise the distinct pairs in row-major order with their resolved rating.
    """
    flat = np.asarray(rows, dtype=np.int64) * n_cols + np.asarray(cols, dtype=np.int64)
    unique, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    if unique.size == flat.size:
        return rows, cols, y
    if how == "error":
        repeated = int((counts > 1).sum())
        raise ValueError(
            f"{where} contains duplicate (user, item) pairs: {repeated} pair(s) appear more "
            "than once, and each rating must appear once with duplicates='error'. Aggregate "
            "them first, or set duplicates='last' (keep the last occurrence) or "
            "duplicates='mean' (average them)."
        )
    if how == "last":
        last = np.zeros(unique.size, dtype=np.int64)
        np.maximum.at(last, inverse, np.arange(flat.size))
        values = y[last]
    elif how == "mean":
        values = np.bincount(inverse, weights=y, minlength=unique.size) / counts
    else:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {how!r}.")
    return unique // n_cols, unique % n_cols, values
