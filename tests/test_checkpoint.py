"""Crash-safe fits: checkpoints written during a fit, and resuming from them."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from skkernelnet import KernelCollaborativeFilter, training
from skkernelnet.datasets import make_ratings

ROOT = Path(__file__).resolve().parents[1]
PARAMS = dict(
    hidden_layer_sizes=(8,), max_iter=15, n_iter_no_change=100, random_state=0, dtype="float64"
)


@pytest.fixture(autouse=True)
def one_thread():
    # Bitwise-equal parameters need the same reduction order in every process.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ratings():
    return make_ratings(60, 40, density=0.2, random_state=0, return_X_y=True)


@pytest.fixture(scope="module")
def uninterrupted(ratings):
    torch.set_num_threads(1)
    with pytest.warns(ConvergenceWarning):
        return KernelCollaborativeFilter(**PARAMS).fit(*ratings)


def _fit(X, y, **params):
    with pytest.warns(ConvergenceWarning):  # max_iter is reached on purpose
        return KernelCollaborativeFilter(**{**PARAMS, **params}).fit(X, y)


def _assert_same_fit(model, reference):
    assert model.n_iter_ == reference.n_iter_
    assert model.loss_curve_ == reference.loss_curve_
    assert model.validation_scores_ == reference.validation_scores_
    assert model.best_iter_ == reference.best_iter_
    assert model.blend_weight_ == reference.blend_weight_
    for module, ref_module in ((model.module_, reference.module_),
                               (model.blend_module_, reference.blend_module_)):  # fmt: skip
        for (name, value), ref_value in zip(
            module.state_dict().items(), ref_module.state_dict().values(), strict=True
        ):
            assert torch.equal(value, ref_value), name


def _count_iterations(monkeypatch):
    calls = []
    step = training.TrainingMonitor.step

    def counting(self, loss):
        calls.append(loss)
        return step(self, loss)

    monkeypatch.setattr(training.TrainingMonitor, "step", counting)
    return calls


@pytest.fixture
def crashed(ratings, monkeypatch, tmp_path):
    """A checkpoint left by a fit that raised in iteration 7 (written at 3 and 6)."""
    path = tmp_path / "fit.ckpt"
    step = training.TrainingMonitor.step

    def failing(self, loss):
        stop = step(self, loss)
        if self.result.n_iter == 7:
            raise RuntimeError("simulated crash")
        return stop

    with monkeypatch.context() as patch:
        patch.setattr(training.TrainingMonitor, "step", failing)
        with pytest.raises(RuntimeError, match="simulated crash"):
            KernelCollaborativeFilter(**PARAMS, checkpoint=path, checkpoint_interval=3).fit(
                *ratings
            )
    assert path.is_file()
    assert sorted(os.listdir(tmp_path)) == ["fit.ckpt"]  # no temporary files left
    return path


_CHILD = """
import os, signal, sys
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from skkernelnet import KernelCollaborativeFilter, training
from skkernelnet.datasets import make_ratings

X, y = make_ratings(60, 40, density=0.2, random_state=0, return_X_y=True)
step = training.TrainingMonitor.step

def step_then_die(self, loss):
    stop = step(self, loss)
    if self.result.n_iter == 8:
        os.kill(os.getpid(), signal.SIGKILL)
    return stop

training.TrainingMonitor.step = step_then_die
KernelCollaborativeFilter(**{params!r}, checkpoint={path!r}, checkpoint_interval=3).fit(X, y)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_sigkill_then_resume_equals_uninterrupted(ratings, uninterrupted, monkeypatch, tmp_path):
    path = tmp_path / "fit.ckpt"
    script = textwrap.dedent(_CHILD).format(root=str(ROOT), params=PARAMS, path=str(path))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-c", script]
    child = subprocess.run(command, env=env, capture_output=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert path.is_file()  # written after iteration 6; iterations 7 and 8 are lost
    calls = _count_iterations(monkeypatch)
    model = _fit(*ratings, checkpoint=path, checkpoint_interval=3)
    assert len(calls) == PARAMS["max_iter"] - 6  # resumed, not restarted
    _assert_same_fit(model, uninterrupted)
    np.testing.assert_array_equal(model.predict(ratings[0]), uninterrupted.predict(ratings[0]))
    assert not path.exists()  # removed once the fit finished


def test_resume_after_exception_and_file_removed(ratings, uninterrupted, crashed, monkeypatch):
    calls = _count_iterations(monkeypatch)
    model = _fit(*ratings, checkpoint=crashed, checkpoint_interval=3)
    assert len(calls) == PARAMS["max_iter"] - 6
    _assert_same_fit(model, uninterrupted)
    assert not crashed.exists()
    # a finished fit left nothing behind: the next one starts from scratch
    calls.clear()
    _fit(*ratings, checkpoint=crashed, checkpoint_interval=3)
    assert len(calls) == PARAMS["max_iter"] and not crashed.exists()


def test_resume_may_extend_max_iter(ratings, crashed, monkeypatch):
    calls = _count_iterations(monkeypatch)
    model = _fit(*ratings, checkpoint=str(crashed), max_iter=20, verbose=0)
    assert len(calls) == 20 - 6 and model.n_iter_ == 20
    longer = _fit(*ratings, max_iter=20)
    _assert_same_fit(model, longer)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"alpha": 0.1}, r"other parameters: alpha=0.1 here but 0.045 in the checkpoint"),
        ({"hidden_layer_sizes": (9,)}, r"hidden_layer_sizes=\(9,\) here but \(8,\)"),
        ({"random_state": 1}, "random_state=1 here but 0"),
        ({"checkpoint_interval": 2, "data": "other"}, "other data"),
        ({"data": "order"}, "other data"),
        ({"data": "ratings"}, "other data"),
        ({"validation_fraction": 0.3}, "validation_fraction=0.3 here but .auto."),
        ({"data": "shape"}, "other data"),
    ],
)
def test_mismatched_checkpoint_is_refused(ratings, crashed, change, message):
    X, y = ratings
    change = dict(change)
    data = change.pop("data", None)
    if data == "other":
        X, y = make_ratings(60, 40, density=0.2, random_state=1, return_X_y=True)
    elif data == "order":
        X, y = X[::-1], y[::-1]
    elif data == "shape":
        X, y = make_ratings(70, 40, density=0.2, random_state=0, return_X_y=True)
    elif data == "ratings":
        y = y.copy()
        y[0] += 0.25
    before = crashed.read_bytes()
    model = KernelCollaborativeFilter(**{**PARAMS, **change}, checkpoint=crashed)
    with pytest.raises(ValueError, match=message) as info:
        model.fit(X, y)
    assert "Delete it or pass another checkpoint path" in str(info.value)
    assert crashed.read_bytes() == before  # a refused checkpoint is left as it was


def test_warm_start_fit_refuses_checkpoint_of_a_fresh_fit(ratings, crashed):
    model = _fit(*ratings, max_iter=2, warm_start=True)
    model.set_params(checkpoint=crashed, max_iter=PARAMS["max_iter"])
    with pytest.raises(ValueError, match="other initial parameters"):
        model.fit(*ratings)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda raw: raw[: len(raw) // 2], "corrupt"),
        (lambda raw: raw[:-100] + bytes(100), "corrupt"),
        (lambda raw: raw[:40], "corrupt"),
        (lambda raw: b"", "not a skkernelnet checkpoint"),
        (lambda raw: b"PK\x03\x04 some zip", "not a skkernelnet checkpoint"),
    ],
)
def test_corrupt_checkpoint_is_refused(ratings, crashed, damage, message):
    crashed.write_bytes(damage(crashed.read_bytes()))
    model = KernelCollaborativeFilter(**PARAMS, checkpoint=crashed)
    with pytest.raises(ValueError, match=message):
        model.fit(*ratings)


def test_checkpoint_needs_fixed_random_state(ratings, tmp_path):
    model = KernelCollaborativeFilter(**{**PARAMS, "random_state": None}, checkpoint=tmp_path / "c")
    with pytest.raises(ValueError, match="checkpoint needs a fixed random_state"):
        model.fit(*ratings)


@pytest.mark.parametrize("params", [{"checkpoint_interval": 0}, {"checkpoint": 3}])
def test_checkpoint_parameters_validated(ratings, params):
    with pytest.raises(ValueError, match=next(iter(params))):
        KernelCollaborativeFilter(**PARAMS, **params).fit(*ratings)


def test_written_atomically(ratings, monkeypatch, tmp_path):
    # Every write goes to a temporary file in the same folder, then os.replace.
    path = tmp_path / "sub" / "fit.ckpt"
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        assert Path(src).parent == path.parent and Path(src).name.startswith(".fit.ckpt.")
        replaced.append(Path(src).stat().st_size)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    _fit(*ratings, checkpoint=path, checkpoint_interval=4)
    assert len(replaced) == 3  # after iterations 4, 8 and 12 of 15
    assert not path.exists() and os.listdir(path.parent) == []
