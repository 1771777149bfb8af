"""The closed-form item-item path of KernelImplicitRecommender and its blend."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skkernelnet import KernelImplicitRecommender
from skkernelnet._item_item import (
    NETWORK_WEIGHTS,
    ItemItemSystem,
    blend,
    ndcg_sum,
    standardised,
)

SMALL = {"hidden_layer_sizes": (16,), "max_iter": 30, "random_state": 0, "batch_size": 20}


def clustered_interactions(n_users, n_items, per_user, n_groups=3, seed=0):
    """Users of group g interact only with items of block g."""
    rng = np.random.RandomState(seed)
    block = n_items // n_groups
    pairs = []
    for user in range(n_users):
        items = rng.choice(block, per_user, replace=False) + (user % n_groups) * block
        pairs += [(user, item) for item in items]
    return np.array(pairs)


def _random_interactions(n_users, n_items, density, seed):
    rng = np.random.RandomState(seed)
    return sp.csr_matrix((rng.rand(n_users, n_items) < density).astype(float))


@settings(max_examples=30, deadline=None)
@given(
    n_users=st.integers(1, 15),
    n_items=st.integers(2, 8),
    lam=st.floats(0.1, 50.0),
    seed=st.integers(0, 10_000),
)
def test_each_column_is_the_ridge_regression_on_the_other_items(n_users, n_items, lam, seed):
    """B[:, j] minimises ||X_j - X B_j||^2 + lam ||B_j||^2 with B_jj = 0 (EASE), whether the
    system is solved over items or, with fewer users than items, over users (Woodbury)."""
    X = _random_interactions(n_users, n_items, 0.4, seed)
    system = ItemItemSystem(X)
    assert system.by_users == (n_users < n_items)
    weights = system.weights(lam, dtype=torch.float64).numpy()
    dense = X.toarray()
    for j in range(n_items):
        others = [k for k in range(n_items) if k != j]
        A = dense[:, others]
        expected = np.linalg.solve(A.T @ A + lam * np.eye(len(others)), A.T @ dense[:, j])
        assert weights[j, j] == 0.0
        np.testing.assert_allclose(weights[others, j], expected, rtol=1e-7, atol=1e-9)


def test_penalty_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        ItemItemSystem(sp.eye(3)).weights(0.0)


def test_lambda_candidates_scale_with_the_confidences():
    X = _random_interactions(30, 6, 0.5, 0)
    coarse = ItemItemSystem(X).lambda_candidates()
    np.testing.assert_allclose(
        ItemItemSystem(3.0 * X).lambda_candidates(), 9.0 * np.asarray(coarse)
    )
    assert ItemItemSystem(X).lambda_candidates(refine_around=8.0) == [4.0, 16.0]


def test_standardised_rows_and_blend_ends():
    rng = np.random.RandomState(0)
    a, b = torch.tensor(rng.randn(4, 7)), torch.tensor(rng.randn(4, 7))
    z = standardised(a)
    np.testing.assert_allclose(z.mean(1).numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(1).numpy(), 1.0)
    np.testing.assert_allclose(standardised(torch.ones(2, 3)).numpy(), 0.0)  # flat rows stay finite
    torch.testing.assert_close(blend(a, b, 1.0), standardised(a))
    torch.testing.assert_close(blend(a, b, 0.0), standardised(b))
    torch.testing.assert_close(blend(a, b, 0.3), 0.3 * standardised(a) + 0.7 * standardised(b))
    assert NETWORK_WEIGHTS[0] == 0.0 and NETWORK_WEIGHTS[-1] == 1.0


def test_ndcg_sum_by_hand():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4]])
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]]))
    truth = sp.csr_matrix(np.array([[0, 0, 0, 1], [1, 0, 0, 0]]))
    # row 0: item 0 excluded, ranking 1, 3, 2 -> hit at rank 2; row 1: item 0 ranked last
    expected = 1 / np.log2(3) + 0.0
    assert ndcg_sum(scores, seen, truth, k=2) == pytest.approx(expected)
    assert ndcg_sum(scores, seen, truth, k=4) == pytest.approx(expected + 1 / np.log2(5))


@pytest.fixture(scope="module")
def interactions():
    return clustered_interactions(n_users=90, n_items=30, per_user=8)


@pytest.fixture(scope="module")
def blended(interactions):
    return KernelImplicitRecommender(**SMALL).fit(interactions)


def test_auto_chooses_penalty_and_weight_on_held_out_interactions(blended):
    assert blended.item_item_alpha_ > 0
    assert blended.network_weight_ in NETWORK_WEIGHTS
    tried = blended.item_item_validation_
    assert blended.item_item_alpha_ in tried["alpha"]
    assert tried["alpha"][blended.item_item_alpha_] == max(tried["alpha"].values())
    by_weight = tried["network_weight"]
    assert by_weight[blended.network_weight_] == max(by_weight.values())
    if blended.network_weight_ < 1.0:
        assert blended.module_.item_item.shape == (30, 30)
        assert torch.all(torch.diagonal(blended.module_.item_item) == 0)


def test_ranking_is_the_blend_of_both_paths(blended, interactions):
    model = blended
    rows = model._interactions[:5]
    logits = model._logits(rows).detach()
    weights = model.module_.item_item
    if weights is None:
        pytest.skip("the network won alone on this draw")
    linear = torch.as_tensor(rows.toarray(), dtype=weights.dtype) @ weights
    expected = blend(logits, linear, model.network_weight_)
    torch.testing.assert_close(model._ranking_scores(rows), expected, rtol=1e-5, atol=1e-5)
    # a known user's history passed as a new user ranks the same
    user = model.user_ids_[0]
    history = interactions[interactions[:, 0] == user, 1]
    known = model.recommend([user], n=5)
    new = model.recommend(history=[history.tolist()], n=5)
    np.testing.assert_array_equal(known[0], new[0])


def test_item_item_off_is_the_network_alone(interactions):
    model = KernelImplicitRecommender(item_item=False, **SMALL).fit(interactions)
    assert model.network_weight_ == 1.0 and model.item_item_alpha_ is None
    assert model.module_.item_item is None
    _, scores = model.recommend([0], n=3)
    assert np.all(scores <= 0)  # log-probabilities


def test_item_item_needs_held_out_interactions(interactions):
    auto = KernelImplicitRecommender(early_stopping=False, **SMALL).fit(interactions)
    assert auto.module_.item_item is None and auto.network_weight_ == 1.0
    with pytest.raises(ValueError, match="early_stopping"):
        KernelImplicitRecommender(item_item=True, early_stopping=False, **SMALL).fit(interactions)


def test_item_item_off_above_the_catalogue_cap(interactions, monkeypatch):
    from skkernelnet import _item_item

    monkeypatch.setattr(_item_item, "MAX_ITEMS", 10)
    model = KernelImplicitRecommender(**SMALL).fit(interactions)
    assert model.module_.item_item is None
    forced = KernelImplicitRecommender(item_item=True, **SMALL).fit(interactions)
    assert forced.item_item_alpha_ is not None


def test_pickle_keeps_the_item_item_path(blended):
    loaded = pickle.loads(pickle.dumps(blended))
    np.testing.assert_array_equal(
        loaded.recommend(blended.user_ids_[:4], n=6)[0],
        blended.recommend(blended.user_ids_[:4], n=6)[0],
    )
    assert loaded.network_weight_ == blended.network_weight_


@settings(max_examples=25, deadline=None)
@given(
    n_users=st.integers(1, 12),
    n_items=st.integers(2, 12),
    lam=st.floats(0.1, 50.0),
    seed=st.integers(0, 10_000),
    sparse_rows=st.booleans(),
)
def test_scorer_equals_the_product_with_the_weights(n_users, n_items, lam, seed, sparse_rows):
    """The Woodbury scorer (fewer users than items) never forms B but gives x @ B."""
    X = _random_interactions(n_users, n_items, 0.4, seed)
    system = ItemItemSystem(X)
    queries = _random_interactions(5, n_items, 0.5, seed + 1)
    dense = torch.as_tensor(queries.toarray())
    rows = dense.to_sparse_csr() if sparse_rows else dense
    expected = dense @ system.weights(lam, dtype=torch.float64)
    got = system.scorer(lam, dtype=torch.float64)(rows)
    torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-9)
    with pytest.raises(ValueError, match="positive"):
        system.scorer(-1.0)
