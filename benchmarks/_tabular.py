"""The tabular protocol shared by choose_tabular_defaults.py and bench_tabular.py.

One protocol, two disjoint sets of seeds: the choice of defaults sees only
``CHOOSING_SEEDS``, the evaluation only ``EVALUATION_SEEDS``. A seed ``s`` fixes
the shuffle of the 5-fold cross-validation (stratified for classification)
*and* the ``random_state`` of every model, so that the two sets share neither
folds nor initialisations. (Seeds 11 and 12, which the issue that asked for
this evaluation used, are in neither set.)

Every model is ``Pipeline(StandardScaler(), model)``, as a user would write it;
the baselines are scikit-learn's ``MLPClassifier(max_iter=500)`` and
``MLPRegressor(max_iter=500)``, the latter also inside
``TransformedTargetRegressor(transformer=StandardScaler())`` (our regressor
standardises targets internally, so both are reported).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn import datasets
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

CHOOSING_SEEDS = (0, 1, 2, 3)
EVALUATION_SEEDS = (31, 32, 33)
N_SPLITS = 5
MLP_MAX_ITER = 500

CLASSIFICATION = ["digits", "breast_cancer", "wine", "iris"]
REGRESSION = ["diabetes", "friedman1"]
SMALL = 40  # samples of the small subsets that guard against collapsed defaults
CLASSIFICATION_GUARDS = [f"iris[{SMALL}]", f"wine[{SMALL}]", f"breast_cancer[{SMALL}]"]
REGRESSION_GUARDS = ["smooth[40]", "smooth[120]"]


def smooth(n_samples, seed=0):
    """A noiseless regression problem: y = x0 - 2 x1^2 on four uniform features."""
    X = np.random.RandomState(seed).uniform(-1, 1, size=(n_samples, 4))
    return X, X[:, 0] - 2 * X[:, 1] ** 2


def load(name):
    """A dataset by name.

    The bundled sets by their scikit-learn name; ``friedman1``:
    ``make_friedman1(n_samples=500, noise=1.0, random_state=0)`` (Friedman's
    noise level); ``smooth[n]``: :func:`smooth`; ``name[40]``: a stratified
    random subset of 40 samples of a bundled classification set.
    """
    base = name.split("[")[0]
    if base == "smooth":
        return smooth(int(name[len("smooth[") : -1]))
    if base == "friedman1":
        return datasets.make_friedman1(n_samples=500, noise=1.0, random_state=0)
    X, y = getattr(datasets, f"load_{base}")(return_X_y=True)
    if name.endswith("]"):
        X, _, y, _ = train_test_split(X, y, train_size=SMALL, stratify=y, random_state=0)
    return X, y


def is_regression(name):
    return name.split("[")[0] in ("diabetes", "friedman1", "smooth")


def mlp_baselines(task, seed):
    """(label, estimator) of scikit-learn's MLPs with max_iter=500, defaults otherwise."""
    if task == "classification":
        return [("MLPClassifier", MLPClassifier(max_iter=MLP_MAX_ITER, random_state=seed))]
    mlp = MLPRegressor(max_iter=MLP_MAX_ITER, random_state=seed)
    return [
        ("MLPRegressor", mlp),
        (
            "MLPRegressor, y standardised",
            TransformedTargetRegressor(regressor=mlp, transformer=StandardScaler()),
        ),
    ]


def n_free_parameters(model):
    """Trained scalars of a fitted model (MLP: the sizes of coefs_ and intercepts_)."""
    if isinstance(model, TransformedTargetRegressor):
        model = model.regressor_
    if hasattr(model, "module_"):
        return int(model.module_.n_free_parameters())
    return int(sum(c.size for c in model.coefs_) + sum(b.size for b in model.intercepts_))


def cross_validate_model(model, name, seed):
    """5-fold CV of ``Pipeline(StandardScaler(), model)`` with the folds of ``seed``.

    Returns a dict: per-fold test scores (accuracy or R^2), mean fit time per
    fold (seconds, wall clock) and its process CPU time, the number of test
    folds in which the model predicts one class (or constant values) for every
    sample ("collapsed"), and the free parameters of the first fold's model.
    """
    X, y = load(name)
    regression = is_regression(name)
    splitter = KFold if regression else StratifiedKFold
    cv = splitter(N_SPLITS, shuffle=True, random_state=seed)
    cpu_start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = cross_validate(
            make_pipeline(StandardScaler(), model),
            X,
            y,
            cv=cv,
            return_estimator=True,
            return_indices=True,
        )
    cpu = time.process_time() - cpu_start
    collapsed = 0
    for fitted, test in zip(result["estimator"], result["indices"]["test"]):
        pred = fitted.predict(X[test])
        if regression:
            collapsed += bool(np.std(pred) < 1e-3 * np.std(y))
        else:
            collapsed += len(np.unique(pred)) == 1
    return {
        "scores": result["test_score"].tolist(),
        "fit_time": float(result["fit_time"].mean()),
        "cpu_time": cpu / N_SPLITS,
        "collapsed_folds": int(collapsed),
        "n_free_parameters": n_free_parameters(result["estimator"][0][-1]),
    }


def plain_params(params):
    """Parameters as JSON-friendly values (nested estimators left out)."""
    out = {}
    for key, value in params.items():
        if hasattr(value, "get_params"):
            continue
        ok = value is None or isinstance(value, (str, int, float, bool, list, tuple))
        out[key] = value if ok else repr(value)
    return out
