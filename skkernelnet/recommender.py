"""KernelCollaborativeFilter: the kernelized rating autoencoder as a scikit-learn regressor.

The model of Muller, Martel and Indiveri (ICML 2018): each item's vector of
ratings (zeros where unobserved) goes through ``n_users -> 500 -> 500 ->
n_users`` gated finite-support kernel layers, and the reconstruction at the
observed entries is fitted by full-batch L-BFGS. Training never forms a dense
ratings matrix or a dense output: the input layer consumes the sparse matrix
and the output layer is evaluated only at observed ratings
(:meth:`~skkernelnet.layers.KernelLinear.forward_at`). By default a second
autoencoder of the other orientation is trained alongside and the two
predictions are blended (``blend``).
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import RegressorMixin, TransformerMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _similarity, model_files
from ._base import BaseKernelNet, keeps_attributes_on_error, seeded
from ._checkpoint import data_digest
from ._data_parallel import data_parallel_objective
from ._fold_in import FoldedHistory, fill_folded, network_mask
from ._orientation import OrientationView, other_orientation, rating_objective
from ._ranking import POPULARITY_WEIGHT, check_n, popularity_log_prior, top_n_chunked
from ._rating_training import (
    DEFAULT_NETWORK_WEIGHTS,
    BlendedValidation,
    JointObjective,
    OrientationProblem,
    support_factor,
)
from ._ratings import (
    DUPLICATE_POLICIES,
    RatingBaseline,
    as_ids,
    as_pairs,
    baseline_predict,
    check_ratings,
    deduplicate_ratings,
    factorize,
    fit_biases,
    lookup,
)
from .networks import KernelNetwork
from .training import lbfgs

__all__ = ["KernelCollaborativeFilter", "RatingBaseline", "rating_objective"]

# hidden_layer_sizes="auto": two hidden layers whose width w gives each autoencoder's
# input and output layers about 22 free weights per training rating
# (2 * n_inputs * w = 22 * n_ratings), between 32 and 500 units. 22 is about the
# smallest factor that keeps the paper's 500 units in both networks on ML-100K u1.base
# and ML-1M; it shrinks the networks (and the fit time) where there are few ratings for
# many users or items.
_AUTO_WIDTH = (22.0, 32, 500)

# validation_fraction="auto": 2% of the ratings, but at least 1,000 ratings (a few
# hundred held-out numbers cannot pick an iteration or weigh the networks reliably)
# and at most 10%.
_AUTO_VALIDATION = (0.02, 1000, 0.1)


class KernelCollaborativeFilter(RegressorMixin, TransformerMixin, BaseKernelNet):
    """Rating prediction with the kernelized autoencoder of Muller et al. (ICML 2018).

    With ``orientation="item"`` (the paper's model) each item is a sample whose
    features are its ratings by all users; a network of kernelized layers
    reconstructs them, and the reconstruction at ``(item, user)`` is the
    predicted rating. Only observed ratings enter the loss. With ``blend``
    (the default) a user-based autoencoder is trained alongside, in the same
    L-BFGS run: the two views make different errors, and the blend usually
    helps (see the user guide). The networks model the residual of the bias
    baseline ``global_mean_ + user_bias_ + item_bias_`` (the input is still the
    raw ratings), and the prediction is ``baseline + w_1 * item-based + w_2 *
    user-based`` with non-negative weights of sum at most 1
    (``network_weights_``) fitted on the held-out ratings. The weights shrink
    the networks toward the baseline when they help little, and are zero (the
    model predicts the baseline) when their gain there is not significant: on
    data too sparse for the networks the model is no worse than the baseline by
    construction.

    ``X`` holds ``(user id, item id)`` pairs (any hashable ids), ``y`` the
    ratings; ``predict`` returns ratings clipped to ``rating_scale`` (by
    default the training range) and
    ``score`` is R^2 as for every scikit-learn regressor (use
    ``scoring="neg_root_mean_squared_error"`` for model selection).

    Parameters
    ----------
    hidden_layer_sizes : "auto" or array-like of int, default="auto"
        Widths of the hidden layers. "auto" sizes each autoencoder to the data:
        two hidden layers of ``w = clip(11 * n_ratings / n_inputs, 32, 500)``
        units, which gives its input and output layers about 22 free weights
        per training rating; that is the paper's 500 units on MovieLens-100K and
        1M, and much smaller (and faster) networks where few ratings are spread
        over many users or items.
    kernel : {"finite_support", "rbf", "gaussian", "laplacian", "linear", "poly", \
"polynomial"}, Kernel or callable, default="finite_support"
        Kernel of every layer: a name from :data:`skkernelnet.kernels.KERNELS`
        (with default hyperparameters), a :class:`~skkernelnet.kernels.Kernel`
        or a callable ``(U, V) -> Tensor``.
    embedding_dim : int, default=5
        Dimension of the neuron embeddings.
    gated : bool, default=True
        Gate a free weight with each kernel matrix.
    activation : {"logistic", "sigmoid", "tanh", "relu", "identity"}, default="logistic"
        Hidden activation (the output layer is linear).
    alpha : float, default=0.045
        L2 penalty on every free weight matrix, scale-free: the objective is
        ``mean(1/2 err^2) + alpha / sqrt(n) * sum_l 1/2 ||W_l||^2`` for ``n``
        observed training ratings, i.e. the reference's sum-of-squares loss
        with ``lambda_2 = alpha * sqrt(n)``. The reference's ``lambda_2 = 60``
        on ML-1M (n = 900,188) is ``alpha = 0.063``; see the user guide for
        the validation behind it and when to tune it.
    kernel_alpha : float, default=1.4e-5
        Penalty on every kernel matrix ``1/2 ||K_l||^2`` (the reference's
        ``lambda_s = kernel_alpha * sqrt(n)``), scaled likewise.
    max_iter : int, default=1000
        L-BFGS iterations (the estimator's only solver: full-batch L-BFGS).
    tol : float, default=1e-4
        Minimum improvement (of the validation RMSE with ``early_stopping``,
        else of the objective) that counts.
    n_iter_no_change : int, default=50
        Iterations without such an improvement before stopping.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the training ratings, select the
        iteration with the lowest RMSE on them and restore its parameters.
        The held-out ratings are still part of the network's input when
        predicting.
    validation_fraction : "auto" or float, default="auto"
        Share of training ratings held out for early stopping and for the
        networks' weights. "auto" holds out 2%, but at least 1,000 ratings and
        at most 10%.
    orientation : {"item", "user"}, default="item"
        The primary autoencoder: "item"-based (each item's ratings by users are
        the input, the paper's model) or "user"-based. ``module_``,
        ``transform`` and the embeddings come from it.
    blend : bool, default=True
        Also train the autoencoder of the other orientation and blend the two
        predictions. False gives the paper's single autoencoder.
    handle_unknown : {"fallback", "error"}, default="fallback"
        How to predict for users or items not seen in fit: "fallback" uses the
        baseline estimate ``global mean + user bias + item bias`` with the
        biases that are known (a bias is zero for an unseen id); "error"
        raises ``ValueError``. :meth:`fallback_mask` tells which predictions
        used the fallback; users unseen in fit can be folded in from their
        ratings instead (``history`` of :meth:`predict` and :meth:`recommend`).
    rating_scale : tuple (low, high) or None, default=None
        Range predictions are clipped to; None uses the range of the training
        ratings (which may be narrower than the scale, e.g. when nobody gave
        the lowest grade).
    duplicates : {"error", "last", "mean"}, default="error"
        What ``fit`` (and a fold-in ``history``) does with a (user, item) pair
        that appears more than once: raise ``ValueError`` (the default, since a
        repeated rating is more often a bug in the data than a re-rating),
        keep the last occurrence in ``X`` order (for exports in time order),
        or average the repeated ratings.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the held-out split.
    verbose : int, default=0
        Show progress (a tqdm bar when tqdm is installed) with the loss and
        the validation score.
    warm_start : bool, default=False
        Continue from the previous networks on the next ``fit``, which must not
        introduce new users or items.
    device : str, default="cpu"
        "cpu", "cuda", "cuda:N" or "auto". Fitted models pickle onto the CPU.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the networks.
    callbacks : list of callable, default=None
        Each called as ``callback(monitor)`` after every L-BFGS iteration with
        the :class:`~skkernelnet.training.TrainingMonitor` (its ``result``
        holds the loss curve so far); returning True stops training.
    distributed : bool, default=False
        Data-parallel training over the processes of the default
        ``torch.distributed`` process group (launch with ``torchrun``; gloo on
        CPUs, nccl on GPUs): every process calls ``fit`` with the same data and
        parameters, keeps a shard of each network's rows and sums gradients,
        objective and held-out outputs with the others, so all take the same
        L-BFGS steps and end with the same model. See the user guide
        (:ref:`scale`).
    checkpoint : str or path-like, default=None
        File for crash-safe training: every ``checkpoint_interval`` iterations
        the fit writes its whole training state there (atomically: temporary
        file, then rename). If the process dies, a new ``fit`` with the same
        data and parameters resumes from the file and ends with the parameters
        an uninterrupted fit would have; ``max_iter``, ``verbose``,
        ``callbacks`` and ``device`` may differ. A file from another fit
        (other data, split, parameters or seed) or a damaged file raises
        ``ValueError``. The file is deleted when the fit finishes. Needs an
        integer ``random_state``. Use one path per fit: concurrent fits (e.g.
        in ``GridSearchCV``) must not share it. See the user guide
        (:ref:`scale`).
    checkpoint_interval : int, default=10
        Iterations between checkpoints. A checkpoint holds about 23 times the
        parameters (current and best parameters, gradient, 10 L-BFGS
        correction pairs): about 7.5 GB for the default model at ML-10M's
        shape (82 million float32 parameters). It is streamed to disk, not
        built in memory.

    Attributes
    ----------
    user_ids_ : ndarray of shape (n_users,)
        Known user ids; ``user_ids_[k]`` is the user of index ``k``.
    item_ids_ : ndarray of shape (n_items,)
        Known item ids.
    global_mean_ : float
    user_bias_, item_bias_ : ndarray
        Shrunken mean deviations (:class:`RatingBaseline`): what the networks'
        outputs are added to, and the fallback. During training they are fitted
        without the held-out ratings (which score the networks against them);
        the final ones are refitted on every training rating.
    rating_range_ : tuple of float
        ``rating_scale``, or the (min, max) of the training ratings without
        one; predictions are clipped to it.
    module_ : KernelNetwork
        The primary autoencoder.
    blend_module_ : KernelNetwork or None
        The autoencoder of the other orientation (None without ``blend``).
    network_weights_ : ndarray of shape (n_networks,)
        Weight of each autoencoder's output (primary first) in the prediction
        ``baseline + sum_k w_k * output_k``: non-negative, of sum at most 1,
        fitted on the held-out ratings at the restored iteration. A sum below 1
        shrinks the networks toward the bias baseline; all zeros means their
        gain on the held-out ratings was not significant (below two standard
        errors) and the model predicts the baseline. Without early stopping:
        (0.7, 0.3), or (1,) without ``blend``.
    blend_weight_ : float
        Share of the primary autoencoder in the networks' weights.
    support_shrinkage_ : float
        ``tau`` of the shrinkage of each network's output by its output
        neuron's support ``n / (n + tau)`` (``n``: the training ratings of the
        user in the item-based network, of the item in the user-based one),
        chosen on the held-out ratings from (0, 1, 3, 10, 30, 100) with the
        weights: the networks' outputs for users and items with a handful of
        ratings are mostly untrained noise. 0 without early stopping.
    user_support_, item_support_ : ndarray of int
        Training ratings (less the held-out ones) of each user and item.
    n_iter_ : int
        L-BFGS iterations run.
    loss_curve_ : list of float
        The training objective (both networks' together) after each iteration.
    best_loss_ : float
    validation_scores_ : list of float or None
        Minus the RMSE on the held-out ratings after each iteration (None
        without early stopping).
    best_validation_score_ : float or None
    best_iter_ : int
        Iteration whose parameters were kept.
    stop_reason_ : str
        Why training stopped (see :class:`~skkernelnet.training.TrainingResult`).
    fit_time_ : float
        Seconds spent in the training loop.

    Examples
    --------
    >>> from skkernelnet import KernelCollaborativeFilter
    >>> from skkernelnet.datasets import fetch_movielens
    >>> X, y = fetch_movielens("latest-small", return_X_y=True)
    >>> model = KernelCollaborativeFilter(hidden_layer_sizes=(50,), max_iter=5, random_state=0)
    >>> model = model.fit(X[:5000], y[:5000])
    >>> model.predict(X[:2]).shape
    (2,)
    >>> items, scores = model.recommend([X[0, 0]], n=3)
    >>> items.shape
    (1, 3)
    """

    _parameter_constraints = {
        **BaseKernelNet._parameter_constraints,
        "orientation": [StrOptions({"item", "user"})],
        "blend": ["boolean"],
        "handle_unknown": [StrOptions({"fallback", "error"})],
        "rating_scale": [None, "array-like"],
        "duplicates": [StrOptions(set(DUPLICATE_POLICIES))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), StrOptions({"auto"})],
        "distributed": ["boolean"],
        "checkpoint": [None, str, os.PathLike],
        "checkpoint_interval": [Interval(Integral, 1, None, closed="left")],
    }
    # validation scores are -RMSE (higher is better); the progress display shows the RMSE
    _validation_name = "validation RMSE"
    _validation_negated = True

    def __init__(
        self,
        hidden_layer_sizes="auto",
        *,
        kernel="finite_support",
        embedding_dim=5,
        gated=True,
        activation="logistic",
        alpha=0.045,
        kernel_alpha=1.4e-5,
        max_iter=1000,
        tol=1e-4,
        n_iter_no_change=50,
        early_stopping=True,
        validation_fraction="auto",
        orientation="item",
        blend=True,
        handle_unknown="fallback",
        rating_scale=None,
        duplicates="error",
        random_state=None,
        verbose=0,
        warm_start=False,
        device="cpu",
        dtype="float32",
        callbacks=None,
        distributed=False,
        checkpoint=None,
        checkpoint_interval=10,
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
        self.orientation = orientation
        self.blend = blend
        self.handle_unknown = handle_unknown
        self.distributed = distributed
        self.checkpoint = checkpoint
        self.checkpoint_interval = checkpoint_interval
        self.rating_scale = rating_scale
        self.duplicates = duplicates

    # -- the networks ----------------------------------------------------------------------
    def _orientations(self):
        """The orientations trained, primary first."""
        return [self.orientation] + ([other_orientation(self.orientation)] if self.blend else [])

    def _modules(self):
        return [self.module_] + ([self.blend_module_] if self.blend_module_ is not None else [])

    def _network_hidden_sizes(self, n_inputs, n_ratings):
        """Hidden widths of one autoencoder: as given, or sized to the data ("auto")."""
        if not (isinstance(self.hidden_layer_sizes, str) and self.hidden_layer_sizes == "auto"):
            return self._hidden_sizes()
        params_per_rating, low, high = _AUTO_WIDTH
        width = int(np.clip(params_per_rating * n_ratings / (2 * n_inputs), low, high))
        return (width, width)

    def _new_network(self, n_outputs, n_ratings):
        return KernelNetwork(
            n_outputs,
            self._network_hidden_sizes(n_outputs, n_ratings),
            n_outputs,
            embedding_dim=self.embedding_dim,
            kernel=self.kernel,
            gated=self.gated,
            activation=self.activation,
            device=self._device,
            dtype=self._dtype,
        )

    def _build_views(self):
        """The ratings seen by each fitted network, primary first; kept for inference."""
        orientations = [self.orientation, other_orientation(self.orientation)]
        self._views = [
            OrientationView(orientation, module, self._ratings, self._dtype, self._device)
            for orientation, module in zip(orientations, self._modules())
        ]

    def _offset(self, user_idx, item_idx):
        """What the networks' outputs are added to: the bias baseline of known indices."""
        return self.global_mean_ + self.user_bias_[user_idx] + self.item_bias_[item_idx]

    # -- fitting -----------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    @keeps_attributes_on_error
    def fit(self, X, y):
        """Fit the model to observed ratings.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_ratings, 2)
            (user id, item id) pairs; ids may be any hashable values.
        y : array-like of shape (n_ratings,)
            Numeric ratings.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        users, items = as_pairs(X)
        y = check_ratings(y, len(users))
        first_call = not self.warm_start or not hasattr(self, "module_")
        self._store_feature_names(X)
        user_idx, item_idx = self._index_ratings(users, items, first_call)
        self._resolve_runtime(reset=first_call)
        n_users, n_items = len(self.user_ids_), len(self.item_ids_)
        user_idx, item_idx, y = deduplicate_ratings(
            user_idx, item_idx, y, n_items, self.duplicates
        )
        self.rating_range_ = self._rating_range(y)
        self._ratings = sp.csr_matrix((y, (user_idx, item_idx)), shape=(n_users, n_items))
        train, validation = self._hold_out(len(y))
        # The baseline is fitted without the held-out ratings, which it is evaluated on.
        self.global_mean_, self.user_bias_, self.item_bias_ = fit_biases(
            user_idx[train], item_idx[train], y[train], n_users, n_items
        )
        self._init_networks(first_call, len(train))
        self._build_views()

        # How many training ratings trained each user's and each item's output neuron.
        self.user_support_ = np.bincount(user_idx[train], minlength=n_users)
        self.item_support_ = np.bincount(item_idx[train], minlength=n_items)
        offset = self._offset(user_idx, item_idx)
        # Penalties scale with 1 / sqrt(n): see the alpha parameter.
        scale = 1.0 / np.sqrt(len(train))
        alpha, kernel_alpha = self.alpha * scale, self.kernel_alpha * scale
        support = [self._output_support(v, user_idx, item_idx) for v in self._views]
        if self.distributed:  # this process's shard of the rows (see _data_parallel)
            objective, blended = data_parallel_objective(
                self._views, user_idx, item_idx, y, offset, train, validation,
                self.rating_range_, alpha, kernel_alpha, support,
            )  # fmt: skip
        else:
            problems = [
                OrientationProblem.build(view, user_idx, item_idx, y, y - offset, train, validation)
                for view in self._views
            ]
            blended = (
                None
                if validation is None
                else BlendedValidation(problems, y, offset, self.rating_range_, support=support)
            )
            objective = JointObjective(problems, alpha, kernel_alpha, validation=blended)
        modules = torch.nn.ModuleList(self._modules())
        checkpoint_data = None
        if self.checkpoint is not None:  # what a checkpoint must match to be resumed
            ratings = data_digest(user_idx, item_idx, y, self.user_ids_, self.item_ids_)
            checkpoint_data = (ratings, data_digest(train))
        self._train(
            modules,
            lambda params, monitor, **resume: lbfgs(params, objective, monitor, **resume),
            validate=blended,
            checkpoint_data=checkpoint_data,
        )
        modules.eval()
        if blended is None:
            weights = np.asarray(
                DEFAULT_NETWORK_WEIGHTS[: len(objective.problems)] if self.blend else [1.0]
            )
            self.support_shrinkage_ = 0.0
        else:  # refit the weights at the restored (best) parameters
            objective.observe_validation()
            self.support_shrinkage_, weights = blended.weights()
        self.network_weights_ = weights
        if validation is not None:
            # The held-out ratings have done their job (choosing the iteration and the
            # weights, with a baseline that never saw them); the final baseline uses them.
            self.global_mean_, self.user_bias_, self.item_bias_ = fit_biases(
                user_idx, item_idx, y, n_users, n_items
            )
        total = float(weights.sum())
        self.blend_weight_ = float(weights[0] / total) if total > 0 else 1.0
        if self.verbose and total < 1.0:
            print(
                f"{type(self).__name__}: network weights {np.round(weights, 3).tolist()} "
                "against the bias baseline (fitted on the held-out ratings; zeros: the "
                "networks did not help there, and the model predicts the baseline)."
            )
        return self

    def _store_feature_names(self, X):
        self.n_features_in_ = 2
        columns = getattr(X, "columns", None)
        if columns is not None and all(isinstance(c, str) for c in columns):
            self.feature_names_in_ = np.asarray(columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _index_ratings(self, users, items, first_call):
        """Dense user and item indices of the ratings; the first fit learns the ids."""
        if first_call:
            self.user_ids_, user_idx = factorize(users)
            self.item_ids_, item_idx = factorize(items)
        else:
            user_idx, item_idx = lookup(self.user_ids_, users), lookup(self.item_ids_, items)
            if (user_idx < 0).any() or (item_idx < 0).any():
                raise ValueError("warm_start fit got users or items not seen in the first fit.")
        return user_idx, item_idx

    def _hold_out(self, n_ratings):
        """Positions of the training and held-out ratings (None without early stopping)."""
        positions = np.arange(n_ratings)
        if not self.early_stopping:
            return positions, None
        if n_ratings < 2:
            raise ValueError("early_stopping needs at least 2 ratings; set early_stopping=False.")
        share = self.validation_fraction
        if share == "auto":
            fraction, at_least, at_most = _AUTO_VALIDATION
            share = float(min(at_most, max(fraction, at_least / n_ratings)))
        return train_test_split(positions, test_size=share, random_state=self._random_state)

    def _init_networks(self, first_call, n_train):
        """New networks unless a warm start can continue the previous ones."""
        reuse = not first_call and (getattr(self, "blend_module_", None) is not None) == self.blend
        if reuse:
            return
        n_outputs = {"item": len(self.user_ids_), "user": len(self.item_ids_)}
        with seeded(self._seed):
            modules = [self._new_network(n_outputs[o], n_train) for o in self._orientations()]
        self.module_ = modules[0]
        self.blend_module_ = modules[1] if self.blend else None

    def _rating_range(self, y):
        if self.rating_scale is None:
            return (float(y.min()), float(y.max()))
        scale = np.asarray(self.rating_scale, dtype=object).reshape(-1)
        if (
            scale.size != 2
            or not all(isinstance(v, Real) and not isinstance(v, bool) for v in scale)
            or not np.isfinite(scale.astype(np.float64)).all()
            or not scale[0] < scale[1]
        ):
            raise ValueError(
                "rating_scale must be None or a pair (low, high) of finite numbers with "
                f"low < high, got {self.rating_scale!r}."
            )
        return (float(scale[0]), float(scale[1]))

    # -- inference ---------------------------------------------------------------------
    def _folded(self, history, side="user"):
        check_is_fitted(self, "module_")
        return None if history is None else FoldedHistory(self, history, side)

    def _indices(self, X, folded_users=None, folded_items=None, check=True):
        """Known user and item indices of X's pairs (-1: unknown), and fold-in positions.

        An id with a history is folded in from it: its known index is -1 and its
        position among the folded-in ids is given instead (-1 for the others).
        """
        check_is_fitted(self, "module_")
        users, items = as_pairs(X)
        user_idx, item_idx = lookup(self.user_ids_, users), lookup(self.item_ids_, items)
        positions = []
        for idx, ids, folded in ((user_idx, users, folded_users), (item_idx, items, folded_items)):
            pos = np.full(len(ids), -1) if folded is None else folded.positions(ids)
            idx[pos >= 0] = -1
            positions.append(pos)
        user_pos, item_pos = positions
        if check and self.handle_unknown == "error":
            for name, ids, unknown in (
                ("users", users, (user_idx < 0) & (user_pos < 0)),
                ("items", items, (item_idx < 0) & (item_pos < 0)),
            ):
                if unknown.any():
                    listed = np.unique(np.asarray(ids, dtype=object)[unknown])[:10].tolist()
                    raise ValueError(
                        f"X contains {name} not seen in fit (handle_unknown='error'): {listed}"
                    )
        return user_idx, item_idx, user_pos, item_pos

    def _output_support(self, view, user_idx, item_idx):
        """Training ratings of the output neuron of each (user, item): the user's in the
        item-based network, the item's in the user-based one (indices broadcast)."""
        if view.orientation == "item":
            return self.user_support_[user_idx]
        return self.item_support_[item_idx]

    def _blended(self, outputs, user_idx, item_idx):
        """The networks' correction of the baseline: their outputs, each shrunk by its
        output neuron's support and weighted (``network_weights_``)."""
        tau = self.support_shrinkage_
        return sum(
            w * o * support_factor(self._output_support(v, user_idx, item_idx), tau)
            for w, o, v in zip(self.network_weights_, outputs, self._views)
        )

    def predict(self, X, history=None, item_history=None):
        """Predict ratings for (user, item) pairs, folding in new users from their history.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_pairs, 2)
            (user id, item id) pairs. Pairs may repeat and come in any order:
            each row gets exactly the rating it gets when predicted alone.
        history : tuple (X_history, y_history), optional
            Ratings of users to fold in, as for ``fit``: ``X_history`` holds
            (user id, item id) pairs, ``y_history`` the ratings. Every pair of
            ``X`` whose user has ratings here is predicted from those ratings
            alone (see :ref:`fold_in`), without changing the fitted networks;
            typically these are users who signed up after ``fit``. A user seen
            in fit who appears here is folded in from this history only, so
            give their whole history. Items in the history must be known.
        item_history : tuple (X_history, y_history), optional
            Ratings of items to fold in (typically items added after ``fit``),
            likewise: pairs of ``X`` whose item has ratings here are predicted
            from them. Users in it must be known. A pair whose user and item
            are both folded in gets ``global_mean_`` plus both folded-in biases.

        Returns
        -------
        ndarray of shape (n_pairs,)
            Ratings clipped to ``rating_range_``; the baseline for unknown ids
            (with ``handle_unknown="fallback"``, see :meth:`fallback_mask`).

        Examples
        --------
        >>> from skkernelnet import KernelCollaborativeFilter
        >>> from skkernelnet.datasets import make_ratings
        >>> X, y = make_ratings(100, 50, density=0.2, random_state=0, return_X_y=True)
        >>> model = KernelCollaborativeFilter(hidden_layer_sizes=(20,), max_iter=20,
        ...                                   random_state=0).fit(X, y)
        >>> new_user = [["new", 3], ["new", 7], ["new", 12]]
        >>> model.predict([["new", 5], ["new", 9]], history=(new_user, [5.0, 4.0, 1.0])).shape
        (2,)
        """
        folded_users = self._folded(history)
        folded_items = self._folded(item_history, "item")
        indices = self._indices(X, folded_users, folded_items)
        user_idx, item_idx = indices[:2]
        known = (user_idx >= 0) & (item_idx >= 0)
        pred = baseline_predict(self, user_idx, item_idx)
        u, i = user_idx[known], item_idx[known]
        if known.any():
            pred[known] = self._offset(u, i) + self._blended(
                [v.output_at(u, i) for v in self._views], u, i
            )
        fill_folded(self, pred, indices, folded_users, folded_items)
        return np.clip(pred, *self.rating_range_)

    def fallback_mask(self, X, history=None, item_history=None):
        """Which pairs :meth:`predict` answers with the baseline instead of the networks.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_pairs, 2)
            (user id, item id) pairs.
        history, item_history : tuple (X_history, y_history), optional
            As for :meth:`predict`: users and items with a history are not
            unknown.

        Returns
        -------
        ndarray of bool of shape (n_pairs,)
            True where no network answers: the user or the item was not seen in
            fit and has no history (or both are folded in), so that the
            prediction is ``global_mean_`` plus the known biases.

        Examples
        --------
        >>> from skkernelnet import KernelCollaborativeFilter
        >>> from skkernelnet.datasets import make_ratings
        >>> X, y = make_ratings(100, 50, density=0.2, random_state=0, return_X_y=True)
        >>> model = KernelCollaborativeFilter(hidden_layer_sizes=(20,), max_iter=5,
        ...                                   random_state=0).fit(X, y)
        >>> model.fallback_mask([[0, 1], [0, 999], [999, 1]])
        array([False,  True,  True])
        """
        folded = (self._folded(history), self._folded(item_history, "item"))
        return ~network_mask(self._indices(X, *folded, check=False))

    def score(self, X, y, sample_weight=None):
        """R^2 of the predictions for (user, item) pairs ``X`` against ratings ``y``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_pairs, 2)
            (user id, item id) pairs.
        y : array-like of shape (n_pairs,)
            True ratings.
        sample_weight : array-like of shape (n_pairs,), default=None
            Weights of the pairs.

        Returns
        -------
        float
            As for every scikit-learn regressor (NaN, with a warning, for a
            single pair). For model selection by RMSE use
            ``scoring="neg_root_mean_squared_error"``.
        """
        pred = self.predict(X)
        y = check_ratings(y, len(pred))
        return float(r2_score(y, pred, sample_weight=sample_weight))

    # -- embeddings and recommendations ------------------------------------------------
    @property
    def user_embeddings_(self):
        """ndarray of shape (n_users, n_user_features): the learned vectors of each user.

        From the primary autoencoder. Item-based: ``[u, v]``, the user's
        input-neuron embedding in the first layer next to its output-neuron
        embedding in the last layer (``2 * embedding_dim`` numbers). User-based:
        the last hidden layer's code of the user's ratings
        (``hidden_layer_sizes[-1]`` numbers).
        """
        check_is_fitted(self, "module_")
        view = self._views[0]
        return view.neuron_vectors() if self.orientation == "item" else view.codes()

    @property
    def item_embeddings_(self):
        """ndarray of shape (n_items, n_item_features): the learned vectors of each item.

        From the primary autoencoder. Item-based: the last hidden layer's code
        of the item's ratings (``hidden_layer_sizes[-1]`` numbers). User-based:
        ``[u, v]`` as for users in the item-based model.
        """
        check_is_fitted(self, "module_")
        view = self._views[0]
        return view.codes() if self.orientation == "item" else view.neuron_vectors()

    def transform(self, X):
        """Learned vectors of the user and of the item of each (user, item) pair.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_pairs, 2)

        Returns
        -------
        ndarray of shape (n_pairs, n_user_features + n_item_features)
            ``user_embeddings_`` of the user followed by ``item_embeddings_``
            of the item; zeros for an id unseen in fit (with
            ``handle_unknown="fallback"``).
        """
        user_idx, item_idx = self._indices(X)[:2]
        out = []
        for idx, table in ((user_idx, self.user_embeddings_), (item_idx, self.item_embeddings_)):
            vectors = np.zeros((len(idx), table.shape[1]), dtype=table.dtype)
            vectors[idx >= 0] = table[idx[idx >= 0]]
            out.append(vectors)
        return np.hstack(out)

    def get_feature_names_out(self, input_features=None):
        """Names of the columns of :meth:`transform`: ``user0..``, then ``item0..``.

        Parameters
        ----------
        input_features : ignored
            Present for API consistency.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self, "module_")
        view = self._views[0]
        n_code = self.module_.layers[-1].in_features
        n_vector = view.neuron_vectors().shape[1]
        n_user, n_item = (n_vector, n_code) if self.orientation == "item" else (n_code, n_vector)
        names = [f"user{k}" for k in range(n_user)] + [f"item{k}" for k in range(n_item)]
        return np.asarray(names, dtype=object)

    def recommend(
        self, users, n=10, exclude_seen=True, history=None, popularity_weight=POPULARITY_WEIGHT
    ):
        """Top-``n`` items for each user by predicted rating and popularity.

        A rating model predicts how much a user would like an item *if* they
        watched it; ranking by that alone puts obscure items with a few
        enthusiastic raters on top, and does worse than recommending the most
        popular items. The ranking score is therefore ``predicted rating +
        popularity_weight * log(share of training users who rated the item)``:
        the log of a popularity prior on interacting with the item, traded
        against the predicted rating (see the user guide, "Implicit feedback and
        top-N", for the validation behind the default).

        Scores are computed for a bounded chunk of users at a time, so that
        recommending for every user of a large catalogue never holds a
        (users x items) matrix.

        Parameters
        ----------
        users : array-like of shape (n_users,)
            User ids, in any order, repeated or not (each row of the result
            is what that user alone gets); a missing id raises ``ValueError``.
        n : int, default=10
            Number of items per user (at most the number of items).
        exclude_seen : bool, default=True
            Leave out the items each user rated in fit (or in ``history``).
        history : tuple (X_history, y_history), optional
            Ratings of users to fold in, as for :meth:`predict`: their items
            are ranked by the predictions folded in from these ratings.
        popularity_weight : float, default=1.5
            Weight of the log-popularity prior, in rating units; 0 ranks by
            predicted rating alone.

        Returns
        -------
        items : ndarray of shape (n_users, n)
            Item ids, best first.
        scores : ndarray of shape (n_users, n)
            Their ranking scores: the predicted rating (not clipped, so that
            ranks are not tied at the top of the scale) plus the weighted
            log-popularity. ``-inf`` marks padding when a user has fewer than
            ``n`` unseen items. A user unseen in fit and without a history gets
            the popularity list under ``handle_unknown="fallback"``: the items
            with the highest baseline rating ``global_mean_ + item_bias_`` (a
            shrunken mean rating) plus the same prior, the same for every such
            user.

        Examples
        --------
        >>> from skkernelnet import KernelCollaborativeFilter
        >>> from skkernelnet.datasets import make_ratings
        >>> X, y = make_ratings(100, 50, density=0.2, random_state=0, return_X_y=True)
        >>> model = KernelCollaborativeFilter(hidden_layer_sizes=(20,), max_iter=20,
        ...                                   random_state=0).fit(X, y)
        >>> items, scores = model.recommend([0, 1], n=3)
        >>> items.shape
        (2, 3)
        >>> history = ([["new", 3], ["new", 7]], [5.0, 1.0])
        >>> items, scores = model.recommend(["new"], n=3, history=history)
        >>> bool({3, 7} & set(items[0]))
        False
        """
        check_is_fitted(self, "module_")
        n_items = len(self.item_ids_)
        n = check_n(n, n_items, "items")
        if not isinstance(exclude_seen, (bool, np.bool_)):
            raise TypeError(f"exclude_seen must be True or False, got {exclude_seen!r}.")
        users = as_ids(users, "user")
        if users.size == 0:
            raise ValueError("users is empty: give at least one user id.")
        folded = self._folded(history)
        user_idx = lookup(self.user_ids_, users)
        fold_pos = np.full(len(users), -1) if folded is None else folded.positions(users)
        user_idx[fold_pos >= 0] = -1
        if self.handle_unknown == "error" and ((user_idx < 0) & (fold_pos < 0)).any():
            unknown = users[(user_idx < 0) & (fold_pos < 0)][:10].tolist()
            raise ValueError(f"users not seen in fit (handle_unknown='error'): {unknown}")
        views = self._views
        # codes of every item, computed once for all chunks (item-based view)
        item_codes = [v.codes() if v.orientation == "item" else None for v in views]
        if not isinstance(popularity_weight, Real) or not np.isfinite(popularity_weight):
            raise ValueError(
                f"popularity_weight must be a finite number, got {popularity_weight!r}."
            )
        prior = popularity_weight * popularity_log_prior(
            np.bincount(self._ratings.indices, minlength=n_items), len(self.user_ids_)
        )
        popularity = self.global_mean_ + self.item_bias_

        def score_rows(rows):
            block = np.tile(popularity, (len(rows), 1))
            known = np.flatnonzero(user_idx[rows] >= 0)
            if known.size:
                u = user_idx[rows][known]
                outputs = [v.all_item_outputs(u, c) for v, c in zip(views, item_codes)]
                block[known] += self.user_bias_[u][:, None] + self._blended(
                    outputs, u[:, None], np.arange(n_items)[None, :]
                )
                if exclude_seen:
                    seen = self._ratings[u].tocoo()
                    block[known[seen.row], seen.col] = -np.inf
            with_history = np.flatnonzero(fold_pos[rows] >= 0)
            if with_history.size:
                positions, inverse = np.unique(fold_pos[rows][with_history], return_inverse=True)
                block[with_history] = folded.scores(positions)[0][inverse]
                if exclude_seen:
                    seen = folded.seen(positions, n_items)[inverse].tocoo()
                    block[with_history[seen.row], seen.col] = -np.inf
            return block + prior

        top, scores = top_n_chunked(score_rows, len(users), n_items, n)
        return self.item_ids_[top], scores

    def similar_items(self, items, n=10):
        """The ``n`` items most similar to each given item, by the learned representation.

        Similarity is the cosine between two items' rows of the primary
        autoencoder's predicted rating matrix (its interaction part, without
        the bias baseline) after each user's mean over items is subtracted:
        items are alike when the model predicts that the same users like them
        more, and the same users less, than their usual. It is computed
        exactly from the learned vectors without forming that matrix; see
        :ref:`similar`.

        Parameters
        ----------
        items : array-like of shape (n_queries,)
            Item ids seen in fit.
        n : int, default=10
            Neighbours per item (at most the number of other items).

        Returns
        -------
        neighbours : ndarray of shape (n_queries, n)
            Item ids, most similar first; the query item itself is left out.
        similarities : ndarray of shape (n_queries, n)
            Their cosine similarities, in [-1, 1].

        Examples
        --------
        >>> from skkernelnet import KernelCollaborativeFilter
        >>> from skkernelnet.datasets import make_ratings
        >>> X, y = make_ratings(100, 50, density=0.2, random_state=0, return_X_y=True)
        >>> model = KernelCollaborativeFilter(hidden_layer_sizes=(20,), max_iter=20,
        ...                                   random_state=0).fit(X, y)
        >>> neighbours, similarities = model.similar_items([3, 7], n=5)
        >>> neighbours.shape
        (2, 5)
        """
        return _similarity.similar(self, items, n, side="item")

    def similar_users(self, users, n=10):
        """The ``n`` users most similar to each given user, by the learned representation.

        The cosine between two users' columns of the same centred predicted
        rating matrix as for :meth:`similar_items`: users are alike when the
        model predicts that they like the same items more, and the same
        items less, than their own average.

        Parameters
        ----------
        users : array-like of shape (n_queries,)
            User ids seen in fit.
        n : int, default=10
            Neighbours per user (at most the number of other users).

        Returns
        -------
        neighbours : ndarray of shape (n_queries, n)
            User ids, most similar first; the query user itself is left out.
        similarities : ndarray of shape (n_queries, n)
            Their cosine similarities, in [-1, 1].

        Examples
        --------
        >>> from skkernelnet import KernelCollaborativeFilter
        >>> from skkernelnet.datasets import make_ratings
        >>> X, y = make_ratings(100, 50, density=0.2, random_state=0, return_X_y=True)
        >>> model = KernelCollaborativeFilter(hidden_layer_sizes=(20,), max_iter=20,
        ...                                   random_state=0).fit(X, y)
        >>> neighbours, similarities = model.similar_users([0], n=3)
        >>> neighbours.shape
        (1, 3)
        """
        return _similarity.similar(self, users, n, side="user")

    # -- model files -------------------------------------------------------------------
    def save(self, path):
        """Write the fitted model to a file that :meth:`load` reads without running code.

        The file is a zip archive holding the networks' tensors and every
        fitted array in a NumPy ``.npz`` (read with ``allow_pickle=False``),
        and the parameters, id mappings and other fitted attributes as JSON,
        with a format version and a checksum of each part; see
        :mod:`skkernelnet.model_files`. Pickle keeps working as well.

        Parameters
        ----------
        path : str or path-like
            File to write (overwritten if it exists).

        Examples
        --------
        >>> import os, tempfile
        >>> from skkernelnet import KernelCollaborativeFilter
        >>> from skkernelnet.datasets import make_ratings
        >>> X, y = make_ratings(100, 50, density=0.2, random_state=0, return_X_y=True)
        >>> model = KernelCollaborativeFilter(hidden_layer_sizes=(20,), max_iter=5,
        ...                                   random_state=0).fit(X, y)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.skkn")
        >>> model.save(path)
        >>> loaded = KernelCollaborativeFilter.load(path)
        >>> bool((loaded.predict(X[:5]) == model.predict(X[:5])).all())
        True
        """
        model_files.save(self, path)

    @classmethod
    def load(cls, path, device=None):
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
        device : str or torch.device, optional
            Where to put the networks; by default the device of the saved
            model when available, else the CPU.

        Returns
        -------
        KernelCollaborativeFilter
            The fitted model.

        Raises
        ------
        ValueError
            If the file is not a model file, is truncated or was modified, or
            was written by a newer format version.
        """
        return model_files.load(path, device=device, expected_class=cls)

    # -- pickling: the views are rebuilt from the networks and the ratings ---------------
    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_views", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "module_" in state:
            self._build_views()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags
