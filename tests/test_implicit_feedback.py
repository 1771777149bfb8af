"""KernelImplicitRecommender: objective, learning, recommend / fold-in, similar items, API."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from skkernelnet import KernelImplicitRecommender
from skkernelnet.implicit_feedback import ImplicitAutoencoder, multinomial_objective
from skkernelnet.layers import KernelLinear
from skkernelnet.metrics import evaluate_recommender
from skkernelnet.networks import KernelNetwork

SMALL = {"hidden_layer_sizes": (16,), "max_iter": 30, "random_state": 0, "batch_size": 20}


def clustered_interactions(n_users=60, n_items=30, n_groups=3, per_user=6, seed=0):
    """Users of group g interact only with items of block g: personal taste, flat popularity."""
    rng = np.random.RandomState(seed)
    block = n_items // n_groups
    pairs = []
    for user in range(n_users):
        group = user % n_groups
        items = rng.choice(block, per_user, replace=False) + group * block
        pairs += [(user, item) for item in items]
    return np.array(pairs)


@pytest.fixture(scope="module")
def interactions():
    return clustered_interactions()


@pytest.fixture(scope="module")
def fitted(interactions):
    return KernelImplicitRecommender(**SMALL).fit(interactions)


# -- scikit-learn's estimator checks ---------------------------------------------------------
# X of this estimator is (user id, item id) pairs: the checks' random float matrices with
# other than 2 columns are rejected by design, and their outputs are not per-sample
# predictions (there is no predict: transform and recommend work on ids).
_NOT_PAIRS = "generic X has other than 2 columns; X must be (user id, item id) pairs"
EXPECTED_FAILED_CHECKS = dict.fromkeys(
    [
        "check_dict_unchanged",
        "check_dont_overwrite_parameters",
        "check_dtype_object",
        "check_estimators_dtypes",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_fit2d_1sample",
        "check_fit2d_predict1d",
        "check_fit_score_takes_y",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_n_features_in_after_fitting",
        "check_transformer_data_not_an_array",
        "check_transformer_general",
        "check_transformer_n_iter",
        "check_transformer_preserve_dtypes",
        "check_positive_only_tag_during_fit",
        "check_estimators_nan_inf",
        "check_pipeline_consistency",
        "check_sample_weights_list",
        "check_all_zero_sample_weights_error",
        "check_sample_weight_equivalence_on_dense_data",
    ],
    _NOT_PAIRS,
)


@parametrize_with_checks(
    [KernelImplicitRecommender(hidden_layer_sizes=(4,), max_iter=2, random_state=0)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- objective -------------------------------------------------------------------------------
def test_objective_matches_naive_formula():
    torch.manual_seed(0)
    net = KernelNetwork(7, (5,), 7, activation="tanh").double()
    x = (torch.rand(4, 7) < 0.4).double()
    x[0, 0] = 1.0
    target = x * torch.tensor([1.0, 2, 1, 1, 3, 1, 1], dtype=torch.float64)
    alpha, kernel_alpha = 0.1, 0.01
    ours = multinomial_objective(net, x, target, alpha, kernel_alpha)
    logits = x @ (net.layers[0].W * net.layers[0].kernel_matrix()) + net.layers[0].bias
    logits = torch.tanh(logits)
    logits = logits @ (net.layers[1].W * net.layers[1].kernel_matrix()) + net.layers[1].bias
    prob = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    nll = -(target * torch.log(prob)).sum(1).mean()
    free = sum(0.5 * (layer.W**2).sum() for layer in net.layers)
    kern = sum(0.5 * (layer.kernel_matrix() ** 2).sum() for layer in net.layers)
    torch.testing.assert_close(ours, nll + alpha * free + kernel_alpha * kern)


def test_shortcut_never_lets_an_item_predict_itself():
    torch.manual_seed(0)
    deep = KernelNetwork(5, (3,), 5)
    shortcut = KernelLinear(5, 5, bias=False)
    net = ImplicitAutoencoder(deep, shortcut)
    assert torch.all(torch.diagonal(net.shortcut_weight()) == 0)
    x = torch.eye(5)
    with torch.no_grad():
        shortcut.W.fill_(3.0)
        torch.testing.assert_close(net(x) - deep(x), 3.0 * shortcut.kernel_matrix() * (1 - x))


# -- learning --------------------------------------------------------------------------------
@pytest.mark.parametrize("shortcut", [False, True])
def test_learns_personal_taste_beyond_popularity(shortcut):
    X = clustered_interactions(per_user=8)
    rng = np.random.RandomState(1)
    test = rng.rand(len(X)) < 0.25
    model = KernelImplicitRecommender(**{**SMALL, "max_iter": 60}, shortcut=shortcut)
    model.fit(X[~test])
    scores = evaluate_recommender(model, X[test], k=5)
    # each test user has ~4 unseen items in their block, ~2 of them held out: a model that
    # learnt the blocks finds nearly all in its top 5; popularity (nearly flat over 24
    # unseen items) about 5/24 of them
    assert scores["recall"] > 0.8
    items, _ = model.recommend(X[test, 0][:20], n=2)  # the first two from the user's block
    block = len(model.item_ids_) // 3
    assert np.mean(items // block == (X[test, 0][:20] % 3)[:, None]) > 0.9


def test_early_stopping_restores_best(fitted):
    scores = fitted.validation_scores_
    assert len(scores) == fitted.n_iter_
    assert fitted.best_validation_score_ == max(scores)
    assert scores[fitted.best_iter_ - 1] == max(scores)
    assert all(0 <= s <= 1 for s in scores)  # NDCG@10


def test_same_random_state_same_model(interactions, fitted):
    again = KernelImplicitRecommender(**SMALL).fit(interactions)
    np.testing.assert_array_equal(again.recommend([0, 1])[0], fitted.recommend([0, 1])[0])


def test_no_early_stopping_and_confidence_weights(interactions):
    model = KernelImplicitRecommender(**{**SMALL, "max_iter": 3}, early_stopping=False)
    model.fit(interactions, sample_weight=np.linspace(1, 3, len(interactions)))
    assert model.validation_scores_ is None
    # repeated pairs add up: the same matrix as summed weights
    doubled = np.vstack([interactions, interactions])
    once = KernelImplicitRecommender(**{**SMALL, "max_iter": 2}, early_stopping=False)
    twice = clone(once)
    once.fit(interactions, sample_weight=np.full(len(interactions), 2.0))
    twice.fit(doubled)
    np.testing.assert_array_equal(once._interactions.toarray(), twice._interactions.toarray())


# -- recommend, fold-in ----------------------------------------------------------------------
def test_recommend_excludes_seen_and_sorts(fitted, interactions):
    items, scores = fitted.recommend([0, 1, 2], n=8)
    assert items.shape == scores.shape == (3, 8)
    for row, user in zip(items, [0, 1, 2]):
        seen = set(interactions[interactions[:, 0] == user, 1])
        assert not seen & set(row)
        assert len(set(row)) == len(row)
    assert np.all(np.diff(scores, axis=1) <= 0)
    if fitted.network_weight_ == 1.0:
        assert np.all(scores <= 0)  # log-probabilities
    with_seen, _ = fitted.recommend([0], n=30, exclude_seen=False)
    assert sorted(with_seen[0]) == sorted(fitted.item_ids_)


def test_recommend_pads_when_few_items_are_left(fitted):
    n_items = len(fitted.item_ids_)
    items, scores = fitted.recommend([0], n=n_items + 5)
    assert items.shape == (1, n_items)  # n is clipped to the catalogue
    assert np.isneginf(scores[0, -6:]).all()  # user 0 has 6 seen items, at the end
    assert np.isfinite(scores[0, : n_items - 6]).all()


def test_fold_in_equals_known_user(fitted, interactions):
    history = [interactions[interactions[:, 0] == user, 1].tolist() for user in (0, 4)]
    known_items, known_scores = fitted.recommend([0, 4], n=5)
    new_items, new_scores = fitted.recommend(history=history, n=5)
    np.testing.assert_array_equal(new_items, known_items)
    np.testing.assert_allclose(new_scores, known_scores, rtol=1e-5)
    np.testing.assert_allclose(fitted.fold_in(history), fitted.user_embeddings_[[0, 4]], rtol=1e-5)
    weighted = fitted.recommend(history=[{item: 2.0 for item in history[0]}], n=5)[0]
    np.testing.assert_array_equal(weighted[0], known_items[0])  # scale-free input


def test_unknown_users(fitted, interactions):
    items, scores = fitted.recommend(["nobody"], n=3)
    top_popular = fitted.item_ids_[np.argsort(-fitted.item_popularity_, kind="stable")[:3]]
    np.testing.assert_array_equal(np.sort(items[0]), np.sort(top_popular))
    strict = clone(fitted).set_params(handle_unknown="error", max_iter=2).fit(interactions)
    with pytest.raises(ValueError, match="not seen in fit"):
        strict.recommend([0, "nobody"])
    with pytest.raises(ValueError, match="not seen in fit"):
        strict.transform([[0, 999]])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"history": [[0, 999]]}, "items not seen in fit"),
        ({"history": [[]]}, "is empty"),
        ({"history": []}, "history is empty"),
        ({"history": "abc"}, "one entry per new user"),
        ({"history": [5]}, "must be a list of item ids"),
        ({"history": [{0: -1.0}]}, "finite and positive"),
        ({"users": [0], "history": [[1]]}, "exactly one of"),
        ({}, "exactly one of"),
        ({"users": [0], "n": 0}, "positive integer"),
    ],
)
def test_recommend_bad_input(fitted, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fitted.recommend(**kwargs)


@pytest.mark.parametrize(
    "X, weight, match",
    [
        (np.zeros((0, 2)), None, "X is empty"),
        (np.zeros((4, 3)), None, "exactly 2 columns|shape"),
        ([[0, 1], [1, 2]], [1.0], "sample_weight has 1 entries"),
        ([[0, 1], [1, 2]], [1.0, 0.0], "finite positive"),
        ([[0, 1], [1, 2]], [1.0, np.nan], "finite positive"),
        ([[0, 1]], None, "at least 2 interactions"),
    ],
)
def test_fit_bad_input(X, weight, match):
    with pytest.raises(ValueError, match=match):
        KernelImplicitRecommender(max_iter=1).fit(X, sample_weight=weight)


# -- vectors ---------------------------------------------------------------------------------
def test_similar_items(fitted):
    neighbours, similarity = fitted.similar_items([0, 10], n=4)
    assert neighbours.shape == similarity.shape == (2, 4)
    assert 0 not in neighbours[0] and 10 not in neighbours[1]
    assert np.all(np.diff(similarity, axis=1) <= 1e-12)
    assert np.all(np.abs(similarity) <= 1 + 1e-9)
    vectors = fitted.item_embeddings_.astype(np.float64)
    vectors -= vectors.mean(axis=0)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(similarity[0, 0], unit[0] @ unit[neighbours[0, 0]], rtol=1e-6)
    full, _ = fitted.similar_items([0], n=100)
    assert full.shape == (1, len(fitted.item_ids_) - 1)
    with pytest.raises(ValueError, match="items not seen in fit"):
        fitted.similar_items([12345])


def test_transform_and_embeddings(fitted):
    width = fitted.hidden_layer_sizes[-1]
    out = fitted.transform([[0, 3], [1, 7], [999, 3]])
    assert out.shape == (3, 2 * width)
    np.testing.assert_allclose(out[0, :width], fitted.user_embeddings_[0], rtol=1e-5)
    np.testing.assert_allclose(out[0, width:], fitted.item_embeddings_[3])
    assert np.all(out[2, :width] == 0)  # unknown user
    assert fitted.get_feature_names_out().shape == (2 * width,)
    assert fitted.user_embeddings_.shape == (len(fitted.user_ids_), width)
    assert fitted.item_embeddings_.shape == (len(fitted.item_ids_), width)


def test_string_ids_dataframe_pickle_clone(interactions):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "user": [f"u{u}" for u in interactions[:, 0]],
            "item": [f"i{i}" for i in interactions[:, 1]],
        }
    )
    model = KernelImplicitRecommender(**{**SMALL, "max_iter": 3}).fit(frame)
    assert model.item_ids_[0].startswith("i")
    np.testing.assert_array_equal(model.feature_names_in_, ["user", "item"])
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.recommend(["u0"])[0], model.recommend(["u0"])[0])
    assert clone(model).get_params() == model.get_params()


def test_warm_start_continues(interactions):
    model = KernelImplicitRecommender(**{**SMALL, "max_iter": 2}, warm_start=True)
    model.fit(interactions)
    first = model.module_.layers[0].W.detach().clone()
    model.fit(interactions)
    assert not torch.equal(first, model.module_.layers[0].W)
    with pytest.raises(ValueError, match="not seen in the first fit"):
        model.fit(np.vstack([interactions, [[0, 999], [1, 999]]]))
