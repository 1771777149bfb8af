"""Scikit-learn classifiers and regressors built on networks of kernelized layers."""

from __future__ import annotations

from abc import abstractmethod
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.base import (
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    RegressorMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._base import BaseKernelNet, keeps_attributes_on_error, seeded
from ._dense_step import DenseStep, autograd_loss_and_grad
from .layers import SparseInput, csr_from_scipy, reuse_kernel_matrices
from .networks import KernelNetwork
from .positions import check_positions
from .training import adam, lbfgs

__all__ = ["KernelNetClassifier", "KernelNetRegressor"]

_aten = torch.ops.aten

# Inference runs the network on blocks of a fixed number of rows (the last one padded with
# zeros). Matrix-product kernels are chosen by shape, and a product of 1 or 3 rows can round
# differently from one of 300: with one shape per model, a row's prediction does not depend
# on which other rows are predicted with it (alone, in a batch, repeated or reordered).
_BLOCK_ELEMENTS = 1 << 18


def _block_rows(n_features):
    """Rows per inference block: 1024, fewer for wide inputs (about 2 MB of float64 per block)."""
    return int(min(256, max(8, _BLOCK_ELEMENTS // max(n_features, 1))))


def _padded_block(chunk, n_rows):
    """``chunk`` with zero rows appended up to ``n_rows`` rows."""
    missing = n_rows - chunk.shape[0]
    if missing == 0:
        return chunk
    if sp.issparse(chunk):
        return sp.vstack([chunk, sp.csr_matrix((missing, chunk.shape[1]), dtype=chunk.dtype)])
    return np.concatenate([chunk, np.zeros((missing, chunk.shape[1]), dtype=chunk.dtype)])


def _to_torch_input(X, dtype, device, prepared=False):
    """Dense ndarray -> Tensor; scipy sparse -> torch CSR (kept sparse), optionally prepared."""
    if sp.issparse(X):
        tensor = csr_from_scipy(X, dtype, device)
        return SparseInput(tensor) if prepared else tensor
    return torch.as_tensor(np.ascontiguousarray(X), dtype=dtype, device=device)


def _weighted_mean(per_sample, weight):
    """Mean of ``per_sample`` weighted by ``weight``; None means unit weights.

    With unit weights the value is the same (a product by one and a sum of ones are
    exact) without the two operations and the product's backward node.
    """
    if weight is None:
        return per_sample.sum() / per_sample.shape[0]
    return (per_sample * weight).sum() / weight.sum()


def _mean_coefficients(weight, n_samples):
    """The derivative of :func:`_weighted_mean` in each per-sample loss, as autograd has it.

    ``1 / n`` (a float) with unit weights, else ``(1 / sum(weight)) * weight``.
    """
    if weight is None:
        return 1.0 / n_samples
    return (1.0 / weight.sum()) * weight


def _per_row(coefficients):
    """Coefficients of :func:`_mean_coefficients` shaped to scale the rows of a matrix."""
    return coefficients if isinstance(coefficients, float) else coefficients.unsqueeze(1)


def _check_one_label_type(labels):
    """Reject labels that mix strings and numbers (they cannot be sorted into classes_)."""
    labels = np.asarray(labels)
    if labels.dtype == object:
        kinds = {type(v).__name__ for v in labels.ravel()}
        if len(kinds) > 1 and any(isinstance(v, str) for v in labels.ravel()):
            raise ValueError(
                f"Mix of label types in y ({', '.join(sorted(kinds))}): labels must be all "
                "strings or all numbers."
            )


def _solver_is_adam(estimator):
    if estimator.solver != "adam":
        raise AttributeError(
            f"partial_fit is only available for solver='adam', not {estimator.solver!r}."
        )
    return True


class _TabularKernelNet(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseKernelNet):
    """Fit machinery for estimators that map rows of X to targets."""

    _parameter_constraints: dict = {
        **BaseKernelNet._parameter_constraints,
        "scale_rank": [Interval(Integral, 1, None, closed="left")],
        "solver": [StrOptions({"lbfgs", "adam"})],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "input_positions": ["array-like", None],
        "freeze_input_positions": ["boolean"],
    }

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        *,
        kernel,
        embedding_dim,
        gated,
        scale_rank,
        input_positions,
        freeze_input_positions,
        activation,
        solver,
        alpha,
        kernel_alpha,
        batch_size,
        learning_rate_init,
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
        super().__init__(
            hidden_layer_sizes,
            kernel=kernel,
            embedding_dim=embedding_dim,
            gated=gated,
            activation=activation,
            alpha=alpha,
            kernel_alpha=kernel_alpha,
            max_iter=max_iter,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            device=device,
            dtype=dtype,
            callbacks=callbacks,
        )
        self.scale_rank = scale_rank
        self.input_positions = input_positions
        self.freeze_input_positions = freeze_input_positions
        self.solver = solver
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init

    # -- task hooks (overridden) -------------------------------------------------------
    def _encode_targets(self, y, sample_weight, reset, classes=None):  # pragma: no cover
        raise NotImplementedError

    def _data_loss(self, output, target, weight):  # pragma: no cover - abstract
        """Weighted mean loss of a batch; ``weight`` None means unit weights."""
        raise NotImplementedError

    def _float_targets(self):
        """Whether the loss takes the encoded targets in the network's dtype."""
        return True

    def _loss_and_grad(self, output, target, weight):
        """``_data_loss`` and its gradient with respect to ``output`` (by autograd here).

        The tasks write the gradient out with the operations autograd would run: a
        mini-batch step of a small network is bound by per-operation overhead.
        """
        return autograd_loss_and_grad(lambda out: self._data_loss(out, target, weight))(output)

    def _validation_score(self, X, y):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- fitting -----------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network to data X and targets y.

        Training stops at ``max_iter``, when the loss (or, with
        ``early_stopping``, the validation score) has not improved by ``tol``
        for ``n_iter_no_change`` iterations, when the loss becomes NaN or
        infinite (a :class:`~sklearn.exceptions.ConvergenceWarning` is raised),
        or on Ctrl-C (a :class:`RuntimeWarning`); in every case the model keeps
        the best parameters seen and is usable.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data. Sparse input stays sparse in the first layer.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets: class labels, a multilabel indicator matrix, or real
            values (one column per output).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss; integer weights are equivalent
            to repeating samples.

        Returns
        -------
        self : object
            The fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from skkernelnet import KernelNetClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = KernelNetClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
        >>> clf.n_features_in_, clf.n_iter_ == len(clf.loss_curve_)
        (4, True)
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_solver_is_adam)
    def partial_fit(self, X, y, sample_weight=None, **kwargs):
        """Run one Adam epoch on (X, y), keeping the model (``solver="adam"`` only).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss.
        **kwargs : dict
            Passed on to the task (``classes`` for classifiers).

        Returns
        -------
        self : object
            The updated estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from skkernelnet import KernelNetRegressor
        >>> rng = np.random.RandomState(0)
        >>> X, y = rng.normal(size=(100, 3)), rng.normal(size=100)
        >>> reg = KernelNetRegressor(solver="adam", random_state=0)
        >>> for _ in range(3):
        ...     reg = reg.partial_fit(X, y)
        >>> reg.n_iter_
        3
        """
        return self._fit(X, y, sample_weight, incremental=True, **kwargs)

    @keeps_attributes_on_error
    def _fit(self, X, y, sample_weight, incremental, classes=None):
        first_call = not (incremental or self.warm_start) or not hasattr(self, "module_")
        if incremental and first_call:
            self._validate_params()
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc", "coo"],
            dtype=(np.float64, np.float32),
            multi_output=True,
            y_numeric=not isinstance(self, ClassifierMixin),
            reset=first_call,
        )
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        self._resolve_runtime(reset=first_call)
        targets = self._encode_targets(y, sample_weight, reset=first_call, classes=classes)
        if self.early_stopping and not incremental:
            stratify = targets if targets.ndim == 1 and isinstance(self, ClassifierMixin) else None
            X, X_val, targets, y_val_enc, sample_weight, _ = train_test_split(
                X,
                targets,
                sample_weight,
                test_size=self.validation_fraction,
                random_state=self._random_state,
                stratify=stratify,
            )
            X_val_t = _to_torch_input(X_val, self._dtype, self._device, prepared=True)

            def validate():
                return self._validation_score(X_val_t, y_val_enc)
        else:
            validate = None
        if first_call:
            hidden = self._hidden_sizes()
            positions = self._checked_input_positions(X.shape[1])
            with seeded(self._seed):
                self.module_ = KernelNetwork(
                    X.shape[1],
                    hidden,
                    self._n_outputs,
                    embedding_dim=self.embedding_dim,
                    kernel=self.kernel,
                    gated=self.gated,
                    scale_rank=self.scale_rank,
                    input_positions=positions,
                    freeze_input_positions=self.freeze_input_positions,
                    activation=self.activation,
                    device=self._device,
                    dtype=self._dtype,
                )
        self.module_.train()
        target_t = torch.as_tensor(targets, device=self._device)
        if target_t.is_floating_point() or self._float_targets():
            target_t = target_t.to(self._dtype)  # once, not at every step
        weight_t = torch.as_tensor(sample_weight, dtype=self._dtype, device=self._device)
        n_samples = X.shape[0]
        if self.solver == "lbfgs":
            X_t = _to_torch_input(X, self._dtype, self._device, prepared=True)
            closure = self._make_closure(X_t, target_t, weight_t)
            self._train(
                self.module_,
                lambda params, monitor: lbfgs(params, closure, monitor),
                validate=validate,
            )
        else:
            batch_size = min(200, n_samples) if self.batch_size == "auto" else self.batch_size
            batch_size = min(batch_size, n_samples)
            rng = np.random.RandomState(self._seed + getattr(self, "n_iter_", 0))
            X_csr = sp.csr_matrix(X) if sp.issparse(X) else None
            X_dense_t = None if X_csr is not None else _to_torch_input(X, self._dtype, self._device)

            total_weight = float(weight_t.sum())
            # the gather of each epoch writes into the same memory (no fresh pages to fault in)
            X_buffer = None if X_dense_t is None else torch.empty_like(X_dense_t)
            unit_weights = bool(np.all(sample_weight == 1.0))  # mini-batches then carry None

            dtype, device = self._dtype, self._device

            def batches(epoch):
                # Shuffle once per epoch, then take contiguous slices: one gather per
                # epoch instead of three per batch (mini-batches are overhead-bound).
                # index_select copies whole rows; advanced indexing (X[order]) goes
                # element by element and is several times slower on large inputs.
                order = rng.permutation(n_samples)
                order_t = torch.as_tensor(order, device=self._device)
                if X_csr is not None:
                    X_epoch = X_csr[order]
                else:
                    X_epoch = torch.index_select(X_dense_t, 0, order_t, out=X_buffer)
                target_epoch = target_t.index_select(0, order_t).split(batch_size)
                if unit_weights:
                    weight_epoch = [None] * len(target_epoch)
                else:
                    weight_epoch = weight_t.index_select(0, order_t).split(batch_size)
                if X_csr is not None:  # each batch converted when it is used
                    X_batches = (
                        _to_torch_input(X_epoch[start : start + batch_size], dtype, device)
                        for start in range(0, n_samples, batch_size)
                    )
                else:
                    X_batches = X_epoch.split(batch_size)
                yield from zip(X_batches, target_epoch, weight_epoch)

            # Dense batches: the backward pass written out (same objective and gradients,
            # a fraction of autograd's per-operation overhead on small networks).
            dense_step = None
            if X_csr is None:
                dense_step = DenseStep.for_network(
                    self.module_, kernel_penalty=self.kernel_alpha / total_weight
                )
            penalized = self.module_.penalized_parameters()

            def batch_closure(batch):
                xb, target_b, weight_b = batch
                if dense_step is not None:
                    value = dense_step(
                        xb, lambda output: self._loss_and_grad(output, target_b, weight_b)
                    )
                    free = self.module_.free_penalty_value(penalized)
                    value += self.alpha * free / total_weight
                else:
                    loss, free_penalty = self._objective(
                        xb, target_b, weight_b, total_weight, free_penalty_in_step=True
                    )
                    loss.backward()
                    value = float(loss.detach()) + free_penalty
                return value * len(target_b), len(target_b)

            def solve(params, monitor):
                # The L2 penalty's gradient, alpha / total_weight * p, is applied inside
                # the Adam update: one pass over the (possibly large) weights, not three.
                penalized = {id(p) for p in self.module_.penalized_parameters()}
                decay = self.alpha / total_weight
                adam(
                    params,
                    batches,
                    batch_closure,
                    monitor,
                    learning_rate=self.learning_rate_init,
                    weight_decay=[decay if id(p) in penalized else 0.0 for p in params],
                )

            self._train(
                self.module_,
                solve,
                validate=validate,
                max_iter=1 if incremental else None,
                incremental=incremental,
                warn_at_max_iter=False,
            )
        self.module_.eval()
        return self

    def _checked_input_positions(self, n_features):
        if self.input_positions is None:
            return None
        positions = check_positions(
            self.input_positions,
            n_features,
            name="input_positions",
            of=f"features in X (n_features_in_={n_features})",
        )
        if positions.shape[1] > self.embedding_dim:
            raise ValueError(
                f"input_positions has {positions.shape[1]} coordinates per feature, more than "
                f"embedding_dim={self.embedding_dim}; set embedding_dim >= "
                f"{positions.shape[1]} (the first layer's points are the given coordinates "
                "followed by embedding_dim - p learned ones)."
            )
        return positions

    def _objective(self, x, target, weight, total_weight=None, free_penalty_in_step=False):
        """The training objective on a batch.

        Penalties are divided by the total sample weight of the training data (the
        number of samples when unweighted) so that integer weights equal repeated
        rows, and so that a mini-batch objective is an unbiased estimate of the
        full-batch one: ``alpha`` means the same for both solvers. With
        ``free_penalty_in_step`` the ``alpha`` penalty is left out of the returned
        tensor (the optimizer applies its gradient) and returned as a float beside it.
        """
        output = self.module_(x)
        loss = self._data_loss(output, target, weight)
        if total_weight is None:
            total_weight = weight.sum() if weight is not None else target.shape[0]
        # without a kernel penalty, K(U, V) is not recomputed for it
        if not free_penalty_in_step:
            free, kern = self.module_.regularization(kernel=self.kernel_alpha > 0)
            return loss + (self.alpha * free + self.kernel_alpha * kern) / total_weight
        free = self.module_.free_penalty_value()
        if self.kernel_alpha > 0:
            loss = loss + self.kernel_alpha * self.module_.regularization()[1] / total_weight
        return loss, self.alpha * free / float(total_weight)

    def _make_closure(self, x, target, weight):
        params = [p for p in self.module_.parameters() if p.requires_grad]

        def closure():
            for p in params:
                p.grad = None
            loss = self._objective(x, target, weight)
            loss.backward()
            return float(loss.detach())

        return closure

    # -- inference ---------------------------------------------------------------------
    def _check_X(self, X):
        check_is_fitted(self)
        return validate_data(
            self,
            X,
            accept_sparse=["csr", "csc"],
            dtype=(np.float64, np.float32),
            reset=False,
        )

    @torch.no_grad()
    def _forward_chunks(self, X, method):
        block = _block_rows(X.shape[1])
        outputs = []
        with reuse_kernel_matrices(self.module_):  # each kernel matrix once, not per block
            for start in range(0, X.shape[0], block):
                chunk = X[start : start + block]
                n_real = chunk.shape[0]
                chunk = _padded_block(chunk, block)
                if sp.issparse(chunk):
                    x = _to_torch_input(chunk, self._dtype, self._device)
                else:  # a copy: the same memory alignment for every block
                    x = torch.tensor(chunk, dtype=self._dtype, device=self._device)
                outputs.append(method(x)[:n_real].cpu().numpy())
        return np.concatenate(outputs, axis=0)

    def _raw_output(self, X):
        return self._forward_chunks(self._check_X(X), self.module_)

    def transform(self, X):
        """Activations of the last hidden layer: learned embeddings of the samples.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        X_new : ndarray of shape (n_samples, hidden_layer_sizes[-1])
            The embeddings, in the network's ``dtype``. Their names are
            given by :meth:`get_feature_names_out`.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from skkernelnet import KernelNetClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = KernelNetClassifier(hidden_layer_sizes=(16, 8), random_state=0).fit(X, y)
        >>> clf.transform(X).shape
        (150, 8)
        >>> clf.get_feature_names_out()[:2]
        array(['kernelnetclassifier0', 'kernelnetclassifier1'], dtype=object)
        """
        return self._forward_chunks(self._check_X(X), self.module_.hidden)

    @property
    def _n_features_out(self):
        return self.module_.layers[-1].in_features

    @property
    def feature_embeddings_(self):
        """ndarray of shape (`n_features_in_`, embedding_dim): the first layer's ``u_i``.

        One point per input feature; features the network treats alike lie
        close together. With ``input_positions``, the first coordinates are
        the given positions. A copy: changing it does not change the model.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from skkernelnet import KernelNetClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = KernelNetClassifier(embedding_dim=2, random_state=0).fit(X, y)
        >>> clf.feature_embeddings_.shape
        (4, 2)
        """
        check_is_fitted(self, "module_")
        return self.module_.layers[0].input_embeddings.detach().cpu().numpy().copy()

    @property
    def n_free_parameters_(self):
        """int: number of trained scalars in the network.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from skkernelnet import KernelNetClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = KernelNetClassifier(
        ...     hidden_layer_sizes=(16,), embedding_dim=3, gated=False, kernel="rbf"
        ... ).fit(X, y)
        >>> # each layer: (n_in + n_out) * (embedding_dim + scale_rank) plus n_out biases
        >>> clf.n_free_parameters_ == (4 + 16) * 5 + 16 + (16 + 3) * 5 + 3
        True
        """
        check_is_fitted(self, "module_")
        return self.module_.n_free_parameters()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = [self.dtype]
        return tags


class KernelNetClassifier(ClassifierMixin, _TabularKernelNet):
    """Multilayer perceptron classifier whose weight matrices are kernelized.

    Every layer's weight matrix is ``W_ij K(u_i, v_j)``: a free weight
    ``W_ij`` times a kernel between learned neuron embeddings ``u_i``, ``v_j``
    (by default, ``gated``), or ``K(U, V) * (A @ B.T)``, the kernel times a
    product of signed neuron scales with ``scale_rank`` columns (the compact
    network, ``gated=False``); see :class:`~skkernelnet.layers.KernelLinear`. The interface follows
    :class:`sklearn.neural_network.MLPClassifier`.

    The defaults were chosen by cross-validation on scikit-learn's bundled
    datasets, on folds that the evaluation against
    :class:`~sklearn.neural_network.MLPClassifier` never uses
    (:ref:`tabular_defaults`): gated layers, at least as accurate as
    ``MLPClassifier(max_iter=500)`` on each of digits, breast_cancer, wine and
    iris, with the MLP's weights plus ``(n_in + n_out) * embedding_dim``
    embedding parameters per layer.

    **The compact network.** ``KernelNetClassifier(gated=False, alpha=0.1)``
    has ``(n_in + n_out) * (embedding_dim + scale_rank)`` parameters per layer
    instead of ``n_in * n_out`` (under a quarter of an MLP of the same sizes on
    digits) for an accuracy one to two points lower.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Width of each hidden layer.
    kernel : {"linear", "poly", "rbf", "laplacian", "finite_support"}, Kernel or callable, \
default="rbf"
        Kernel of every layer.
    embedding_dim : int, default=4
        Dimension of the neuron embeddings.
    gated : bool, default=True
        Multiply each kernel matrix into a free weight matrix (the
        reference's layer). ``False``: the weights are the kernel itself, with
        signed neuron scales (the compact network; use it with
        ``alpha=0.1``).
    scale_rank : int, default=2
        Signed scales per neuron of an ungated layer over a non-negative
        kernel (rbf, laplacian, finite_support): the weight is
        ``K(U, V) * (A @ B.T)`` with ``A``, ``B`` of ``scale_rank`` columns
        (``1``: ``a_i K_ij b_j``), so that hidden units need not share one
        sign pattern. Ignored when ``gated`` or for kernels that take both
        signs, which have no such scales.
    input_positions : array-like of shape (n_features, p), default=None
        Known positions of the input features, e.g.
        ``grid_positions((8, 8))`` (:func:`~skkernelnet.positions.grid_positions`)
        for the pixels of 8 x 8 images: the first ``p <= embedding_dim``
        coordinates of the first layer's ``u_i``; any further coordinates
        are learned (set ``embedding_dim=p`` for none). With a distance
        kernel (rbf, laplacian, finite_support) each hidden unit's weights
        then vary smoothly over the features' geometry: see
        :ref:`theory_positions`. The number of rows must equal the number of
        features seen by ``fit``.
    freeze_input_positions : bool, default=True
        Keep the given positions fixed (a buffer of the first layer), or
        only start the learned ``u_i`` from them.
    activation : {"identity", "logistic", "sigmoid", "tanh", "relu"}, default="relu"
        Hidden-layer activation.
    solver : {"lbfgs", "adam"}, default="lbfgs"
        Full-batch L-BFGS, or mini-batch Adam (which allows ``partial_fit``).
    alpha : float, default=1.0
        L2 penalty on the free parameters (``W`` when gated, else the signed
        scales), divided by the number of samples (the total sample weight
        of the data given to ``fit``, for both solvers; scikit-learn's Adam
        divides by the mini-batch's). For ``gated=False`` use 0.1: larger values
        can shrink an ungated network to a constant on small data sets.
    kernel_alpha : float, default=0.0
        Penalty ``1/2 ||K(U, V)||^2`` on each kernel matrix (the reference's
        lambda_s), scaled like ``alpha``.
    batch_size : int or "auto", default="auto"
        Mini-batch size for "adam"; "auto" is ``min(200, n_samples)``.
    learning_rate_init : float, default=1e-3
        Adam's step size.
    max_iter : int, default=500
        L-BFGS iterations or Adam epochs.
    tol : float, default=1e-5
        Minimum improvement of the loss (or validation score) that counts.
        Small, because L-BFGS improves an ungated network slowly but steadily.
    n_iter_no_change : int, default=10
        Iterations without such an improvement before stopping.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, stop when its
        accuracy stops improving, and keep the best parameters.
    validation_fraction : float, default=0.1
        Share of training data held out for early stopping.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, the validation split and batch order.
    verbose : int, default=0
        Show progress (a tqdm bar when tqdm is installed) and the loss.
    warm_start : bool, default=False
        Continue from the previous solution on the next ``fit``.
    device : str, default="cpu"
        "cpu", "cuda", "cuda:N" or "auto". Fitted models pickle onto the CPU.
    dtype : {"float32", "float64"}, default="float64"
        Precision of the network.
    callbacks : list of callable, default=None
        Each called as ``callback(monitor)`` after every iteration (epoch) with
        the :class:`~skkernelnet.training.TrainingMonitor`, whose ``result``
        holds the loss curve and validation scores so far; returning True
        stops training (``stop_reason_ == "callback"``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,) or list of ndarray
        Class labels.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when X has string column names.
    n_iter_ : int
    loss_curve_ : list of float
    best_loss_ : float
    validation_scores_ : list of float or None
        Validation accuracy after each iteration (None without early stopping).
    best_validation_score_ : float or None
    best_iter_ : int
        Iteration whose parameters were kept.
    stop_reason_ : str
        Why training stopped (see :class:`~skkernelnet.training.TrainingResult`).
    fit_time_ : float
        Seconds spent in the training loop.
    module_ : KernelNetwork
        The trained torch network.
    feature_embeddings_ : ndarray of shape (`n_features_in_`, embedding_dim)
        The first layer's input embeddings ``u_i``, one point per feature.

    See Also
    --------
    KernelNetRegressor : the same network for regression.
    sklearn.neural_network.MLPClassifier : its dense counterpart.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skkernelnet import KernelNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = KernelNetClassifier(random_state=0).fit(X, y)
    >>> clf.predict(X[:3])
    array([0, 0, 0])
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
    >>> clf.feature_embeddings_.shape
    (4, 4)
    >>> clf.n_free_parameters_  # 4 * 100 + 100 * 3 weights, (4 + 100 + 100 + 3) * 4, biases
    1631

    The compact network, with about a quarter of an MLP's parameters on digits:

    >>> compact = KernelNetClassifier(gated=False, alpha=0.1, random_state=0).fit(X, y)
    >>> compact.n_free_parameters_  # (4 + 100) * (4 + 2) + 100 + (100 + 3) * (4 + 2) + 3
    1345
    """

    _parameter_constraints = {**_TabularKernelNet._parameter_constraints}
    _validation_name = "validation accuracy"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        *,
        kernel="rbf",
        embedding_dim=4,
        gated=True,
        scale_rank=2,
        input_positions=None,
        freeze_input_positions=True,
        activation="relu",
        solver="lbfgs",
        alpha=1.0,
        kernel_alpha=0.0,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=500,
        tol=1e-5,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        random_state=None,
        verbose=0,
        warm_start=False,
        device="cpu",
        dtype="float64",
        callbacks=None,
    ):
        super().__init__(
            hidden_layer_sizes,
            kernel=kernel,
            embedding_dim=embedding_dim,
            gated=gated,
            scale_rank=scale_rank,
            input_positions=input_positions,
            freeze_input_positions=freeze_input_positions,
            activation=activation,
            solver=solver,
            alpha=alpha,
            kernel_alpha=kernel_alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            device=device,
            dtype=dtype,
            callbacks=callbacks,
        )

    def _encode_targets(self, y, sample_weight, reset, classes=None):
        _check_one_label_type(y)
        y_type = type_of_target(y, input_name="y")
        if y_type not in ("binary", "multiclass", "multilabel-indicator"):
            hint = ""
            if y_type.startswith("continuous"):
                hint = (
                    " y holds non-integer numbers; for a continuous target use KernelNetRegressor."
                )
            elif y_type == "unknown" and y.dtype == object and y.size:
                kinds = sorted({type(v).__name__ for v in np.ravel(y)})
                hint = (
                    f" y is an object array of {', '.join(kinds)} values; labels must be "
                    "strings, or numbers in a numeric array (e.g. y.astype(int))."
                )
            raise ValueError(
                f"Unknown label type: {y_type!r}; KernelNetClassifier supports "
                f"binary, multiclass and multilabel-indicator targets.{hint}"
            )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
            y_type = type_of_target(y)
        if reset:
            self._multilabel = y_type == "multilabel-indicator"
            if self._multilabel:
                self.classes_ = np.arange(y.shape[1])
            else:
                if classes is not None:
                    _check_one_label_type(classes)
                self._label_encoder = LabelEncoder().fit(y if classes is None else classes)
                self.classes_ = self._label_encoder.classes_
                if len(self.classes_) < 2:
                    raise ValueError(
                        "KernelNetClassifier needs samples of at least 2 classes in the data, "
                        f"but the data contains only one class: {self.classes_[0]!r}."
                    )
            self._n_outputs = (
                len(self.classes_) if len(self.classes_) > 2 or self._multilabel else 1
            )
        if self._multilabel:
            if y.ndim != 2 or y.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y has {y.shape[1] if y.ndim == 2 else 1} labels, expected "
                    f"{len(self.classes_)}."
                )
            return y.astype(np.float64)
        unseen = np.setdiff1d(unique_labels(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y contains labels not seen in the first fit: {unseen.tolist()}.")
        return self._label_encoder.transform(y)

    def _float_targets(self):
        return self._multilabel or self._n_outputs == 1

    def _data_loss(self, output, target, weight):
        if self._multilabel:
            per_sample = F.binary_cross_entropy_with_logits(output, target, reduction="none").sum(1)
        elif self._n_outputs == 1:
            per_sample = F.binary_cross_entropy_with_logits(
                output[:, 0], target.to(output.dtype), reduction="none"
            )
        else:
            per_sample = F.cross_entropy(output, target, reduction="none")
        return _weighted_mean(per_sample, weight)

    def _loss_and_grad(self, output, target, weight):
        coefficients = _mean_coefficients(weight, output.shape[0])
        if self._multilabel:
            per_sample = F.binary_cross_entropy_with_logits(output, target, reduction="none").sum(1)
            grad = torch.sigmoid(output).sub_(target).mul_(_per_row(coefficients))
        elif self._n_outputs == 1:
            logit, target = output[:, 0], target.to(output.dtype)
            grad = torch.sigmoid(logit).sub_(target).mul_(coefficients).unsqueeze(1)
            if weight is None:  # the sum of the per-sample losses, one operation less
                loss = F.binary_cross_entropy_with_logits(logit, target, reduction="sum")
                return loss / output.shape[0], grad
            per_sample = F.binary_cross_entropy_with_logits(logit, target, reduction="none")
        else:  # cross-entropy: log-softmax, then the negative log-likelihood
            log_proba = torch.log_softmax(output, dim=1)
            per_sample, total = _aten.nll_loss_forward.default(log_proba, target, None, 0, -100)
            if isinstance(coefficients, float):
                coefficients = torch.full_like(per_sample, coefficients)
            grad = _aten._log_softmax_backward_data.default(
                _aten.nll_loss_backward.default(
                    coefficients, log_proba, target, None, 0, -100, total
                ),
                log_proba,
                1,
                output.dtype,
            )
        return _weighted_mean(per_sample, weight), grad

    def _proba_from_output(self, output):
        if self._multilabel:
            return torch.sigmoid(output)
        if self._n_outputs == 1:
            p = torch.sigmoid(output)
            return torch.cat([1 - p, p], dim=1)
        return torch.softmax(output, dim=1)

    def _validation_score(self, X, y):
        with torch.no_grad():
            proba = self._proba_from_output(self.module_(X)).cpu().numpy()
        pred = (proba > 0.5).astype(int) if self._multilabel else proba.argmax(1)
        return accuracy_score(y, pred)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities in the order of ``classes_``, in float64 (for
            multilabel targets, the probability of each label, strictly
            between 0 and 1).

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from skkernelnet import KernelNetClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = KernelNetClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
        >>> proba = clf.predict_proba(X[:2])
        >>> proba.shape, bool(abs(proba.sum(axis=1) - 1).max() < 1e-12)
        ((2, 3), True)
        """
        # Probabilities in float64 whatever the network's dtype. Label probabilities
        # (multilabel) are kept strictly inside (0, 1), as scikit-learn expects of them.
        output = torch.as_tensor(self._raw_output(X), dtype=torch.float64)
        proba = self._proba_from_output(output).numpy()
        if self._multilabel:
            eps = np.finfo(np.float64).eps
            proba = np.clip(proba, eps, 1 - eps)
        return proba

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities in the order of ``classes_``.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from skkernelnet import KernelNetClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = KernelNetClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
        >>> np.allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X))
        True
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Labels from ``classes_`` (a 0/1 indicator matrix for multilabel
            targets).

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from skkernelnet import KernelNetClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> names = load_iris().target_names[y]
        >>> clf = KernelNetClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, names)
        >>> clf.predict(X[[0, 100]])
        array(['setosa', 'virginica'], dtype='<U10')
        """
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba > 0.5).astype(int)
        return self._label_encoder.inverse_transform(proba.argmax(axis=1))

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one Adam epoch on (X, y), keeping the model (``solver="adam"`` only).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels; a batch need not contain every class.
        classes : array-like of shape (n_classes,), default=None
            All classes; required on the first call unless ``y`` is multilabel.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss.

        Returns
        -------
        self : object
            The updated estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from skkernelnet import KernelNetClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = KernelNetClassifier(solver="adam", random_state=0)
        >>> clf = clf.partial_fit(X[:50], y[:50], classes=[0, 1, 2])
        >>> clf = clf.partial_fit(X[50:], y[50:])
        >>> clf.classes_, clf.n_iter_
        (array([0, 1, 2]), 2)
        """
        if not hasattr(self, "module_"):
            if classes is None and type_of_target(y) != "multilabel-indicator":
                raise ValueError("classes must be passed on the first call to partial_fit.")
        elif classes is not None and not np.array_equal(np.asarray(classes), self.classes_):
            raise ValueError(
                f"classes={list(classes)} differs from classes_={list(self.classes_)}."
            )
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    partial_fit = available_if(_solver_is_adam)(partial_fit)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class KernelNetRegressor(RegressorMixin, _TabularKernelNet):
    """Multilayer perceptron regressor whose weight matrices are kernelized.

    The interface follows :class:`sklearn.neural_network.MLPRegressor`, with
    one difference: targets are standardised internally (predictions are
    mapped back), so the defaults work whatever the targets' scale. The
    network is :class:`KernelNetClassifier`'s, with a linear output and half
    the squared error of the standardised targets as the loss.

    The defaults were chosen by cross-validation on diabetes and
    ``make_friedman1`` on folds that the evaluation never uses
    (:ref:`tabular_defaults`): the compact ungated network, whose R^2 there
    is at least that of ``MLPRegressor(max_iter=500)`` with or without a
    standardised target, with ``(n_in + n_out) * (embedding_dim +
    scale_rank)`` parameters per layer. ``gated=True, alpha=3.0`` fits
    smooth functions of many samples better (``make_friedman1``), but
    underfits very small clean data sets.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Width of each hidden layer.
    kernel : {"rbf", "gaussian", "laplacian", "finite_support", "linear", "poly", \
"polynomial"}, Kernel or callable, default="rbf"
        Kernel of every layer: a name from :data:`skkernelnet.kernels.KERNELS`
        (with default hyperparameters), a :class:`~skkernelnet.kernels.Kernel`
        or a callable ``(U, V) -> Tensor``.
    embedding_dim : int, default=4
        Dimension of the neuron embeddings.
    gated : bool, default=False
        Multiply each kernel matrix into a free weight matrix (the
        reference's layer; see :class:`KernelNetClassifier`, whose default it
        is). The regressor is ungated by default: the compact network.
    scale_rank : int, default=2
        Signed scales per neuron of an ungated layer over a non-negative
        kernel (rbf, laplacian, finite_support): the weight is
        ``K(U, V) * (A @ B.T)`` with ``A``, ``B`` of ``scale_rank`` columns
        (``1``: ``a_i K_ij b_j``), so that hidden units need not share one
        sign pattern. Ignored when ``gated`` or for kernels that take both
        signs, which have no such scales.
    input_positions : array-like of shape (n_features, p), default=None
        Known positions of the input features (e.g. ``grid_positions((8,
        8))`` from :mod:`skkernelnet.positions` for the pixels of 8 x 8
        images): the first ``p <= embedding_dim`` coordinates of the first
        layer's ``u_i``; any further coordinates are learned (set
        ``embedding_dim=p`` for none). With a distance kernel each hidden
        unit's weights then vary smoothly over the features' geometry: see
        :ref:`theory_positions`. The number of rows must equal the number of
        features seen by ``fit``.
    freeze_input_positions : bool, default=True
        Keep the given positions fixed (a buffer of the first layer), or
        only start the learned ``u_i`` from them.
    activation : {"identity", "logistic", "sigmoid", "tanh", "relu"}, default="relu"
        Hidden-layer activation.
    solver : {"lbfgs", "adam"}, default="lbfgs"
        Full-batch L-BFGS, or mini-batch Adam (which allows ``partial_fit``).
    alpha : float, default=1.0
        L2 penalty on the free parameters (``W`` when gated, else the signed
        scales), divided by the number of samples (the total sample weight
        of the data given to ``fit``, for both solvers): chosen among the values that still fit
        small clean data (:ref:`tabular_defaults`); larger values shrink the
        network to a constant there.
    kernel_alpha : float, default=0.0
        Penalty ``1/2 ||K(U, V)||^2`` on each kernel matrix (the reference's
        lambda_s), scaled like ``alpha``.
    batch_size : int or "auto", default="auto"
        Mini-batch size for "adam"; "auto" is ``min(200, n_samples)``.
    learning_rate_init : float, default=1e-3
        Adam's step size.
    max_iter : int, default=500
        L-BFGS iterations or Adam epochs.
    tol : float, default=1e-5
        Minimum improvement of the loss (half the squared error of the
        standardised targets, plus the penalties) or of the validation R^2
        that counts.
        Small, because L-BFGS improves an ungated network slowly but steadily.
    n_iter_no_change : int, default=10
        Iterations without such an improvement before stopping.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, stop when its
        R^2 stops improving, and keep the best parameters.
    validation_fraction : float, default=0.1
        Share of training data held out for early stopping.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, the validation split and batch order.
    verbose : int, default=0
        Show progress (a tqdm bar when tqdm is installed) and the loss.
    warm_start : bool, default=False
        Continue from the previous solution on the next ``fit``.
    device : str, default="cpu"
        "cpu", "cuda", "cuda:N" or "auto". Fitted models pickle onto the CPU.
    dtype : {"float32", "float64"}, default="float64"
        Precision of the network.
    callbacks : list of callable, default=None
        Each called as ``callback(monitor)`` after every iteration (epoch) with
        the :class:`~skkernelnet.training.TrainingMonitor`, whose ``result``
        holds the loss curve and validation scores so far; returning True
        stops training (``stop_reason_ == "callback"``).

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when X has string column names.
    n_outputs_ : int
    n_iter_ : int
    loss_curve_ : list of float
    best_loss_ : float
    validation_scores_ : list of float or None
        Validation R^2 after each iteration (None without early stopping).
    best_validation_score_ : float or None
    best_iter_ : int
        Iteration whose parameters were kept.
    stop_reason_ : str
        Why training stopped (see :class:`~skkernelnet.training.TrainingResult`).
    fit_time_ : float
        Seconds spent in the training loop.
    module_ : KernelNetwork
        The trained torch network.
    feature_embeddings_ : ndarray of shape (`n_features_in_`, embedding_dim)
        The first layer's input embeddings ``u_i``, one point per feature.

    See Also
    --------
    KernelNetClassifier : the same network for classification.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skkernelnet import KernelNetRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = make_pipeline(
    ...     StandardScaler(), KernelNetRegressor(early_stopping=True, random_state=0)
    ... ).fit(X[:300], y[:300])
    >>> reg.predict(X[300:303]).shape
    (3,)
    >>> reg[-1].n_features_in_, reg[-1].feature_embeddings_.shape
    (10, (10, 4))
    """

    _parameter_constraints = {**_TabularKernelNet._parameter_constraints}
    _validation_name = "validation R^2"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        *,
        kernel="rbf",
        embedding_dim=4,
        gated=False,
        scale_rank=2,
        input_positions=None,
        freeze_input_positions=True,
        activation="relu",
        solver="lbfgs",
        alpha=1.0,
        kernel_alpha=0.0,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=500,
        tol=1e-5,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        random_state=None,
        verbose=0,
        warm_start=False,
        device="cpu",
        dtype="float64",
        callbacks=None,
    ):
        super().__init__(
            hidden_layer_sizes,
            kernel=kernel,
            embedding_dim=embedding_dim,
            gated=gated,
            scale_rank=scale_rank,
            input_positions=input_positions,
            freeze_input_positions=freeze_input_positions,
            activation=activation,
            solver=solver,
            alpha=alpha,
            kernel_alpha=kernel_alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            device=device,
            dtype=dtype,
            callbacks=callbacks,
        )

    def _encode_targets(self, y, sample_weight, reset, classes=None):
        y = np.asarray(y, dtype=np.float64)
        self._y_was_1d = y.ndim == 1 if reset else self._y_was_1d
        y2 = y.reshape(len(y), -1)
        if reset:
            self.n_outputs_ = y2.shape[1]
            self._n_outputs = self.n_outputs_
            # Weighted moments, so that integer weights equal repeated samples.
            self._y_mean = np.average(y2, axis=0, weights=sample_weight)
            scale = np.sqrt(np.average((y2 - self._y_mean) ** 2, axis=0, weights=sample_weight))
            self._y_scale = np.where(scale > 0, scale, 1.0)
        elif y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} outputs, expected {self.n_outputs_}.")
        return (y2 - self._y_mean) / self._y_scale

    def _data_loss(self, output, target, weight):
        per_sample = 0.5 * (output - target).pow(2).sum(1)
        return _weighted_mean(per_sample, weight)

    def _loss_and_grad(self, output, target, weight):
        difference = output - target
        per_sample = 0.5 * difference.pow(2).sum(1)
        # autograd's (0.5 c) * (2 d): the same number as c * d (powers of two are exact)
        grad = difference * _per_row(_mean_coefficients(weight, output.shape[0]))
        return _weighted_mean(per_sample, weight), grad

    def _validation_score(self, X, y):
        with torch.no_grad():
            pred = self.module_(X).cpu().numpy()
        return r2_score(y, pred)

    def predict(self, X):
        """Predict targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions in the units of the targets seen by ``fit``, with the
            shape they had (one-dimensional if ``y`` was).

        Examples
        --------
        >>> import numpy as np
        >>> from skkernelnet import KernelNetRegressor
        >>> rng = np.random.RandomState(0)
        >>> X = rng.uniform(-1, 1, size=(200, 2))
        >>> Y = np.column_stack([X.sum(axis=1), 100 * X[:, 0] * X[:, 1]])
        >>> # clean data: a smaller penalty than the default, which suits noisy data
        >>> reg = KernelNetRegressor(alpha=0.1, random_state=0).fit(X, Y)
        >>> reg.predict(X[:3]).shape
        (3, 2)
        >>> reg.score(X, Y) > 0.9
        True
        """
        pred = self._raw_output(X).astype(np.float64) * self._y_scale + self._y_mean
        return pred.ravel() if self._y_was_1d else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
