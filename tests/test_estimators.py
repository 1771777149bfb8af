"""KernelNetClassifier and KernelNetRegressor as scikit-learn estimators."""

import builtins
import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skkernelnet import KernelNetClassifier, KernelNetRegressor
from skkernelnet.kernels import KERNELS, Kernel, squared_distances
from skkernelnet.layers import SparseInput

# Small networks and few iterations keep the behavioural tests fast.


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One torch thread: these networks are tiny, and on a busy 2-core machine torch's
    spinning OpenMP threads make every fit tens of times slower (the file takes over
    10 minutes instead of 30 s)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


FAST = {"hidden_layer_sizes": (16,), "max_iter": 30, "random_state": 0}


def _iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _regression(n_samples=120, n_outputs=1, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(n_samples, 4))
    Y = np.column_stack([X[:, 0] - 2 * X[:, 1] ** 2 + k * X[:, 2] for k in range(n_outputs)])
    return X, (Y[:, 0] if n_outputs == 1 else Y)


def _fitted_classifier(**params):
    X, y = _iris()
    return KernelNetClassifier(**{**FAST, **params}).fit(X, y), X, y


# ---------------------------------------------------------------------------------------
# scikit-learn's estimator checks, all of them, no expected failures.
# Default parameters except max_iter=30 (default 1000). Two checks compare a fit with
# integer sample_weight to a fit on repeated rows at rtol=1e-7. The two objectives are
# equal but round differently, and ungated layers have nearly flat directions (the scale
# symmetry a_i K(u_i, v_j) b_j -> (c a_i) K (b_j / c) is broken only by the small
# penalty) along which L-BFGS amplifies rounding: on such data the predictions differ by
# 1e-11 after 30 iterations, 1e-9 after 50 and 1e-3 after 150, at the same loss to 5e-7.
# test_sample_weight_integer_weights_equal_repeated_rows checks the equivalence itself.
# 30 iterations also keep all 140 checks at about 10 s instead of 60.
@parametrize_with_checks([KernelNetClassifier(max_iter=30), KernelNetRegressor(max_iter=30)])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ---------------------------------------------------------------------------------------
# Reproducibility, cloning, persistence
@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_same_random_state_same_predictions(solver):
    X, y = _iris()
    a = KernelNetClassifier(**{**FAST, "solver": solver}).fit(X, y)
    b = KernelNetClassifier(**{**FAST, "solver": solver}).fit(X, y)
    assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    Xr, yr = _regression()
    c = KernelNetRegressor(**{**FAST, "solver": solver}).fit(Xr, yr)
    d = KernelNetRegressor(**{**FAST, "solver": solver}).fit(Xr, yr)
    assert_array_equal(c.predict(Xr), d.predict(Xr))


def test_different_random_state_different_model():
    X, y = _iris()
    a = KernelNetClassifier(**FAST).fit(X, y)
    b = KernelNetClassifier(**{**FAST, "random_state": 1}).fit(X, y)
    assert not np.allclose(a.predict_proba(X), b.predict_proba(X))


def test_fit_does_not_touch_global_torch_rng():
    X, y = _iris()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    KernelNetClassifier(**FAST).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_clone_pickle_joblib_roundtrip(tmp_path):
    clf, X, y = _fitted_classifier()
    expected = clf.predict_proba(X)
    state = dict(vars(clf))

    restored = pickle.loads(pickle.dumps(clf))
    assert all(vars(clf)[k] is v for k, v in state.items())  # the live model is left alone
    assert_array_equal(restored.predict_proba(X), expected)

    path = tmp_path / "model.joblib"
    joblib.dump(clf, path)
    assert_array_equal(joblib.load(path).predict_proba(X), expected)

    fresh = clone(clf)
    assert not hasattr(fresh, "module_")
    assert fresh.get_params() == clf.get_params()
    assert_array_equal(fresh.fit(X, y).predict_proba(X), expected)


def test_model_trained_on_cuda_loads_without_cuda(monkeypatch):
    """Simulated: the pickled ``_device`` says cuda, and this machine has no CUDA."""
    reg_X, reg_y = _regression()
    for est, X, y in [
        (KernelNetClassifier(**FAST), *_iris()),
        (KernelNetRegressor(**FAST), reg_X, reg_y),
    ]:
        est.fit(X, y)
        expected = est.predict(X)
        est._device = torch.device("cuda", 0)  # as after fitting with device="cuda"
        payload = pickle.dumps(est)
        est._device = torch.device("cpu")
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        with pytest.warns(UserWarning, match="trained on cuda:0 but CUDA is not available"):
            loaded = pickle.loads(payload)
        assert loaded._device == torch.device("cpu")
        assert all(p.device.type == "cpu" for p in loaded.module_.parameters())
        assert_array_equal(loaded.predict(X), expected)
        monkeypatch.undo()


def test_cuda_requested_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, y = _iris()
    with pytest.raises(ValueError, match="CUDA is not available"):
        KernelNetClassifier(**{**FAST, "device": "cuda"}).fit(X, y)
    clf = KernelNetClassifier(**{**FAST, "device": "auto"}).fit(X, y)
    assert clf._device.type == "cpu"


def test_gridsearch_pipeline_digits_in_parallel():
    X, y = load_digits(return_X_y=True)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("net", KernelNetClassifier(hidden_layer_sizes=(32,), max_iter=100, random_state=0)),
        ]
    )
    search = GridSearchCV(pipe, {"net__alpha": [0.1, 1.0]}, cv=3, n_jobs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    assert search.best_score_ > 0.85
    assert search.best_estimator_.score(X, y) > 0.9
    assert search.best_estimator_[-1].n_features_in_ == 64


# ---------------------------------------------------------------------------------------
# Progress, divergence, interruption
def test_verbose_with_tqdm_shows_bar_and_loss(capsys):
    pytest.importorskip("tqdm")
    X, y = _iris()
    KernelNetClassifier(**{**FAST, "max_iter": 5, "verbose": 1}).fit(X, y)
    err = capsys.readouterr().err
    assert "KernelNetClassifier" in err
    assert "loss=" in err


@pytest.fixture
def no_tqdm(monkeypatch):
    """Make ``import tqdm`` fail, as on a machine without it."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "tqdm" or name.startswith("tqdm."):
            raise ImportError("No module named 'tqdm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_verbose_without_tqdm_prints_iterations(capsys, no_tqdm):
    X, y = _iris()
    clf = KernelNetClassifier(**{**FAST, "max_iter": 5, "verbose": 1, "tol": 0}).fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == clf.n_iter_ == 5
    assert out[0].startswith("Iteration 1, loss = ")
    assert float(out[-1].rsplit("= ", 1)[1]) == pytest.approx(clf.loss_curve_[-1], rel=1e-5)


def test_silent_by_default(capsys):
    X, y = _iris()
    KernelNetClassifier(**FAST).fit(X, y)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_with_early_stopping_shows_validation_score(capsys, no_tqdm):
    X, y = _iris()
    clf = KernelNetClassifier(**{**FAST, "max_iter": 3, "verbose": 1, "early_stopping": True})
    clf.fit(X, y)
    last = capsys.readouterr().out.splitlines()[-1]
    assert ", validation accuracy = " in last
    assert float(last.rsplit("= ", 1)[1]) == pytest.approx(clf.validation_scores_[-1], rel=1e-5)


def test_diverging_adam_warns_and_keeps_best_parameters():
    X, y = _iris()
    # In float32 a step of 1e20 makes the next forward pass overflow: the loss is NaN
    # at the parameters the first epoch ended on, so those it started from are kept.
    clf = KernelNetClassifier(
        **{**FAST, "solver": "adam", "learning_rate_init": 1e20, "dtype": "float32"}
    )
    with pytest.warns(ConvergenceWarning, match="diverged"):
        clf.fit(X, y)
    assert clf.stop_reason_ == "diverged"
    assert clf.n_iter_ == clf.best_iter_ == 1
    assert np.isfinite(clf.best_loss_)
    assert np.all(np.isfinite(clf.predict_proba(X)))
    assert np.all(np.isfinite(clf.transform(X)))


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_nan_loss_warns_and_restores_best(solver, monkeypatch):
    X, y = _iris()
    clf = KernelNetClassifier(**{**FAST, "solver": solver, "tol": 0})
    snapshots = []
    clf.set_params(
        callbacks=[
            lambda monitor: snapshots.append(
                {k: v.detach().clone() for k, v in monitor.module.state_dict().items()}
            )
        ]
    )
    real_loss = KernelNetClassifier._data_loss
    calls = {"n": 0}
    # NaN once a few updates have been made: after 4 epochs (Adam) or 6 evaluations (L-BFGS).
    limit = 4 * 1 if solver == "adam" else 6

    def poisoned(self, output, target, weight):
        calls["n"] += 1
        loss = real_loss(self, output, target, weight)
        return loss * float("nan") if calls["n"] > limit else loss

    # Adam on dense data takes the loss with its gradient from _loss_and_grad
    real_loss_and_grad = KernelNetClassifier._loss_and_grad

    def poisoned_with_grad(self, output, target, weight):
        calls["n"] += 1
        loss, grad = real_loss_and_grad(self, output, target, weight)
        nan = float("nan") if calls["n"] > limit else 1.0
        return loss * nan, grad * nan

    monkeypatch.setattr(KernelNetClassifier, "_data_loss", poisoned)
    monkeypatch.setattr(KernelNetClassifier, "_loss_and_grad", poisoned_with_grad)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        clf.fit(X, y)
    assert clf.stop_reason_ == "diverged"
    assert 1 <= clf.n_iter_ == len(clf.loss_curve_) < FAST["max_iter"]
    assert np.all(np.isfinite(clf.loss_curve_))
    # L-BFGS keeps the parameters of its best iteration. Adam's epoch loss is measured
    # along the epoch, and the NaN came from the first batch after the best epoch, that
    # is from the parameters the best epoch ended on: it keeps those it started from.
    best = snapshots[clf.best_iter_ - (1 if solver == "lbfgs" else 2)]
    for name, value in clf.module_.state_dict().items():
        assert torch.equal(value, best[name])
    monkeypatch.undo()
    assert np.all(np.isfinite(clf.predict_proba(X)))


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_keyboard_interrupt_keeps_usable_model(solver):
    X, y = _iris()
    clf = KernelNetClassifier(**{**FAST, "solver": solver, "tol": 0})

    def interrupt(monitor):
        if monitor.result.n_iter == 3:
            raise KeyboardInterrupt

    clf.set_params(callbacks=[interrupt])
    with pytest.warns(RuntimeWarning, match="interrupted after 3 iterations"):
        clf.fit(X, y)
    assert clf.stop_reason_ == "interrupted"
    assert clf.n_iter_ == 3
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.predict(X).shape == (len(y),)
    assert np.all(np.isfinite(clf.predict_proba(X)))


def test_keyboard_interrupt_inside_line_search(monkeypatch):
    """Ctrl-C while L-BFGS is trying a step: the half-taken step is undone."""
    X, y = _iris()
    clf = KernelNetClassifier(**{**FAST, "tol": 0})
    real_objective = KernelNetClassifier._objective
    calls = {"n": 0}
    snapshots = []
    clf.set_params(
        callbacks=[
            lambda m: snapshots.append({k: v.clone() for k, v in m.module.state_dict().items()})
        ]
    )

    def objective(self, *args):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return real_objective(self, *args)

    monkeypatch.setattr(KernelNetClassifier, "_objective", objective)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        clf.fit(X, y)
    monkeypatch.undo()
    best = snapshots[clf.best_iter_ - 1]
    for name, value in clf.module_.state_dict().items():
        assert torch.equal(value, best[name])
    assert np.all(np.isfinite(clf.predict_proba(X)))


# ---------------------------------------------------------------------------------------
# Input validation: scikit-learn's errors
X_OK = np.random.RandomState(0).normal(size=(20, 3))
Y_OK = np.array([0, 1] * 10)


@pytest.mark.parametrize("Estimator", [KernelNetClassifier, KernelNetRegressor])
@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.where(np.eye(20, 3) > 0, np.nan, X_OK), Y_OK, "NaN"),
        (np.where(np.eye(20, 3) > 0, np.inf, X_OK), Y_OK, "infinity"),
        (np.empty((0, 3)), np.empty(0), "0 sample"),
        (np.empty((20, 0)), Y_OK, "0 feature"),
        (X_OK + 1j, Y_OK, "Complex data not supported"),
        (X_OK.reshape(20, 3, 1), Y_OK, "dim 3"),
        (X_OK, Y_OK[:-1], "inconsistent numbers of samples"),
    ],
    ids=["nan", "inf", "empty", "no-features", "complex", "3d", "lengths"],
)
def test_bad_input_gets_sklearn_errors(Estimator, X, y, match):
    with pytest.raises(ValueError, match=match):
        Estimator(**FAST).fit(X, y)


@pytest.mark.parametrize("Estimator", [KernelNetClassifier, KernelNetRegressor])
def test_bad_input_at_predict(Estimator):
    est = Estimator(**FAST).fit(X_OK, Y_OK)
    with pytest.raises(ValueError, match="X has 2 features, but .* is expecting 3"):
        est.predict(X_OK[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        est.predict(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="Complex data not supported"):
        est.predict(X_OK + 1j)
    with pytest.raises(ValueError, match="0 sample"):
        est.predict(np.empty((0, 3)))
    with pytest.raises(ValueError, match="dim 3"):
        est.transform(X_OK.reshape(20, 3, 1))


def test_bad_targets():
    with pytest.raises(ValueError, match="only one class"):
        KernelNetClassifier(**FAST).fit(X_OK, np.zeros(20))
    with pytest.raises(ValueError, match="Unknown label type"):
        KernelNetClassifier(**FAST).fit(X_OK, np.linspace(0, 1, 20))
    with pytest.raises(ValueError, match="NaN"):
        KernelNetRegressor(**FAST).fit(X_OK, np.where(Y_OK > 0, np.nan, 1.0))
    with pytest.raises(ValueError, match="sample_weight"):
        KernelNetRegressor(**FAST).fit(X_OK, Y_OK, sample_weight=np.ones(3))


def test_unfitted_and_bad_parameters():
    with pytest.raises(NotFittedError):
        KernelNetClassifier().predict(X_OK)
    with pytest.raises(NotFittedError):
        KernelNetRegressor().feature_embeddings_  # noqa: B018
    with pytest.raises(ValueError, match="solver"):
        KernelNetClassifier(solver="sgd").fit(X_OK, Y_OK)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        KernelNetRegressor(hidden_layer_sizes=(4, 0)).fit(X_OK, Y_OK)


# ---------------------------------------------------------------------------------------
# Input kinds
def test_pandas_input_sets_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = _iris()
    df = pd.DataFrame(X, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    clf = KernelNetClassifier(**FAST).fit(df, pd.Series(y))
    assert_array_equal(clf.feature_names_in_, df.columns)
    assert_array_equal(clf.predict(df), clf.predict(X))
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df[df.columns[::-1]])
    reg = KernelNetRegressor(**FAST).fit(df, pd.Series(y, dtype=float))
    assert_array_equal(reg.feature_names_in_, df.columns)


def test_numpy_input_has_no_feature_names():
    clf, _, _ = _fitted_classifier()
    assert not hasattr(clf, "feature_names_in_")


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_input_stays_sparse_into_first_layer(solver, fmt):
    rng = np.random.RandomState(0)
    X = sp.random(60, 40, density=0.1, format=fmt, random_state=rng)
    y = rng.randint(0, 3, size=60)
    clf = KernelNetClassifier(**{**FAST, "solver": solver, "max_iter": 5})
    seen = []

    def record(module, args):
        x = args[0]
        seen.append("prepared" if isinstance(x, SparseInput) else str(x.layout))

    # the first layer exists only after fit starts: fit once, then hook and refit warm
    clf.set_params(warm_start=True).fit(X, y)
    handle = clf.module_.layers[0].register_forward_pre_hook(record)
    clf.fit(X, y)
    fit_layouts = set(seen)
    seen.clear()
    proba = clf.predict_proba(X)
    handle.remove()
    expected_fit = {"prepared"} if solver == "lbfgs" else {"torch.sparse_csr"}
    assert fit_layouts == expected_fit
    assert set(seen) == {"torch.sparse_csr"}
    # the same data dense gives the same model
    dense = KernelNetClassifier(**{**FAST, "solver": solver, "max_iter": 5, "warm_start": True})
    dense.fit(X.toarray(), y).fit(X.toarray(), y)
    assert_allclose(dense.predict_proba(X.toarray()), proba, rtol=1e-6, atol=1e-9)


def test_sparse_input_regressor_and_transform():
    X = sp.random(50, 30, density=0.2, format="csr", random_state=0)
    y = np.asarray(X.sum(axis=1)).ravel()
    reg = KernelNetRegressor(**FAST).fit(X, y)
    assert reg.predict(X).shape == (50,)
    assert reg.transform(X).shape == (50, 16)


@pytest.mark.parametrize("input_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float32_and_float64(input_dtype, dtype):
    X, y = _iris()
    X = X.astype(input_dtype)
    clf = KernelNetClassifier(**{**FAST, "dtype": dtype}).fit(X, y)
    assert next(clf.module_.parameters()).dtype == getattr(torch, dtype)
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64
    assert_allclose(proba.sum(axis=1), 1)
    assert clf.transform(X).dtype == np.dtype(dtype)
    assert clf.score(X, y) > 0.8
    Xr, yr = _regression()
    reg = KernelNetRegressor(**{**FAST, "dtype": dtype}).fit(Xr.astype(input_dtype), yr)
    assert reg.predict(Xr.astype(input_dtype)).dtype == np.float64


def test_float32_and_float64_inputs_agree():
    X, y = _iris()
    a = KernelNetClassifier(**FAST).fit(X.astype(np.float32), y)
    b = KernelNetClassifier(**FAST).fit(X.astype(np.float32).astype(np.float64), y)
    assert_allclose(a.predict_proba(X.astype(np.float32)), b.predict_proba(X.astype(np.float32)))


# ---------------------------------------------------------------------------------------
# Targets
def test_binary():
    X, y = _iris()
    y = (y == 2).astype(int)
    clf = KernelNetClassifier(**FAST).fit(X, y)
    assert clf.module_.layers[-1].out_features == 1  # one logit
    proba = clf.predict_proba(X)
    assert proba.shape == (len(y), 2)
    assert_allclose(proba.sum(axis=1), 1)
    assert_array_equal(clf.predict(X), proba.argmax(axis=1))
    assert clf.score(X, y) > 0.9


def test_multiclass_string_labels():
    X, y = _iris()
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    clf = KernelNetClassifier(**FAST).fit(X, names)
    assert_array_equal(clf.classes_, ["setosa", "versicolor", "virginica"])
    pred = clf.predict(X)
    assert pred.dtype == object and set(pred) <= set(clf.classes_)
    assert clf.score(X, names) > 0.9
    numeric = KernelNetClassifier(**FAST).fit(X, y)
    assert_array_equal(clf.predict_proba(X), numeric.predict_proba(X))


def test_multilabel():
    X, Y = make_multilabel_classification(n_samples=100, n_classes=4, random_state=0)
    clf = KernelNetClassifier(**{**FAST, "max_iter": 200}).fit(X, Y)
    assert_array_equal(clf.classes_, np.arange(4))
    pred = clf.predict(X)
    assert pred.shape == Y.shape and set(np.unique(pred)) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape
    assert np.all((proba > 0) & (proba < 1))
    assert np.mean(pred == Y) > 0.8  # per-label accuracy
    assert_allclose(clf.predict_log_proba(X), np.log(proba))


def test_predict_log_proba():
    clf, X, _ = _fitted_classifier()
    proba = clf.predict_proba(X)
    assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert_allclose(np.exp(clf.predict_log_proba(X)).sum(axis=1), 1)


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_regression_single_and_multi_output(n_outputs):
    X, y = _regression(n_outputs=n_outputs)
    reg = KernelNetRegressor(max_iter=300, alpha=0.1, random_state=0).fit(X, 1000 * y + 5)
    pred = reg.predict(X)
    assert pred.shape == y.shape
    assert reg.n_outputs_ == n_outputs
    assert reg.score(X, 1000 * y + 5) > 0.9  # targets standardised internally
    column = KernelNetRegressor(**FAST).fit(X, y.reshape(len(y), -1))
    assert column.predict(X).shape == (len(y), n_outputs)


def test_sample_weight_integer_weights_equal_repeated_rows():
    X, y = _iris()
    weights = np.random.RandomState(0).randint(0, 3, size=len(y))
    params = {**FAST, "max_iter": 10, "tol": 0}
    weighted = KernelNetClassifier(**params).fit(X, y, sample_weight=weights)
    repeated = KernelNetClassifier(**params).fit(np.repeat(X, weights, 0), np.repeat(y, weights))
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-6, atol=1e-8)
    unweighted = KernelNetClassifier(**params).fit(X, y)
    assert not np.allclose(weighted.predict_proba(X), unweighted.predict_proba(X))
    Xr, yr = _regression()
    w = np.random.RandomState(1).randint(0, 3, size=len(yr))
    a = KernelNetRegressor(**params).fit(Xr, yr, sample_weight=w)
    b = KernelNetRegressor(**params).fit(np.repeat(Xr, w, 0), np.repeat(yr, w))
    assert_allclose(a.predict(Xr), b.predict(Xr), rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------
# Incremental and warm-started training, early stopping
def test_partial_fit_adam():
    X, y = _iris()
    clf = KernelNetClassifier(**{**FAST, "solver": "adam"})
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    for epoch in range(1, 4):
        clf.partial_fit(X, y, classes=[0, 1, 2])
        assert clf.n_iter_ == epoch == len(clf.loss_curve_)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    clf.partial_fit(X[y < 2], y[y < 2])  # a batch need not hold every class
    with pytest.raises(ValueError, match="differs from classes_"):
        clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="not seen"):
        clf.partial_fit(X, y + 1)
    Xr, yr = _regression()
    reg = KernelNetRegressor(**{**FAST, "solver": "adam"})
    for _ in range(3):
        reg.partial_fit(Xr, yr)
    assert reg.n_iter_ == 3 and reg.loss_curve_[-1] < reg.loss_curve_[0]
    with pytest.raises(ValueError, match="X has 3 features"):
        reg.partial_fit(Xr[:, :3], yr)


@pytest.mark.parametrize("Estimator", [KernelNetClassifier, KernelNetRegressor])
def test_partial_fit_only_for_adam(Estimator):
    est = Estimator(solver="lbfgs")
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        est.partial_fit(X_OK, Y_OK)
    assert hasattr(Estimator(solver="adam"), "partial_fit")


def test_warm_start_continues_from_previous_solution():
    X, y = _iris()
    clf = KernelNetClassifier(**{**FAST, "max_iter": 5, "tol": 0, "warm_start": True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        module, first_curve = clf.module_, list(clf.loss_curve_)
        clf.fit(X, y)
    assert clf.module_ is module
    assert clf.loss_curve_[0] < first_curve[-1] + 1e-12
    cold = clf.set_params(warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cold.fit(X, y)
    assert cold.module_ is not module
    assert cold.loss_curve_ == first_curve


def test_early_stopping_records_validation_and_restores_best():
    X, y = _iris()
    clf = KernelNetClassifier(
        **{**FAST, "early_stopping": True, "validation_fraction": 0.2, "n_iter_no_change": 5}
    )
    snapshots = []
    clf.set_params(
        callbacks=[
            lambda m: snapshots.append({k: v.clone() for k, v in m.module.state_dict().items()})
        ]
    )
    clf.fit(X, y)
    scores = clf.validation_scores_
    assert len(scores) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(scores)
    assert clf.best_iter_ == scores.index(max(scores)) + 1
    for name, value in clf.module_.state_dict().items():
        assert torch.equal(value, snapshots[clf.best_iter_ - 1][name])
    Xr, yr = _regression()
    reg = KernelNetRegressor(**{**FAST, "early_stopping": True}).fit(Xr, yr)
    assert len(reg.validation_scores_) == reg.n_iter_
    assert reg.best_validation_score_ <= 1
    no_es = KernelNetRegressor(**FAST).fit(Xr, yr)
    assert no_es.validation_scores_ is None and no_es.best_validation_score_ is None


# ---------------------------------------------------------------------------------------
# transform, embeddings, parameter counts
def test_transform_and_feature_names():
    X, y = _iris()
    clf = KernelNetClassifier(**{**FAST, "hidden_layer_sizes": (12, 7)}).fit(X, y)
    Z = clf.transform(X)
    assert Z.shape == (len(y), 7)
    assert np.all(Z >= 0)  # relu activations
    names = clf.get_feature_names_out()
    assert_array_equal(names, [f"kernelnetclassifier{i}" for i in range(7)])
    Xr, yr = _regression()
    reg = KernelNetRegressor(**FAST).fit(Xr, yr)
    assert reg.transform(Xr).shape == (len(yr), 16)
    assert reg.get_feature_names_out()[0] == "kernelnetregressor0"


def test_transform_in_a_pipeline():
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import LogisticRegression

    X, y = _iris()
    pipe = Pipeline(
        [("embed", KernelNetClassifier(**FAST)), ("lr", LogisticRegression(max_iter=500))]
    )
    assert pipe.fit(X, y).score(X, y) > 0.9
    pipe.set_output(transform="pandas")
    out = pipe[:-1].transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns)[0] == "kernelnetclassifier0"


def test_feature_embeddings_and_parameter_count():
    X, y = _iris()
    clf = KernelNetClassifier(
        **{**FAST, "embedding_dim": 3, "gated": False, "kernel": "rbf", "scale_rank": 1}
    )
    clf.fit(X, y)
    emb = clf.feature_embeddings_
    assert emb.shape == (4, 3)
    assert_array_equal(emb, clf.module_.layers[0].u.detach().numpy())
    emb[:] = 0  # a copy: the model is unchanged
    assert np.any(clf.feature_embeddings_ != 0)
    # ungated signed RBF: (in + out) * (d + 1) per layer plus the biases
    expected = (4 + 16) * 4 + 16 + (16 + 3) * 4 + 3
    assert clf.n_free_parameters_ == clf.module_.n_free_parameters() == expected
    gated = KernelNetClassifier(**{**FAST, "embedding_dim": 3, "gated": True}).fit(X, y)
    assert gated.n_free_parameters_ == expected - (4 + 16 + 16 + 3) + 4 * 16 + 16 * 3
    # scale_rank=2: one more signed scale per neuron in every layer
    rank2 = KernelNetClassifier(**{**FAST, "embedding_dim": 3, "gated": False}).fit(X, y)
    assert rank2.n_free_parameters_ == expected + (4 + 16) + (16 + 3)
    assert rank2.module_.layers[0].input_scale.shape == (4, 2)
    # no signed scales to multiply: gated layers and signed kernels ignore scale_rank
    for other in ({"gated": True}, {"gated": False, "kernel": "linear"}):
        clf = KernelNetClassifier(**{**FAST, "embedding_dim": 3, "scale_rank": 2, **other})
        reference = KernelNetClassifier(**{**FAST, "embedding_dim": 3, "scale_rank": 1, **other})
        clf.fit(X, y)
        assert clf.n_free_parameters_ == reference.fit(X, y).n_free_parameters_
        assert all(layer.input_scale is None for layer in clf.module_.layers)


@pytest.mark.parametrize("kernel", ["rbf", "finite_support", "linear", "laplacian", "poly"])
@pytest.mark.parametrize("gated", [True, False])
def test_every_kernel_and_gating_fits(kernel, gated):
    X, y = _iris()
    clf = KernelNetClassifier(**{**FAST, "kernel": kernel, "gated": gated, "max_iter": 10})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert np.all(np.isfinite(clf.predict_proba(X)))


# ---------------------------------------------------------------------------------------
# A kernel with learnable parameters: each layer trains its own copy.


class _LearnableRBF(Kernel):
    """RBF kernel with a learned log length scale."""

    nonnegative = True

    def __init__(self):
        super().__init__()
        self.log_gamma = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, U, V):
        return torch.exp(-self.log_gamma.exp() * squared_distances(U, V))


def test_learnable_kernel_trains_in_every_layer():
    X, y = _regression()
    reg = KernelNetRegressor(
        hidden_layer_sizes=(8, 8), kernel=_LearnableRBF(), max_iter=10, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    kernels = [layer.kernel for layer in reg.module_.layers]
    assert len(kernels) == 3 and len({id(k) for k in kernels}) == 3
    trained = {id(p) for p in reg.module_.parameters()}
    for kernel in kernels:
        assert id(kernel.log_gamma) in trained
        assert kernel.log_gamma.item() != 0.0  # moved away from its initial value
    # and every copy receives a gradient from the objective
    reg.module_.zero_grad()
    reg.module_(torch.as_tensor(X)).sum().backward()
    assert all(k.log_gamma.grad is not None and k.log_gamma.grad != 0 for k in kernels)


# ---------------------------------------------------------------------------------------
# callbacks: a constructor parameter


def test_callbacks_parameter_stops_training_and_is_cloned():
    X, y = _iris()
    seen = []

    def stop_at_three(monitor):
        seen.append(monitor.result.n_iter)
        return monitor.result.n_iter == 3

    clf = KernelNetClassifier(**{**FAST, "callbacks": [stop_at_three]})
    assert clf.get_params()["callbacks"] == [stop_at_three]
    clf.fit(X, y)
    assert clf.stop_reason_ == "callback" and clf.n_iter_ == 3 and seen == [1, 2, 3]
    copy = clone(clf)
    assert copy.get_params()["callbacks"] == [stop_at_three]
    assert copy.callbacks is not clf.callbacks  # a copy of the list, as clone makes
    with pytest.raises(ValueError, match="callbacks must be callables"):
        KernelNetRegressor(**{**FAST, "callbacks": ["not callable"]}).fit(*_regression())


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_every_registered_kernel_name_is_accepted(name):
    from skkernelnet import KernelCollaborativeFilter

    for Estimator in (KernelNetClassifier, KernelNetRegressor, KernelCollaborativeFilter):
        Estimator(kernel=name)._validate_params()  # the layer's names, aliases included


def test_documented_networks_and_their_parameter_counts():
    # docs/tabular_defaults.rst: the classifier is gated by default (an MLP's weights plus
    # the embeddings); the compact network has at most a quarter of an MLP's parameters
    # on digits; the regressor is compact by default.
    X, y = load_digits(return_X_y=True)
    X, y = X[:200], y[:200]
    mlp = 64 * 100 + 100 + 100 * 10 + 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gated = KernelNetClassifier(max_iter=1, random_state=0).fit(X, y)
        compact = KernelNetClassifier(gated=False, alpha=0.1, max_iter=1, random_state=0)
        compact.fit(X, y)
    assert all(layer.gated for layer in gated.module_.layers)
    assert gated.n_free_parameters_ == mlp + (64 + 100 + 100 + 10) * 4
    assert not any(layer.gated for layer in compact.module_.layers)
    assert compact.n_free_parameters_ <= mlp / 4
    defaults = KernelNetRegressor().get_params()
    assert not defaults["gated"] and defaults["alpha"] == 1.0
