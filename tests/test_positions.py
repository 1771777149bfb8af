"""User-given neuron positions: grid_positions, KernelLinear's fixed or initial positions,
and the estimators' input_positions."""

import copy
import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from skkernelnet import KernelNetClassifier, KernelNetRegressor
from skkernelnet.kernels import FiniteSupportKernel, squared_distances
from skkernelnet.layers import KernelLinear
from skkernelnet.networks import KernelNetwork
from skkernelnet.positions import check_positions, grid_positions


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


GRID = grid_positions((4, 5))  # 20 inputs on a 4 x 5 grid


def train_steps(layer, n_steps=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, layer.in_features, generator=g, dtype=layer.output_embeddings.dtype)
    target = torch.randn(16, layer.out_features, generator=g, dtype=x.dtype)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(n_steps):
        optimizer.zero_grad()
        (layer(x) - target).pow(2).mean().backward()
        optimizer.step()


# --------------------------------------------------------------------------- grid_positions


def test_grid_positions_follow_c_order_flattening_of_an_image():
    image = np.arange(12).reshape(3, 4)
    positions = grid_positions((3, 4), spacing=2.0)
    for k, pixel in enumerate(image.reshape(-1)):
        row, col = np.unravel_index(pixel, (3, 4))
        assert_array_equal(positions[k], [(row - 1) * 2.0, (col - 1.5) * 2.0])
    assert_array_equal(grid_positions(5), (np.arange(5) - 2.0).reshape(-1, 1))


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    spacing=st.floats(0.1, 10.0),
)
def test_grid_positions_properties(shape, spacing):
    positions = grid_positions(tuple(shape), spacing=spacing)
    assert positions.shape == (int(np.prod(shape)), len(shape))
    np.testing.assert_allclose(positions.mean(axis=0), 0.0, atol=1e-9)
    # neighbours along the last axis are `spacing` apart; cells are distinct
    if shape[-1] > 1:
        np.testing.assert_allclose(positions[1, -1] - positions[0, -1], spacing)
    assert len(np.unique(positions, axis=0)) == len(positions)


def test_grid_positions_per_axis_spacing():
    positions = grid_positions((2, 2), spacing=(1.0, 3.0))
    assert_array_equal(positions, [[-0.5, -1.5], [-0.5, 1.5], [0.5, -1.5], [0.5, 1.5]])


@pytest.mark.parametrize(
    "args, match",
    [
        (((0, 3),), "positive integers, got \\(0, 3\\)"),
        (((),), "non-empty tuple"),
        (((2.5, 3),), "positive integers"),
        (((True, 3),), "positive integers"),
        (((2, 3), 0.0), "spacing must be positive"),
        (((2, 3), float("nan")), "spacing must be positive"),
        (((2, 3), (1.0, 2.0, 3.0)), "one per axis"),
    ],
)
def test_grid_positions_errors(args, match):
    shape, *spacing = args
    with pytest.raises(ValueError, match=match):
        grid_positions(shape, **({"spacing": spacing[0]} if spacing else {}))


@pytest.mark.parametrize(
    "positions, match",
    [
        (np.zeros(20), re.escape("2-D array of shape (20, n_coordinates)") + ".*reshape"),
        (np.zeros((19, 2)), re.escape("has 19 rows, but there are 20 things")),
        (np.zeros((20, 0)), "at least one coordinate"),
        (np.full((20, 2), np.nan), "NaN or infinite"),
        ([["a", "b"]] * 20, "array of numbers"),
    ],
)
def test_check_positions_errors(positions, match):
    with pytest.raises(ValueError, match=match):
        check_positions(positions, 20, of="things")


def test_check_positions_copies_and_accepts_tensors():
    array = GRID.copy()
    checked = check_positions(array, 20)
    array[0, 0] = 99.0
    assert checked[0, 0] == GRID[0, 0]
    assert_array_equal(check_positions(torch.as_tensor(GRID), 20), GRID)


# --------------------------------------------------------------------------- the layer


def test_frozen_positions_are_a_buffer_that_never_trains():
    layer = KernelLinear(20, 6, kernel="rbf", gated=False, input_positions=GRID)
    assert layer.embedding_dim == 2 and layer.u is None
    assert "input_positions" in layer.state_dict()
    assert "input_positions" not in dict(layer.named_parameters())
    assert dict(layer.named_buffers()).keys() == {"input_positions"}
    assert torch.equal(layer.input_embeddings, torch.as_tensor(GRID, dtype=torch.float32))
    v_before = layer.v.detach().clone()
    train_steps(layer)
    assert torch.equal(layer.input_positions, torch.as_tensor(GRID, dtype=torch.float32))
    assert not torch.equal(layer.v, v_before)
    assert "fixed_input_coordinates=2" in repr(layer)


def test_unfrozen_positions_are_the_initial_value_of_a_learned_parameter():
    layer = KernelLinear(
        20, 6, kernel="rbf", gated=False, input_positions=GRID, freeze_input_positions=False
    )
    assert layer.input_positions is None and isinstance(layer.u, torch.nn.Parameter)
    # the state dict is that of a layer without given positions
    assert set(layer.state_dict()) == {"u", "v", "input_scale", "output_scale", "bias"}
    assert torch.equal(layer.u.detach(), torch.as_tensor(GRID, dtype=torch.float32))
    train_steps(layer)
    assert not torch.allclose(layer.u.detach(), torch.as_tensor(GRID, dtype=torch.float32))
    layer.reset_parameters()
    assert torch.equal(layer.u.detach(), torch.as_tensor(GRID, dtype=torch.float32))


def test_mixed_dimensions_fixed_coordinates_first_then_learned_ones():
    layer = KernelLinear(20, 6, embedding_dim=3, kernel="rbf", input_positions=GRID)
    assert layer.u.shape == (20, 1) and layer.v.shape == (6, 3)
    embeddings = layer.input_embeddings
    assert embeddings.shape == (20, 3)
    assert torch.equal(embeddings[:, :2], layer.input_positions)
    assert torch.equal(embeddings[:, 2:], layer.u)
    u_before = layer.u.detach().clone()
    train_steps(layer)
    assert not torch.equal(layer.u, u_before)
    assert torch.equal(layer.input_embeddings[:, :2], layer.input_positions)


def test_unfrozen_mixed_positions_fill_the_first_coordinates():
    layer = KernelLinear(20, 6, embedding_dim=4, input_positions=GRID, freeze_input_positions=False)
    assert layer.u.shape == (20, 4)
    assert torch.equal(layer.u[:, :2].detach(), torch.as_tensor(GRID, dtype=torch.float32))
    assert layer.u[:, 2:].abs().max() < 0.01  # the gated layer's small random start


def test_other_side_starts_at_positions_of_random_given_neurons():
    torch.manual_seed(0)
    layer = KernelLinear(20, 50, embedding_dim=3, kernel="rbf", input_positions=GRID)
    std = layer._init_std()
    start = layer.v.detach()[:, :2]
    nearest = squared_distances(start, torch.as_tensor(GRID, dtype=torch.float32)).min(1)
    assert float(nearest.values.max()) <= 2 * (2 * std) ** 2 + 1e-12
    assert len(set(nearest.indices.tolist())) > 10  # spread over the grid, not one pixel
    # and symmetrically, from given output positions to the learned input neurons
    layer = KernelLinear(50, 20, kernel="rbf", output_positions=GRID)
    start = layer.u.detach()
    nearest = squared_distances(start, torch.as_tensor(GRID, dtype=torch.float32)).min(1)
    assert float(nearest.values.max()) <= 2 * (2 * layer._init_std()) ** 2 + 1e-12


def test_both_sides_given_and_frozen_leave_only_free_weights():
    out_grid = grid_positions((2, 3))
    layer = KernelLinear(
        20, 6, kernel="rbf", gated=True, input_positions=GRID, output_positions=out_grid
    )
    assert layer.u is None and layer.v is None
    assert set(dict(layer.named_parameters())) == {"W", "bias"}
    K = layer.kernel(
        torch.as_tensor(GRID, dtype=torch.float32),
        torch.as_tensor(out_grid, dtype=torch.float32),
    )
    assert torch.equal(layer.kernel_matrix(), K)
    assert torch.equal(layer.weight, layer.W * K)
    assert "fixed_output_coordinates=2" in repr(layer)


def test_fixed_grid_and_finite_support_keep_receptive_fields_local_through_training():
    radius = 1.5
    layer = KernelLinear(
        20,
        8,
        embedding_dim=3,  # one learned extra coordinate can only shrink a receptive field
        kernel=FiniteSupportKernel(radius=radius),
        gated=False,
        input_positions=GRID,
        dtype=torch.float64,
    )
    train_steps(layer, n_steps=20)
    with torch.no_grad():
        pixel_distance = squared_distances(
            torch.as_tensor(GRID), layer.output_embeddings[:, :2]
        ).sqrt()
        weight = layer.weight
    assert bool((weight[pixel_distance >= radius] == 0).all())
    assert bool((weight != 0).any())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(input_positions=np.zeros((19, 2))), "input_positions has 19 rows, but there are 20"),
        (dict(output_positions=np.zeros((5, 2))), "output_positions has 5 rows, but there are 6"),
        (dict(input_positions=np.zeros(20)), "reshape"),
        (dict(input_positions=GRID, embedding_dim=1), "2 coordinates per neuron, more than"),
        (dict(input_positions=np.full((20, 2), np.inf)), "NaN or infinite"),
    ],
)
def test_layer_position_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KernelLinear(20, 6, **kwargs)


def test_embedding_dim_defaults():
    assert KernelLinear(20, 6).embedding_dim == 5
    assert KernelLinear(20, 6, input_positions=np.zeros((20, 3))).embedding_dim == 3
    layer = KernelLinear(20, 6, input_positions=GRID, output_positions=np.zeros((6, 3)))
    assert layer.embedding_dim == 3 and layer.u.shape == (20, 1) and layer.v is None


@settings(max_examples=30, deadline=None)
@given(
    n_in=st.integers(1, 6),
    n_out=st.integers(1, 6),
    extra=st.integers(0, 2),
    p_in=st.integers(0, 3),
    p_out=st.integers(0, 3),
    freeze_in=st.booleans(),
    freeze_out=st.booleans(),
    gated=st.booleans(),
)
def test_layer_with_positions_properties(
    n_in, n_out, extra, p_in, p_out, freeze_in, freeze_out, gated
):
    rng = np.random.RandomState(0)
    d = max(p_in, p_out, 1) + extra
    given_in = rng.normal(size=(n_in, p_in)) if p_in else None
    given_out = rng.normal(size=(n_out, p_out)) if p_out else None
    layer = KernelLinear(
        n_in,
        n_out,
        embedding_dim=d,
        kernel="rbf",
        gated=gated,
        input_positions=given_in,
        freeze_input_positions=freeze_in,
        output_positions=given_out,
        freeze_output_positions=freeze_out,
        dtype=torch.float64,
    )
    fixed_in = p_in if freeze_in else 0
    fixed_out = p_out if freeze_out else 0
    U, V = layer.input_embeddings, layer.output_embeddings
    assert U.shape == (n_in, d) and V.shape == (n_out, d)
    for given_, emb in ((given_in, U), (given_out, V)):
        if given_ is not None:  # given coordinates come first, frozen or as the start
            assert torch.equal(emb[:, : given_.shape[1]].detach(), torch.as_tensor(given_))
    embedding_params = sum(t.numel() for t in (layer.u, layer.v) if t is not None)
    assert embedding_params == n_in * (d - fixed_in) + n_out * (d - fixed_out)
    K = layer.kernel(U, V)
    if gated:
        expected = K * layer.W
    else:  # signed scales, one per neuron
        expected = layer.input_scale[:, None] * K * layer.output_scale[None, :]
    assert torch.allclose(layer.weight, expected)


LAYER_CONFIGS = {
    "ungated_rbf": dict(kernel="rbf", gated=False),
    "gated_rbf": dict(kernel="rbf", gated=True),
    "ungated_linear": dict(kernel="linear", gated=False),
}


@pytest.mark.parametrize("name", sorted(LAYER_CONFIGS))
@pytest.mark.parametrize("freeze", [True, False])
def test_gradcheck_with_positions(name, freeze):
    torch.manual_seed(1)
    layer = KernelLinear(
        20,
        4,
        embedding_dim=3,
        embedding_init_std=0.5,
        input_positions=0.3 * GRID,
        freeze_input_positions=freeze,
        dtype=torch.float64,
        **LAYER_CONFIGS[name],
    )
    names = [n for n, _ in layer.named_parameters()]
    assert ("u" in names) and (freeze == ("input_positions" in layer.state_dict()))
    params = tuple(p.detach().clone().requires_grad_() for _, p in layer.named_parameters())
    x = torch.randn(5, 20, dtype=torch.float64, requires_grad=True)

    def f(x, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_state_dict_round_trip_restores_fixed_positions():
    torch.manual_seed(2)
    layer = KernelLinear(20, 6, embedding_dim=3, kernel="rbf", input_positions=GRID)
    other = KernelLinear(20, 6, embedding_dim=3, kernel="rbf", input_positions=np.zeros((20, 2)))
    other.load_state_dict(layer.state_dict())
    x = torch.randn(4, 20)
    assert torch.equal(other(x), layer(x))
    assert torch.equal(other.input_positions, layer.input_positions)
    plain = KernelLinear(20, 6, embedding_dim=3, kernel="rbf")
    with pytest.raises(RuntimeError, match="input_positions"):
        plain.load_state_dict(layer.state_dict())


@pytest.mark.parametrize("freeze", [True, False])
def test_pickle_deepcopy_and_dtype_moves(freeze):
    layer = KernelLinear(
        20, 6, embedding_dim=3, input_positions=GRID, freeze_input_positions=freeze
    )
    x = torch.randn(4, 20)
    for restored in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert torch.equal(restored(x), layer(x)) and repr(restored) == repr(layer)
        restored.reset_parameters()  # the initial positions travel with the layer
        assert torch.equal(restored.input_embeddings[:, :2], layer.input_embeddings[:, :2])
    layer.double()
    assert layer.input_embeddings.dtype == torch.float64
    assert layer(x.double()).dtype == torch.float64


def test_network_gives_positions_to_its_first_layer_only():
    net = KernelNetwork(20, (8, 5), 3, embedding_dim=3, input_positions=GRID)
    first, *others = net.layers
    assert first.input_positions.shape == (20, 2) and first.u.shape == (20, 1)
    assert all(layer.input_positions is None and layer.u.shape[1] == 3 for layer in others)
    assert net(torch.randn(2, 20)).shape == (2, 3)


# --------------------------------------------------------------------------- estimators


@pytest.fixture(scope="module")
def small_digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


DIGIT_GRID = grid_positions((8, 8))
FAST = dict(hidden_layer_sizes=(12,), max_iter=25, random_state=0)


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def test_estimator_fixed_positions_are_the_first_coordinates_of_feature_embeddings(small_digits):
    X, y = small_digits
    clf = _fit(KernelNetClassifier(input_positions=DIGIT_GRID, embedding_dim=3, **FAST), X, y)
    embeddings = clf.feature_embeddings_
    assert embeddings.shape == (64, 3)
    assert_array_equal(embeddings[:, :2], DIGIT_GRID)
    first = clf.module_.layers[0]
    assert first.u.shape == (64, 1) and first.input_positions is not None
    plain = _fit(KernelNetClassifier(embedding_dim=3, **FAST), X, y)
    # fixed coordinates are not trained: 64 * 2 fewer parameters
    assert plain.n_free_parameters_ - clf.n_free_parameters_ == 64 * 2


def test_estimator_unfrozen_positions_move(small_digits):
    X, y = small_digits
    clf = _fit(
        KernelNetClassifier(
            input_positions=DIGIT_GRID, freeze_input_positions=False, embedding_dim=2, **FAST
        ),
        X,
        y,
    )
    assert clf.module_.layers[0].input_positions is None
    assert not np.allclose(clf.feature_embeddings_, DIGIT_GRID)
    # still near their start: the positions were the initial value
    assert np.abs(clf.feature_embeddings_ - DIGIT_GRID).mean() < 1.0


def test_estimator_positions_clone_pickle_and_caller_array(small_digits):
    X, y = small_digits
    positions = DIGIT_GRID.copy()
    clf = KernelNetClassifier(input_positions=positions, embedding_dim=2, **FAST)
    fresh = clone(clf)
    assert_array_equal(fresh.get_params()["input_positions"], positions)
    assert fresh.get_params()["freeze_input_positions"] is True
    _fit(clf, X, y)
    assert_array_equal(positions, DIGIT_GRID)  # fit does not change the parameter
    expected = clf.predict_proba(X)
    positions[:] = 0.0  # nor does a later change of the caller's array reach the model
    assert_array_equal(clf.predict_proba(X), expected)
    restored = pickle.loads(pickle.dumps(clf))
    assert_array_equal(restored.predict_proba(X), expected)
    assert_array_equal(restored.feature_embeddings_, DIGIT_GRID)


def test_estimator_positions_in_grid_search(small_digits):
    X, y = small_digits
    search = GridSearchCV(
        KernelNetClassifier(embedding_dim=2, **FAST),
        {"input_positions": [None, DIGIT_GRID], "freeze_input_positions": [True, False]},
        cv=2,
    )
    _fit(search, X, y)
    assert len(search.cv_results_["params"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_.n_features_in_ == 64


def test_estimator_positions_validated_against_n_features_in(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match=re.escape("features in X (n_features_in_=10)")):
        KernelNetClassifier(input_positions=DIGIT_GRID, **FAST).fit(X[:, :10], y)
    with pytest.raises(ValueError, match="set embedding_dim >= 2"):
        KernelNetClassifier(input_positions=DIGIT_GRID, embedding_dim=1, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="NaN or infinite"):
        KernelNetClassifier(input_positions=np.full((64, 2), np.nan), **FAST).fit(X, y)
    with pytest.raises(ValueError, match="input_positions"):  # InvalidParameterError
        KernelNetClassifier(input_positions="grid", **FAST).fit(X, y)
    # once fitted, data of another width is refused as always
    clf = _fit(KernelNetClassifier(input_positions=DIGIT_GRID, **FAST), X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :10])


def test_regressor_with_positions_and_sparse_input(small_digits):
    import scipy.sparse as sp

    X, y = small_digits
    reg = _fit(
        KernelNetRegressor(input_positions=DIGIT_GRID, embedding_dim=2, **FAST),
        sp.csr_matrix(X),
        y.astype(float),
    )
    assert reg.predict(sp.csr_matrix(X[:5])).shape == (5,)
    assert_array_equal(reg.feature_embeddings_, DIGIT_GRID)
