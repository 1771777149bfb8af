"""training.lbfgs against scipy's L-BFGS-B, its stop reasons and its curvature history."""

import numpy as np
import pytest
import scipy.optimize
import torch
from sklearn.datasets import make_classification

from skkernelnet import training
from skkernelnet.training import TrainingMonitor, lbfgs


def _minimise(objective, x0, *, max_iter=1000, tol=0.0, n_iter_no_change=10**6, **options):
    """Run training.lbfgs on ``objective(x) -> scalar Tensor`` from ``x0``; return x and result."""
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)

    def closure():
        x.grad = None
        loss = objective(x)
        loss.backward()
        return loss.item()

    with TrainingMonitor(
        torch.nn.ParameterList([x]),
        max_iter=max_iter,
        tol=tol,
        n_iter_no_change=n_iter_no_change,
    ) as monitor:
        lbfgs([x], closure, monitor, **options)
    return x.detach().numpy(), monitor.result


def _scipy(objective, x0):
    """The same objective minimised by scipy's L-BFGS-B, to tight tolerances."""

    def value_and_grad(v):
        x = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        loss = objective(x)
        loss.backward()
        return loss.item(), x.grad.numpy()

    return scipy.optimize.minimize(
        value_and_grad,
        x0,
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 10_000},
    )


def rosenbrock(x):
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


def _logistic_problem():
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    X, y = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.float64)

    def objective(w):
        logits = X @ w[:-1] + w[-1]
        data = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        return data + 0.5e-2 * (w[:-1] ** 2).sum()

    return objective, np.zeros(X.shape[1] + 1)


@pytest.mark.parametrize("dim", [2, 6])
def test_rosenbrock_same_optimum_as_scipy(dim):
    x0 = np.tile([-1.2, 1.0], dim // 2)
    ours, result = _minimise(rosenbrock, x0, gtol=1e-8)
    reference = _scipy(rosenbrock, x0)
    assert result.stop_reason == "converged"
    np.testing.assert_allclose(reference.x, np.ones(dim), atol=1e-5)
    np.testing.assert_allclose(ours, reference.x, atol=1e-6)


def test_logistic_regression_same_optimum_as_scipy():
    objective, w0 = _logistic_problem()
    ours, result = _minimise(objective, w0, gtol=1e-9)
    reference = _scipy(objective, w0)
    assert result.stop_reason == "converged"
    np.testing.assert_allclose(ours, reference.x, atol=1e-6)
    ours_value = objective(torch.as_tensor(ours)).item()
    assert ours_value == pytest.approx(reference.fun, rel=1e-12, abs=1e-12)


# -- stop reasons ---------------------------------------------------------------------------
def test_stop_reason_gradient_tolerance():
    _, result = _minimise(lambda x: ((x - 3.0) ** 2).sum(), [0.0, 1.0], gtol=1e-6)
    assert result.stop_reason == "converged"
    assert result.n_iter < 10


def test_stop_reason_max_iter():
    _, result = _minimise(rosenbrock, [-1.2, 1.0], max_iter=5)
    assert result.stop_reason == "max_iter"
    assert result.n_iter == 5


def test_stop_reason_no_improvement():
    # A tol larger than any improvement Rosenbrock offers after the first steps.
    _, result = _minimise(rosenbrock, [-1.2, 1.0], tol=1e3, n_iter_no_change=3)
    assert result.stop_reason == "no_improvement"
    assert result.n_iter == 1 + 3  # the first iteration sets the best, 3 fail to beat it


def test_stop_reason_failed_line_search_keeps_the_start():
    """A gradient that points the wrong way: no step decreases the objective."""
    x = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    calls = []

    def closure():
        with torch.no_grad():
            value = float((x**2).sum())
            x.grad = -2.0 * x.detach().clone()  # the negated true gradient
        calls.append(x.detach().clone())
        return value

    with TrainingMonitor(torch.nn.ParameterList([x]), max_iter=50) as monitor:
        lbfgs([x], closure, monitor, max_backtracks=5)
    assert monitor.result.stop_reason == "line_search_failed"
    assert monitor.result.n_iter == 0
    # the start, 5 trial steps, then the start again (restored and re-evaluated)
    assert len(calls) == 7
    torch.testing.assert_close(x.detach(), torch.tensor([1.0, -2.0], dtype=torch.float64))
    torch.testing.assert_close(calls[-1], calls[0])


def test_stop_reason_diverged_when_every_trial_is_non_finite():
    x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)

    def closure():
        x.grad = None
        loss = (x**2).sum()
        loss.backward()
        return loss.item() if torch.equal(x.detach(), torch.ones(1, dtype=x.dtype)) else np.inf

    with pytest.warns(training.ConvergenceWarning, match="diverged"):
        with TrainingMonitor(torch.nn.ParameterList([x]), max_iter=50) as monitor:
            lbfgs([x], closure, monitor, max_backtracks=4)
    assert monitor.result.stop_reason == "diverged"
    torch.testing.assert_close(x.detach(), torch.ones(1, dtype=torch.float64))


# -- the curvature history ------------------------------------------------------------------
class _RecordingTwoLoop:
    """Wraps training._two_loop, keeping a copy of the history it sees at each iteration."""

    def __init__(self, negate_at=None):
        self.histories = []
        self.negate_at = negate_at

    def __call__(self, grad, history):
        self.histories.append(list(history))
        direction = training._original_two_loop(grad, history)
        if len(self.histories) - 1 == self.negate_at:
            return -direction  # an ascent direction, as rounding could produce
        return direction


@pytest.fixture
def recording(monkeypatch):
    monkeypatch.setattr(training, "_original_two_loop", training._two_loop, raising=False)

    def install(**kwargs):
        recorder = _RecordingTwoLoop(**kwargs)
        monkeypatch.setattr(training, "_two_loop", recorder)
        return recorder

    return install


def test_history_keeps_the_newest_pairs(recording):
    recorder = recording()
    _minimise(rosenbrock, [-1.2, 1.0], max_iter=12, history_size=3)
    sizes = [len(h) for h in recorder.histories]
    assert max(sizes) == 3 and sizes[:4] == [0, 1, 2, 3]
    full = [h for h in recorder.histories if len(h) == 3]
    assert len(full) >= 5
    for before, after in zip(full, full[1:]):
        # one pair in, the oldest out (no curvature pair is skipped on Rosenbrock here)
        assert all(a is b for a, b in zip(after[:-1], before[1:]))
        assert after[-1] is not before[-1]


def test_history_matches_textbook_two_loop():
    """The direction is -H grad of the BFGS update applied to the pairs, oldest first."""
    torch.manual_seed(0)
    n = 5
    A = torch.randn(n, n, dtype=torch.float64)
    A = A @ A.T + n * torch.eye(n, dtype=torch.float64)  # s.y > 0 for y = A s
    pairs = []
    for _ in range(3):
        s = torch.randn(n, dtype=torch.float64)
        y = A @ s
        pairs.append((s, y, 1.0 / float(y @ s)))
    grad = torch.randn(n, dtype=torch.float64)
    s_last, y_last, _ = pairs[-1]
    H = float(s_last @ y_last) / float(y_last @ y_last) * torch.eye(n, dtype=torch.float64)
    for s, y, rho in pairs:
        V = torch.eye(n, dtype=torch.float64) - rho * torch.outer(y, s)
        H = V.T @ H @ V + rho * torch.outer(s, s)
    torch.testing.assert_close(training._two_loop(grad, pairs), -H @ grad)


def test_restart_after_non_descent_direction(recording):
    recorder = recording(negate_at=4)
    x, result = _minimise(rosenbrock, [-1.2, 1.0], max_iter=200, gtol=1e-8)
    assert len(recorder.histories[4]) > 0
    # the ascent direction was replaced by steepest descent with an empty history, and the
    # history then grew again from that step's pair
    assert len(recorder.histories[5]) == 1
    assert result.stop_reason == "converged"
    assert all(b <= a for a, b in zip(result.loss_curve, result.loss_curve[1:]))
    np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-5)
