"""Queries as they come in production: repeated, reordered, from several threads at once.

Every inference method must give each row exactly (``np.array_equal``) the result it
gives for that row alone, however the rows are repeated, permuted or batched, and
concurrent calls on one fitted model must equal sequential ones.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import r2_score

from skkernelnet import KernelCollaborativeFilter, KernelNetClassifier, KernelNetRegressor
from skkernelnet.datasets import make_ratings

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def ratings():
    # more than 256 users and items, so that queries span several inference blocks
    return make_ratings(300, 280, density=0.03, random_state=0, return_X_y=True)


@pytest.fixture(scope="module", params=["item", "user"])
def recommender(request, ratings):
    X, y = ratings
    model = KernelCollaborativeFilter(
        hidden_layer_sizes=(8,), max_iter=4, orientation=request.param, random_state=0
    )
    return model.fit(X, y)


def _repeated_and_shuffled(n, seed):
    """Indices of 0..n-1, each drawn 0 to 3 times, in random order."""
    rng = np.random.default_rng(seed)
    index = np.repeat(np.arange(n), rng.integers(0, 4, size=n))
    return rng.permutation(index)


def _query_pairs(model, X, seed=0):
    rng = np.random.default_rng(seed)
    known = X[rng.choice(len(X), 100, replace=False)]
    unseen = np.column_stack([rng.choice(model.user_ids_, 100), rng.choice(model.item_ids_, 100)])
    unknown = np.array([[10_000, model.item_ids_[0]], [model.user_ids_[0], 10_001], [-1, -2]])
    return np.vstack([known, unseen, unknown])


def test_recommender_pair_queries_repeated_and_reordered(recommender, ratings):
    X, y = ratings
    Q = _query_pairs(recommender, X)
    single_pred = np.concatenate([recommender.predict(Q[k : k + 1]) for k in range(len(Q))])
    single_emb = np.vstack([recommender.transform(Q[k : k + 1]) for k in range(len(Q))])
    for seed in range(3):
        index = _repeated_and_shuffled(len(Q), seed)
        assert np.array_equal(recommender.predict(Q[index]), single_pred[index])
        assert np.array_equal(recommender.transform(Q[index]), single_emb[index])
    # the report: the same pair twice
    first, second = recommender.predict(X[:1]), recommender.predict(X[1:2])
    assert np.array_equal(recommender.predict(np.r_[X[:2], X[:1]]), np.r_[first, second, first])
    y_query = np.random.default_rng(0).uniform(1, 5, size=len(Q))
    index = _repeated_and_shuffled(len(Q), 7)
    assert recommender.score(Q[index], y_query[index]) == r2_score(
        y_query[index], single_pred[index]
    )


def test_recommend_users_repeated_and_reordered(recommender):
    users = np.r_[recommender.user_ids_, [10_000, 10_001]]
    single = [recommender.recommend(users[k : k + 1], n=7) for k in range(len(users))]
    single_items = np.vstack([items for items, _ in single])
    single_scores = np.vstack([scores for _, scores in single])
    for seed in range(2):
        index = _repeated_and_shuffled(len(users), seed)
        items, scores = recommender.recommend(users[index], n=7)
        assert np.array_equal(items, single_items[index])
        assert np.array_equal(scores, single_scores[index])


@pytest.mark.parametrize("sparse", [False, True])
def test_tabular_rows_repeated_and_reordered(sparse):
    import scipy.sparse as sp

    X, y = make_classification(
        n_samples=1100, n_features=6, n_classes=3, n_informative=4, random_state=0
    )
    clf = KernelNetClassifier(hidden_layer_sizes=(16, 8), max_iter=5, random_state=0).fit(X, y)
    Xr, yr = make_regression(n_samples=1100, n_features=6, random_state=0)
    reg = KernelNetRegressor(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(Xr, yr)
    as_input = sp.csr_matrix if sparse else np.asarray
    for model, data in ((clf, X), (reg, Xr)):
        methods = [model.predict, model.transform]
        if model is clf and not sparse:  # sparse: see the xfail test below
            methods.append(model.predict_proba)
        for method in methods:
            single = np.concatenate([method(as_input(data[k : k + 1])) for k in range(50)])
            full = method(as_input(data))[:50]
            assert np.array_equal(full, single)
            index = _repeated_and_shuffled(50, 1)
            assert np.array_equal(method(as_input(data[:50][index])), single[index])


@pytest.mark.xfail(
    strict=True,
    reason="known gap: with CSR input a gated classifier's probabilities for a row alone "
    "and in a batch differ by 1 ulp (transform and predict are exact); not yet located",
)
def test_sparse_predict_proba_rows_independent_of_batch():
    import scipy.sparse as sp

    X, y = make_classification(
        n_samples=1100, n_features=6, n_classes=3, n_informative=4, random_state=0
    )
    clf = KernelNetClassifier(hidden_layer_sizes=(16, 8), max_iter=5, random_state=0).fit(X, y)
    single = np.vstack([clf.predict_proba(sp.csr_matrix(X[k : k + 1])) for k in range(50)])
    assert np.array_equal(clf.predict_proba(sp.csr_matrix(X))[:50], single)


# -- concurrent use ------------------------------------------------------------------
def _run_concurrently(calls, n_threads=8):
    """Run the calls from ``n_threads`` threads released at the same moment."""
    barrier = threading.Barrier(n_threads)

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(run, calls))


def test_recommender_concurrent_calls_equal_sequential(recommender, ratings):
    X, _ = ratings
    rng = np.random.default_rng(1)
    queries = [X[rng.choice(len(X), 150)] for _ in range(8)]
    users = [rng.choice(recommender.user_ids_, 20) for _ in range(8)]
    calls = []
    for k in range(8):
        calls += [
            lambda q=queries[k]: recommender.predict(q),
            lambda q=queries[k]: recommender.transform(q),
            lambda u=users[k]: recommender.recommend(u, n=5),
        ]
    sequential = [call() for call in calls]
    for start in range(0, len(calls), 8):
        concurrent = _run_concurrently(calls[start : start + 8])
        for got, expected in zip(concurrent, sequential[start : start + 8]):
            if isinstance(expected, tuple):
                assert all(np.array_equal(g, e) for g, e in zip(got, expected))
            else:
                assert np.array_equal(got, expected)


def test_tabular_concurrent_calls_equal_sequential():
    X, y = make_classification(n_samples=300, n_features=5, random_state=0)
    clf = KernelNetClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, y)
    parts = np.array_split(np.arange(300), 8)
    calls = [lambda p=p: clf.predict_proba(X[p]) for p in parts]
    calls += [lambda p=p: clf.transform(X[p]) for p in parts]
    sequential = [call() for call in calls]
    for start in (0, 8):
        concurrent = _run_concurrently(calls[start : start + 8])
        for got, expected in zip(concurrent, sequential[start : start + 8]):
            assert np.array_equal(got, expected)
