"""Model selection of every estimator on a dask.distributed cluster (joblib's dask backend).

The cluster has two worker processes, so every fit is pickled, shipped to another
Python process, run there and its result shipped back: what a multi-machine
cluster does, minus the network. The results must equal a local run.
"""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from skkernelnet import KernelCollaborativeFilter, KernelNetClassifier, KernelNetRegressor
from skkernelnet.datasets import make_ratings

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

ROOT = Path(__file__).resolve().parents[1]


def _iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _regression():
    X, y = make_regression(120, 5, noise=5.0, random_state=0)
    return X, y / y.std()


def _ratings():
    return make_ratings(50, 30, density=0.3, random_state=0, return_X_y=True)


CASES = {
    "classifier": (
        KernelNetClassifier(hidden_layer_sizes=(8,), max_iter=15, random_state=0),
        {"alpha": [1e-4, 1e-1], "embedding_dim": [2, 3]},
        _iris,
        "accuracy",
    ),
    "regressor": (
        KernelNetRegressor(hidden_layer_sizes=(8,), max_iter=15, random_state=0),
        {"alpha": [1e-4, 1e-1], "kernel": ["rbf", "finite_support"]},
        _regression,
        "r2",
    ),
    "recommender": (
        KernelCollaborativeFilter(hidden_layer_sizes=(8,), max_iter=8, random_state=0),
        {"alpha": [0.01, 1.0], "blend": [True, False]},
        _ratings,
        "neg_root_mean_squared_error",
    ),
}


@pytest.fixture(scope="module")
def client():
    # Worker processes are spawned: they import skkernelnet from this checkout and run
    # one torch thread, like the local run below.
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": path, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
            silence_logs=40,
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    with cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _search(estimator, grid, X, y, scoring):
    search = GridSearchCV(estimator, grid, cv=KFold(3, shuffle=True, random_state=0), n_jobs=2,
                          scoring=scoring)  # fmt: skip
    scores = cross_validate(estimator, X, y, cv=3, n_jobs=2, scoring=scoring,
                            return_estimator=True)  # fmt: skip
    return search.fit(X, y), scores


def _workers_used(client):
    """Number of tasks each worker has run so far."""
    return client.run(lambda dask_worker: dask_worker.state.executed_count)


@pytest.mark.parametrize("case", sorted(CASES))
def test_model_selection_on_dask_equals_local(client, case):
    estimator, grid, load, scoring = CASES[case]
    X, y = load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local_search, local_cv = _search(estimator, grid, X, y, scoring)
        before = _workers_used(client)
        # The recommender's data go to the workers once (scatter), the others' with each fit.
        scatter = {"scatter": [X, y]} if case == "recommender" else {}
        with joblib.parallel_backend("dask", **scatter):
            dask_search, dask_cv = _search(estimator, grid, X, y, scoring)
        after = _workers_used(client)
    # Both worker processes ran fits (nothing ran in this process instead).
    assert len(after) == 2 and all(after[w] > before.get(w, 0) for w in after)
    assert dask_search.best_params_ == local_search.best_params_
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_array_equal(dask_search.cv_results_[key], local_search.cv_results_[key])
    np.testing.assert_array_equal(dask_cv["test_score"], local_cv["test_score"])
    np.testing.assert_array_equal(
        dask_search.best_estimator_.predict(X), local_search.best_estimator_.predict(X)
    )
    # Estimators fitted on the workers come back usable here.
    for fitted in dask_cv["estimator"]:
        assert fitted.predict(X[:3]).shape == (3,)
