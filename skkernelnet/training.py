"""Training loops, separate from the models: full-batch L-BFGS and mini-batch Adam.

Both loops report to a :class:`TrainingMonitor`, which owns everything the
loops share: the loss curve, validation scores, the snapshot of the best
parameters seen, early stopping, divergence (a non-finite loss), Ctrl-C,
progress display and user callbacks. A loop ends with the best parameters
restored into the module, whatever made it stop.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import deque
from dataclasses import asdict, dataclass, field

import torch
from sklearn.exceptions import ConvergenceWarning

__all__ = ["TrainingMonitor", "TrainingResult", "lbfgs", "adam", "ConvergenceWarning"]


@dataclass
class TrainingResult:
    """What a training loop did.

    Attributes
    ----------
    n_iter : int
        Iterations (L-BFGS) or epochs (Adam) run.
    loss_curve : list of float
        Training objective after each iteration.
    validation_scores : list of float
        Validation score after each iteration (empty without validation).
    best_loss : float
        Lowest training objective seen.
    best_iter : int
        Iteration (1-based) whose parameters were restored.
    stop_reason : str
        Why the loop ended: "converged" (L-BFGS: the largest gradient entry
        fell to ``gtol``), "line_search_failed" (L-BFGS: no step along the
        search direction lowered the objective; at the precision of the
        parameters' dtype the objective cannot be improved from there, which
        usually happens close to a minimum), "max_iter", "no_improvement"
        (``n_iter_no_change`` iterations without an improvement of ``tol``),
        "diverged" (a non-finite objective), "interrupted" (Ctrl-C) or
        "callback" (a callback returned True).

    Examples
    --------
    >>> TrainingResult(n_iter=3, loss_curve=[3.0, 2.0, 1.0], best_loss=1.0).best_loss
    1.0
    """

    n_iter: int = 0
    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    best_loss: float = math.inf
    best_validation_score: float = -math.inf
    best_iter: int = 0
    stop_reason: str = "max_iter"
    fit_time: float = 0.0


class TrainingMonitor:
    """Bookkeeping shared by the training loops.

    Parameters
    ----------
    module : torch.nn.Module
        Whose parameters are snapshotted and restored.
    max_iter : int
        Iteration budget (used for the progress bar).
    tol : float
        Minimum improvement of the tracked quantity that counts.
    n_iter_no_change : int
        Stop after this many iterations without such an improvement.
    validate : callable or None
        ``validate() -> float``, higher is better, called after each iteration.
        When given it selects the parameters to keep; otherwise the training
        objective does.
    callbacks : sequence of callables
        Each called as ``callback(monitor)`` after every iteration; returning
        ``True`` stops training.
    verbose : int
        0 silent; otherwise a tqdm progress bar when tqdm is installed, else a
        line per iteration.
    description : str
        Label of the progress display.
    validation_name : str, default="validation score"
        What the progress display calls the validation score.
    validation_negated : bool, default=False
        The score is minus the quantity named (a higher-is-better ``-RMSE``):
        the display shows the quantity itself, e.g. ``validation RMSE=0.91``.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 1)
    >>> x, y = torch.randn(20, 3), torch.randn(20, 1)
    >>> def closure():
    ...     model.zero_grad()
    ...     loss = torch.nn.functional.mse_loss(model(x), y)
    ...     loss.backward()
    ...     return loss.item()
    >>> with TrainingMonitor(model, max_iter=30, tol=0.0) as monitor:
    ...     lbfgs(list(model.parameters()), closure, monitor)
    >>> monitor.result.n_iter <= 30, monitor.result.best_loss <= monitor.result.loss_curve[0]
    (True, True)
    """

    def __init__(
        self,
        module,
        *,
        max_iter,
        tol=1e-4,
        n_iter_no_change=10,
        validate=None,
        callbacks=(),
        verbose=0,
        description="fit",
        validation_name="validation score",
        validation_negated=False,
    ):
        self.module = module
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.validate = validate
        self.callbacks = list(callbacks or ())
        self.verbose = verbose
        self.description = description
        self.validation_name = validation_name
        self.validation_negated = validation_negated
        self.result = TrainingResult()
        self._best_state = None
        self._own_snapshot = False  # whether _best_state's tensors were made by this monitor
        self._best_tracked = -math.inf
        self._no_improvement = 0
        self._bar = None
        self._start = None

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self):
        self._start = time.perf_counter()
        if self.verbose:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=self.max_iter, desc=self.description, leave=True)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._bar is not None:
            self._bar.close()
        if exc_type is KeyboardInterrupt:
            self.result.stop_reason = "interrupted"
            warnings.warn(
                f"Training interrupted after {self.result.n_iter} iterations; keeping the best "
                f"parameters seen (iteration {self.result.best_iter}).",
                RuntimeWarning,
                stacklevel=2,
            )
        self.restore_best()
        self.result.fit_time = time.perf_counter() - self._start
        return exc_type is KeyboardInterrupt  # the model stays usable after Ctrl-C

    # -- per iteration -----------------------------------------------------------------
    def step(self, loss):
        """Record one finished iteration; return True when training should stop."""
        r = self.result
        r.n_iter += 1
        if not math.isfinite(loss):
            r.stop_reason = "diverged"
            warnings.warn(
                f"Training diverged: the loss is {loss} at iteration {r.n_iter}. Stopping and "
                f"keeping the best parameters seen (iteration {r.best_iter}); try a smaller "
                "learning rate or a larger penalty.",
                ConvergenceWarning,
                stacklevel=3,
            )
            r.n_iter -= 1
            return True
        r.loss_curve.append(loss)
        r.best_loss = min(r.best_loss, loss)
        if self.validate is not None:
            score = float(self.validate())
            r.validation_scores.append(score)
            tracked = score
        else:
            tracked = -loss
        if tracked > self._best_tracked:
            self._snapshot()
            r.best_iter = r.n_iter
            if self.validate is not None:
                r.best_validation_score = tracked
        # As scikit-learn: patience runs out after n_iter_no_change iterations that fail to
        # beat the best value so far by at least tol.
        if tracked > self._best_tracked + self.tol:
            self._no_improvement = 0
        else:
            self._no_improvement += 1
        self._best_tracked = max(self._best_tracked, tracked)
        self._report(loss)
        if any(cb(self) for cb in self.callbacks):
            r.stop_reason = "callback"
            return True
        if self._no_improvement >= self.n_iter_no_change:
            r.stop_reason = "no_improvement"
            return True
        if r.n_iter >= self.max_iter:
            r.stop_reason = "max_iter"
            return True
        return False

    # -- checkpoints (skkernelnet._checkpoint) -----------------------------------------
    def state_dict(self):
        """What a resumed fit needs: the result so far, best parameters, patience, time."""
        return {
            "result": asdict(self.result),
            "best_state": self._best_state,
            "best_tracked": self._best_tracked,
            "no_improvement": self._no_improvement,
            "elapsed": time.perf_counter() - self._start,
        }

    def load_state_dict(self, state):
        """Continue from :meth:`state_dict` (inside the ``with`` block)."""
        self.result = TrainingResult(**state["result"])
        self._best_state = state["best_state"]
        self._own_snapshot = False
        self._best_tracked = state["best_tracked"]
        self._no_improvement = state["no_improvement"]
        self._start = time.perf_counter() - state["elapsed"]
        if self._bar is not None:
            self._bar.update(self.result.n_iter)

    def _snapshot(self):
        state = self.module.state_dict(keep_vars=True)
        best = self._best_state
        if self._own_snapshot and best is not None and all(
            k in best and best[k].shape == v.shape and best[k].dtype == v.dtype
            for k, v in state.items()
        ):
            # copied into the previous snapshot's tensors, which this monitor made: no second
            # copy of the parameters alongside the first
            with torch.no_grad():
                for k, v in state.items():
                    best[k].copy_(v)
            return
        self._best_state = {k: v.detach().clone() for k, v in state.items()}
        self._own_snapshot = True

    def restore_best(self):
        """Load the best parameters seen into the module (no-op before any iteration)."""
        if self._best_state is not None:
            with torch.no_grad():
                for name, value in self.module.state_dict(keep_vars=True).items():
                    value.copy_(self._best_state[name])

    def _report(self, loss):
        r = self.result
        if not self.verbose:
            return
        msg = {"loss": f"{loss:.6g}"}
        if r.validation_scores:
            score = r.validation_scores[-1]
            msg[self.validation_name] = f"{-score if self.validation_negated else score:.6g}"
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(msg, refresh=False)
        else:
            text = ", ".join(f"{name} = {value}" for name, value in msg.items())
            print(f"Iteration {r.n_iter}, {text}", flush=True)


def _flat_grad(params):
    return torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
    )


def _add_to_params(params, step, direction):
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            p.add_(direction[offset : offset + n].view_as(p), alpha=step)
            offset += n


def lbfgs(
    params,
    closure,
    monitor,
    *,
    history_size=10,
    gtol=1e-5,
    max_backtracks=20,
    state=None,
    checkpoint=None,
):
    """Full-batch L-BFGS with a backtracking (Armijo) line search.

    Each iteration evaluates ``closure`` once when the first trial step is
    accepted, which is the usual case; torch's ``LBFGS`` with a strong-Wolfe
    search re-evaluates the accepted point on every ``step`` call.

    The loop ends when the largest absolute gradient entry is at most
    ``gtol`` (``monitor.result.stop_reason == "converged"``), when
    ``max_backtracks`` halvings of the step find no sufficient decrease
    ("line_search_failed"; the parameters stay at the last accepted point),
    or when the monitor stops it ("max_iter", "no_improvement", "diverged",
    "callback"). Curvature pairs with ``y.s <= 1e-10 y.y`` are skipped, and a
    search direction that is not a descent direction (possible only through
    rounding) discards the history and restarts from steepest descent.

    Parameters
    ----------
    params : list of Tensor
        Parameters to optimise (``requires_grad``).
    closure : callable
        Zeroes the gradients, computes the objective, calls ``backward`` and
        returns the objective as a float.
    monitor : TrainingMonitor
        Receives each finished iteration and decides when to stop.
    history_size : int, default=10
        Number of correction pairs kept (scipy's ``maxcor``); the oldest is
        dropped when a new one arrives.
    gtol : float, default=1e-5
        Stop when the largest absolute gradient entry falls below this.
    max_backtracks : int, default=20
        Halvings of the step before the line search gives up.
    state : dict, optional
        Solver state passed to ``checkpoint`` by an earlier run, to resume from;
        ``params`` must already hold the values they had then.
    checkpoint : callable, optional
        Called as ``checkpoint(solver_state)`` after every iteration that does
        not end training, with the current objective, gradient and correction
        pairs (see :mod:`skkernelnet._checkpoint`); what it keeps must not be
        changed later, so a checkpoint writes it out at once.

    Examples
    --------
    >>> import torch
    >>> w = torch.zeros(2, requires_grad=True)
    >>> def closure():
    ...     w.grad = None
    ...     loss = ((w - torch.tensor([1.0, -2.0])) ** 2).sum()
    ...     loss.backward()
    ...     return loss.item()
    >>> with TrainingMonitor(torch.nn.ParameterList([w]), max_iter=50) as monitor:
    ...     lbfgs([w], closure, monitor)
    >>> torch.allclose(w, torch.tensor([1.0, -2.0]), atol=1e-4), monitor.result.stop_reason
    (True, 'converged')
    """
    params = [p for p in params if p.requires_grad]
    history = deque(maxlen=history_size)  # (s, y, 1 / y.s), oldest first
    if state is None:
        loss = closure()
        grad = _flat_grad(params)
        first = True
    else:  # the gradient is overwritten in place below: the caller's copy stays intact
        loss, grad, first = state["loss"], state["grad"].clone(), state["first"]
        history.extend(zip(state["s"], state["y"], state["rho"]))
    while True:
        if not math.isfinite(loss):
            monitor.step(loss)
            return
        # the largest absolute entry, without an |grad| temporary of the parameters' size
        if torch.linalg.vector_norm(grad, float("inf")) <= gtol:
            monitor.result.stop_reason = "converged"
            return
        direction = _two_loop(grad, history)
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            history.clear()
            direction, slope = -grad, -float(grad @ grad)
        step = min(1.0, 1.0 / float(grad.abs().sum())) if first and not history else 1.0
        first = False
        taken = 0.0
        for _ in range(max_backtracks):
            _add_to_params(params, step - taken, direction)
            taken = step
            new_loss = closure()
            if math.isfinite(new_loss) and new_loss <= loss + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            _add_to_params(params, -taken, direction)
            closure()  # gradients (and anything the closure records) at the kept point
            if not math.isfinite(new_loss):  # non-finite along the whole search: diverged
                monitor.step(new_loss)
            else:
                monitor.result.stop_reason = "line_search_failed"
            return
        new_grad = _flat_grad(params)
        # in place, without new vectors of the parameters' size: neither the direction nor the
        # old gradient is used again (-(g - g') is exactly g' - g)
        s, y = direction.mul_(step), grad.sub_(new_grad).neg_()
        ys = float(y @ s)
        if ys > 1e-10 * float(y @ y):
            history.append((s, y, 1.0 / ys))
        loss, grad = new_loss, new_grad
        if monitor.step(loss):
            return
        if checkpoint is not None:
            pairs = {key: [pair[k] for pair in history] for k, key in enumerate("s y rho".split())}
            checkpoint({"loss": loss, "grad": grad, "first": first, **pairs})


def _two_loop(grad, history):
    """The L-BFGS search direction ``-H grad`` from the correction pairs (oldest first)."""
    q = grad.neg()
    alphas = []
    for s, y, rho in reversed(history):
        a = rho * float(s @ q)
        alphas.append(a)
        q.add_(y, alpha=-a)
    if history:
        s, y, _ = history[-1]
        q.mul_(float(s @ y) / float(y @ y))
    for (s, y, rho), a in zip(history, reversed(alphas)):
        b = rho * float(y @ q)
        q.add_(s, alpha=a - b)
    return q


class _Adam:
    """Adam (Kingma and Ba, 2015) over a list of tensors, in a few multi-tensor operations.

    The same update as :class:`torch.optim.Adam` with its defaults (``eps=1e-8``
    added to the bias-corrected root of the second moment). Mini-batch steps on
    small networks are bound by per-operation overhead and on large ones by
    memory traffic, so each step updates all parameters in one pass (torch's
    fused Adam kernel, the one behind ``torch.optim.Adam(fused=True)``, or
    multi-tensor ``torch._foreach_*`` operations where that kernel is
    missing); and unlike :mod:`torch.optim`, whose first optimizer in a
    process imports the compiler stack (seconds), it costs nothing to create.

    ``weight_decay`` (one value per parameter, or None) adds ``decay * p`` to
    each gradient inside the update: the gradient of an L2 penalty
    ``decay / 2 * ||p||^2`` without a pass of its own (Adam's L2, not AdamW).
    """

    def __init__(
        self, params, *, learning_rate=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=None
    ):
        self.params = list(params)
        self.weight_decay = (
            [0.0] * len(self.params) if weight_decay is None else [float(d) for d in weight_decay]
        )
        if len(self.weight_decay) != len(self.params):
            raise ValueError(
                f"weight_decay has {len(self.weight_decay)} values for {len(self.params)} "
                "parameters."
            )
        self.learning_rate = learning_rate
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.n_steps = 0
        self.first_moments = [torch.zeros_like(p) for p in self.params]
        self.second_moments = [torch.zeros_like(p) for p in self.params]
        self._fused = hasattr(torch, "_fused_adam_") and all(
            p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float64)
            for p in self.params
        )
        # The fused kernel reads one step count per parameter; they are all equal, so the
        # parameters of a device share one tensor, incremented once per step.
        counters = {}
        self._steps = [
            counters.setdefault(p.device, torch.zeros((), dtype=torch.float32, device=p.device))
            for p in self.params
        ]
        self._step_counters = list(counters.values())
        # The fused kernel takes one decay per call: the parameters of each decay, their
        # moments and step counts, gathered once rather than at every step.
        state = (self.params, self.first_moments, self.second_moments, self._steps)
        self._fused_groups = []
        for decay in dict.fromkeys(self.weight_decay):
            group = [i for i, d in enumerate(self.weight_decay) if d == decay]
            self._fused_groups.append((decay, group, *([lst[i] for i in group] for lst in state)))

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        self.n_steps += 1
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if self._fused:
            try:
                self._fused_step(grads)
                return
            except RuntimeError:  # a device or dtype the kernel does not take after all
                self._fused = False
        grads = [
            g.add(p, alpha=d) if d else g for g, p, d in zip(grads, self.params, self.weight_decay)
        ]
        torch._foreach_lerp_(self.first_moments, grads, 1 - self.beta1)
        torch._foreach_mul_(self.second_moments, self.beta2)
        torch._foreach_addcmul_(self.second_moments, grads, grads, 1 - self.beta2)
        correction1 = 1 - self.beta1**self.n_steps
        root_correction2 = math.sqrt(1 - self.beta2**self.n_steps)
        # m / (sqrt(v) / root_correction2 + eps) = root_correction2 * m / (sqrt(v) + eps')
        denominators = torch._foreach_sqrt(self.second_moments)
        torch._foreach_add_(denominators, self.eps * root_correction2)
        torch._foreach_addcdiv_(
            self.params,
            self.first_moments,
            denominators,
            -self.learning_rate * root_correction2 / correction1,
        )

    def _fused_step(self, grads):
        for counter in self._step_counters:
            counter.add_(1)
        for decay, group, params, firsts, seconds, steps in self._fused_groups:
            torch._fused_adam_(
                params,
                [grads[i] for i in group],
                firsts,
                seconds,
                [],
                steps,
                lr=self.learning_rate,
                beta1=self.beta1,
                beta2=self.beta2,
                weight_decay=decay,
                eps=self.eps,
                amsgrad=False,
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )


def adam(
    params,
    batches,
    batch_closure,
    monitor,
    *,
    learning_rate=1e-3,
    betas=(0.9, 0.999),
    weight_decay=None,
):
    """Mini-batch Adam, one monitor step per epoch.

    Parameters
    ----------
    params : list of Tensor
    batches : callable
        ``batches(epoch) -> iterable`` of batch descriptors for that epoch.
    batch_closure : callable
        ``batch_closure(batch) -> (loss_sum, weight)``: computes the batch
        objective, calls ``backward`` on it and returns its value (summed over
        the batch) and the batch's total sample weight; the epoch loss reported
        is the weighted mean.
    monitor : TrainingMonitor
    learning_rate : float
    betas : tuple of float
    weight_decay : sequence of float, optional
        Per parameter: ``decay * p`` is added to its gradient at every step
        (an L2 penalty ``decay / 2 * ||p||^2`` that ``batch_closure`` leaves out).

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(2, 1)
    >>> x = torch.randn(64, 2)
    >>> y = x @ torch.tensor([[2.0], [-1.0]])
    >>> def batches(epoch):
    ...     return torch.randperm(64).split(16)
    >>> def batch_closure(idx):
    ...     loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
    ...     loss.backward()
    ...     return loss.item() * len(idx), len(idx)
    >>> with TrainingMonitor(model, max_iter=200, tol=0.0, n_iter_no_change=200) as monitor:
    ...     _ = adam(list(model.parameters()), batches, batch_closure, monitor,
    ...              learning_rate=0.05)
    >>> monitor.result.loss_curve[-1] < 1e-2
    True
    """
    optimizer = _Adam(params, learning_rate=learning_rate, betas=betas, weight_decay=weight_decay)
    epoch = 0
    previous_start = None
    while True:
        # The epoch loss is measured along the epoch, but the monitor snapshots the
        # parameters at its end, which no batch has evaluated yet. Keep the previous
        # epoch's starting point for when those turn out to be non-finite.
        start = [p.detach().clone() for p in params]
        total, weight = 0.0, 0.0
        for index, batch in enumerate(batches(epoch)):
            optimizer.zero_grad(set_to_none=True)
            batch_loss, batch_weight = batch_closure(batch)
            if not math.isfinite(batch_loss):
                total = batch_loss
                if index == 0 and previous_start is not None and monitor.result.best_iter == epoch:
                    # the best snapshot is exactly what just gave a non-finite loss
                    with torch.no_grad():
                        for p, value in zip(params, previous_start):
                            p.copy_(value)
                    monitor._snapshot()
                break
            optimizer.step()
            total += batch_loss
            weight += batch_weight
        previous_start = start
        epoch += 1
        epoch_loss = total / max(weight, 1e-300) if math.isfinite(total) else total
        if monitor.step(epoch_loss):
            return optimizer
