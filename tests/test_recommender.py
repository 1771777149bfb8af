"""KernelCollaborativeFilter and RatingBaseline: API, input checks, exactness of the fast path."""

import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.utils.estimator_checks import parametrize_with_checks

from skkernelnet import KernelCollaborativeFilter
from skkernelnet._reference import reference_loss
from skkernelnet.datasets import make_ratings
from skkernelnet.kernels import RBFKernel
from skkernelnet.layers import EntryIndex, SparseInput
from skkernelnet.networks import KernelNetwork
from skkernelnet.recommender import RatingBaseline, rating_objective

SMALL = {"hidden_layer_sizes": (16,), "max_iter": 15, "random_state": 0}

# Small fits stop at max_iter on purpose; the warning that says so is expected here.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def ratings():
    X, y = make_ratings(60, 40, density=0.3, random_state=0, return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def fitted(ratings):
    X, y = ratings
    return KernelCollaborativeFilter(**SMALL).fit(X, y)


# -- scikit-learn's estimator checks ---------------------------------------------------------
# The one place where the generic checks that cannot apply are listed, with the reason.
# What the waived checks test is tested on rating data below: predicting in batches and in
# any order (check_methods_subset_invariance, check_methods_sample_order_invariance),
# fitting twice (check_fit_idempotent), parameters untouched by fit
# (check_dont_overwrite_parameters, check_estimators_overwrite_params), __dict__ untouched
# by inference (check_dict_unchanged), pickling fitted and unfitted models
# (check_estimators_pickle), bad input (check_estimators_nan_inf, test_bad_input).
# X of this estimator is (user id, item id) pairs, so the checks' random float matrices
# with 3 or more columns are rejected by design ...
_NOT_PAIRS = "generic X has other than 2 columns; X must be (user id, item id) pairs"
# ... and their 2-column matrices repeat (user, item) pairs, which fit rejects by design
_DUPLICATES = "generic 2-column X repeats (user, item) pairs; fit rejects duplicate ratings"
EXPECTED_FAILED_CHECKS = {
    **dict.fromkeys(
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
            "check_non_transformer_estimators_n_iter",
            "check_pipeline_consistency",
            "check_regressor_data_not_an_array",
            "check_regressors_int",
            "check_regressors_no_decision_function",
            "check_regressors_train",
            "check_supervised_y_2d",
            "check_transformer_data_not_an_array",
            "check_transformer_general",
            "check_transformer_n_iter",
            "check_transformer_preserve_dtypes",
            "check_positive_only_tag_during_fit",
            "check_estimators_nan_inf",  # NaN ids in (n, 2) X: test_bad_input covers them
        ],
        _NOT_PAIRS,
    ),
    **dict.fromkeys(
        [
            "check_estimators_fit_returns_self",
            "check_estimators_overwrite_params",
            "check_fit_check_is_fitted",
            "check_fit_idempotent",
            "check_n_features_in",
            "check_readonly_memmap_input",
        ],
        _DUPLICATES,
    ),
}


@parametrize_with_checks(
    [KernelCollaborativeFilter(hidden_layer_sizes=(8,), max_iter=5, random_state=0)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- exactness of the sparse, observed-entries-only objective --------------------------
@pytest.mark.parametrize("blocks", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_objective_matches_naive_dense_formulation(seed, blocks, monkeypatch):
    if blocks:  # the sparse products in blocks of one or two columns (see layers._BLOCK_BYTES)
        monkeypatch.setattr("skkernelnet.layers._BLOCK_BYTES", 96)
    torch.manual_seed(seed)
    n_items, n_users = 12, 9
    mask = (torch.rand(n_items, n_users) < 0.4).double()
    R = torch.randint(1, 6, (n_items, n_users)).double() * mask
    net = KernelNetwork(n_users, (7, 6), n_users, embedding_dim=3, activation="logistic").double()
    for layer in net.layers:  # spread the embeddings so that the kernel is not constant
        torch.nn.init.normal_(layer.u, std=0.4)
        torch.nn.init.normal_(layer.v, std=0.4)
    rows, cols = mask.nonzero(as_tuple=True)
    n = len(rows)
    lambda_2, lambda_s = 2.0, 0.3
    ours, _ = rating_objective(
        net,
        SparseInput(R.to_sparse_csr()),
        EntryIndex(rows, cols, R.shape),
        R[rows, cols],
        lambda_2 / n,
        lambda_s / n,
    )
    layers = [(layer.u, layer.v, layer.W, layer.bias) for layer in net.layers]
    naive = reference_loss(R, mask, layers, lambda_2, lambda_s)
    torch.testing.assert_close(ours * n, naive)
    params = list(net.parameters())
    for g_ours, g_naive in zip(
        torch.autograd.grad(ours * n, params), torch.autograd.grad(naive, params)
    ):
        torch.testing.assert_close(g_ours, g_naive)


# -- fitting and predicting ---------------------------------------------------------------
def test_fit_predict_clips_to_training_range(fitted, ratings):
    X, y = ratings
    pred = fitted.predict(X)
    assert pred.shape == (len(X),)
    assert np.isfinite(pred).all()
    assert pred.min() >= y.min() and pred.max() <= y.max()
    assert fitted.rating_range_ == (y.min(), y.max())


def test_learns_better_than_the_bias_baseline():
    # Ratings with a clear low-rank part beyond the biases, which the baseline cannot
    # model: the networks must find it.
    X, y = make_ratings(
        150, 80, density=0.3, noise=0.3, rank=3, integer=False, random_state=0, return_X_y=True
    )
    test = np.random.RandomState(0).rand(len(y)) < 0.2
    model = KernelCollaborativeFilter(hidden_layer_sizes=(32,), max_iter=150, random_state=0)
    model.fit(X[~test], y[~test])
    baseline = RatingBaseline().fit(X[~test], y[~test])
    rmse = root_mean_squared_error(y[test], model.predict(X[test]))
    rmse_baseline = root_mean_squared_error(y[test], baseline.predict(X[test]))
    assert rmse < 0.9 * rmse_baseline  # measured: 0.45 against 0.60


def test_same_random_state_same_predictions(ratings, fitted):
    X, y = ratings
    again = KernelCollaborativeFilter(**SMALL).fit(X, y)
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))


def _capture_validation():
    """A callback keeping the fit's validation object (BlendedValidation)."""
    captured = {}

    def callback(monitor):
        captured["validation"] = monitor.validate

    return captured, callback


def _held_out_outputs(validation):
    """Each network's output at the held-out ratings from its training input, in the
    primary network's order of the held-out ratings, recomputed from the networks."""
    held_out = validation.problems[0].validation_ratings
    outputs = []
    for problem in validation.problems:
        with torch.no_grad():
            out = problem.view.module.forward_at(problem.inputs, problem.validation_index)
        at = dict(zip(problem.validation_ratings.tolist(), out.double().numpy()))
        outputs.append(np.array([at[k] for k in held_out.tolist()]))
    return held_out, outputs


def test_early_stopping_restores_best_and_refits_the_network_weights_there(ratings):
    from skkernelnet._rating_training import (
        SUPPORT_GRID,
        network_weights,
        significant_or_zero,
        support_factor,
    )

    X, y = ratings
    captured, callback = _capture_validation()
    model = KernelCollaborativeFilter(
        hidden_layer_sizes=(16,),
        max_iter=300,
        n_iter_no_change=5,
        validation_fraction=0.2,
        random_state=0,
        callbacks=[callback],
    ).fit(X, y)
    scores = model.validation_scores_
    # the last iteration is not the best, so a model left there would score differently
    assert model.stop_reason_ == "no_improvement" and model.best_iter_ < model.n_iter_
    assert scores[-1] < model.best_validation_score_ == max(scores)
    assert scores[model.best_iter_ - 1] == max(scores)

    held_out, (primary, secondary) = _held_out_outputs(captured["validation"])
    # the baseline the networks were scored against: fitted without the held-out ratings
    offset = captured["validation"].offset
    residual = y[held_out] - offset
    # each network's output shrunk by its output neuron's training ratings, n / (n + tau):
    # users for the item-based network, items for the user-based one
    users = np.searchsorted(model.user_ids_, X[held_out, 0])
    items = np.searchsorted(model.item_ids_, X[held_out, 1])
    support = [model.user_support_[users], model.item_support_[items]]
    best = None
    for tau in SUPPORT_GRID:
        shrunk = [o * support_factor(n, tau) for o, n in zip((primary, secondary), support)]
        weights = network_weights(shrunk, residual)
        loss = float(((residual - weights[0] * shrunk[0] - weights[1] * shrunk[1]) ** 2).sum())
        if best is None or loss < best[0]:
            best = (loss, tau, shrunk, weights)
    _, tau, shrunk, weights = best
    assert model.support_shrinkage_ == tau
    np.testing.assert_allclose(
        model.network_weights_, significant_or_zero(weights, shrunk, residual), rtol=1e-9
    )
    pred = np.clip(offset + weights[0] * shrunk[0] + weights[1] * shrunk[1], *model.rating_range_)
    rmse = root_mean_squared_error(y[held_out], pred)
    assert -rmse == pytest.approx(model.best_validation_score_, rel=1e-9)


def test_support_factor():
    from skkernelnet._rating_training import support_factor

    np.testing.assert_allclose(support_factor([0, 1, 3, 30], 3.0), [0, 0.25, 0.5, 30 / 33])
    np.testing.assert_array_equal(support_factor([0, 1, 5], 0.0), [1.0, 1.0, 1.0])


def test_outputs_of_users_with_few_ratings_shrink_toward_the_baseline():
    X, y = make_ratings(
        150, 80, density=0.3, noise=0.3, rank=3, integer=False, random_state=0, return_X_y=True
    )
    model = KernelCollaborativeFilter(hidden_layer_sizes=(32,), max_iter=60, random_state=0)
    model.fit(X, y)
    assert model.network_weights_.sum() > 0.5  # the networks help on this low-rank data
    model.support_shrinkage_ = 1e9  # every output neuron untrusted: the baseline
    baseline = np.clip(
        model.global_mean_
        + model.user_bias_[np.searchsorted(model.user_ids_, X[:20, 0])]
        + model.item_bias_[np.searchsorted(model.item_ids_, X[:20, 1])],
        *model.rating_range_,
    )
    np.testing.assert_allclose(model.predict(X[:20]), baseline, atol=1e-6)
    model.support_shrinkage_ = 0.0
    assert not np.allclose(model.predict(X[:20]), baseline, atol=1e-3)


def test_no_held_out_rating_reaches_training(ratings):
    """The networks' training input and the bias baseline never see a held-out rating."""
    X, y = ratings
    params = {**SMALL, "validation_fraction": 0.2}
    captured, callback = _capture_validation()
    model = KernelCollaborativeFilter(**params, callbacks=[callback]).fit(X, y)
    validation = captured["validation"]
    held_out = validation.problems[0].validation_ratings
    for problem in validation.problems:
        rows, cols = problem.view.rows_cols(
            np.searchsorted(model.user_ids_, X[:, 0]), np.searchsorted(model.item_ids_, X[:, 1])
        )
        dense = problem.inputs.csr.to_dense().numpy()
        assert not dense[rows[held_out], cols[held_out]].any()
        trained = set(zip(problem.index.rows.tolist(), problem.index.cols.tolist()))
        assert not trained & set(zip(rows[held_out].tolist(), cols[held_out].tolist()))
    # Change every held-out rating (within the same range): training is unchanged.
    low, high = y.min(), y.max()
    changed = y.copy()
    changed[held_out] = np.where(y[held_out] > (low + high) / 2, low, high)
    captured_again, callback_again = _capture_validation()
    again = KernelCollaborativeFilter(**params, callbacks=[callback_again]).fit(X, changed)
    assert again.loss_curve_ == model.loss_curve_
    # the baseline the networks were trained and scored against never saw them either
    np.testing.assert_array_equal(captured_again["validation"].offset, validation.offset)
    for problem, problem_again in zip(validation.problems, captured_again["validation"].problems):
        torch.testing.assert_close(problem_again.target, problem.target, rtol=0, atol=0)
    assert again.validation_scores_ != model.validation_scores_  # they are what changed


def test_string_ids_and_dataframe(ratings):
    pd = pytest.importorskip("pandas")
    X, y = ratings
    frame = pd.DataFrame({"user": [f"u{u}" for u in X[:, 0]], "item": [f"i{i}" for i in X[:, 1]]})
    model = KernelCollaborativeFilter(**SMALL).fit(frame, y)
    numeric = KernelCollaborativeFilter(**SMALL).fit(X, y)
    assert model.user_ids_[0].startswith("u")
    assert len(model.item_ids_) == len(np.unique(X[:, 1]))
    np.testing.assert_allclose(model.predict(frame.iloc[:5]), model.predict(frame.to_numpy()[:5]))
    assert np.isfinite(numeric.predict(X)).all()


def test_blend_trains_both_orientations(fitted, ratings):
    X, y = ratings
    assert fitted.blend_module_ is not None
    assert 0.0 <= fitted.blend_weight_ <= 1.0
    assert fitted.module_.layers[0].in_features == len(fitted.user_ids_)  # item-based
    assert fitted.blend_module_.layers[0].in_features == len(fitted.item_ids_)  # user-based
    single = KernelCollaborativeFilter(blend=False, **SMALL).fit(X, y)
    assert single.blend_module_ is None and single.blend_weight_ == 1.0
    no_holdout = KernelCollaborativeFilter(early_stopping=False, **SMALL).fit(X, y)
    assert no_holdout.validation_scores_ is None
    assert 0.0 < no_holdout.blend_weight_ < 1.0
    np.testing.assert_allclose(no_holdout.network_weights_, [0.7, 0.3])


def test_network_weights_are_constrained_least_squares():
    from scipy.optimize import minimize

    from skkernelnet._rating_training import network_weights as _network_weights

    rng = np.random.RandomState(0)
    a, b = rng.randn(50), rng.randn(50)
    np.testing.assert_allclose(_network_weights([a, b], 0.3 * a + 0.5 * b), [0.3, 0.5])
    np.testing.assert_allclose(_network_weights([a, b], 0.3 * a + 0.7 * b), [0.3, 0.7])
    np.testing.assert_allclose(_network_weights([a, b], -a - b), [0.0, 0.0])  # the baseline
    # outside the polytope: compare with a generic constrained solver
    for target in (2 * a - b, 3 * a + 2 * b, -a + 0.5 * b, rng.randn(50)):
        got = _network_weights([a, b], target)
        assert (got >= -1e-12).all() and got.sum() <= 1 + 1e-12

        def loss(w, target=target):
            return float(((target - w[0] * a - w[1] * b) ** 2).sum())

        best = minimize(
            loss,
            [0.2, 0.2],
            bounds=[(0, 1), (0, 1)],
            method="SLSQP",
            constraints=[{"type": "ineq", "fun": lambda w: 1 - w.sum()}],
        )
        assert loss(got) <= best.fun + 1e-9
    np.testing.assert_allclose(_network_weights([a], 0.4 * a), [0.4])
    np.testing.assert_allclose(_network_weights([a], 3 * a), [1.0])
    np.testing.assert_allclose(_network_weights([a, a], a).sum(), 1.0)  # identical views


def test_insignificant_network_gain_falls_back_to_baseline():
    from skkernelnet._rating_training import significant_or_zero as _significant_or_zero

    rng = np.random.RandomState(0)
    signal = rng.randn(2000)
    target = signal + rng.randn(2000)
    kept = _significant_or_zero(np.array([0.5, 0.5]), [signal, signal], target)
    np.testing.assert_allclose(kept, [0.5, 0.5])
    noise = rng.randn(2000)
    dropped = _significant_or_zero(np.array([0.02, 0.0]), [noise, noise], target)
    np.testing.assert_allclose(dropped, [0.0, 0.0])


def test_networks_that_do_not_help_give_the_baseline():
    # ratings that are user bias + item bias + noise: nothing for the networks to learn
    rng = np.random.RandomState(0)
    users, items = rng.randint(0, 60, 3000), rng.randint(0, 40, 3000)
    pairs = np.unique(np.c_[users, items], axis=0)
    y = 3 + rng.randn(60)[pairs[:, 0]] * 0.5 + rng.randn(40)[pairs[:, 1]] * 0.5
    y = y + rng.randn(len(pairs))
    with pytest.warns(ConvergenceWarning):
        model = KernelCollaborativeFilter(max_iter=30, random_state=0).fit(pairs, y)
    np.testing.assert_array_equal(model.network_weights_, [0.0, 0.0])
    # the fallback is the bias baseline of every training rating
    np.testing.assert_allclose(model.predict(pairs), RatingBaseline().fit(pairs, y).predict(pairs))


def test_auto_sizes_follow_the_data():
    rng = np.random.RandomState(0)
    pairs = np.unique(np.c_[rng.randint(0, 300, 2000), rng.randint(0, 100, 2000)], axis=0)
    y = rng.randint(1, 6, len(pairs)).astype(float)
    model = KernelCollaborativeFilter(max_iter=2, random_state=0).fit(pairs, y)
    n_fit = len(y) - max(round(0.1 * len(y)), 1)  # "auto" validation: 10% of few ratings
    for module, n_inputs in ((model.module_, 300), (model.blend_module_, 100)):
        expected = int(np.clip(22 * n_fit / (2 * n_inputs), 32, 500))
        assert [layer.out_features for layer in module.layers[:-1]] == [expected, expected]
    wide = KernelCollaborativeFilter(hidden_layer_sizes=(7,), max_iter=2).fit(pairs, y)
    assert wide.module_.layers[0].out_features == 7


def test_user_orientation(ratings):
    X, y = ratings
    model = KernelCollaborativeFilter(orientation="user", **SMALL).fit(X, y)
    assert model.module_.layers[0].in_features == len(np.unique(X[:, 1]))
    assert np.isfinite(model.predict(X)).all()
    assert model.user_embeddings_.shape == (len(model.user_ids_), 16)
    assert model.item_embeddings_.shape == (len(model.item_ids_), 10)


def test_unknown_ids_fallback_and_error(fitted, ratings):
    X, y = ratings
    known_user, known_item = X[0]
    queries = np.array([[known_user, 10_000], [10_000, known_item], [10_001, 10_002]])
    pred = fitted.predict(queries)
    assert np.isfinite(pred).all()
    j = np.flatnonzero(fitted.item_ids_ == known_item)[0]
    u = np.flatnonzero(fitted.user_ids_ == known_user)[0]
    np.testing.assert_allclose(pred[0], fitted.global_mean_ + fitted.user_bias_[u])
    np.testing.assert_allclose(pred[1], fitted.global_mean_ + fitted.item_bias_[j])
    np.testing.assert_allclose(pred[2], fitted.global_mean_)
    strict = clone(fitted).set_params(handle_unknown="error").fit(X, y)
    with pytest.raises(ValueError, match="not seen in fit"):
        strict.predict(queries)


def test_recommend(fitted, ratings):
    X, y = ratings
    users = fitted.user_ids_[:3]
    items, scores = fitted.recommend(users, n=5)
    assert items.shape == scores.shape == (3, 5)
    assert (np.diff(scores, axis=1) <= 0).all()
    for user, row in zip(users, items):
        seen = set(X[X[:, 0] == user, 1])
        assert not seen & set(row)
    with_seen, _ = fitted.recommend(users, n=5, exclude_seen=False)
    assert with_seen.shape == (3, 5)
    cold, cold_scores = fitted.recommend([123456], n=3, popularity_weight=0.0)
    top_baseline = fitted.item_ids_[np.argsort(-fitted.item_bias_)[:3]]
    np.testing.assert_array_equal(cold[0], top_baseline)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        fitted.recommend(users, n=0)


def test_recommend_scores_agree_with_predict(fitted):
    user = fitted.user_ids_[1]
    items, scores = fitted.recommend([user], n=4, exclude_seen=False, popularity_weight=0.0)
    pairs = np.column_stack([np.full(4, user), items[0]])
    np.testing.assert_allclose(
        np.clip(scores[0], *fitted.rating_range_), fitted.predict(pairs), rtol=1e-5
    )


def test_recommend_popularity_prior(fitted, ratings):
    X, _ = ratings
    user = fitted.user_ids_[2]
    n_items, n_users = len(fitted.item_ids_), len(fitted.user_ids_)
    raw_items, raw = fitted.recommend([user], n=n_items, exclude_seen=False, popularity_weight=0)
    items, scores = fitted.recommend([user], n=n_items, exclude_seen=False, popularity_weight=2.0)
    counts = {i: np.sum(X[:, 1] == i) for i in fitted.item_ids_}
    expected = dict(zip(raw_items[0], raw[0]))
    for item, score in zip(items[0], scores[0]):
        prior = np.log((counts[item] + 1) / (n_users + 1))
        assert score == pytest.approx(expected[item] + 2.0 * prior, rel=1e-6)
    # a huge weight ranks by popularity
    top, _ = fitted.recommend([user], n=3, exclude_seen=False, popularity_weight=1e6)
    assert [counts[i] for i in top[0]] == sorted(counts.values(), reverse=True)[:3]
    with pytest.raises(ValueError, match="popularity_weight must be a finite number"):
        fitted.recommend([user], popularity_weight=np.nan)


def test_transform_embeddings(fitted, ratings):
    X, _ = ratings
    Z = fitted.transform(X[:7])
    n_user, n_item = fitted.user_embeddings_.shape[1], fitted.item_embeddings_.shape[1]
    assert n_user == 2 * fitted.embedding_dim
    assert n_item == fitted.hidden_layer_sizes[-1]
    assert Z.shape == (7, n_user + n_item)
    Z_unknown = fitted.transform([[10_000, 10_001]])
    assert not Z_unknown.any()


@pytest.mark.parametrize(
    "X, y, match",
    [
        ([[1, 2], [1, 3]], [4.0, np.nan], "NaN or infinite ratings"),
        ([[1, 2], [1, 3]], [4.0, np.inf], "NaN or infinite ratings"),
        ([[1, 2, 3], [1, 3, 4]], [4.0, 3.0], r"shape \(n_ratings, 2\)"),
        ([1, 2, 3], [4.0, 3.0, 2.0], r"shape \(n_ratings, 2\)"),
        ([[1, 2], [1, 2]], [4.0, 3.0], "duplicate"),
        (np.empty((0, 2)), [], "empty"),
        ([[1, 2], [1, 3]], ["good", "bad"], "numeric"),
        ([[1, 2], [1, 3]], [4.0], "inconsistent"),
    ],
)
def test_bad_input(X, y, match):
    with pytest.raises(ValueError, match=match):
        KernelCollaborativeFilter(**SMALL).fit(X, y)


def test_bad_predict_input(fitted):
    with pytest.raises(ValueError, match=r"shape \(n_ratings, 2\)"):
        fitted.predict(np.zeros((3, 3)))


def test_pickle_and_clone(fitted, ratings):
    X, _ = ratings
    state = dict(vars(fitted))
    restored = pickle.loads(pickle.dumps(fitted))
    assert vars(fitted).keys() == state.keys()  # pickling leaves the live model alone
    assert all(vars(fitted)[k] is v for k, v in state.items())
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    assert clone(fitted).get_params() == fitted.get_params()


def test_model_selection_with_rmse(ratings):
    X, y = ratings
    grid = [1e-4, 1.0]
    folds = list(KFold(2, shuffle=True, random_state=0).split(X))
    search = GridSearchCV(
        KernelCollaborativeFilter(**SMALL),
        {"alpha": grid},
        scoring="neg_root_mean_squared_error",
        cv=folds,
    ).fit(X, y)
    # what the search computed, recomputed fold by fold
    expected = [
        np.mean(
            [
                -root_mean_squared_error(
                    y[test],
                    KernelCollaborativeFilter(**SMALL, alpha=alpha)
                    .fit(X[train], y[train])
                    .predict(X[test]),
                )
                for train, test in folds
            ]
        )
        for alpha in grid
    ]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], expected, rtol=1e-12)
    assert search.best_params_["alpha"] == grid[int(np.argmax(expected))]
    scores = cross_validate(KernelCollaborativeFilter(**SMALL), X, y, cv=2)
    assert len(scores["test_score"]) == 2


# -- what scikit-learn's generic checks would test, on rating data ----------------------------
def _queries(X):
    """Known pairs, pairs with an unseen user or item, and a pair of two unseen ids."""
    return np.vstack([X[:40], [[X[0, 0], 10_000], [10_001, X[1, 1]], [10_002, 10_003]]])


def test_predict_in_batches_and_any_order(fitted, ratings):
    X, _ = ratings
    queries = _queries(X)
    pred, codes = fitted.predict(queries), fitted.transform(queries)
    order = np.random.RandomState(0).permutation(len(queries))
    np.testing.assert_allclose(fitted.predict(queries[order]), pred[order], rtol=1e-6)
    np.testing.assert_allclose(fitted.transform(queries[order]), codes[order], rtol=1e-6)
    batches = np.array_split(np.arange(len(queries)), 5)
    np.testing.assert_allclose(
        np.concatenate([fitted.predict(queries[b]) for b in batches]), pred, rtol=1e-6
    )
    np.testing.assert_allclose(
        np.concatenate([fitted.transform(queries[b]) for b in batches]), codes, rtol=1e-6
    )


def test_fitting_twice_gives_the_same_model(ratings):
    X, y = ratings
    model = KernelCollaborativeFilter(**SMALL)
    first = model.fit(X, y).predict(_queries(X))
    np.testing.assert_array_equal(model.fit(X, y).predict(_queries(X)), first)
    np.testing.assert_array_equal(clone(model).fit(X, y).predict(_queries(X)), first)


def test_fit_does_not_change_parameters(ratings):
    X, y = ratings
    model = KernelCollaborativeFilter(**SMALL, kernel=RBFKernel(gamma=0.5))
    before = {name: joblib.hash(value) for name, value in model.get_params().items()}
    model.fit(X, y)
    after = {name: joblib.hash(value) for name, value in model.get_params().items()}
    assert after == before


def test_inference_does_not_change_the_model(fitted, ratings):
    X, y = ratings
    before = {name: joblib.hash(value) for name, value in vars(fitted).items()}
    queries = _queries(X)
    fitted.predict(queries)
    fitted.transform(queries)
    fitted.score(X[:30], y[:30])
    fitted.recommend(fitted.user_ids_[:3], n=4)
    fitted.get_feature_names_out()
    _ = fitted.user_embeddings_, fitted.item_embeddings_
    assert {name: joblib.hash(value) for name, value in vars(fitted).items()} == before


def test_unfitted_model_pickles(ratings):
    X, y = ratings
    model = KernelCollaborativeFilter(**SMALL)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.get_params() == model.get_params()
    assert not hasattr(restored, "module_")
    np.testing.assert_array_equal(
        restored.fit(X, y).predict(_queries(X)), model.fit(X, y).predict(_queries(X))
    )


def test_baseline(ratings):
    X, y = ratings
    mean_only = RatingBaseline(biases=False).fit(X, y)
    np.testing.assert_allclose(mean_only.predict(X[:3]), y.mean())
    biased = RatingBaseline().fit(X, y)
    assert np.mean((biased.predict(X) - y) ** 2) < np.mean((mean_only.predict(X) - y) ** 2)


def test_callbacks_see_every_iteration(ratings):
    X, y = ratings
    losses = []
    model = KernelCollaborativeFilter(
        **SMALL, callbacks=[lambda monitor: losses.append(monitor.result.loss_curve[-1])]
    ).fit(X, y)
    assert losses == model.loss_curve_


def test_progress_shows_validation_rmse_positive(ratings, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name == "tqdm" or name.startswith("tqdm."):
            raise ImportError("No module named 'tqdm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    X, y = ratings
    model = KernelCollaborativeFilter(**{**SMALL, "max_iter": 3, "verbose": 1}).fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if "Iteration" in line]
    assert len(lines) == model.n_iter_
    shown = [float(line.rsplit("validation RMSE = ", 1)[1]) for line in lines]
    assert all(rmse > 0 for rmse in shown)
    np.testing.assert_allclose(shown, -np.asarray(model.validation_scores_), rtol=1e-5)
