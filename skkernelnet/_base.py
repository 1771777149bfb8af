"""Fit machinery shared by every skkernelnet estimator.

:class:`BaseKernelNet` owns what does not depend on the task: parameter
constraints common to all estimators, device and dtype resolution, seeding,
running a solver through a :class:`~skkernelnet.training.TrainingMonitor`,
storing the fitted attributes scikit-learn users expect, and pickling a model
trained on a GPU so that it loads on a machine without one. Task classes
(classification, regression, collaborative filtering) only build their network,
define their loss and convert their data.
"""

from __future__ import annotations

import functools
import warnings
from abc import ABCMeta, abstractmethod
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from ._checkpoint import Checkpointer
from .kernels import KERNELS, Kernel
from .networks import ACTIVATIONS
from .training import TrainingMonitor

__all__ = ["BaseKernelNet"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(device):
    """Map "cpu", "cuda", "cuda:N" or "auto" to a :class:`torch.device`, checking availability."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            "use device='cpu' or device='auto'."
        )
    return resolved


def keeps_attributes_on_error(fit):
    """Decorator of a fit method: when it raises, the estimator's attributes are restored.

    Some input errors only show after fitted attributes were replaced (ids factorized,
    labels encoded); without this a failed refit would leave a fitted model half
    overwritten and inconsistent. (A network trained in place by a warm start keeps
    its parameters as training left them.)
    """

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        saved = dict(self.__dict__)
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    return wrapper


@contextmanager
def seeded(seed):
    """Run a block with torch's global generators seeded, restoring their state after."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class BaseKernelNet(BaseEstimator, metaclass=ABCMeta):
    """Base class of the kernelized-network estimators (not for direct use).

    Declares the parameters every estimator shares, without defaults: each
    public estimator declares its own defaults and documents its parameters.
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "kernel": [StrOptions(set(KERNELS)), Kernel, callable],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "gated": ["boolean"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "kernel_alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
        "dtype": [StrOptions(set(_DTYPES))],
        "callbacks": [None, list, tuple],
    }

    # How the progress display names the validation score of ``validate`` (and whether that
    # score is minus the quantity named, as ``-RMSE`` is): set by each task.
    _validation_name = "validation score"
    _validation_negated = False

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        *,
        kernel,
        embedding_dim,
        gated,
        activation,
        alpha,
        kernel_alpha,
        max_iter,
        tol,
        n_iter_no_change,
        early_stopping,
        validation_fraction,
        random_state,
        verbose,
        warm_start,
        device,
        dtype,
        callbacks,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.kernel = kernel
        self.embedding_dim = embedding_dim
        self.gated = gated
        self.activation = activation
        self.alpha = alpha
        self.kernel_alpha = kernel_alpha
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.device = device
        self.dtype = dtype
        self.callbacks = callbacks

    # -- helpers for subclasses --------------------------------------------------------
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, Integral) else list(sizes)
        if not all(isinstance(s, Integral) and s > 0 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must contain only positive integers, "
                f"got {self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _resolve_runtime(self, reset):
        """Fix device, dtype and seed for this fit (kept across warm starts)."""
        if reset or not hasattr(self, "_device"):
            self._device = resolve_device(self.device)
            self._dtype = _DTYPES[self.dtype]
            self._random_state = check_random_state(self.random_state)
            self._seed = int(self._random_state.randint(np.iinfo(np.int32).max))

    def _train(
        self,
        module,
        solve,
        *,
        validate=None,
        max_iter=None,
        incremental=False,
        warn_at_max_iter=True,
        checkpoint_data=None,
    ):
        """Run a training loop on ``module`` and store the fitted attributes.

        The stopping rule (``max_iter``, ``tol``, ``n_iter_no_change``), progress
        display and ``callbacks`` come from the estimator's parameters; everything
        the loop itself needs is bound into ``solve``.

        Parameters
        ----------
        module : torch.nn.Module
            Whose parameters are trained, snapshotted and restored.
        solve : callable
            ``solve(params, monitor)`` runs the loop, e.g. a
            :func:`~skkernelnet.training.lbfgs` or
            :func:`~skkernelnet.training.adam` call with its data and options.
        validate : callable or None
            ``validate() -> float`` (higher is better) on held-out data.
        max_iter : int, optional
            Overrides ``self.max_iter`` (``partial_fit`` runs one epoch).
        incremental : bool
            Append to the existing loss curve instead of starting a new one.
        warn_at_max_iter : bool
            Raise a ConvergenceWarning when the loop stops at ``max_iter``.
        checkpoint_data : (str, str), optional
            Digests of the training data and of its validation split
            (:func:`skkernelnet._checkpoint.data_digest`). With them and the
            ``checkpoint`` parameter set, the run is checkpointed and resumed (see
            :mod:`skkernelnet._checkpoint`): ``solve`` is then called as
            ``solve(params, monitor, state=..., checkpoint=...)`` and must pass both
            to :func:`~skkernelnet.training.lbfgs`.
        """
        callbacks = list(self.callbacks or ())
        for callback in callbacks:
            if not callable(callback):
                raise ValueError(
                    f"callbacks must be callables taking the TrainingMonitor, got {callback!r}."
                )
        monitor = TrainingMonitor(
            module,
            max_iter=max_iter or self.max_iter,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change if not incremental else np.iinfo(np.int32).max,
            validate=validate,
            callbacks=callbacks,
            verbose=self.verbose,
            description=type(self).__name__,
            validation_name=self._validation_name,
            validation_negated=self._validation_negated,
        )
        params = [p for p in module.parameters() if p.requires_grad]
        checkpointer = resume = None
        if checkpoint_data is not None and getattr(self, "checkpoint", None) is not None:
            checkpointer = Checkpointer.for_estimator(self, module, checkpoint_data)
            checkpointer.monitor = monitor
            resume = checkpointer.load()  # before training: a bad file must not cost a fit
        with seeded(self._seed + getattr(self, "n_iter_", 0)):
            with monitor:
                if checkpointer is None:
                    solve(params, monitor)
                else:
                    if resume is not None:
                        checkpointer.resume(resume, monitor)
                    state = None if resume is None else resume["solver"]
                    solve(params, monitor, state=state, checkpoint=checkpointer.after_iteration)
        result = monitor.result
        if checkpointer is not None and result.stop_reason != "interrupted":
            checkpointer.remove()  # finished: a later fit starts afresh
        previous_iter = getattr(self, "n_iter_", 0) if incremental else 0
        self.n_iter_ = previous_iter + result.n_iter
        if incremental and hasattr(self, "loss_curve_"):
            self.loss_curve_ = self.loss_curve_ + result.loss_curve
        else:
            self.loss_curve_ = list(result.loss_curve)
        self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else np.inf
        if validate is not None:
            self.validation_scores_ = list(result.validation_scores)
            self.best_validation_score_ = result.best_validation_score
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self.best_iter_ = result.best_iter
        self.stop_reason_ = result.stop_reason
        self.fit_time_ = result.fit_time
        if result.stop_reason == "max_iter" and warn_at_max_iter and not incremental:
            warnings.warn(
                f"{type(self).__name__}: the solver reached max_iter={self.max_iter} before "
                "converging; consider increasing max_iter.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return result

    # -- pickling: always store on the CPU ---------------------------------------------
    def __getstate__(self):
        # A copy: on Python 3.11+ object.__getstate__ returns the live __dict__ itself.
        state = dict(super().__getstate__())
        modules = {k: v for k, v in state.items() if isinstance(v, torch.nn.Module)}
        if any(p.device.type != "cpu" for m in modules.values() for p in m.parameters()):
            import copy

            state.update({k: copy.deepcopy(m).to("cpu") for k, m in modules.items()})
        if "_device" in state:
            state["_device"] = str(state["_device"])
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_device" in state:
            device = torch.device(state["_device"])
            if device.type == "cuda" and not torch.cuda.is_available():
                warnings.warn(
                    f"{type(self).__name__} was trained on {device} but CUDA is not available; "
                    "loading it on the CPU.",
                    UserWarning,
                    stacklevel=2,
                )
                device = torch.device("cpu")
            self._device = device
            for value in self.__dict__.values():
                if isinstance(value, torch.nn.Module):
                    value.to(device)
