"""The Adam step on dense batches with its backward pass written out (skkernelnet._dense_step).

It must compute the objective and the gradients of autograd on the same network: the
written-out losses of the estimators, the step itself over every kind of layer, and
whole fits with and without it.
"""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from skkernelnet import KernelNetClassifier, KernelNetRegressor
from skkernelnet._dense_step import DenseStep, autograd_loss_and_grad
from skkernelnet.estimators import _weighted_mean
from skkernelnet.kernels import FiniteSupportKernel, LinearKernel, RBFKernel
from skkernelnet.layers import KernelLinear
from skkernelnet.networks import KernelNetwork
from skkernelnet.positions import grid_positions

DTYPE = torch.float64


def _network(n_inputs=6, hidden=(5,), n_outputs=2, seed=0, **options):
    torch.manual_seed(seed)
    options = {"kernel": "rbf", "activation": "relu", "dtype": DTYPE, **options}
    net = KernelNetwork(n_inputs, hidden, n_outputs, **options)
    with torch.no_grad():  # embeddings spread out, so that the kernels are far from constant
        for layer in net.layers:
            for p in (layer.u, layer.v):
                if p is not None:
                    p.normal_(0.0, 0.7)
    return net


def _batch(net, n=13, seed=1):
    g = torch.Generator().manual_seed(seed)
    n_inputs, n_outputs = net.layers[0].in_features, net.layers[-1].out_features
    x = torch.randn(n, n_inputs, generator=g, dtype=DTYPE)
    target = torch.randn(n, n_outputs, generator=g, dtype=DTYPE)
    return x, target


def _by_autograd(net, x, data_loss, kernel_penalty):
    net.zero_grad(set_to_none=True)
    loss = data_loss(net(x))
    if kernel_penalty:
        loss = loss + kernel_penalty * net.regularization()[1]
    loss.backward()
    return float(loss.detach()), _grads(net)


def _by_step(net, x, data_loss, kernel_penalty):
    net.zero_grad(set_to_none=True)
    step = DenseStep.for_network(net, kernel_penalty=kernel_penalty)
    assert step is not None
    value = step(x, autograd_loss_and_grad(data_loss))
    return value, _grads(net)


def _grads(net):
    return {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}


def _unsigned_rbf_layer(n_in, n_out):
    """An ungated layer whose weight is the kernel itself (no signed scales)."""
    torch.manual_seed(3)
    layer = KernelLinear(n_in, n_out, kernel="rbf", gated=False, signed=False, dtype=DTYPE)
    with torch.no_grad():
        layer.u.normal_(0.0, 0.7)
        layer.v.normal_(0.0, 0.7)
    return layer


NETWORKS = {
    "gated rbf": lambda: _network(),
    "gated finite support": lambda: _network(kernel=FiniteSupportKernel(radius=2.0)),
    "gated rbf, two hidden layers, tanh": lambda: _network(hidden=(5, 4), activation="tanh"),
    "gated rbf, logistic": lambda: _network(activation="logistic"),
    "gated rbf, identity": lambda: _network(activation="identity"),
    "gated rbf, no hidden layer": lambda: _network(hidden=()),
    "gated rbf, gamma 0.3": lambda: _network(kernel=RBFKernel(gamma=0.3)),
    # weights that autograd differentiates: signed scales, kernels not written out
    "ungated signed rbf": lambda: _network(gated=False, scale_rank=2),
    "ungated signed rbf, rank 1": lambda: _network(gated=False, scale_rank=1),
    "gated laplacian": lambda: _network(kernel="laplacian"),
    "ungated linear": lambda: _network(kernel="linear", gated=False),
    "gated rbf + linear": lambda: _network(kernel=RBFKernel() + LinearKernel()),
    # inputs at given positions: frozen (some or all coordinates) or only the start
    "frozen positions, one learned coordinate": lambda: _network(
        n_inputs=4, embedding_dim=3, input_positions=grid_positions((2, 2))
    ),
    "frozen positions, no learned coordinate": lambda: _network(
        n_inputs=4, embedding_dim=2, input_positions=grid_positions((2, 2))
    ),
    "positions as a start": lambda: _network(
        n_inputs=4,
        embedding_dim=3,
        input_positions=grid_positions((2, 2)),
        freeze_input_positions=False,
    ),
}


def _mixed_network():
    net = _network(hidden=(5, 4))
    net.layers[1] = _unsigned_rbf_layer(5, 4)  # between written-out and autograd layers
    net.layers[2] = KernelLinear(4, 2, kernel="laplacian", gated=False, dtype=DTYPE)
    return net


NETWORKS["mixed: gated, unsigned rbf, ungated laplacian"] = _mixed_network


def _squared_error(target):
    return lambda output: 0.5 * ((output - target) ** 2).sum() / output.shape[0]


@pytest.mark.parametrize("kernel_penalty", [0.0, 0.3])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_step_has_the_objective_and_gradients_of_autograd(name, kernel_penalty):
    net = NETWORKS[name]()
    x, target = _batch(net)
    loss = _squared_error(target)
    expected_value, expected = _by_autograd(net, x, loss, kernel_penalty)
    value, grads = _by_step(net, x, loss, kernel_penalty)
    assert grads.keys() == expected.keys()
    assert value == pytest.approx(expected_value, rel=1e-12)
    for key, grad in grads.items():
        torch.testing.assert_close(grad, expected[key], rtol=1e-10, atol=1e-13, msg=key)
        assert grad.is_contiguous(), key


@pytest.mark.parametrize("name", ["gated rbf", "gated finite support", "gated rbf, logistic"])
def test_step_gradients_equal_autograd_exactly_without_kernel_penalty(name):
    # the same operations in the same order: not even rounding differs
    net = NETWORKS[name]()
    x, target = _batch(net)
    loss = _squared_error(target)
    expected_value, expected = _by_autograd(net, x, loss, 0.0)
    value, grads = _by_step(net, x, loss, 0.0)
    assert value == expected_value
    for key, grad in grads.items():
        assert torch.equal(grad, expected[key]), key


def test_step_leaves_frozen_parameters_without_gradient():
    net = _network(hidden=(5, 4))
    net.layers[0].W.requires_grad_(False)
    net.layers[1].v.requires_grad_(False)
    x, target = _batch(net)
    _, expected = _by_autograd(net, x, _squared_error(target), 0.0)
    _, grads = _by_step(net, x, _squared_error(target), 0.0)
    assert grads.keys() == expected.keys()
    assert "layers.0.W" not in grads and "layers.1.v" not in grads


def test_step_adds_to_existing_gradients():
    net = _network()
    x, target = _batch(net)
    _, once = _by_step(net, x, _squared_error(target), 0.0)
    step = DenseStep.for_network(net)
    step(x, autograd_loss_and_grad(_squared_error(target)))  # on top of the first
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, 2 * once[name], rtol=1e-14, atol=0)


def test_step_does_not_change_the_network():
    net = _network(gated=False)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x, target = _batch(net)
    _by_step(net, x, _squared_error(target), 0.1)
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key


class _Subclass(KernelNetwork):
    pass


def test_step_applies_only_to_plain_networks_without_hooks():
    assert DenseStep.for_network(_network()) is not None
    net = _network()
    net.activation = nn.ELU()  # no written-out gradient for it
    assert DenseStep.for_network(net) is None
    net = _network()
    net.output_activation = nn.Sigmoid()
    assert DenseStep.for_network(net) is None
    net = _network()
    net.layers[0].register_forward_hook(lambda module, args, out: None)
    assert DenseStep.for_network(net) is None
    net = _network()
    net.layers[1].W.register_hook(lambda grad: grad)
    assert DenseStep.for_network(net) is None
    torch.manual_seed(0)
    assert DenseStep.for_network(_Subclass(3, (4,), 1)) is None


def test_autograd_loss_and_grad():
    output = torch.tensor([[1.0, -2.0]], dtype=DTYPE)
    loss, grad = autograd_loss_and_grad(lambda out: (out**3).sum())(output)
    assert not loss.requires_grad and float(loss) == -7.0
    torch.testing.assert_close(grad, 3 * output**2)
    assert not output.requires_grad


# --------------------------------------------------------------------------- estimators
_rng = np.random.RandomState(0)
_X = _rng.normal(size=(90, 4))
TASKS = {
    "binary": (KernelNetClassifier, (_X[:, 0] + _X[:, 1] > 0).astype(int)),
    "multiclass": (KernelNetClassifier, np.digitize(_X[:, 0], [-0.5, 0.5])),
    "multilabel": (KernelNetClassifier, (_X[:, :2] > 0).astype(int)),
    "regression": (KernelNetRegressor, 3.0 * _X[:, 0] - _X[:, 2]),
    "regression, two outputs": (KernelNetRegressor, 3.0 * _X[:, :2]),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_written_out_loss_gradient_is_autograds(task, weighted, dtype):
    Estimator, y = TASKS[task]
    est = Estimator(hidden_layer_sizes=(3,), max_iter=2).fit(_X, y)
    targets = torch.as_tensor(est._encode_targets(y, np.ones(len(y)), reset=False))
    if targets.is_floating_point() or est._float_targets():
        targets = targets.to(dtype)
    g = torch.Generator().manual_seed(4)
    output = 3 * torch.randn(len(y), est._n_outputs, generator=g, dtype=dtype)
    weight = torch.rand(len(y), generator=g, dtype=dtype) + 0.5 if weighted else None
    loss, grad = est._loss_and_grad(output, targets, weight)
    expected_loss, expected_grad = autograd_loss_and_grad(
        lambda out: est._data_loss(out, targets, weight)
    )(output)
    assert torch.equal(loss, expected_loss)
    assert torch.equal(grad, expected_grad)


def test_unit_weights_are_weights_of_one():
    per_sample = torch.rand(17, dtype=DTYPE)
    ones = torch.ones(17, dtype=DTYPE)
    assert torch.equal(_weighted_mean(per_sample, None), _weighted_mean(per_sample, ones))


def _fit(Estimator, y, sample_weight, dense_step, monkeypatch, **params):
    with monkeypatch.context() as patch:
        if not dense_step:  # every batch through autograd, as before the step existed
            patch.setattr(DenseStep, "for_network", classmethod(lambda cls, *a, **k: None))
        options = {"solver": "adam", "max_iter": 4, "batch_size": 16, "random_state": 0}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Estimator(**{**options, **params}).fit(_X, y, sample_weight=sample_weight)


FITS = {
    "classifier": (KernelNetClassifier, "binary", {}),
    "classifier, multiclass, kernel penalty": (
        KernelNetClassifier,
        "multiclass",
        {"kernel_alpha": 0.5},
    ),
    "classifier, ungated": (KernelNetClassifier, "binary", {"gated": False, "alpha": 0.1}),
    "classifier, finite support, tanh": (
        KernelNetClassifier,
        "multilabel",
        {"kernel": "finite_support", "activation": "tanh"},
    ),
    "regressor": (KernelNetRegressor, "regression", {}),
    "regressor, gated, early stopping": (
        KernelNetRegressor,
        "regression, two outputs",
        {"gated": True, "early_stopping": True},
    ),
}


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", sorted(FITS))
def test_fit_with_the_step_is_the_fit_with_autograd(name, weighted, monkeypatch):
    Estimator, task, params = FITS[name]
    y = TASKS[task][1]
    sw = np.random.RandomState(1).uniform(0.5, 2.0, size=len(y)) if weighted else None
    fast = _fit(Estimator, y, sw, True, monkeypatch, **params)
    slow = _fit(Estimator, y, sw, False, monkeypatch, **params)
    np.testing.assert_allclose(fast.loss_curve_, slow.loss_curve_, rtol=1e-10)
    assert fast.n_iter_ == slow.n_iter_ == 4
    for (key, a), b in zip(fast.module_.state_dict().items(), slow.module_.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10, msg=key)


def test_unit_sample_weights_fit_exactly_as_no_weights():
    y = TASKS["multiclass"][1]
    options = {"solver": "adam", "max_iter": 3, "batch_size": 16, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = KernelNetClassifier(**options).fit(_X, y)
        ones = KernelNetClassifier(**options).fit(_X, y, sample_weight=np.ones(len(y)))
    assert plain.loss_curve_ == ones.loss_curve_
    for a, b in zip(plain.module_.parameters(), ones.module_.parameters()):
        assert torch.equal(a, b)
