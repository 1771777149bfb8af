"""Ranking metrics for top-N recommendation, and scorers for model selection.

Every metric compares, user by user, a ranked list of recommended items with
the set of that user's *relevant* held-out items, with binary gain (an item is
relevant or not). The definitions, for one user with relevant set ``R`` and
top-``k`` list ``L = (l_1, ..., l_k)``, ``rel_r = 1`` when ``l_r`` is in ``R``:

* ``precision@k = |L & R| / k``;
* ``recall@k = |L & R| / |R|``;
* ``hit rate@k = 1`` when ``|L & R| > 0``;
* ``AP@k = sum_r rel_r precision@r / min(k, |R|)`` (``MAP@k`` is its mean);
* ``NDCG@k = DCG / IDCG`` with ``DCG = sum_r rel_r / log2(r + 1)`` and
  ``IDCG`` the DCG of ``min(k, |R|)`` relevant items at the top;

each averaged over the users that have at least one relevant item (a user with
none makes every metric undefined and is left out). ``catalog_coverage`` is the
share of the catalogue that appears in at least one list.

:func:`relevant_items_by_user` turns held-out ``(user, item)`` pairs, with
ratings and a relevance threshold or without (implicit feedback: every held-out
pair is relevant), into those sets, and :func:`make_ranking_scorer` makes a
scorer that :class:`~sklearn.model_selection.GridSearchCV` and
:func:`~sklearn.model_selection.cross_validate` accept for any estimator with a
``recommend(users, n, exclude_seen=True)`` method, such as
:class:`~skkernelnet.KernelCollaborativeFilter` and
:class:`~skkernelnet.KernelImplicitRecommender`. Items a user interacted with
in training are excluded from that user's list, as they are in deployment.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from ._ratings import as_pairs, check_ratings, factorize

__all__ = [
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "map_at_k",
    "hit_rate_at_k",
    "catalog_coverage",
    "ranking_metrics",
    "relevant_items_by_user",
    "evaluate_recommender",
    "make_ranking_scorer",
    "RANKING_METRICS",
]


def _check_k(k):
    if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    return int(k)


def _as_lists(recommended):
    """``recommended`` as a 2-D array (n_users, n) of item ids."""
    if isinstance(recommended, np.ndarray) and recommended.ndim == 2:
        return recommended
    rows = [np.asarray(r).reshape(-1) for r in recommended]
    if not rows:
        return np.empty((0, 0))
    width = {len(r) for r in rows}
    if len(width) != 1:
        raise ValueError(
            "recommended lists must all have the same length (pad short lists with an id "
            f"that is never relevant); got lengths {sorted(width)[:5]}."
        )
    out = np.empty((len(rows), width.pop()), dtype=np.result_type(*rows))
    for i, row in enumerate(rows):
        out[i] = row
    return out


def _hits(relevant, recommended, k):
    """Boolean hits of shape (n_users, k) and each user's number of relevant items."""
    k = _check_k(k)
    recommended = _as_lists(recommended)
    relevant = [np.unique(np.asarray(r).reshape(-1)) for r in relevant]
    if len(relevant) != recommended.shape[0]:
        raise ValueError(
            f"relevant has {len(relevant)} users but recommended has {recommended.shape[0]} "
            "lists; they must be aligned user by user."
        )
    if recommended.shape[1] < k:
        raise ValueError(
            f"recommended lists hold {recommended.shape[1]} items, fewer than k={k}; "
            f"recommend at least k items per user."
        )
    top = recommended[:, :k]
    n_relevant = np.array([len(r) for r in relevant], dtype=np.int64)
    flat_rel = np.concatenate(relevant) if n_relevant.sum() else np.empty(0, dtype=top.dtype)
    # One code per distinct item id over both sides, so that membership is an integer test.
    ids = np.concatenate([np.asarray(top, dtype=object).ravel(), flat_rel.astype(object)])
    codes = factorize(ids if ids.size else np.empty(0))[1].astype(np.int64)
    n_codes = int(codes.max()) + 1 if codes.size else 1
    top_codes = codes[: top.size].reshape(top.shape)
    rel_codes = codes[top.size :]
    rows = np.arange(len(relevant), dtype=np.int64)
    rel_keys = np.repeat(rows, n_relevant) * n_codes + rel_codes
    top_keys = rows[:, None] * n_codes + top_codes
    hits = np.isin(top_keys, rel_keys)
    # an item listed twice for a user counts once
    if top.shape[1] > 1:
        order = np.argsort(top_codes, axis=1, kind="stable")
        sorted_codes = np.take_along_axis(top_codes, order, axis=1)
        repeated = np.zeros_like(hits)
        dup = np.zeros_like(sorted_codes, dtype=bool)
        dup[:, 1:] = sorted_codes[:, 1:] == sorted_codes[:, :-1]
        np.put_along_axis(repeated, order, dup, axis=1)
        hits &= ~repeated
    return hits, n_relevant


def _per_user(hits, n_relevant, k):
    """Every metric for each user, as a dict of arrays (users with relevant items only)."""
    keep = n_relevant > 0
    if not keep.any():
        raise ValueError(
            "no user has a relevant held-out item: every ranking metric is undefined "
            "(check the relevance threshold)."
        )
    hits, n_relevant = hits[keep], n_relevant[keep]
    n_hits = hits.sum(axis=1)
    ranks = np.arange(1, k + 1)
    discount = 1.0 / np.log2(ranks + 1.0)
    ideal = np.cumsum(discount)[np.minimum(n_relevant, k) - 1]
    precision_at_rank = np.cumsum(hits, axis=1) / ranks
    return {
        "precision": n_hits / k,
        "recall": n_hits / n_relevant,
        "ndcg": (hits * discount).sum(axis=1) / ideal,
        "map": (precision_at_rank * hits).sum(axis=1) / np.minimum(n_relevant, k),
        "hit_rate": (n_hits > 0).astype(np.float64),
    }


def _mean_metric(name, relevant, recommended, k):
    hits, n_relevant = _hits(relevant, recommended, k)
    return float(np.mean(_per_user(hits, n_relevant, _check_k(k))[name]))


_DOC_ARGS = """
    Parameters
    ----------
    relevant : sequence of array-like
        For each user, the ids of the items relevant to them (for example their
        held-out items rated at least 4; see :func:`relevant_items_by_user`).
    recommended : array-like of shape (n_users, n)
        For each user, in the same order, the recommended item ids, best first
        (the first output of ``recommend``). ``n`` must be at least ``k``.
    k : int, default=10
        Length of the list that counts.

    Returns
    -------
    float
        Mean over the users with at least one relevant item.
"""


def precision_at_k(relevant, recommended, k=10):
    """Share of the top ``k`` that is relevant, averaged over users.
    {args}
    Examples
    --------
    >>> from skkernelnet.metrics import precision_at_k
    >>> precision_at_k([["a", "c"], ["b"]], [["a", "b", "c"], ["a", "c", "d"]], k=2)
    0.25
    """
    return _mean_metric("precision", relevant, recommended, k)


def recall_at_k(relevant, recommended, k=10):
    """Share of each user's relevant items found in the top ``k``, averaged over users.
    {args}
    Examples
    --------
    >>> from skkernelnet.metrics import recall_at_k
    >>> recall_at_k([["a", "c"], ["b"]], [["a", "b", "c"], ["b", "c", "d"]], k=2)
    0.75
    """
    return _mean_metric("recall", relevant, recommended, k)


def ndcg_at_k(relevant, recommended, k=10):
    """Normalised discounted cumulative gain of the top ``k`` (binary gain, log2 discount).
    {args}
    Examples
    --------
    >>> from skkernelnet.metrics import ndcg_at_k
    >>> round(ndcg_at_k([["a", "c"]], [["a", "b", "c"]], k=3), 4)  # (1 + 1/2) / (1 + 1/log2(3))
    0.9197
    """
    return _mean_metric("ndcg", relevant, recommended, k)


def map_at_k(relevant, recommended, k=10):
    """Mean average precision of the top ``k``: ``AP@k = sum_r rel_r P@r / min(k, |R|)``.
    {args}
    Examples
    --------
    >>> from skkernelnet.metrics import map_at_k
    >>> round(map_at_k([["a", "c"]], [["a", "b", "c"]], k=3), 4)  # (1/1 + 2/3) / 2
    0.8333
    """
    return _mean_metric("map", relevant, recommended, k)


def hit_rate_at_k(relevant, recommended, k=10):
    """Share of users with at least one relevant item in their top ``k``.
    {args}
    Examples
    --------
    >>> from skkernelnet.metrics import hit_rate_at_k
    >>> hit_rate_at_k([["a"], ["b"]], [["a", "c"], ["c", "d"]], k=2)
    0.5
    """
    return _mean_metric("hit_rate", relevant, recommended, k)


for _function in (precision_at_k, recall_at_k, ndcg_at_k, map_at_k, hit_rate_at_k):
    _function.__doc__ = _function.__doc__.replace("{args}", _DOC_ARGS)


def catalog_coverage(recommended, n_items, k=None):
    """Share of the catalogue that appears in at least one top-``k`` list.

    Parameters
    ----------
    recommended : array-like of shape (n_users, n)
        Recommended item ids, best first, one row per user.
    n_items : int
        Size of the catalogue (for a fitted recommender, ``len(model.item_ids_)``).
    k : int, optional
        Count only the first ``k`` items of each list (all ``n`` by default).

    Returns
    -------
    float
        ``|union of the lists| / n_items``.

    Examples
    --------
    >>> from skkernelnet.metrics import catalog_coverage
    >>> catalog_coverage([["a", "b"], ["a", "c"]], n_items=6)
    0.5
    """
    if not isinstance(n_items, Integral) or isinstance(n_items, bool) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}.")
    recommended = _as_lists(recommended)
    if k is not None:
        recommended = recommended[:, : _check_k(k)]
    distinct = len(factorize(np.asarray(recommended, dtype=object).ravel())[0])
    if distinct > n_items:
        raise ValueError(f"the lists hold {distinct} distinct items, more than n_items={n_items}.")
    return distinct / n_items


RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")


def ranking_metrics(relevant, recommended, k=10, n_items=None):
    """Every ranking metric of one set of lists at once.

    Parameters
    ----------
    relevant, recommended, k
        As for :func:`precision_at_k`.
    n_items : int, optional
        Catalogue size; when given, ``"coverage"`` is included (over all the
        lists, also those of users without relevant items).

    Returns
    -------
    dict
        ``{"precision", "recall", "ndcg", "map", "hit_rate"[, "coverage"]}``
        means over the users with a relevant item, plus ``"n_users"``, the
        number of such users.

    Examples
    --------
    >>> from skkernelnet.metrics import ranking_metrics
    >>> scores = ranking_metrics([["a", "c"], ["b"]], [["a", "b"], ["c", "d"]], k=2, n_items=4)
    >>> {name: round(value, 3) for name, value in scores.items()}
    {'precision': 0.25, 'recall': 0.25, 'ndcg': 0.307, 'map': 0.25, 'hit_rate': 0.5, \
'n_users': 2, 'coverage': 1.0}
    """
    k = _check_k(k)
    hits, n_relevant = _hits(relevant, recommended, k)
    out = {name: float(np.mean(v)) for name, v in _per_user(hits, n_relevant, k).items()}
    out["n_users"] = int((n_relevant > 0).sum())
    if n_items is not None:
        out["coverage"] = catalog_coverage(recommended, n_items, k)
    return out


def relevant_items_by_user(X, y=None, threshold=None):
    """Group held-out ``(user, item)`` pairs into each user's set of relevant items.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_pairs, 2)
        Held-out (user id, item id) pairs.
    y : array-like of shape (n_pairs,), optional
        Their ratings (or any graded feedback). Without ``y`` (implicit
        feedback) every pair is relevant.
    threshold : float, optional
        With ``y``: a pair is relevant when ``y >= threshold`` (MovieLens
        convention: 4 stars). ``None`` makes every pair relevant.

    Returns
    -------
    users : ndarray of shape (n_users,)
        Users with at least one relevant pair, in sorted order of ids.
    relevant : list of ndarray
        ``relevant[j]`` holds the relevant items of ``users[j]``.

    Examples
    --------
    >>> from skkernelnet.metrics import relevant_items_by_user
    >>> users, relevant = relevant_items_by_user(
    ...     [[1, 10], [1, 11], [2, 10], [2, 12]], [5, 2, 3, 4.5], threshold=4)
    >>> users, [r.tolist() for r in relevant]
    (array([1, 2]), [[10], [12]])
    """
    users, items = as_pairs(X)
    if y is not None:
        y = check_ratings(y, len(users))
        if threshold is not None:
            if not isinstance(threshold, Real) or not np.isfinite(threshold):
                raise ValueError(f"threshold must be a finite number, got {threshold!r}.")
            keep = y >= threshold
            users, items = users[keep], items[keep]
    elif threshold is not None:
        raise ValueError("threshold needs ratings y: without y every held-out pair is relevant.")
    if len(users) == 0:
        return np.empty(0, dtype=users.dtype), []
    user_ids, codes = factorize(users)
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(user_ids)))[:-1]
    return user_ids, np.split(np.asarray(items)[order], bounds)


def evaluate_recommender(estimator, X, y=None, *, k=10, threshold=None, exclude_seen=True):
    """Every ranking metric of a fitted recommender on held-out pairs.

    Each user with a relevant held-out item gets ``estimator.recommend(users,
    n=k, exclude_seen=exclude_seen)``; the lists are compared with the
    relevant items (see :func:`relevant_items_by_user`).

    Parameters
    ----------
    estimator : fitted estimator with ``recommend`` and ``item_ids_``
    X : array-like of shape (n_pairs, 2)
        Held-out (user id, item id) pairs, disjoint from the training pairs.
    y : array-like of shape (n_pairs,), optional
        Held-out ratings; omit for implicit feedback.
    k : int, default=10
    threshold : float, optional
        Relevance threshold on ``y``.
    exclude_seen : bool, default=True
        Leave each user's training items out of their list (the protocol of
        every figure in this package's documentation).

    Returns
    -------
    dict
        As :func:`ranking_metrics`, with ``"coverage"`` over the estimator's
        catalogue.

    Examples
    --------
    >>> from skkernelnet import KernelImplicitRecommender
    >>> from skkernelnet.metrics import evaluate_recommender
    >>> X_train = [[0, "a"], [0, "b"], [1, "b"], [1, "c"], [2, "a"], [2, "c"]]
    >>> model = KernelImplicitRecommender(hidden_layer_sizes=(4,), max_iter=3,
    ...                                   random_state=0).fit(X_train)
    >>> scores = evaluate_recommender(model, [[0, "c"], [1, "a"]], k=1)
    >>> sorted(scores)
    ['coverage', 'hit_rate', 'map', 'n_users', 'ndcg', 'precision', 'recall']
    """
    users, relevant = relevant_items_by_user(X, y, threshold)
    if len(users) == 0:
        raise ValueError(
            "no held-out pair is relevant: every ranking metric is undefined "
            "(check the relevance threshold)."
        )
    items, _ = estimator.recommend(users, n=_check_k(k), exclude_seen=exclude_seen)
    if items.shape[1] < k:
        raise ValueError(
            f"k={k} is larger than the catalogue of {items.shape[1]} items; use a smaller k."
        )
    return ranking_metrics(relevant, items, k, n_items=len(estimator.item_ids_))


class _RankingScorer:
    """Callable ``scorer(estimator, X, y=None)`` for scikit-learn's model selection."""

    def __init__(self, metric, k, threshold, exclude_seen):
        self.metric, self.k, self.threshold, self.exclude_seen = metric, k, threshold, exclude_seen

    def __call__(self, estimator, X, y=None):
        scores = evaluate_recommender(
            estimator, X, y, k=self.k, threshold=self.threshold, exclude_seen=self.exclude_seen
        )
        return scores[self.metric]

    def __repr__(self):
        return (
            f"make_ranking_scorer({self.metric!r}, k={self.k}, threshold={self.threshold}, "
            f"exclude_seen={self.exclude_seen})"
        )


def make_ranking_scorer(metric="ndcg", *, k=10, threshold=None, exclude_seen=True):
    """A scorer for ``GridSearchCV`` / ``cross_validate`` from a ranking metric.

    The scorer is called as ``scorer(estimator, X_test, y_test)`` on held-out
    ``(user, item)`` pairs (``y_test`` is ``None`` for implicit feedback): every
    test user with a relevant pair gets the estimator's top ``k`` among the
    items they did not interact with in training, and the metric compares those
    lists with their relevant test items. Higher is better for every metric.

    Parameters
    ----------
    metric : {"ndcg", "precision", "recall", "map", "hit_rate", "coverage"}, default="ndcg"
    k : int, default=10
    threshold : float, optional
        A test pair is relevant when its rating is at least ``threshold``
        (``None``: every test pair is relevant, as for implicit feedback).
    exclude_seen : bool, default=True
        Passed to ``recommend``.

    Returns
    -------
    callable

    Examples
    --------
    >>> from sklearn.model_selection import cross_validate
    >>> from skkernelnet import KernelImplicitRecommender
    >>> from skkernelnet.datasets import make_ratings
    >>> from skkernelnet.metrics import make_ranking_scorer
    >>> X, _ = make_ratings(30, 20, density=0.3, random_state=0, return_X_y=True)
    >>> model = KernelImplicitRecommender(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    >>> scoring = {"ndcg": make_ranking_scorer("ndcg", k=5),
    ...            "recall": make_ranking_scorer("recall", k=5)}
    >>> cv = cross_validate(model, X, cv=3, scoring=scoring)
    >>> sorted(key for key in cv if key.startswith("test_"))
    ['test_ndcg', 'test_recall']
    """
    if metric not in RANKING_METRICS:
        raise ValueError(f"metric must be one of {RANKING_METRICS}, got {metric!r}.")
    _check_k(k)
    if threshold is not None and (not isinstance(threshold, Real) or not np.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number or None, got {threshold!r}.")
    return _RankingScorer(metric, int(k), threshold, bool(exclude_seen))
