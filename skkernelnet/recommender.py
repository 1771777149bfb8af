"""KernelCollaborativeFilter: the kernelized rating autoencoder as a scikit-learn regressor.

The model of Muller, Martel and Indiveri (ICML 2018): each item's vector of
ratings (zeros where unobserved) goes through ``n_users -> 500 -> 500 ->
n_users`` gated finite-support kernel layers, and the reconstruction at the
observed entries is fitted by full-batch L-BFGS. Training never forms a dense
ratings matrix or a dense output: the input layer consumes the sparse matrix
and the output layer is evaluated only at observed ratings
(:meth:`~skkernelnet.layers.KernelLinear.forward_at`).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import BaseKernelNet, seeded
from .layers import EntryIndex, SparseInput, csr_from_scipy, reuse_kernel_matrices
from .networks import KernelNetwork

__all__ = ["KernelCollaborativeFilter", "RatingBaseline", "rating_objective"]


def _as_pairs(X):
    """Validate X as (n, 2) pairs of ids; return the two id columns as 1-D arrays."""
    if hasattr(X, "iloc") and hasattr(X, "columns"):  # pandas DataFrame
        if X.shape[1] != 2:
            raise ValueError(
                f"X must have exactly 2 columns (user id, item id), got {X.shape[1]}: "
                f"{list(X.columns)}."
            )
        users, items = X.iloc[:, 0].to_numpy(), X.iloc[:, 1].to_numpy()
    else:
        if hasattr(X, "toarray"):
            raise ValueError("X must be a dense (n, 2) array of (user id, item id), not sparse.")
        X = np.asarray(X) if not isinstance(X, np.ndarray) else X
        if X.ndim != 2 or X.shape[1] != 2:
            raise ValueError(
                f"X must be of shape (n_ratings, 2) holding (user id, item id) pairs, "
                f"got shape {X.shape}."
            )
        users, items = X[:, 0], X[:, 1]
    if users.shape[0] == 0:
        raise ValueError(
            "X is empty: found 0 (user, item) pairs, while a minimum of 1 is required."
        )
    for name, ids in (("user", users), ("item", items)):
        if ids.dtype.kind == "f" and not np.isfinite(ids).all():
            raise ValueError(f"X contains NaN or infinite {name} ids.")
        if ids.dtype.kind == "O" and any(
            i is None or (isinstance(i, float) and i != i) for i in ids
        ):
            raise ValueError(f"X contains missing (None/NaN) {name} ids.")
    return users, items


def _factorize(ids):
    """Sorted unique ids and the index of each entry among them."""
    try:
        return np.unique(ids, return_inverse=True)
    except TypeError:  # mixed, unorderable ids: keep first-seen order
        lookup = {}
        codes = np.fromiter((lookup.setdefault(i, len(lookup)) for i in ids), np.int64, len(ids))
        uniques = np.empty(len(lookup), dtype=object)
        uniques[:] = list(lookup)
        return uniques, codes


def _lookup(uniques, ids):
    """Index of each id in ``uniques`` (as built by _factorize), -1 when unseen."""
    if uniques.dtype != object:
        try:
            ids_cast = np.asarray(ids).astype(uniques.dtype, casting="same_kind")
        except (TypeError, ValueError):
            ids_cast = None
        if ids_cast is not None and np.array_equal(ids_cast, ids):
            pos = np.searchsorted(uniques, ids_cast).clip(0, len(uniques) - 1)
            return np.where(uniques[pos] == ids_cast, pos, -1)
    table = {u: k for k, u in enumerate(uniques.tolist())}
    return np.fromiter(
        (table.get(i, -1) for i in np.asarray(ids, dtype=object).tolist()), np.int64, len(ids)
    )


def _check_ratings(y, n):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of ratings, got shape {y.shape}.")
    if y.shape[0] != n:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: {n} pairs, {len(y)} ratings."
        )
    if y.dtype.kind not in "biuf":
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"ratings must be numeric, got dtype {y.dtype}.") from None
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinite ratings.")
    return y


def _fit_biases(user_idx, item_idx, y, n_users, n_items, shrinkage=10.0, n_passes=5):
    """Global mean and shrunken user and item biases by alternating regularised means.

    Minimises ``sum (r - mu - b_u - b_i)^2 + shrinkage (|b_u|^2 + |b_i|^2)`` by
    a few exact coordinate passes (each pass solves the items given the users,
    then the users given the items).
    """
    mean = float(y.mean())
    resid = y - mean
    user_bias = np.zeros(n_users)
    item_n = np.bincount(item_idx, minlength=n_items) + shrinkage
    user_n = np.bincount(user_idx, minlength=n_users) + shrinkage
    for _ in range(n_passes):
        item_bias = np.bincount(item_idx, resid - user_bias[user_idx], minlength=n_items) / item_n
        user_bias = np.bincount(user_idx, resid - item_bias[item_idx], minlength=n_users) / user_n
    return mean, user_bias, item_bias


class RatingBaseline(RegressorMixin, BaseEstimator):
    """Global mean, optionally plus shrunken user and item biases: the yardstick of rating models.

    ``r_hat(u, i) = mu + b_u + b_i`` with biases minimising the squared error
    plus ``shrinkage * (b_u^2 + b_i^2)``; unseen users or items get a zero bias.
    This is also :class:`KernelCollaborativeFilter`'s fallback.

    Parameters
    ----------
    biases : bool, default=True
        False predicts the global mean only.
    shrinkage : float, default=10.0
        Pulls the biases of users and items with few ratings towards zero.

    Attributes
    ----------
    global_mean_ : float
    user_ids_, item_ids_ : ndarray
    user_bias_, item_bias_ : ndarray
    rating_range_ : tuple of float

    Examples
    --------
    >>> from skkernelnet.recommender import RatingBaseline
    >>> X = [[1, "a"], [1, "b"], [2, "a"]]
    >>> RatingBaseline().fit(X, [4, 2, 5]).predict([[2, "b"], [3, "c"]]).round(2)
    array([3.63, 3.67])
    """

    _parameter_constraints = {
        "biases": ["boolean"],
        "shrinkage": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, biases=True, shrinkage=10.0):
        self.biases = biases
        self.shrinkage = shrinkage

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the mean and biases to (user, item) pairs X and ratings y."""
        users, items = _as_pairs(X)
        y = _check_ratings(y, len(users))
        self.user_ids_, user_idx = _factorize(users)
        self.item_ids_, item_idx = _factorize(items)
        self.global_mean_, self.user_bias_, self.item_bias_ = _fit_biases(
            user_idx, item_idx, y, len(self.user_ids_), len(self.item_ids_), self.shrinkage
        )
        if not self.biases:
            self.user_bias_[:] = 0.0
            self.item_bias_[:] = 0.0
        self.rating_range_ = (float(y.min()), float(y.max()))
        return self

    def predict(self, X):
        """Baseline ratings for (user, item) pairs, clipped to the training range."""
        check_is_fitted(self, "global_mean_")
        users, items = _as_pairs(X)
        return _baseline(self, _lookup(self.user_ids_, users), _lookup(self.item_ids_, items))


def _baseline(model, user_idx, item_idx):
    pred = model.global_mean_ + np.where(item_idx >= 0, model.item_bias_[item_idx], 0.0)
    pred = pred + np.where(user_idx >= 0, model.user_bias_[user_idx], 0.0)
    return np.clip(pred, *model.rating_range_)


def rating_objective(network, ratings, index, target, alpha, kernel_alpha):
    """Training objective of the rating autoencoder, evaluated only where ratings exist.

    ``mean_k 1/2 (target_k - output[index_k])^2 + alpha * sum_l 1/2 ||W_l||^2
    + kernel_alpha * sum_l 1/2 ||K_l||^2``: the authors' loss divided by the
    number of observed ratings, so ``alpha = lambda_2 / n_ratings``.

    Parameters
    ----------
    network : KernelNetwork
    ratings : SparseInput or Tensor of shape (n_rows, n_cols)
        Network input, zero where unobserved.
    index : EntryIndex
        Observed (row, col) pairs.
    target : Tensor of shape (n_pairs,)
    alpha, kernel_alpha : float

    Returns
    -------
    loss : Tensor
    hidden : Tensor of shape (n_rows, hidden_layer_sizes[-1])
        Last hidden activations, for predictions at other pairs.
    """
    with reuse_kernel_matrices(network):
        hidden = network.hidden(ratings)
        output = network.output_activation(network.layers[-1].forward_at(hidden, index))
        free, kern = network.regularization()
    loss = 0.5 * (output - target).pow(2).mean() + alpha * free + kernel_alpha * kern
    return loss, hidden


class KernelCollaborativeFilter(RegressorMixin, BaseKernelNet):
    """Rating prediction with the kernelized autoencoder of Muller et al. (ICML 2018).

    With ``orientation="item"`` (the paper's model) each item is a sample whose
    features are its ratings by all users; a network of kernelized layers
    reconstructs them, and the reconstruction at ``(item, user)`` is the
    predicted rating. Only observed ratings enter the loss.

    ``X`` holds ``(user id, item id)`` pairs (any hashable ids), ``y`` the
    ratings; ``predict`` returns ratings clipped to the training range and
    ``score`` is R^2 as for every scikit-learn regressor (use
    ``scoring="neg_root_mean_squared_error"`` for model selection).

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(500, 500)
        Widths of the hidden layers.
    kernel : str, Kernel or callable, default="finite_support"
        Kernel of every layer.
    embedding_dim : int, default=5
        Dimension of the neuron embeddings.
    gated : bool, default=True
        Gate a free weight with each kernel matrix.
    activation : {"logistic", "sigmoid", "tanh", "relu", "identity"}, default="logistic"
        Hidden activation (the output layer is linear).
    solver : {"lbfgs", "adam"}, default="lbfgs"
        Only full-batch L-BFGS is implemented for this estimator; "adam" is
        accepted by the shared parameter set but raises at fit.
    alpha : float, default=0.065
        L2 penalty on every free weight matrix, scale-free: the objective is
        ``mean(1/2 err^2) + alpha / sqrt(n) * sum_l 1/2 ||W_l||^2`` for ``n``
        observed training ratings, i.e. the reference's sum-of-squares loss
        with ``lambda_2 = alpha * sqrt(n)``. The reference's ``lambda_2 = 60``
        on ML-1M (n = 900,188) is ``alpha = 0.063``; the square root (rather
        than ``n``) is what makes the best penalties of ML-100K and ML-1M
        agree (see the user guide).
    kernel_alpha : float, default=1.4e-5
        Penalty on every kernel matrix ``1/2 ||K_l||^2`` (the reference's
        ``lambda_s = kernel_alpha * sqrt(n)``), scaled likewise.
    max_iter : int, default=...
        L-BFGS iterations.
    tol : float, default=1e-4
        Minimum improvement (of the validation RMSE with ``early_stopping``,
        else of the objective) that counts.
    n_iter_no_change : int, default=...
        Iterations without such an improvement before stopping.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the training ratings, select the
        iteration with the lowest RMSE on them and restore its parameters.
    validation_fraction : float, default=...
        Share of training ratings held out for early stopping.
    orientation : {"item", "user"}, default="item"
        "item": item-based autoencoder (each item's ratings by users are the
        input); "user": user-based.
    handle_unknown : {"fallback", "error"}, default="fallback"
        How to predict for users or items not seen in fit: "fallback" uses the
        baseline estimate ``global mean + user bias + item bias`` with the
        biases that are known (a bias is zero for an unseen id); "error"
        raises ``ValueError``.
    random_state, verbose, warm_start, device, dtype
        As for :class:`~skkernelnet.KernelNetClassifier`; ``dtype`` defaults
        to "float32" here.
    batch_size, learning_rate_init
        Unused by L-BFGS; kept for a parameter set consistent with the other
        estimators.

    Attributes
    ----------
    user_ids_ : ndarray of shape (n_users,)
        Known user ids; ``user_ids_[k]`` is the user of row/column ``k``.
    item_ids_ : ndarray of shape (n_items,)
        Known item ids.
    global_mean_ : float
    user_bias_, item_bias_ : ndarray
        Shrunken mean deviations used by the fallback.
    rating_range_ : tuple of float
        (min, max) of the training ratings; predictions are clipped to it.
    module_ : KernelNetwork
    n_iter_, loss_curve_, best_loss_, validation_scores_, best_validation_score_
        As for the other estimators; validation scores are ``-RMSE``.

    Examples
    --------
    >>> from skkernelnet import KernelCollaborativeFilter
    >>> from skkernelnet.datasets import fetch_movielens
    >>> X, y = fetch_movielens("latest-small", return_X_y=True)
    >>> model = KernelCollaborativeFilter(hidden_layer_sizes=(50,), max_iter=5, random_state=0)
    >>> model = model.fit(X[:5000], y[:5000])
    >>> model.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints = {
        **BaseKernelNet._parameter_constraints,
        "orientation": [StrOptions({"item", "user"})],
        "handle_unknown": [StrOptions({"fallback", "error"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        hidden_layer_sizes=(500, 500),
        *,
        kernel="finite_support",
        embedding_dim=5,
        gated=True,
        activation="logistic",
        solver="lbfgs",
        alpha=0.065,
        kernel_alpha=1.4e-5,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=1000,
        tol=1e-4,
        n_iter_no_change=50,
        early_stopping=True,
        validation_fraction=0.05,
        orientation="item",
        handle_unknown="fallback",
        random_state=None,
        verbose=0,
        warm_start=False,
        device="cpu",
        dtype="float32",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.kernel = kernel
        self.embedding_dim = embedding_dim
        self.gated = gated
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.kernel_alpha = kernel_alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.orientation = orientation
        self.handle_unknown = handle_unknown
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.device = device
        self.dtype = dtype

    # -- data layout -------------------------------------------------------------------
    def _rows_cols(self, user_idx, item_idx):
        """Sample rows and output columns of the network for (user, item) indices."""
        return (item_idx, user_idx) if self.orientation == "item" else (user_idx, item_idx)

    def _shape(self):
        n_users, n_items = len(self.user_ids_), len(self.item_ids_)
        return (n_items, n_users) if self.orientation == "item" else (n_users, n_items)

    def _ratings_matrix(self, rows, cols, values):
        """The (n_rows, n_cols) ratings matrix, zero where unobserved, as scipy CSR."""
        matrix = sp.csr_matrix((values, (rows, cols)), shape=self._shape())
        matrix.sort_indices()
        return matrix

    def _torch_csr(self, matrix):
        return csr_from_scipy(matrix, self._dtype, self._device)

    # -- fitting -----------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
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
        if self.solver != "lbfgs":
            raise ValueError(
                f"KernelCollaborativeFilter supports solver='lbfgs' only, got {self.solver!r}."
            )
        users, items = _as_pairs(X)
        y = _check_ratings(y, len(users))
        first_call = not self.warm_start or not hasattr(self, "module_")
        if first_call:
            self.user_ids_, user_idx = _factorize(users)
            self.item_ids_, item_idx = _factorize(items)
        else:
            user_idx, item_idx = _lookup(self.user_ids_, users), _lookup(self.item_ids_, items)
            if (user_idx < 0).any() or (item_idx < 0).any():
                raise ValueError("warm_start fit got users or items not seen in the first fit.")
        n_items = len(self.item_ids_)
        flat = user_idx.astype(np.int64) * n_items + item_idx
        if np.unique(flat).size != flat.size:
            raise ValueError(
                "X contains duplicate (user, item) pairs; each rating must appear once "
                "(aggregate repeated ratings first, e.g. keep the latest)."
            )
        self._resolve_runtime(reset=first_call)
        self.rating_range_ = (float(y.min()), float(y.max()))
        baseline = _fit_biases(user_idx, item_idx, y, len(self.user_ids_), len(self.item_ids_))
        self.global_mean_, self.user_bias_, self.item_bias_ = baseline
        rows, cols = self._rows_cols(user_idx, item_idx)

        train = np.arange(len(y))
        validate = None
        if self.early_stopping:
            if len(y) < 2:
                raise ValueError(
                    "early_stopping needs at least 2 ratings; set early_stopping=False."
                )
            train, val = train_test_split(
                train, test_size=self.validation_fraction, random_state=self._random_state
            )
        # Row-major order makes the observed entries a CSR pattern with no permutation.
        train = train[np.lexsort((cols[train], rows[train]))]
        if self.early_stopping:
            val = val[np.lexsort((cols[val], rows[val]))]
        offset = self._offset(user_idx, item_idx)
        target = torch.as_tensor(y - offset, dtype=self._dtype, device=self._device)
        x_train = SparseInput(
            self._torch_csr(self._ratings_matrix(rows[train], cols[train], y[train]))
        )
        index = EntryIndex(rows[train], cols[train], self._shape()).to(self._device)
        target_train = target[torch.as_tensor(train, device=self._device)]
        stash = {}
        if self.early_stopping:
            val_index = EntryIndex(rows[val], cols[val], self._shape()).to(self._device)
            offset_val = torch.as_tensor(offset[val], dtype=self._dtype, device=self._device)
            y_val = torch.as_tensor(y[val], dtype=self._dtype, device=self._device)

            def validate():
                pred = (stash["val"] + offset_val).clamp(*self.rating_range_)
                return -float(torch.sqrt(torch.mean((pred - y_val) ** 2)))
        else:
            val_index = None

        if first_call:
            with seeded(self._seed):
                self.module_ = KernelNetwork(
                    self._shape()[1],
                    self._hidden_sizes(),
                    self._shape()[1],
                    embedding_dim=self.embedding_dim,
                    kernel=self.kernel,
                    gated=self.gated,
                    activation=self.activation,
                    device=self._device,
                    dtype=self._dtype,
                )
        net = self.module_
        params = [p for p in net.parameters() if p.requires_grad]
        alpha_per_rating = self.alpha / np.sqrt(len(train))
        kernel_alpha_per_rating = self.kernel_alpha / np.sqrt(len(train))

        def closure():
            for p in params:
                p.grad = None
            loss, hidden = rating_objective(
                net, x_train, index, target_train, alpha_per_rating, kernel_alpha_per_rating
            )
            loss.backward()
            if val_index is not None:
                with torch.no_grad():
                    stash["val"] = net.layers[-1].forward_at(hidden.detach(), val_index)
            return loss.item()

        self._train(net, closure=closure, validate=validate)
        net.eval()
        # Predictions read every training rating, the held-out ones included.
        self._ratings = self._ratings_matrix(rows, cols, y)
        return self

    _target = "biases"

    def _offset(self, user_idx, item_idx):
        """What the network's output is added to: the global mean, or the bias baseline."""
        if self._target == "mean":
            return np.full(len(user_idx), self.global_mean_)
        return self.global_mean_ + self.user_bias_[user_idx] + self.item_bias_[item_idx]

    # -- inference ---------------------------------------------------------------------
    def _indices(self, X):
        check_is_fitted(self, "module_")
        users, items = _as_pairs(X)
        user_idx, item_idx = _lookup(self.user_ids_, users), _lookup(self.item_ids_, items)
        if self.handle_unknown == "error":
            for name, ids, idx in (("users", users, user_idx), ("items", items, item_idx)):
                if (idx < 0).any():
                    unknown = np.unique(np.asarray(ids, dtype=object)[idx < 0])[:10].tolist()
                    raise ValueError(
                        f"X contains {name} not seen in fit (handle_unknown='error'): {unknown}"
                    )
        return user_idx, item_idx

    @torch.no_grad()
    def _network_output_at(self, rows, cols):
        """Network output (a deviation from the global mean) at known (row, col) pairs."""
        out = np.empty(len(rows), dtype=np.float64)
        if len(rows) == 0:
            return out
        unique_rows, local_rows = np.unique(rows, return_inverse=True)
        x = self._input_rows(unique_rows)
        hidden = self.module_.hidden(x)
        index = EntryIndex(local_rows, cols, (len(unique_rows), self._shape()[1]))
        out[:] = self.module_.layers[-1].forward_at(hidden, index.to(self._device)).cpu().numpy()
        return out

    def _input_rows(self, rows):
        return self._torch_csr(self._ratings[rows])

    def predict(self, X):
        """Predict ratings for (user, item) pairs.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_pairs, 2)
            (user id, item id) pairs.

        Returns
        -------
        ndarray of shape (n_pairs,)
            Ratings clipped to ``rating_range_``; the baseline for unknown ids
            (with ``handle_unknown="fallback"``).
        """
        user_idx, item_idx = self._indices(X)
        known = (user_idx >= 0) & (item_idx >= 0)
        pred = _baseline(self, user_idx, item_idx)
        rows, cols = self._rows_cols(user_idx[known], item_idx[known])
        pred[known] = self._offset(user_idx[known], item_idx[known]) + self._network_output_at(
            rows, cols
        )
        return np.clip(pred, *self.rating_range_)

    # -- embeddings and recommendations ------------------------------------------------
    @torch.no_grad()
    def _sample_codes(self, rows=None):
        """Last hidden layer's activations for the network's samples (items when item-based)."""
        rows = np.arange(self._shape()[0]) if rows is None else rows
        codes = [
            self.module_.hidden(self._input_rows(rows[start : start + 4096])).cpu().numpy()
            for start in range(0, len(rows), 4096)
        ]
        return np.concatenate(codes) if codes else np.empty((0, self._n_code()), np.float32)

    def _n_code(self):
        return self.module_.layers[-1].in_features

    def _neuron_vectors(self):
        """First layer's input embeddings u next to the last layer's output embeddings v."""
        first, last = self.module_.layers[0], self.module_.layers[-1]
        return torch.cat([first.u, last.v], dim=1).detach().cpu().numpy()

    @property
    def user_embeddings_(self):
        """ndarray of shape (n_users, n_user_features): the learned vectors of each user.

        Item-based: ``[u, v]``, the user's input-neuron embedding in the first
        layer next to its output-neuron embedding in the last layer (``2 *
        embedding_dim`` numbers). User-based: the last hidden layer's code of
        the user's ratings (``hidden_layer_sizes[-1]`` numbers).
        """
        check_is_fitted(self, "module_")
        return self._neuron_vectors() if self.orientation == "item" else self._sample_codes()

    @property
    def item_embeddings_(self):
        """ndarray of shape (n_items, n_item_features): the learned vectors of each item.

        Item-based: the last hidden layer's code of the item's ratings
        (``hidden_layer_sizes[-1]`` numbers). User-based: ``[u, v]`` as for
        users in the item-based model.
        """
        check_is_fitted(self, "module_")
        return self._sample_codes() if self.orientation == "item" else self._neuron_vectors()

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
        user_idx, item_idx = self._indices(X)
        out = []
        for idx, table in ((user_idx, self.user_embeddings_), (item_idx, self.item_embeddings_)):
            vectors = np.zeros((len(idx), table.shape[1]), dtype=table.dtype)
            vectors[idx >= 0] = table[idx[idx >= 0]]
            out.append(vectors)
        return np.hstack(out)

    @torch.no_grad()
    def _all_item_scores(self, user_idx):
        """Predicted ratings (unclipped) of every item for known users, (n_users, n_items)."""
        last = self.module_.layers[-1]
        if self.orientation == "item":
            codes = torch.as_tensor(self._sample_codes(), device=self._device)
            cols = torch.as_tensor(user_idx, device=self._device)
            weight = last.weight[:, cols]
            bias = last.bias[cols] if last.bias is not None else 0.0
            scores = (codes @ weight + bias).T
        else:
            codes = torch.as_tensor(self._sample_codes(user_idx), device=self._device)
            scores = last(codes)
        offset = self._offset(
            np.repeat(user_idx, len(self.item_ids_)),
            np.tile(np.arange(len(self.item_ids_)), len(user_idx)),
        )
        return scores.cpu().numpy().astype(np.float64) + offset.reshape(len(user_idx), -1)

    def recommend(self, users, n=10, exclude_seen=True):
        """Top-``n`` items for each user by predicted rating.

        Parameters
        ----------
        users : array-like of shape (n_users,)
            User ids.
        n : int, default=10
            Number of items per user (at most the number of items).
        exclude_seen : bool, default=True
            Leave out the items each user rated in fit.

        Returns
        -------
        items : ndarray of shape (n_users, n)
            Item ids, best first.
        scores : ndarray of shape (n_users, n)
            Their predicted ratings (not clipped, so that ranks are not tied at
            the top of the scale). ``-inf`` marks padding when a user has
            fewer than ``n`` unseen items. Users unseen in fit get the items
            with the highest baseline (``global_mean_ + item_bias_``) under
            ``handle_unknown="fallback"``.
        """
        check_is_fitted(self, "module_")
        if not isinstance(n, Integral) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}.")
        users = np.asarray(users, dtype=object if np.asarray(users).dtype.kind == "O" else None)
        if users.ndim != 1:
            users = users.reshape(-1)
        user_idx = _lookup(self.user_ids_, users)
        if self.handle_unknown == "error" and (user_idx < 0).any():
            unknown = users[user_idx < 0][:10].tolist()
            raise ValueError(f"users not seen in fit (handle_unknown='error'): {unknown}")
        n = min(n, len(self.item_ids_))
        scores = np.tile(self.global_mean_ + self.item_bias_, (len(users), 1))
        known = user_idx >= 0
        if known.any():
            scores[known] = self._all_item_scores(user_idx[known])
            if exclude_seen:
                seen = self._ratings.T if self.orientation == "item" else self._ratings
                seen = sp.csr_matrix(seen)[user_idx[known]].tocoo()
                block = scores[known]
                block[seen.row, seen.col] = -np.inf
                scores[known] = block
        top = np.argpartition(-scores, n - 1, axis=1)[:, :n]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        return self.item_ids_[top], np.take_along_axis(top_scores, order, axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags
