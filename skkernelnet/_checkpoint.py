"""Crash-safe training: periodic checkpoints of a fit, and resuming from them.

A long full-batch fit (hours at MovieLens-10M scale) must survive a killed
process. With ``checkpoint=path`` an estimator's fit writes, every
``checkpoint_interval`` iterations, everything the training loop needs to go on
exactly where it was: the parameters, the L-BFGS state (current objective,
gradient, correction pairs), the monitor's state (loss curve, validation scores,
best parameters so far, patience counter) and torch's random generators. A later
``fit`` with the same data and parameters finds the file and resumes; it ends
with the parameters an uninterrupted fit would have reached. The file is removed
when a fit finishes.

A checkpoint records what it belongs to (a digest of the training data and
validation split, the estimator's parameters, the random seed and the initial
parameters), and is refused with a :class:`ValueError` naming the difference when
any of them differ; a file that is truncated or altered fails its checksum and is
refused as well (the file is a magic line, torch's serialization of the state and
its sha256). Files are written to a temporary name in the same folder, flushed
to disk and then renamed over the previous one (``os.replace`` is atomic), so a
crash while writing leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["Checkpointer", "data_digest"]

_MAGIC = b"skkernelnet-checkpoint\n"
_VERSION = 1
# Parameters that may change between the interrupted fit and its resumption: they
# do not change the training trajectory up to the checkpoint.
_FREE_PARAMS = frozenset(
    {
        "checkpoint",
        "checkpoint_interval",
        "verbose",
        "max_iter",
        "device",
        "warm_start",
        "callbacks",
    }
)


def data_digest(*arrays):
    """sha256 of the arrays' dtypes, shapes and bytes (the training data of a fit)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        if array.dtype == object:
            digest.update(repr(array.tolist()).encode())
        else:
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _state_digest(module):
    digest = hashlib.sha256()
    for name, value in module.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _rng_state():
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state):
    # The states come back through map_location; the generators want CPU byte tensors.
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class _HashingWriter:
    """A binary file wrapper that hashes (sha256) what is written through it."""

    def __init__(self, out):
        self.out = out
        self.digest = hashlib.sha256()

    def write(self, data):
        self.digest.update(data)
        return self.out.write(data)

    def flush(self):
        self.out.flush()


class Checkpointer:
    """Writes and reads the checkpoints of one fit (used by ``BaseKernelNet._train``).

    Parameters
    ----------
    path : str or path-like
        The checkpoint file.
    interval : int
        Write after every ``interval``-th iteration.
    identity : dict
        What the checkpoint belongs to: ``estimator`` (class name), ``data`` and
        ``split`` (:func:`data_digest` of the training data and of the validation
        split), ``params``
        (``{name: repr(value)}``), ``seed`` and ``init`` (digest of the
        initial parameters).
    module : torch.nn.Module
        Holds every trained parameter.
    device : torch.device
        Where the loaded tensors go.
    """

    def __init__(self, path, interval, identity, module, device):
        self.path = Path(os.fspath(path))
        self.interval = int(interval)
        self.identity = identity
        self.module = module
        self.device = device
        self.monitor = None

    @classmethod
    def for_estimator(cls, estimator, module, data):
        """The checkpointer of ``estimator.fit`` on ``module``.

        ``data`` is a pair of :func:`data_digest`: of the training data, and of the
        split of it into the part trained on and the part held out.
        """
        if getattr(estimator, "distributed", False):
            # Every process would need the same file, and agree on resuming from it.
            raise ValueError(
                "checkpoint is not supported with distributed=True; checkpoint a "
                "single-process fit, or leave checkpoint=None."
            )
        if estimator.random_state is None:
            raise ValueError(
                "checkpoint needs a fixed random_state (an int): a resumed fit must repeat "
                "the interrupted fit's validation split and initialisation, and "
                "random_state=None draws new ones every fit."
            )
        params = {
            name: repr(value)
            for name, value in sorted(estimator.get_params(deep=False).items())
            if name not in _FREE_PARAMS
        }
        identity = {
            "estimator": type(estimator).__name__,
            "data": data[0],
            "split": data[1],
            "params": params,
            "seed": int(estimator._seed),
            "init": _state_digest(module),
        }
        return cls(
            estimator.checkpoint, estimator.checkpoint_interval, identity, module, estimator._device
        )

    # -- reading -----------------------------------------------------------------------
    def load(self):
        """The saved training state, or None when there is no checkpoint file.

        Raises ValueError when the file is corrupt or belongs to another fit.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        where = f"checkpoint {str(self.path)!r}"
        if not raw.startswith(_MAGIC):
            raise ValueError(
                f"{where} is not a skkernelnet checkpoint; delete it or pass another path."
            )
        payload, stored = raw[len(_MAGIC) : -32], raw[-32:]
        if len(raw) < len(_MAGIC) + 32 or hashlib.sha256(payload).digest() != stored:
            raise ValueError(
                f"{where} is corrupt (checksum mismatch: truncated or altered); delete it to "
                "start the fit afresh."
            )
        try:
            saved = torch.load(io.BytesIO(payload), map_location=self.device, weights_only=True)
        except Exception as exc:  # pragma: no cover - the checksum catches damage first
            raise ValueError(f"{where} cannot be read ({exc}); delete it.") from exc
        if saved.get("version") != _VERSION:
            raise ValueError(
                f"{where} has format version {saved.get('version')!r}; this skkernelnet "
                f"writes and reads version {_VERSION}. Delete it to start afresh."
            )
        self._check_identity(saved["identity"], where)
        return saved["state"]

    def _check_identity(self, saved, where):
        mine = self.identity
        hint = "Delete it or pass another checkpoint path to start a new fit."
        if saved["estimator"] != mine["estimator"]:
            raise ValueError(
                f"{where} was written by {saved['estimator']}, not {mine['estimator']}. {hint}"
            )
        changed = [
            f"{name}={mine['params'].get(name, '<absent>')} here but "
            f"{saved['params'].get(name, '<absent>')} in the checkpoint"
            for name in sorted(set(saved["params"]) | set(mine["params"]))
            if saved["params"].get(name) != mine["params"].get(name)
        ]
        if changed:
            raise ValueError(
                f"{where} was written by a fit with other parameters: {'; '.join(changed)}. {hint}"
            )
        if saved["seed"] != mine["seed"]:
            raise ValueError(
                f"{where} was written by a fit with another random seed (random_state). {hint}"
            )
        if saved["data"] != mine["data"]:
            raise ValueError(
                f"{where} was written by a fit on other data (the training ratings or "
                f"their order differ). {hint}"
            )
        if saved["init"] != mine["init"]:
            raise ValueError(
                f"{where} was written by a fit that started from other initial parameters "
                f"(e.g. a warm_start fit, or another torch version). {hint}"
            )
        if saved["split"] != mine["split"]:
            raise ValueError(f"{where} was written by a fit with another validation split. {hint}")

    # -- resuming and writing ----------------------------------------------------------
    def resume(self, state, monitor):
        """Put the module, monitor and random generators back to a loaded ``state``."""
        self.module.load_state_dict(state["module"])
        monitor.load_state_dict(state["monitor"])
        _set_rng_state(state["rng"])

    def after_iteration(self, solver_state):
        """Save, with the solver's own state, when the iteration count is a multiple of
        ``interval``."""
        if self.monitor.result.n_iter % self.interval == 0:
            self.save(solver_state)

    def save(self, solver_state):
        """Write the training state atomically: temporary file, fsync, rename."""
        state = {
            "module": self.module.state_dict(),
            "monitor": self.monitor.state_dict(),
            "solver": solver_state,
            "rng": _rng_state(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_MAGIC)
                # Streamed through the hash, not built in memory first: at ML-10M scale a
                # checkpoint is gigabytes (the L-BFGS pairs alone are 20 parameter vectors).
                writer = _HashingWriter(out)
                torch.save({"version": _VERSION, "identity": self.identity, "state": state}, writer)
                out.write(writer.digest.digest())
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remove(self):
        """Delete the checkpoint (the fit it belongs to has finished)."""
        self.path.unlink(missing_ok=True)
