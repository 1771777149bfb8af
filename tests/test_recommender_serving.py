"""Serving a KernelCollaborativeFilter: fold-in of new users, similar items and users,
rating scale and duplicate policies, fallback reporting, chunked recommend, model files."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch

from skkernelnet import KernelCollaborativeFilter, _ranking, model_files
from skkernelnet._fold_in import fold_in_bias
from skkernelnet._ratings import lookup
from skkernelnet.datasets import make_ratings

# Without early stopping the networks get fixed weights (0.7, 0.3), or 1 without blend, so
# that what is tested is the networks' part and not only the bias baseline.
SMALL = {"hidden_layer_sizes": (16,), "max_iter": 20, "early_stopping": False, "random_state": 0}

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def ratings():
    return make_ratings(80, 40, density=0.3, random_state=1, return_X_y=True)


@pytest.fixture(scope="module")
def fitted(ratings):
    X, y = ratings
    return KernelCollaborativeFilter(**SMALL).fit(X, y)


@pytest.fixture(scope="module", params=["item", "user"])
def single_view(request, ratings):
    X, y = ratings
    return KernelCollaborativeFilter(orientation=request.param, blend=False, **SMALL).fit(X, y)


def history_of(X, y, user, new_id="new"):
    rows = X[:, 0] == user
    pairs = np.empty((rows.sum(), 2), dtype=object)
    pairs[:, 0], pairs[:, 1] = new_id, X[rows, 1]
    return pairs, y[rows]


def all_scores(model, user, history=None):
    n_items = len(model.item_ids_)
    items, scores = model.recommend([user], n=n_items, exclude_seen=False, history=history)
    out = np.empty(n_items)
    out[lookup(model.item_ids_, items[0])] = scores[0]
    return out


def state(model):
    modules = [model.module_] + ([model.blend_module_] if model.blend_module_ else [])
    return [{k: v.clone() for k, v in m.state_dict().items()} for m in modules]


# -- fold-in ------------------------------------------------------------------------------
def test_fold_in_user_based_view_is_the_network_on_the_history(ratings):
    # Where users are samples, folding a known user in from their training ratings
    # is exactly the network's forward pass: only the bias term may differ.
    X, y = ratings
    model = KernelCollaborativeFilter(orientation="user", blend=False, **SMALL).fit(X, y)
    user = model.user_ids_[3]
    history = history_of(X, y, user)
    known = all_scores(model, user)
    folded = all_scores(model, "new", history)
    difference = folded - known
    np.testing.assert_allclose(difference, difference[0], atol=1e-5)
    u = lookup(model.user_ids_, [user])[0]
    items = lookup(model.item_ids_, history[0][:, 1])
    expected_shift = fold_in_bias(model, items, history[1]) - model.user_bias_[u]
    assert difference[0] == pytest.approx(expected_shift, abs=1e-5)


def test_fold_in_item_based_view_learns_the_user(ratings):
    # Where users are output neurons, the folded-in neuron fits the history better than
    # the prior (the average user) and predicts held-back ratings better than the fallback.
    X, y = ratings
    model = KernelCollaborativeFilter(orientation="item", blend=False, **SMALL).fit(X, y)
    errors = {"fold": [], "fallback": [], "fit_known": []}
    for user in model.user_ids_[:20]:
        pairs, values = history_of(X, y, user)
        fold = model.predict(pairs, history=(pairs, values))
        fallback = model.predict(pairs)
        errors["fold"].append(np.mean((fold - values) ** 2))
        errors["fallback"].append(np.mean((fallback - values) ** 2))
        errors["fit_known"].append(np.mean((model.predict(X[X[:, 0] == user]) - values) ** 2))
    assert np.mean(errors["fold"]) < 0.8 * np.mean(errors["fallback"])
    # a fold-in from the full history is about as good on it as the fitted user
    assert np.mean(errors["fold"]) < 1.5 * np.mean(errors["fit_known"])


def test_fold_in_leaves_the_networks_unchanged(fitted, ratings):
    X, y = ratings
    before = state(fitted)
    predictions = fitted.predict(X)
    fitted.predict(X[:5], history=history_of(X, y, fitted.user_ids_[0]))
    fitted.recommend(["new"], history=history_of(X, y, fitted.user_ids_[0]))
    for old, new in zip(before, state(fitted)):
        for key in old:
            assert torch.equal(old[key], new[key])
    np.testing.assert_array_equal(fitted.predict(X), predictions)


def test_fold_in_users_are_independent_and_order_free(fitted, ratings):
    X, y = ratings
    a_pairs, a_y = history_of(X, y, fitted.user_ids_[1], "a")
    b_pairs, b_y = history_of(X, y, fitted.user_ids_[2], "b")
    queries = np.array([["a", i] for i in fitted.item_ids_[:10]], dtype=object)
    alone = fitted.predict(queries, history=(a_pairs, a_y))
    both = (np.vstack([b_pairs, a_pairs]), np.concatenate([b_y, a_y]))
    np.testing.assert_allclose(fitted.predict(queries, history=both), alone, rtol=1e-10)
    order = np.random.RandomState(0).permutation(len(a_y))
    shuffled = fitted.predict(queries, history=(a_pairs[order], a_y[order]))
    np.testing.assert_allclose(shuffled, alone, rtol=1e-6)


def test_fold_in_recommend_excludes_history_and_matches_predict(fitted, ratings):
    X, y = ratings
    history = history_of(X, y, fitted.user_ids_[4])
    # popularity_weight=0: the scores are the predicted ratings themselves
    items, scores = fitted.recommend(["new", fitted.user_ids_[0], "stranger"], n=5,
                                     history=history, popularity_weight=0.0)
    assert not set(history[0][:, 1]) & set(items[0])
    pairs = np.array([["new", i] for i in items[0]], dtype=object)
    np.testing.assert_allclose(
        np.clip(scores[0], *fitted.rating_range_), fitted.predict(pairs, history=history),
        rtol=1e-6,
    )
    popular, _ = fitted.recommend(["stranger"], n=5, popularity_weight=0.0)
    np.testing.assert_array_equal(items[2], popular[0])
    assert fitted.fallback_mask(pairs, history=history).sum() == 0
    assert fitted.fallback_mask(pairs).all()


def test_fold_in_works_with_single_views(single_view, ratings):
    X, y = ratings
    history = history_of(X, y, single_view.user_ids_[5])
    pred = single_view.predict(history[0], history=history)
    assert np.isfinite(pred).all()
    assert np.mean((pred - history[1]) ** 2) < np.mean(
        (single_view.predict(history[0]) - history[1]) ** 2
    )


def test_fold_in_with_handle_unknown_error(ratings):
    X, y = ratings
    strict = KernelCollaborativeFilter(handle_unknown="error", **SMALL).fit(X, y)
    history = history_of(X, y, strict.user_ids_[0])
    assert np.isfinite(strict.predict(history[0], history=history)).all()
    with pytest.raises(ValueError, match="not seen in fit"):
        strict.predict(history[0])


@pytest.mark.parametrize(
    "history, match",
    [
        (([["new", 10_000]], [4.0]), "items not seen in fit"),
        ((np.empty((0, 2)), []), "empty"),
        (([["new", 0], ["new", 1]], [4.0, np.nan]), "NaN"),
        (([["new", 0]], [4.0, 3.0]), "inconsistent"),
        (([["new", 0], ["new", 0]], [4.0, 3.0]), "duplicate"),
        ([["new", 0]], "pair \\(X, y\\)"),
        (([["new", 0]], ["x"]), "numeric"),
    ],
)
def test_fold_in_bad_history(fitted, history, match):
    with pytest.raises(ValueError, match=match):
        fitted.predict([["new", 0]], history=history)
    with pytest.raises(ValueError, match=match):
        fitted.recommend(["new"], history=history)


def test_recommend_and_similar_bad_n_and_ids(fitted):
    n_items, n_users = len(fitted.item_ids_), len(fitted.user_ids_)
    with pytest.raises(ValueError, match="larger than the number of items"):
        fitted.recommend([fitted.user_ids_[0]], n=n_items + 1)
    assert fitted.recommend([fitted.user_ids_[0]], n=n_items)[0].shape == (1, n_items)
    with pytest.raises(ValueError, match="larger than the number of other items"):
        fitted.similar_items([fitted.item_ids_[0]], n=n_items)
    with pytest.raises(ValueError, match="larger than the number of other users"):
        fitted.similar_users([fitted.user_ids_[0]], n=n_users)
    with pytest.raises(ValueError, match="items not seen in fit"):
        fitted.similar_items([10_000], n=2)
    with pytest.raises(ValueError, match="empty"):
        fitted.similar_users([], n=2)
    with pytest.raises(ValueError, match="positive integer"):
        fitted.similar_items([fitted.item_ids_[0]], n=0)


def item_history_of(X, y, item, new_id="new item"):
    rows = X[:, 1] == item
    pairs = np.empty((rows.sum(), 2), dtype=object)
    pairs[:, 0], pairs[:, 1] = X[rows, 0], new_id
    return pairs, y[rows]


def test_fold_in_new_item_where_items_are_samples(ratings):
    # item-based network: a new item's ratings are its input row, exactly as for a known item
    X, y = ratings
    model = KernelCollaborativeFilter(orientation="item", blend=False, **SMALL).fit(X, y)
    item = model.item_ids_[2]
    history = item_history_of(X, y, item)
    users = model.user_ids_
    known = model.predict(np.column_stack([users, np.full(len(users), item)]))
    pairs = np.empty((len(users), 2), dtype=object)
    pairs[:, 0], pairs[:, 1] = users, "new item"
    folded = model.predict(pairs, item_history=history)
    inside = (known > model.rating_range_[0] + 0.05) & (known < model.rating_range_[1] - 0.05)
    inside &= (folded > model.rating_range_[0] + 0.05) & (folded < model.rating_range_[1] - 0.05)
    difference = (folded - known)[inside]
    assert inside.sum() > 10
    np.testing.assert_allclose(difference, difference[0], atol=1e-5)
    assert not model.fallback_mask(pairs, item_history=history).any()


def test_fold_in_new_item_where_items_are_output_neurons(ratings):
    X, y = ratings
    model = KernelCollaborativeFilter(orientation="user", blend=False, **SMALL).fit(X, y)
    fold, fallback = [], []
    for item in model.item_ids_[:15]:
        pairs, values = item_history_of(X, y, item)
        fold.append(np.mean((model.predict(pairs, item_history=(pairs, values)) - values) ** 2))
        fallback.append(np.mean((model.predict(pairs) - values) ** 2))
    assert np.mean(fold) < 0.8 * np.mean(fallback)


def test_fold_in_new_user_and_new_item_together(fitted, ratings):
    X, y = ratings
    users = history_of(X, y, fitted.user_ids_[0], "new user")
    items = item_history_of(X, y, fitted.item_ids_[0], "new item")
    pair = np.array([["new user", "new item"]], dtype=object)
    pred = fitted.predict(pair, history=users, item_history=items)
    user_bias = fold_in_bias(fitted, lookup(fitted.item_ids_, users[0][:, 1]), users[1])
    item_bias = fold_in_bias(fitted, lookup(fitted.user_ids_, items[0][:, 0]), items[1], "item")
    assert pred[0] == pytest.approx(
        np.clip(fitted.global_mean_ + user_bias + item_bias, *fitted.rating_range_)
    )
    assert fitted.fallback_mask(pair, history=users, item_history=items)[0]
    with pytest.raises(ValueError, match="item_history contains users not seen in fit"):
        fitted.predict(pair, item_history=([[10_000, "new item"]], [3.0]))


# -- similar items and users ----------------------------------------------------------------
def brute_force_similarity(model, side):
    view = model._views[0]
    codes = view.codes().astype(np.float64)
    weight = model.module_.layers[-1].weight.detach().numpy().astype(np.float64)
    bias = model.module_.layers[-1].bias.detach().numpy().astype(np.float64)
    P = codes @ weight + bias  # rows: items (item-based), columns: users
    P = P - P.mean(axis=0)  # each user's mean over items removed
    vectors = P if side == "item" else P.T
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors @ vectors.T


@pytest.mark.parametrize("side", ["item", "user"])
def test_similarity_is_exact_cosine_of_centred_predictions(fitted, side):
    ids = fitted.item_ids_ if side == "item" else fitted.user_ids_
    method = fitted.similar_items if side == "item" else fitted.similar_users
    similarity = brute_force_similarity(fitted, side)
    queries = ids[[0, 3, 7]]
    neighbours, scores = method(queries, n=5)
    for row, query in enumerate(lookup(ids, queries)):
        expected = similarity[query].copy()
        expected[query] = -np.inf
        best = np.argsort(-expected, kind="stable")[:5]
        np.testing.assert_allclose(scores[row], expected[best], atol=1e-6)
        assert query not in lookup(ids, neighbours[row])
    assert (np.diff(scores, axis=1) <= 1e-12).all()


def test_similarity_is_batched_consistently(fitted, monkeypatch):
    everything, scores = fitted.similar_items(fitted.item_ids_, n=4)
    monkeypatch.setattr(_ranking, "_CHUNK_ELEMENTS", 50)  # a couple of rows per chunk
    chunked, chunked_scores = fitted.similar_items(fitted.item_ids_, n=4)
    np.testing.assert_array_equal(chunked, everything)
    np.testing.assert_allclose(chunked_scores, scores)
    one, one_scores = fitted.similar_items(fitted.item_ids_[[5]], n=4)
    np.testing.assert_array_equal(one[0], everything[5])


# -- recommend in chunks --------------------------------------------------------------------
def test_recommend_in_chunks_equals_one_block(fitted, ratings, monkeypatch):
    X, y = ratings
    users = np.concatenate([fitted.user_ids_, ["stranger", "new"]]).astype(object)
    history = history_of(X, y, fitted.user_ids_[0])
    items, scores = fitted.recommend(users, n=7, history=history)
    monkeypatch.setattr(_ranking, "_CHUNK_ELEMENTS", 3 * len(fitted.item_ids_))
    assert _ranking.rows_per_chunk(len(fitted.item_ids_)) == 3
    chunked, chunked_scores = fitted.recommend(users, n=7, history=history)
    np.testing.assert_array_equal(chunked, items)
    np.testing.assert_allclose(chunked_scores, scores)


# -- rating scale, duplicates, fallback ------------------------------------------------------
def test_rating_scale_clips_predictions(ratings):
    X, y = ratings
    narrow = (y > 1) & (y < 5)  # the training range is then (2, 4)
    default = KernelCollaborativeFilter(**SMALL).fit(X[narrow], y[narrow])
    assert default.rating_range_ == (2.0, 4.0)
    scaled = KernelCollaborativeFilter(rating_scale=(1, 5), **SMALL).fit(X[narrow], y[narrow])
    assert scaled.rating_range_ == (1.0, 5.0)
    pred = scaled.predict(X)
    assert pred.min() >= 1 and pred.max() <= 5
    assert default.predict(X).max() <= 4


@pytest.mark.parametrize("scale", [(5, 1), (1,), (1, np.nan), ("a", "b"), (1, 2, 3)])
def test_bad_rating_scale(ratings, scale):
    X, y = ratings
    with pytest.raises(ValueError, match="rating_scale"):
        KernelCollaborativeFilter(rating_scale=scale, **SMALL).fit(X, y)


def test_duplicates_policies():
    X = np.array([[1, "a"], [1, "b"], [2, "a"], [1, "a"], [2, "b"], [1, "a"]], dtype=object)
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 5.0])
    params = {"hidden_layer_sizes": (4,), "max_iter": 2, "early_stopping": False}
    with pytest.raises(ValueError, match="duplicate.*duplicates='last'"):
        KernelCollaborativeFilter(**params).fit(X, y)
    last = KernelCollaborativeFilter(duplicates="last", **params).fit(X, y)
    mean = KernelCollaborativeFilter(duplicates="mean", **params).fit(X, y)
    assert last._ratings.nnz == mean._ratings.nnz == 4
    u, i = lookup(last.user_ids_, [1])[0], lookup(last.item_ids_, ["a"])[0]
    assert last._ratings[u, i] == 5.0
    assert mean._ratings[u, i] == pytest.approx(10.0 / 3)
    history = ([["n", "a"], ["n", "a"]], [1.0, 3.0])
    assert np.isfinite(mean.predict([["n", "b"]], history=history)).all()


def test_fallback_mask(fitted):
    known_user, known_item = fitted.user_ids_[0], fitted.item_ids_[0]
    queries = np.array(
        [[known_user, known_item], [known_user, 10_000], [10_000, known_item]], dtype=object
    )
    np.testing.assert_array_equal(fitted.fallback_mask(queries), [False, True, True])
    strict = pickle.loads(pickle.dumps(fitted)).set_params(handle_unknown="error")
    np.testing.assert_array_equal(strict.fallback_mask(queries), [False, True, True])


def test_mixed_type_ids_in_lists_keep_their_type(fitted):
    item = int(fitted.item_ids_[0])
    assert not fitted.fallback_mask([["stranger", item]], history=([["stranger", item]], [4]))[0]


# -- model files ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def string_model(ratings):
    X, y = ratings
    pairs = np.array([[f"u{u}", f"i{i}"] for u, i in X], dtype=object)
    return KernelCollaborativeFilter(**SMALL).fit(pairs, y), pairs


@pytest.mark.parametrize("which", ["numeric", "strings", "user_rbf"])
def test_model_file_round_trip(tmp_path, fitted, ratings, string_model, which):
    X, y = ratings
    if which == "numeric":
        model, queries = fitted, X
    elif which == "strings":
        model, queries = string_model
    else:
        model = KernelCollaborativeFilter(
            orientation="user", blend=False, kernel="rbf", gated=False, dtype="float64",
            **SMALL,
        ).fit(X, y)
        queries = X
    path = tmp_path / "model.skkn"
    model.save(path)
    loaded = KernelCollaborativeFilter.load(path)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(queries), model.predict(queries))
    users = model.user_ids_[:5]
    for a, b in zip(loaded.recommend(users, n=5), model.recommend(users, n=5)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.user_ids_, model.user_ids_)
    assert loaded.user_ids_.dtype == model.user_ids_.dtype
    assert loaded.blend_weight_ == model.blend_weight_
    np.testing.assert_array_equal(loaded.network_weights_, model.network_weights_)
    assert loaded.rating_range_ == model.rating_range_
    assert loaded.validation_scores_ == model.validation_scores_
    history = ([["new", model.item_ids_[0]], ["new", model.item_ids_[1]]], [5.0, 1.0])
    np.testing.assert_allclose(
        loaded.predict([["new", model.item_ids_[2]]], history=history),
        model.predict([["new", model.item_ids_[2]]], history=history),
    )
    # the loaded model can be refitted and pickled like any other
    assert pickle.loads(pickle.dumps(loaded)).predict(queries[:3]).shape == (3,)


def test_model_file_keeps_pickle_working(fitted, ratings):
    X, _ = ratings
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).predict(X), fitted.predict(X))


def rewrite(path, manifest=None, arrays=None):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if manifest is not None:
        members["manifest.json"] = json.dumps(manifest(json.loads(members["manifest.json"])))
    if arrays is not None:
        members["arrays.npz"] = arrays(members["arrays.npz"])
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_model_file_refuses_damaged_files(tmp_path, fitted):
    path = tmp_path / "model.skkn"
    fitted.save(path)
    data = path.read_bytes()

    truncated = tmp_path / "truncated.skkn"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        KernelCollaborativeFilter.load(truncated)

    not_a_model = tmp_path / "other.skkn"
    not_a_model.write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a skkernelnet model file"):
        KernelCollaborativeFilter.load(not_a_model)

    def flip_byte(payload):
        payload = bytearray(payload)
        payload[len(payload) // 2] ^= 0xFF
        return bytes(payload)

    tampered = tmp_path / "tampered.skkn"
    tampered.write_bytes(data)
    rewrite(tampered, arrays=flip_byte)
    with pytest.raises(ValueError, match="checksum mismatch"):
        KernelCollaborativeFilter.load(tampered)

    def newer(manifest):
        manifest["format_version"] = model_files.FORMAT_VERSION + 1
        return manifest

    future = tmp_path / "future.skkn"
    future.write_bytes(data)
    rewrite(future, manifest=newer)
    with pytest.raises(ValueError, match="format version 2.*Upgrade skkernelnet"):
        KernelCollaborativeFilter.load(future)

    def wrong_shape(manifest):
        manifest["attributes"]["module_"]["config"]["n_outputs"] += 1
        return manifest

    inconsistent = tmp_path / "inconsistent.skkn"
    inconsistent.write_bytes(data)
    rewrite(inconsistent, manifest=wrong_shape)
    with pytest.raises(ValueError, match="inconsistent model file"):
        KernelCollaborativeFilter.load(inconsistent)

    def injected_kernel(manifest):
        manifest["params"]["kernel"] = {"kind": "kernel", "value": {"class": "os.system"}}
        return manifest

    hostile = tmp_path / "hostile.skkn"
    hostile.write_bytes(data)
    rewrite(hostile, manifest=injected_kernel)
    with pytest.raises(ValueError, match="unsupported kernel"):
        KernelCollaborativeFilter.load(hostile)


def test_model_file_never_unpickles(tmp_path, fitted):
    # an object array smuggled into the arrays would need pickle to load: refused
    path = tmp_path / "model.skkn"
    fitted.save(path)

    def with_object_array(payload):
        with np.load(io.BytesIO(payload)) as arrays:
            content = dict(arrays)
        content["user_bias_"] = np.array([object()], dtype=object)
        buffer = io.BytesIO()
        np.savez(buffer, **content)
        return buffer.getvalue()

    def refresh_checksum(manifest):
        with zipfile.ZipFile(path) as archive:
            payload = archive.read("arrays.npz")
        import hashlib

        manifest["sha256"]["arrays.npz"] = hashlib.sha256(payload).hexdigest()
        return manifest

    rewrite(path, arrays=with_object_array)
    rewrite(path, manifest=refresh_checksum)
    with pytest.raises(ValueError, match="inconsistent model file"):
        KernelCollaborativeFilter.load(path)


def test_model_file_refuses_what_it_cannot_store(tmp_path, ratings):
    X, y = ratings
    custom = KernelCollaborativeFilter(
        kernel=lambda u, v: u @ v.T, blend=False, **SMALL
    ).fit(X, y)
    with pytest.raises(ValueError, match="use pickle"):
        custom.save(tmp_path / "custom.skkn")
    with pytest.raises(Exception, match="not fitted"):
        KernelCollaborativeFilter().save(tmp_path / "unfitted.skkn")
