"""Data-parallel training with torch.distributed: two processes launched with torchrun."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from numpy.testing import assert_allclose

from skkernelnet import KernelCollaborativeFilter
from skkernelnet.datasets import make_ratings

ROOT = Path(__file__).resolve().parents[1]
PARAMS = dict(hidden_layer_sizes=(12,), max_iter=12, random_state=0, dtype="float64")

pytestmark = [
    pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

_WORKER = """
import json, sys
sys.path.insert(0, {root!r})
import torch
import torch.distributed as dist

torch.set_num_threads(1)
dist.init_process_group("gloo")
from skkernelnet import KernelCollaborativeFilter
from skkernelnet.datasets import make_ratings

X, y = make_ratings(90, 60, density=0.15, random_state=0, return_X_y=True)
plain = KernelCollaborativeFilter(**{params!r}, early_stopping=False, distributed=True).fit(X, y)
model = KernelCollaborativeFilter(**{params!r}, distributed=True).fit(X, y)
result = {{
    "plain_loss_curve": plain.loss_curve_,
    "plain_predict": plain.predict(X[:40]).tolist(),
    "loss_curve": model.loss_curve_,
    "validation_scores": model.validation_scores_,
    "n_iter": model.n_iter_,
    "network_weights": model.network_weights_.tolist(),
    "predict": model.predict(X[:40]).tolist(),
    "parameters": [p.detach().reshape(-1).tolist() for p in model.module_.parameters()],
}}
with open({out!r} + str(dist.get_rank()), "w") as f:
    json.dump(result, f)
dist.destroy_process_group()
"""


@pytest.fixture(scope="module")
def ratings():
    return make_ratings(90, 60, density=0.15, random_state=0, return_X_y=True)


def test_two_processes_follow_the_single_process_fit(ratings, tmp_path):
    script = tmp_path / "worker.py"
    out = str(tmp_path / "rank")
    script.write_text(textwrap.dedent(_WORKER).format(root=str(ROOT), params=PARAMS, out=out))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", str(script)]  # fmt: skip
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads(Path(out + str(r)).read_text()) for r in range(2)]
    # Both processes took the same steps: the same model, bit for bit.
    assert ranks[0] == ranks[1]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = KernelCollaborativeFilter(**PARAMS).fit(*ratings)
        plain = KernelCollaborativeFilter(**PARAMS, early_stopping=False).fit(*ratings)
    finally:
        torch.set_num_threads(threads)
    parallel = ranks[0]
    assert_allclose(parallel["plain_loss_curve"], plain.loss_curve_, rtol=1e-9)
    assert_allclose(parallel["plain_predict"], plain.predict(ratings[0][:40]), rtol=1e-9)
    assert parallel["n_iter"] == single.n_iter_
    # Equal up to the order of floating-point sums (shards summed by all-reduce).
    assert_allclose(parallel["loss_curve"], single.loss_curve_, rtol=1e-9)
    assert_allclose(parallel["validation_scores"], single.validation_scores_, rtol=1e-9)
    assert_allclose(parallel["network_weights"], single.network_weights_, rtol=1e-7, atol=1e-9)
    assert_allclose(parallel["predict"], single.predict(ratings[0][:40]), rtol=1e-9)
    for got, expected in zip(parallel["parameters"], single.module_.parameters(), strict=True):
        assert_allclose(got, expected.detach().reshape(-1).numpy(), rtol=1e-7, atol=1e-10)


def test_distributed_without_process_group_is_a_clear_error(ratings):
    if dist.is_initialized():
        pytest.skip("a process group is already initialised here")
    model = KernelCollaborativeFilter(**PARAMS, distributed=True)
    with pytest.raises(ValueError, match="torchrun.*init_process_group"):
        model.fit(*ratings)


def test_shards_partition_the_rows(ratings):
    # Every training and held-out rating of every view is in exactly one shard.
    from skkernelnet._data_parallel import held_out_shards, shard_problems

    X, y = ratings
    model = KernelCollaborativeFilter(**{**PARAMS, "max_iter": 1}).fit(X, y)
    user_idx = np.searchsorted(model.user_ids_, X[:, 0])
    item_idx = np.searchsorted(model.item_ids_, X[:, 1])
    positions = np.arange(len(y))
    train, validation = positions[: len(y) - 30], positions[len(y) - 30 :]
    for world in (1, 2, 3):
        shards = [
            shard_problems(model._views, user_idx, item_idx, y, y, train, validation, r, world)
            for r in range(world)
        ]
        for k in range(2):
            n_train = sum(int(s[k].index.n_pairs) for s in shards)
            assert n_train == len(train)
            held = np.concatenate([s[k].validation_ratings for s in shards])
            assert np.array_equal(np.sort(held), validation)
            expected = held_out_shards(model._views, user_idx, item_idx, validation, world)[k]
            for r in range(world):
                assert np.array_equal(expected[r], shards[r][k].validation_ratings)


def test_checkpoint_with_distributed_is_refused(ratings, tmp_path, monkeypatch):
    from skkernelnet import _data_parallel

    monkeypatch.setattr(_data_parallel, "process_group", lambda: (0, 1))  # as under torchrun
    model = KernelCollaborativeFilter(**PARAMS, distributed=True, checkpoint=tmp_path / "c")
    with pytest.raises(ValueError, match="checkpoint is not supported with distributed=True"):
        model.fit(*ratings)
    assert not (tmp_path / "c").exists()
