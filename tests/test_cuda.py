"""The GPU path end to end: sampled products, the three estimators, pickling to a CPU machine.

Marked ``cuda``; skipped where no CUDA device is present. ``benchmarks/gpu_check.sh``
runs them on a GPU machine (``pytest -m cuda``). ``SKKERNELNET_TEST_DEVICE=cpu`` runs
the same test code on the CPU, a dry run of the tests themselves.
"""

import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning

from skkernelnet import (
    KernelCollaborativeFilter,
    KernelLinear,
    KernelNetClassifier,
    KernelNetRegressor,
    training,
)
from skkernelnet.datasets import make_ratings
from skkernelnet.layers import EntryIndex, SparseInput

DEVICE = os.environ.get("SKKERNELNET_TEST_DEVICE", "cuda")
ON_GPU = torch.device(DEVICE).type == "cuda"
ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        ON_GPU and not torch.cuda.is_available(),
        reason="needs a CUDA GPU (SKKERNELNET_TEST_DEVICE=cpu runs these tests on the CPU)",
    ),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]


def _on_device(module):
    return all(p.device.type == torch.device(DEVICE).type for p in module.parameters())


# --------------------------------------------------------------------------- layers


@pytest.mark.parametrize("kernel", ["finite_support", "rbf"])
def test_forward_at_on_device_matches_cpu(kernel):
    torch.manual_seed(0)
    cpu_layer = KernelLinear(7, 5, kernel=kernel, dtype=torch.float64)
    layer = KernelLinear(7, 5, kernel=kernel, dtype=torch.float64, device=DEVICE)
    layer.load_state_dict(cpu_layer.state_dict())
    assert _on_device(layer)
    x_cpu = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    x = x_cpu.detach().to(DEVICE).requires_grad_()
    rows, cols = [5, 0, 3, 3, 1], [4, 2, 0, 1, 4]  # not in row-major order
    # The index may come as lists, CPU tensors (moved over) or tensors already on the device.
    for index in (
        (rows, cols),
        EntryIndex(rows, cols, (6, 5)),
        EntryIndex(torch.tensor(rows, device=DEVICE), torch.tensor(cols, device=DEVICE), (6, 5)),
    ):
        out = layer.forward_at(x, index)
        assert out.device.type == torch.device(DEVICE).type
        assert_allclose(out.detach().cpu(), layer(x)[rows, cols].detach().cpu(), rtol=1e-12)
    out_cpu = cpu_layer.forward_at(x_cpu, (rows, cols))
    assert_allclose(out.detach().cpu(), out_cpu.detach(), rtol=1e-10)
    weights = torch.arange(1.0, 6.0, dtype=torch.float64)
    (out * weights.to(DEVICE)).sum().backward()
    (out_cpu * weights).sum().backward()
    assert_allclose(x.grad.cpu(), x_cpu.grad, rtol=1e-10, atol=1e-12)
    for p, p_cpu in zip(layer.parameters(), cpu_layer.parameters(), strict=True):
        assert_allclose(p.grad.cpu(), p_cpu.grad, rtol=1e-10, atol=1e-12)


def test_forward_at_sparse_input_on_device():
    layer = KernelLinear(6, 4, dtype=torch.float64, device=DEVICE)
    dense = torch.zeros(5, 6, dtype=torch.float64)
    dense[[0, 2, 4], [1, 3, 5]] = torch.tensor([4.0, 2.0, 5.0], dtype=torch.float64)
    x = SparseInput(dense.to_sparse_csr().to(DEVICE))
    out = layer.forward_at(x, ([4, 0], [3, 1]))
    expected = layer(dense.to(DEVICE))[[4, 0], [3, 1]]
    assert_allclose(out.detach().cpu(), expected.detach().cpu(), rtol=1e-12)


# --------------------------------------------------------------------------- recommender

PARAMS = dict(hidden_layer_sizes=(16,), max_iter=10, random_state=0, dtype="float64")


@pytest.fixture(scope="module")
def ratings():
    return make_ratings(80, 50, density=0.2, random_state=0, return_X_y=True)


@pytest.fixture(scope="module")
def recommenders(ratings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        on_device = KernelCollaborativeFilter(**PARAMS, device=DEVICE).fit(*ratings)
        on_cpu = KernelCollaborativeFilter(**PARAMS, device="cpu").fit(*ratings)
    return on_device, on_cpu


def test_recommender_fit_predict_recommend_transform_on_device(ratings, recommenders):
    X, y = ratings
    model, reference = recommenders
    assert _on_device(model.module_) and _on_device(model.blend_module_)
    assert model._device.type == torch.device(DEVICE).type
    # Same model as on the CPU, up to the order of floating-point sums.
    assert model.n_iter_ == reference.n_iter_
    assert_allclose(model.loss_curve_, reference.loss_curve_, rtol=1e-8)
    pairs = np.vstack([X[:20], [[1000, X[0, 1]]]])  # with an unknown user (baseline fallback)
    assert_allclose(model.predict(pairs), reference.predict(pairs), rtol=1e-6, atol=1e-8)
    items, scores = model.recommend(X[:5, 0], n=4)
    ref_items, ref_scores = reference.recommend(X[:5, 0], n=4)
    assert items.shape == (5, 4)
    assert_allclose(scores, ref_scores, rtol=1e-6, atol=1e-8)
    assert np.isin(items, model.item_ids_).all()
    vectors = model.transform(X[:10])
    assert vectors.shape == (10, len(model.get_feature_names_out()))
    assert_allclose(vectors, reference.transform(X[:10]), rtol=1e-6, atol=1e-8)
    assert np.isfinite(model.user_embeddings_).all() and np.isfinite(model.item_embeddings_).all()


_LOAD_ON_CPU = """
import json, pickle, sys, warnings
sys.path.insert(0, {root!r})
import numpy as np, torch
assert not torch.cuda.is_available()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with open({path!r}, "rb") as f:
        model = pickle.load(f)
X = np.asarray({pairs!r})
items, scores = model.recommend(X[:3, 0], n=3)
print(json.dumps({{
    "device": str(model._device),
    "parameter_devices": sorted({{str(p.device) for p in model.module_.parameters()}}),
    "predict": model.predict(X).tolist(),
    "scores": scores.tolist(),
    "warnings": [str(w.message) for w in caught],
}}))
"""


def test_recommender_pickled_on_device_loads_on_cpu_machine(ratings, recommenders, tmp_path):
    X, _ = ratings
    model, _ = recommenders
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    assert _on_device(model.module_)  # pickling left the fitted model where it was
    script = textwrap.dedent(_LOAD_ON_CPU).format(
        root=str(ROOT), path=str(path), pairs=X[:12].tolist()
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONWARNINGS": "default"}
    child = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert child.returncode == 0, child.stderr[-3000:]
    loaded = json.loads(child.stdout.strip().splitlines()[-1])
    assert loaded["device"] == "cpu" and loaded["parameter_devices"] == ["cpu"]
    if ON_GPU:
        assert any("CUDA is not available; loading it on the CPU" in w for w in loaded["warnings"])
    assert_allclose(loaded["predict"], model.predict(X[:12]), rtol=1e-10, atol=1e-10)
    assert_allclose(loaded["scores"], model.recommend(X[:3, 0], n=3)[1], rtol=1e-10, atol=1e-10)


def test_recommender_checkpoint_resume_on_device(ratings, recommenders, monkeypatch, tmp_path):
    model, _ = recommenders
    path = tmp_path / "fit.ckpt"
    step = training.TrainingMonitor.step

    def failing(self, loss):
        stop = step(self, loss)
        if self.result.n_iter == 5:
            raise RuntimeError("simulated crash")
        return stop

    with monkeypatch.context() as patch:
        patch.setattr(training.TrainingMonitor, "step", failing)
        with pytest.raises(RuntimeError, match="simulated crash"):
            KernelCollaborativeFilter(
                **PARAMS, device=DEVICE, checkpoint=path, checkpoint_interval=2
            ).fit(*ratings)
    resumed = KernelCollaborativeFilter(
        **PARAMS, device=DEVICE, checkpoint=path, checkpoint_interval=2
    ).fit(*ratings)
    assert _on_device(resumed.module_) and not path.exists()
    assert resumed.n_iter_ == model.n_iter_
    assert_allclose(resumed.loss_curve_, model.loss_curve_, rtol=1e-10)
    assert_allclose(resumed.predict(ratings[0]), model.predict(ratings[0]), rtol=1e-8)


# --------------------------------------------------------------------------- tabular


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_tabular_estimators_on_device(solver, tmp_path):
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    Xr, yr = make_regression(100, 4, noise=1.0, random_state=0)
    yr = yr / yr.std()
    common = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0, solver=solver)
    for estimator, data in (
        (KernelNetClassifier(**common, device=DEVICE), (X, y)),
        (KernelNetRegressor(**common, device=DEVICE), (Xr, yr)),
    ):
        estimator.fit(*data)
        assert _on_device(estimator.module_)
        pred = estimator.predict(data[0])
        assert pred.shape == (len(data[1]),) and np.isfinite(pred.astype(float)).all()
        assert estimator.transform(data[0][:5]).shape[0] == 5
        cpu = type(estimator)(**{**estimator.get_params(), "device": "cpu"}).fit(*data)
        if solver == "lbfgs":  # float32: compare the start, before rounding compounds
            assert_allclose(estimator.loss_curve_[:3], cpu.loss_curve_[:3], rtol=1e-3)
        restored = pickle.loads(pickle.dumps(estimator))
        assert_allclose(
            np.asarray(restored.predict(data[0]), float), np.asarray(pred, float), rtol=1e-6
        )
    if solver == "adam":
        clf = KernelNetClassifier(**common, device=DEVICE)
        for _ in range(2):
            clf.partial_fit(X, y, classes=np.unique(y))
        assert clf.n_iter_ == 2 and _on_device(clf.module_)
        assert clf.predict_proba(X).shape == (len(y), 3)


def test_auto_device_uses_the_gpu():
    if not ON_GPU:
        pytest.skip("dry run on the CPU: 'auto' means cpu here")
    X, y = load_iris(return_X_y=True)
    clf = KernelNetClassifier(hidden_layer_sizes=(4,), max_iter=3, device="auto").fit(X, y)
    assert clf._device.type == "cuda" and _on_device(clf.module_)
