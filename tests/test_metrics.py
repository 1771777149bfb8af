"""skkernelnet.metrics: hand-computed ranking metrics, relevance grouping, scorers."""

import math

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_validate

from skkernelnet import KernelCollaborativeFilter, KernelImplicitRecommender
from skkernelnet.datasets import make_ratings
from skkernelnet.metrics import (
    catalog_coverage,
    evaluate_recommender,
    hit_rate_at_k,
    make_ranking_scorer,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    relevant_items_by_user,
)

# Two users. User 0: relevant {a, c, e}, list (a, b, c, d) -> hits at ranks 1 and 3.
# User 1: relevant {z}, list (x, y, z, w) -> a hit at rank 3.
RELEVANT = [["a", "c", "e"], ["z"]]
RECOMMENDED = [["a", "b", "c", "d"], ["x", "y", "z", "w"]]


def test_hand_computed_values_at_3():
    k = 3
    assert precision_at_k(RELEVANT, RECOMMENDED, k) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert recall_at_k(RELEVANT, RECOMMENDED, k) == pytest.approx((2 / 3 + 1) / 2)
    assert hit_rate_at_k(RELEVANT, RECOMMENDED, k) == 1.0
    # AP: user 0 (1/1 + 2/3) / min(3, 3); user 1 (1/3) / min(3, 1)
    assert map_at_k(RELEVANT, RECOMMENDED, k) == pytest.approx(((1 + 2 / 3) / 3 + 1 / 3) / 2)
    # NDCG: user 0 (1 + 1/log2 4) / (1 + 1/log2 3 + 1/log2 4); user 1 (1/log2 4) / 1
    ndcg0 = (1 + 1 / 2) / (1 + 1 / math.log2(3) + 1 / 2)
    ndcg1 = 1 / 2
    assert ndcg_at_k(RELEVANT, RECOMMENDED, k) == pytest.approx((ndcg0 + ndcg1) / 2)


def test_k_truncates_the_lists():
    assert precision_at_k(RELEVANT, RECOMMENDED, 1) == pytest.approx(0.5)
    assert hit_rate_at_k(RELEVANT, RECOMMENDED, 2) == pytest.approx(0.5)
    assert recall_at_k(RELEVANT, RECOMMENDED, 4) == pytest.approx((2 / 3 + 1) / 2)


def test_perfect_and_empty_rankings():
    relevant = [[1, 2], [3]]
    perfect = [[1, 2, 9], [3, 8, 7]]
    assert ndcg_at_k(relevant, perfect, 3) == pytest.approx(1.0)
    assert map_at_k(relevant, perfect, 3) == pytest.approx(1.0)
    miss = [[7, 8, 9], [4, 5, 6]]
    for metric in (precision_at_k, recall_at_k, ndcg_at_k, map_at_k, hit_rate_at_k):
        assert metric(relevant, miss, 3) == 0.0


def test_users_without_relevant_items_are_left_out():
    with_empty = ranking_metrics([["a"], []], [["a", "b"], ["a", "b"]], k=2)
    alone = ranking_metrics([["a"]], [["a", "b"]], k=2)
    assert with_empty["n_users"] == 1
    assert with_empty["ndcg"] == alone["ndcg"] == 1.0
    with pytest.raises(ValueError, match="no user has a relevant"):
        ndcg_at_k([[], []], [["a"], ["b"]], k=1)


def test_repeated_item_in_a_list_counts_once():
    assert precision_at_k([["a"]], [["a", "a"]], k=2) == 0.5
    assert recall_at_k([["a"]], [["a", "a"]], k=2) == 1.0


def test_integer_and_mixed_ids():
    assert precision_at_k([[1, 2]], np.array([[2, 5]]), k=2) == 0.5
    assert precision_at_k([[1, "b"]], [[1, "b"]], k=2) == 1.0


def test_coverage():
    assert catalog_coverage(RECOMMENDED, n_items=16) == pytest.approx(0.5)
    assert catalog_coverage(RECOMMENDED, n_items=16, k=1) == pytest.approx(2 / 16)
    assert ranking_metrics(RELEVANT, RECOMMENDED, 4, n_items=8)["coverage"] == 1.0
    with pytest.raises(ValueError, match="more than n_items"):
        catalog_coverage(RECOMMENDED, n_items=3)
    with pytest.raises(ValueError, match="n_items"):
        catalog_coverage(RECOMMENDED, n_items=0)


@pytest.mark.parametrize(
    "relevant, recommended, k, match",
    [
        (RELEVANT, RECOMMENDED, 0, "k must be a positive integer"),
        (RELEVANT, RECOMMENDED, 5, "fewer than k=5"),
        (RELEVANT[:1], RECOMMENDED, 2, "aligned user by user"),
        (RELEVANT, [["a", "b"], ["x"]], 1, "same length"),
    ],
)
def test_bad_input(relevant, recommended, k, match):
    with pytest.raises(ValueError, match=match):
        precision_at_k(relevant, recommended, k)


def test_relevant_items_by_user():
    X = [[2, 10], [1, 11], [1, 12], [2, 13], [3, 14]]
    users, relevant = relevant_items_by_user(X, [5, 4, 3, 4.5, 1], threshold=4)
    assert users.tolist() == [1, 2]
    assert [sorted(r.tolist()) for r in relevant] == [[11], [10, 13]]
    users, relevant = relevant_items_by_user(X)  # implicit: everything relevant
    assert users.tolist() == [1, 2, 3]
    assert [sorted(r.tolist()) for r in relevant] == [[11, 12], [10, 13], [14]]
    with pytest.raises(ValueError, match="threshold needs ratings"):
        relevant_items_by_user(X, threshold=4)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        relevant_items_by_user(X, [1, 2, 3, 4, 5], threshold=float("nan"))


class _FixedLists:
    """A stand-in recommender that returns fixed lists, to test the scorer's plumbing."""

    def __init__(self, lists):
        self.lists = lists
        self.item_ids_ = np.array(["a", "b", "c", "d", "e"])
        self.calls = []

    def recommend(self, users, n=10, exclude_seen=True):
        self.calls.append((list(users), n, exclude_seen))
        return np.array([self.lists[u][:n] for u in users]), np.zeros((len(users), n))


def test_scorer_and_evaluate_hand_computed():
    model = _FixedLists({"u1": ["a", "b", "c"], "u2": ["d", "e", "a"]})
    X_test = [["u1", "b"], ["u1", "e"], ["u2", "c"], ["u2", "a"]]
    y_test = [5, 4, 2, 4]
    # relevant (>= 4): user 1 {b, e}, user 2 {a}
    scores = evaluate_recommender(model, X_test, y_test, k=3, threshold=4)
    assert model.calls[-1] == (["u1", "u2"], 3, True)
    assert scores["precision"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert scores["recall"] == pytest.approx((1 / 2 + 1) / 2)
    assert scores["coverage"] == pytest.approx(5 / 5)
    scorer = make_ranking_scorer("recall", k=3, threshold=4)
    assert scorer(model, X_test, y_test) == pytest.approx(0.75)
    # no y: every test pair is relevant; user 2 then has {c, a}
    assert make_ranking_scorer("recall", k=3)(model, X_test) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert "recall" in repr(scorer)
    with pytest.raises(ValueError, match="metric must be one of"):
        make_ranking_scorer("auc")
    with pytest.raises(ValueError, match="no held-out pair is relevant"):
        evaluate_recommender(model, X_test, [1, 1, 1, 1], k=3, threshold=4)


@pytest.fixture(scope="module")
def ratings():
    return make_ratings(40, 30, density=0.3, random_state=0, return_X_y=True)


def test_scorers_in_grid_search_with_ratings(ratings):
    X, y = ratings
    search = GridSearchCV(
        KernelCollaborativeFilter(hidden_layer_sizes=(8,), max_iter=3, random_state=0),
        {"alpha": [0.01, 1.0]},
        scoring={
            "ndcg": make_ranking_scorer("ndcg", k=5, threshold=4),
            "coverage": make_ranking_scorer("coverage", k=5, threshold=4),
        },
        refit="ndcg",
        cv=2,
    )
    with pytest.warns(Warning):  # the tiny fits stop at max_iter
        search.fit(X, y)
    ndcg = search.cv_results_["mean_test_ndcg"]
    assert np.all((ndcg >= 0) & (ndcg <= 1))
    assert np.all(search.cv_results_["mean_test_coverage"] > 0)


def test_scorers_in_cross_validate_without_y(ratings):
    X, _ = ratings
    model = KernelImplicitRecommender(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    cv = cross_validate(model, X, cv=2, scoring={"map": make_ranking_scorer("map", k=5)})
    assert np.all((cv["test_map"] >= 0) & (cv["test_map"] <= 1))
    # the default score is NDCG@10 with every held-out pair relevant
    default = cross_validate(model, X, cv=2)
    assert np.all((default["test_score"] >= 0) & (default["test_score"] <= 1))
