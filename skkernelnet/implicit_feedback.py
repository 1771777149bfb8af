"""KernelImplicitRecommender: top-N recommendation from implicit feedback.

A user-based denoising autoencoder over the item catalogue, with kernelized
layers, trained with the multinomial log-likelihood of each user's items (the
Mult-DAE objective of Liang et al., WWW 2018): a user's history (a sparse row
of the users x items interaction matrix, L2-normalised, with input dropout)
goes through ``n_items -> hidden_layer_sizes -> n_items`` kernelized layers,
and a softmax over the catalogue should put the user's items on top. The
interaction matrix is never densified: the input is sparse, and the only
dense block is the output of one mini-batch of users (``batch_size x
n_items`` floats).
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _item_item
from ._base import BaseKernelNet, seeded
from ._item_item import ndcg_sum
from ._ranking import BLOCK_ROWS, clip_n, cosine_neighbours, top_n
from ._ratings import as_pairs, factorize, lookup
from .layers import KernelLinear, SparseInput, _matmul, csr_from_scipy, reuse_kernel_matrices
from .networks import KernelNetwork
from .training import adam

__all__ = ["KernelImplicitRecommender", "ImplicitAutoencoder", "multinomial_objective"]

# Length of the ranked list whose NDCG on held-out interactions selects the epoch.
_VALIDATION_K = 10


def multinomial_objective(network, inputs, targets, alpha, kernel_alpha):
    """Mult-DAE objective of one mini-batch of users.

    ``mean_u -sum_i t_ui log softmax(f(x_u))_i + alpha sum_l 1/2 ||W_l||^2 +
    kernel_alpha sum_l 1/2 ||K_l||^2``: the negative multinomial
    log-likelihood of each user's items under the network's softmax over the
    catalogue, weighted by the interaction strength ``t_ui``.

    Parameters
    ----------
    network : KernelNetwork
    inputs : SparseInput or Tensor of shape (n_users, n_items)
        Normalised (and, in training, dropped-out) histories.
    targets : Tensor of shape (n_users, n_items)
        Interaction strengths (1 for a plain interaction, 0 where none).
    alpha, kernel_alpha : float

    Returns
    -------
    Tensor
        The objective.

    Examples
    --------
    >>> import torch
    >>> from skkernelnet.networks import KernelNetwork
    >>> net = KernelNetwork(5, (3,), 5, activation="tanh")
    >>> x = torch.tensor([[1.0, 0, 1, 0, 0], [0, 1, 0, 0, 1]])
    >>> loss = multinomial_objective(net, x, x, 1e-3, 0.0)
    >>> bool(loss > 0)
    True
    """
    with reuse_kernel_matrices(network, penalties=True):
        logits = network(inputs)
        free, kern = network.regularization()
    log_prob = torch.log_softmax(logits, dim=1)
    nll = -(log_prob * targets).sum(dim=1).mean()
    return nll + alpha * free + kernel_alpha * kern


class ImplicitAutoencoder(torch.nn.Module):
    """The network of :class:`KernelImplicitRecommender`: a kernelized autoencoder over items,
    optionally with a kernelized item-to-item shortcut.

    ``logits(x) = deep(x) + x @ (S * (1 - I))``: ``deep`` is a
    :class:`~skkernelnet.networks.KernelNetwork` ``n_items -> hidden -> n_items``,
    ``S`` a square :class:`~skkernelnet.layers.KernelLinear` weight whose
    diagonal is masked so that no item predicts itself (the constraint of
    EASE's item-item model).

    Parameters
    ----------
    deep : KernelNetwork
    shortcut : KernelLinear or None

    Examples
    --------
    >>> import torch
    >>> from skkernelnet.layers import KernelLinear
    >>> from skkernelnet.networks import KernelNetwork
    >>> net = ImplicitAutoencoder(KernelNetwork(6, (4,), 6), KernelLinear(6, 6, bias=False))
    >>> net(torch.eye(6)).shape
    torch.Size([6, 6])
    """

    def __init__(self, deep, shortcut=None):
        super().__init__()
        self.deep = deep
        self.shortcut = shortcut
        # The closed-form item-item model blended with the network's ranking (see
        # skkernelnet._item_item); fixed after fit, never trained by gradient.
        self.register_buffer("item_item", None)

    @property
    def layers(self):
        return self.deep.layers

    def hidden(self, x):
        return self.deep.hidden(x)

    def shortcut_weight(self):
        weight = self.shortcut.weight
        return weight - torch.diag_embed(torch.diagonal(weight))

    def forward(self, x):
        out = self.deep(x)
        if self.shortcut is not None:
            out = out + _matmul(x, self.shortcut_weight())
        return out

    def regularization(self):
        free, kern = self.deep.regularization()
        if self.shortcut is not None:
            f, k = self.shortcut.regularization()
            free, kern = free + f, kern + k
        return free, kern


def _normalise_rows(matrix):
    """Rows scaled to unit L2 norm (empty rows stay zero)."""
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale) @ matrix)


class KernelImplicitRecommender(TransformerMixin, BaseKernelNet):
    """Top-N recommendation from implicit feedback with a kernelized autoencoder.

    ``X`` holds ``(user id, item id)`` interactions (clicks, plays, purchases,
    or every rating regardless of its value) and no target; ``sample_weight``
    optionally gives each interaction a confidence (a play count, say), and
    repeated pairs add up. Each user is a sample whose features are the
    items: the history, L2-normalised and corrupted by input dropout, goes
    through ``n_items -> hidden_layer_sizes -> n_items`` kernelized layers,
    and the multinomial log-likelihood of the user's items under a softmax
    over the catalogue is maximised (:func:`multinomial_objective`, the
    Mult-DAE objective of Liang et al., 2018) by mini-batch Adam. With
    ``early_stopping`` a share of the interactions is held out and the epoch
    with the best NDCG@10 on them (training items excluded from the ranking)
    is kept.

    The ranking blends the network with a closed-form item-to-item model
    (``item_item``; EASE, Steck 2019: ridge regression of each item on the
    others, no item explaining itself): both paths' scores are standardised
    per user and mixed with the network's weight ``network_weight_``, which,
    like the item-item penalty, is chosen by NDCG@10 on the held-out
    interactions (weight 1 is the network alone, 0 the item-item model
    alone). The network brings a low-dimensional code of the whole history,
    the item-item model exact co-occurrences; see the user guide for what
    each contributes on MovieLens.

    A new user needs no refit: their history is the input of both paths, so
    ``recommend(history=...)`` and :meth:`fold_in` are one forward pass.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(600,)
        Widths of the hidden layers.
    kernel : str, Kernel or callable, default="finite_support"
        Kernel of every layer.
    embedding_dim : int, default=5
        Dimension of the neuron embeddings.
    gated : bool, default=True
        Gate a free weight with each kernel matrix.
    activation : {"tanh", "logistic", "sigmoid", "relu", "identity"}, default="tanh"
        Hidden activation (the output is a softmax over the catalogue).
    dropout : float in [0, 1), default=0.5
        Share of each training history's interactions dropped from the input
        in every epoch (the denoising that keeps the model from copying its
        input).
    shortcut : bool, default=False
        Add a trainable kernelized item-to-item layer (zero diagonal) to the
        network's output, trained with it.
    item_item : bool or "auto", default="auto"
        Blend the network's ranking with the closed-form item-item model.
        "auto" does so when ``early_stopping`` is on (the penalty and the
        blend weight are chosen on its held-out interactions) and the
        catalogue has at most 20,000 items (the model is an ``n_items x
        n_items`` float matrix, fitted by a dense factorisation). ``True``
        with ``early_stopping=False`` raises.
    alpha : float, default=0.01
        L2 penalty ``alpha * sum_l 1/2 ||W_l||^2`` on the free weights, added to
        the mean per-user negative log-likelihood of each mini-batch.
    kernel_alpha : float, default=0.0
        Penalty ``kernel_alpha * sum_l 1/2 ||K_l||^2`` on the kernel matrices
        (larger values make the weight matrices sparser).
    batch_size : int or "auto", default="auto"
        Users per mini-batch; "auto" is ``min(500, n_users)``.
    learning_rate_init : float, default=1e-3
        Adam's step size.
    max_iter : int, default=100
        Epochs.
    tol : float, default=1e-4
        Minimum improvement (of the validation NDCG with ``early_stopping``,
        else of the training objective) that counts.
    n_iter_no_change : int, default=10
        Epochs without such an improvement before stopping.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the interactions, select the epoch
        with the highest NDCG@10 on them and restore its parameters. The
        held-out interactions are part of the users' histories at prediction
        time.
    validation_fraction : float, default=0.1
        Share of the interactions held out for early stopping.
    handle_unknown : {"fallback", "error"}, default="fallback"
        Users unseen in fit: "fallback" recommends the most popular items
        (and gives them zero vectors in :meth:`transform`); "error" raises.
    random_state, verbose, warm_start, device
        As for :class:`~skkernelnet.KernelNetClassifier`.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the network.
    callbacks : list of callable, default=None
        Each called as ``callback(monitor)`` after every epoch (see
        :class:`~skkernelnet.training.TrainingMonitor`); returning ``True``
        stops training.

    Attributes
    ----------
    user_ids_ : ndarray of shape (n_users,)
        Known user ids; ``user_ids_[k]`` is the user of index ``k``.
    item_ids_ : ndarray of shape (n_items,)
        The catalogue: every item seen in fit.
    item_popularity_ : ndarray of shape (n_items,)
        Number of users who interacted with each item (the fallback ranking).
    module_ : ImplicitAutoencoder
        The autoencoder; its buffer ``item_item`` holds the item-item weights
        (``None`` when the ranking uses the network alone).
    network_weight_ : float
        Weight of the network's standardised scores in the ranking (1.0: the
        network alone; 0.0: the item-item model alone).
    item_item_alpha_ : float or None
        Ridge penalty of the item-item model (``None`` without it).
    item_item_validation_ : dict
        Held-out NDCG@10 of each penalty tried (``"alpha"``) and of each blend
        weight (``"network_weight"``); empty without the item-item path.
    n_iter_, loss_curve_, best_loss_, validation_scores_, best_validation_score_
        As for the other estimators; validation scores are NDCG@10.

    See Also
    --------
    skkernelnet.KernelCollaborativeFilter : Rating prediction.
    skkernelnet.metrics.make_ranking_scorer : Scorers for model selection.

    References
    ----------
    D. Liang, R. G. Krishnan, M. D. Hoffman, T. Jebara. Variational
    autoencoders for collaborative filtering. WWW 2018.

    Examples
    --------
    >>> from skkernelnet import KernelImplicitRecommender
    >>> from skkernelnet.datasets import fetch_movielens
    >>> X, _ = fetch_movielens("latest-small", return_X_y=True)
    >>> model = KernelImplicitRecommender(hidden_layer_sizes=(50,), max_iter=3, random_state=0)
    >>> model = model.fit(X)
    >>> items, scores = model.recommend([1, 2], n=5)
    >>> items.shape
    (2, 5)
    >>> new_user = model.recommend(history=[[1, 260, 1196]], n=3)[0]
    >>> new_user.shape
    (1, 3)
    >>> neighbours, similarity = model.similar_items([260], n=4)
    >>> neighbours.shape
    (1, 4)
    """

    _parameter_constraints = {
        **BaseKernelNet._parameter_constraints,
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "shortcut": ["boolean"],
        "item_item": ["boolean", StrOptions({"auto"})],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "handle_unknown": [StrOptions({"fallback", "error"})],
    }

    def __init__(
        self,
        hidden_layer_sizes=(600,),
        *,
        kernel="finite_support",
        embedding_dim=5,
        gated=True,
        activation="tanh",
        dropout=0.5,
        shortcut=False,
        item_item="auto",
        alpha=0.01,
        kernel_alpha=0.0,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=100,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=True,
        validation_fraction=0.1,
        handle_unknown="fallback",
        random_state=None,
        verbose=0,
        warm_start=False,
        device="cpu",
        dtype="float32",
        callbacks=None,
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
        self.dropout = dropout
        self.shortcut = shortcut
        self.item_item = item_item
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.handle_unknown = handle_unknown

    # -- data ----------------------------------------------------------------------------
    def _interaction_matrix(self, X, sample_weight, first_call):
        users, items = as_pairs(X)
        if sample_weight is None:
            weight = np.ones(len(users))
        else:
            weight = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if weight.shape[0] != len(users):
                raise ValueError(
                    f"sample_weight has {weight.shape[0]} entries for {len(users)} interactions."
                )
            if not np.isfinite(weight).all() or (weight <= 0).any():
                raise ValueError(
                    "sample_weight must hold finite positive confidences (drop interactions "
                    "with zero weight instead)."
                )
        if first_call:
            self.user_ids_, user_idx = factorize(users)
            self.item_ids_, item_idx = factorize(items)
        else:
            user_idx, item_idx = lookup(self.user_ids_, users), lookup(self.item_ids_, items)
            if (user_idx < 0).any() or (item_idx < 0).any():
                raise ValueError("warm_start fit got users or items not seen in the first fit.")
        shape = (len(self.user_ids_), len(self.item_ids_))
        # repeated (user, item) pairs add up: a play count is a confidence
        matrix = sp.csr_matrix((weight, (user_idx, item_idx)), shape=shape)
        matrix.sum_duplicates()
        matrix.sort_indices()
        return matrix

    def _split(self, matrix):
        """Training matrix and held-out validation matrix (random interactions)."""
        coo = matrix.tocoo()
        if coo.nnz < 2:
            raise ValueError(
                f"early_stopping needs at least 2 interactions, got {coo.nnz}; "
                "set early_stopping=False."
            )
        n_val = min(max(1, int(round(self.validation_fraction * coo.nnz))), coo.nnz - 1)
        held_out = np.zeros(coo.nnz, dtype=bool)
        held_out[self._random_state.choice(coo.nnz, n_val, replace=False)] = True

        def part(mask):
            out = sp.csr_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), coo.shape)
            out.sort_indices()
            return out

        return part(~held_out), part(held_out)

    def _network_input(self, rows):
        """Normalised histories as a torch CSR tensor."""
        return csr_from_scipy(_normalise_rows(rows), self._dtype, self._device)

    def _raw_input(self, rows):
        """Histories as they are (the item-item model's input) as a torch CSR tensor."""
        return csr_from_scipy(sp.csr_matrix(rows), self._dtype, self._device)

    # -- fitting -------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the autoencoder to (user, item) interactions.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_interactions, 2)
            (user id, item id) pairs; ids may be any hashable values. Repeated
            pairs add up.
        y : None
            Ignored (implicit feedback has no target); present so that the
            estimator fits in scikit-learn's model selection with rating data,
            whose ratings then only decide relevance in the scorer.
        sample_weight : array-like of shape (n_interactions,), optional
            Positive confidence of each interaction (default 1).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        first_call = not self.warm_start or not hasattr(self, "module_")
        self._resolve_runtime(reset=first_call)
        matrix = self._interaction_matrix(X, sample_weight, first_call)
        self.n_features_in_ = 2
        columns = getattr(X, "columns", None)
        if columns is not None and all(isinstance(c, str) for c in columns):
            self.feature_names_in_ = np.asarray(columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        n_users, n_items = matrix.shape
        self._interactions = matrix
        self.item_popularity_ = np.bincount(matrix.indices, minlength=n_items)

        train, val = self._split(matrix) if self.early_stopping else (matrix, None)
        if first_call:
            with seeded(self._seed):
                deep = KernelNetwork(
                    n_items,
                    self._hidden_sizes(),
                    n_items,
                    embedding_dim=self.embedding_dim,
                    kernel=self.kernel,
                    gated=self.gated,
                    activation=self.activation,
                    device=self._device,
                    dtype=self._dtype,
                )
                shortcut = None
                if self.shortcut:
                    shortcut = KernelLinear(
                        n_items,
                        n_items,
                        embedding_dim=self.embedding_dim,
                        kernel=self.kernel,
                        gated=self.gated,
                        bias=False,
                        device=self._device,
                        dtype=self._dtype,
                    )
                    with torch.no_grad():  # start as the autoencoder alone
                        (shortcut.W if shortcut.W is not None else shortcut.output_scale).zero_()
                self.module_ = ImplicitAutoencoder(deep, shortcut)
        module = self.module_
        module.train()
        batch_size = min(500, n_users) if self.batch_size == "auto" else self.batch_size
        batch_size = min(batch_size, n_users)
        active = np.flatnonzero(np.diff(train.indptr))  # users with a training history
        rng = np.random.RandomState(self._seed)
        keep = 1.0 - self.dropout

        def batches(epoch):
            order = rng.permutation(active)
            return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]

        def batch_closure(users):
            rows = train[users]
            target = torch.as_tensor(rows.toarray(), dtype=self._dtype, device=self._device)
            corrupted = _normalise_rows(rows)
            if self.dropout > 0:
                corrupted.data *= (rng.rand(corrupted.nnz) < keep) / keep
                corrupted.eliminate_zeros()
            inputs = SparseInput(csr_from_scipy(corrupted, self._dtype, self._device))
            loss = multinomial_objective(module, inputs, target, self.alpha, self.kernel_alpha)
            loss.backward()
            return loss.item() * len(users), len(users)

        validate = None
        if val is not None:
            val_users = np.flatnonzero(np.diff(val.indptr))

            def validate():
                module.eval()
                score = self._heldout_ndcg(train, val, val_users)
                module.train()
                return score

        self._train(
            module,
            lambda params, monitor: adam(
                params, batches, batch_closure, monitor, learning_rate=self.learning_rate_init
            ),
            validate=validate,
        )
        module.eval()
        self._fit_item_item(train, val, matrix)
        return self

    def _item_item_enabled(self, n_items):
        if self.item_item == "auto":
            return self.early_stopping and n_items <= _item_item.MAX_ITEMS
        if self.item_item and not self.early_stopping:
            raise ValueError(
                "item_item=True needs early_stopping=True: the item-item penalty and the "
                "blend weight are chosen on the held-out interactions."
            )
        return bool(self.item_item)

    @torch.no_grad()
    def _fit_item_item(self, train, val, matrix):
        """Fit the item-item path and its blend weight on the held-out interactions.

        The penalty is chosen by NDCG@10 of the item-item model alone on the
        held-out interactions (a coarse grid, then its best point's neighbours),
        then the network's weight in the blend from :data:`NETWORK_WEIGHTS`
        (0 included: the item-item model alone); the item-item model is then
        refitted on all interactions with the chosen penalty.
        """
        module = self.module_
        module.item_item = None
        self.item_item_alpha_ = None
        self.network_weight_ = 1.0
        self.item_item_validation_ = {}
        if not self._item_item_enabled(matrix.shape[1]):
            return
        val_users = np.flatnonzero(np.diff(val.indptr))
        system = _item_item.ItemItemSystem(train)

        def linear_scores(score):
            return lambda rows: [score(self._raw_input(rows))]

        # the scorer of the best penalty so far (the first of equals, as max() below picks)
        tried, score, best = {}, None, -np.inf
        for refine in (None, True):
            around = max(tried, key=tried.get) if refine else None
            for lam in system.lambda_candidates(around):
                if lam not in tried:
                    candidate = system.scorer(lam, self._dtype, self._device)
                    scores = self._heldout_ndcg(train, val, val_users, linear_scores(candidate))
                    tried[lam] = scores[0]
                    if tried[lam] > best:
                        score, best = candidate, tried[lam]
        lam = max(tried, key=tried.get)
        del system

        def blends(rows):
            network = _item_item.standardised(self._logits(rows))
            linear = _item_item.standardised(score(self._raw_input(rows)))
            return [_item_item.mix(network, linear, w) for w in _item_item.NETWORK_WEIGHTS]

        by_weight = self._heldout_ndcg(train, val, val_users, blends)
        best = int(np.argmax(by_weight))
        self.network_weight_ = float(_item_item.NETWORK_WEIGHTS[best])
        self.item_item_alpha_ = float(lam)
        self.item_item_validation_ = {
            "alpha": {float(a): float(v) for a, v in sorted(tried.items())},
            "network_weight": {
                float(w): float(v) for w, v in zip(_item_item.NETWORK_WEIGHTS, by_weight)
            },
        }
        if self.network_weight_ < 1.0:
            module.item_item = (
                _item_item.ItemItemSystem(matrix).weights(lam, self._dtype).to(self._device)
            )

    @torch.no_grad()
    def _heldout_ndcg(self, train, val, users, score_rows=None, k=_VALIDATION_K):
        """NDCG@k of the held-out items, each user's training items excluded from the ranking.

        ``score_rows(rows)`` gives a list of score tensors (one per ranking
        compared) for rows of histories; the default is the network alone.
        Returns one mean NDCG per ranking (a float for the default).
        """
        single = score_rows is None
        if single:
            score_rows = lambda rows: [self._logits(rows)]  # noqa: E731
        totals = None
        for start in range(0, len(users), BLOCK_ROWS):
            block = users[start : start + BLOCK_ROWS]
            seen, truth = train[block], val[block]
            sums = [ndcg_sum(scores, seen, truth, k) for scores in score_rows(seen)]
            totals = sums if totals is None else [a + b for a, b in zip(totals, sums)]
        means = [t / len(users) for t in totals]
        return means[0] if single else means

    def _logits(self, rows):
        """Network outputs (a torch tensor on the device) for rows of histories."""
        return self.module_(SparseInput(self._network_input(rows)))

    def _ranking_scores(self, rows):
        """The ranking score of every item for rows of histories (a torch tensor).

        The network's log-probabilities, or, with the item-item path, the blend
        of both paths' standardised scores.
        """
        logits = self._logits(rows)
        weights = getattr(self.module_, "item_item", None)
        if weights is None:
            return torch.log_softmax(logits, dim=1)
        linear = _matmul(self._raw_input(rows), weights)
        return _item_item.blend(logits, linear, self.network_weight_)

    # -- inference -------------------------------------------------------------------------
    def _history_matrix(self, history):
        """Histories of new users (item id lists or {item: weight} mappings) as a CSR matrix."""
        if isinstance(history, (str, bytes)) or not hasattr(history, "__len__"):
            raise ValueError(
                "history must be a sequence with one entry per new user: a list of item ids "
                "or a mapping {item id: weight}."
            )
        rows, cols, weights = [], [], []
        for k, entry in enumerate(history):
            if isinstance(entry, Mapping):
                items = np.asarray(list(entry.keys()))
                values = np.asarray(list(entry.values()), dtype=np.float64)
                if not np.isfinite(values).all() or (values <= 0).any():
                    raise ValueError(f"history {k}: weights must be finite and positive.")
            else:
                if isinstance(entry, (str, bytes)) or np.ndim(entry) == 0:
                    raise ValueError(
                        f"history {k} must be a list of item ids (or a mapping), got {entry!r}."
                    )
                items = np.asarray(entry).reshape(-1)
                values = np.ones(len(items))
            if len(items) == 0:
                raise ValueError(
                    f"history {k} is empty: a new user needs at least one known item "
                    "(recommend for unknown users gives the most popular items)."
                )
            idx = lookup(self.item_ids_, items)
            if (idx < 0).any():
                unknown = np.asarray(items, dtype=object)[idx < 0][:10].tolist()
                raise ValueError(f"history {k} holds items not seen in fit: {unknown}")
            rows.append(np.full(len(idx), k))
            cols.append(idx)
            weights.append(values)
        if not rows:
            raise ValueError("history is empty: pass one item list per new user.")
        matrix = sp.csr_matrix(
            (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(rows), len(self.item_ids_)),
        )
        matrix.sum_duplicates()
        return matrix

    def _user_rows(self, users):
        """Known-user indices (-1 for unknown) after the handle_unknown check."""
        users = np.asarray(users).reshape(-1)
        idx = lookup(self.user_ids_, users)
        if self.handle_unknown == "error" and (idx < 0).any():
            raise ValueError(
                f"users not seen in fit (handle_unknown='error'): {users[idx < 0][:10].tolist()}"
            )
        return idx

    def recommend(self, users=None, n=10, exclude_seen=True, *, history=None):
        """Top-``n`` items for known users, or for new users from their history.

        Parameters
        ----------
        users : array-like of shape (n_users,), optional
            Ids of users seen in fit. Users unseen in fit get the most popular
            items (with ``handle_unknown="fallback"``).
        n : int, default=10
            Items per user (at most the catalogue size).
        exclude_seen : bool, default=True
            Leave out each user's items: their training interactions, or
            their ``history``.
        history : sequence, optional
            Instead of ``users``: one entry per new user, a list of item ids
            or a mapping ``{item id: confidence}``. The model is not changed
            (fold-in is one forward pass). Items unseen in fit raise.

        Returns
        -------
        items : ndarray of shape (n_users, n)
            Item ids, best first.
        scores : ndarray of shape (n_users, n)
            Ranking score of each item: the blend of the standardised network
            and item-item scores, or, when the network ranks alone
            (``network_weight_ == 1``), the log-probability of each item under
            its softmax over the catalogue (the log popularity share for users
            unseen in fit);
            ``-inf`` marks padding when a user has fewer than ``n`` items
            left.
        """
        check_is_fitted(self, "module_")
        n = clip_n(n, len(self.item_ids_))
        if (users is None) == (history is None):
            raise ValueError("pass exactly one of users (known ids) and history (new users).")
        if history is not None:
            rows = self._history_matrix(history)
            return self._rank_rows(rows, np.arange(rows.shape[0]), n, exclude_seen)
        idx = self._user_rows(users)
        return self._rank_rows(self._interactions, idx, n, exclude_seen)

    @torch.no_grad()
    def _rank_rows(self, matrix, idx, n, exclude_seen):
        out_items = np.empty((len(idx), n), dtype=np.int64)
        out_scores = np.empty((len(idx), n), dtype=np.float64)
        prior = np.log(np.maximum(self.item_popularity_, 1e-12) / self.item_popularity_.sum())
        for start in range(0, len(idx), BLOCK_ROWS):
            block = idx[start : start + BLOCK_ROWS]
            known = block >= 0
            scores = np.tile(prior, (len(block), 1))
            if known.any():
                rows = matrix[block[known]]
                ranking = self._ranking_scores(rows)
                scores[known] = ranking.cpu().numpy().astype(np.float64)
                if exclude_seen:
                    seen = rows.tocoo()
                    scores[np.flatnonzero(known)[seen.row], seen.col] = -np.inf
            top, values = top_n(scores, n)
            out_items[start : start + len(block)] = top
            out_scores[start : start + len(block)] = values
        return self.item_ids_[out_items], out_scores

    @torch.no_grad()
    def fold_in(self, history):
        """Vectors of new users from their histories, without changing the model.

        Parameters
        ----------
        history : sequence
            One entry per new user: a list of item ids or a mapping
            ``{item id: confidence}``.

        Returns
        -------
        ndarray of shape (n_new_users, hidden_layer_sizes[-1])
            The last hidden layer's code of each history, comparable with
            :attr:`user_embeddings_`.
        """
        check_is_fitted(self, "module_")
        return self._codes(self._history_matrix(history))

    def _codes(self, rows):
        out = [
            self.module_.hidden(SparseInput(self._network_input(rows[s : s + BLOCK_ROWS])))
            .cpu()
            .numpy()
            for s in range(0, rows.shape[0], BLOCK_ROWS)
        ]
        width = self.module_.layers[-1].in_features
        return np.concatenate(out) if out else np.empty((0, width), np.float32)

    @property
    def user_embeddings_(self):
        """ndarray of shape (n_users, hidden_layer_sizes[-1]): each user's code.

        The last hidden layer's activations for the user's training history.
        """
        check_is_fitted(self, "module_")
        with torch.no_grad():
            return self._codes(self._interactions)

    @property
    def item_embeddings_(self):
        """ndarray of shape (n_items, hidden_layer_sizes[-1]): each item's output weights.

        Column ``i`` of the last layer's effective weight matrix: the user code
        ``h`` scores item ``i`` by ``h @ item_embeddings_[i] + bias_i``.
        """
        check_is_fitted(self, "module_")
        with torch.no_grad():
            return self.module_.layers[-1].weight.T.cpu().numpy().copy()

    def transform(self, X):
        """Vectors of the user and of the item of each (user, item) pair.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_pairs, 2)

        Returns
        -------
        ndarray of shape (n_pairs, 2 * hidden_layer_sizes[-1])
            ``user_embeddings_`` of the user followed by ``item_embeddings_``
            of the item; zeros for an id unseen in fit (with
            ``handle_unknown="fallback"``).
        """
        check_is_fitted(self, "module_")
        users, items = as_pairs(X)
        user_idx, item_idx = lookup(self.user_ids_, users), lookup(self.item_ids_, items)
        if self.handle_unknown == "error":
            for name, ids, idx in (("users", users, user_idx), ("items", items, item_idx)):
                if (idx < 0).any():
                    unknown = np.unique(np.asarray(ids, dtype=object)[idx < 0])[:10].tolist()
                    raise ValueError(
                        f"X contains {name} not seen in fit (handle_unknown='error'): {unknown}"
                    )
        width = self.module_.layers[-1].in_features
        out = np.zeros((len(users), 2 * width), dtype=np.float32)
        known = user_idx >= 0
        if known.any():
            unique, inverse = np.unique(user_idx[known], return_inverse=True)
            with torch.no_grad():
                out[known, :width] = self._codes(self._interactions[unique])[inverse]
        items_known = item_idx >= 0
        out[items_known, width:] = self.item_embeddings_[item_idx[items_known]]
        return out

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
        width = self.module_.layers[-1].in_features
        names = [f"user{k}" for k in range(width)] + [f"item{k}" for k in range(width)]
        return np.asarray(names, dtype=object)

    def similar_items(self, items, n=10):
        """The ``n`` items most similar to each given item.

        Similarity is the cosine of the items' output weight vectors
        (:attr:`item_embeddings_`) centred on their mean over the catalogue:
        two items are similar when the same user codes score them alike,
        beyond what every popular item shares. Exact (every item is
        compared), in blocks.

        Parameters
        ----------
        items : array-like of shape (n_queries,)
            Item ids seen in fit.
        n : int, default=10
            Neighbours per item (at most ``n_items - 1``); the item itself is
            left out.

        Returns
        -------
        neighbours : ndarray of shape (n_queries, n)
            Item ids, most similar first.
        similarities : ndarray of shape (n_queries, n)
            Cosine similarities in [-1, 1].
        """
        check_is_fitted(self, "module_")
        items = np.asarray(items).reshape(-1)
        idx = lookup(self.item_ids_, items)
        if (idx < 0).any():
            unknown = np.asarray(items, dtype=object)[idx < 0][:10].tolist()
            raise ValueError(f"items not seen in fit: {unknown}")
        if len(self.item_ids_) < 2:
            raise ValueError("similar_items needs a catalogue of at least 2 items.")
        n = clip_n(n, len(self.item_ids_) - 1)
        vectors = self.item_embeddings_.astype(np.float64)
        # Every column shares a component that scores all popular items up for every user;
        # left in, it makes every popular item look like every other.
        vectors -= vectors.mean(axis=0)
        neighbours, similarity = cosine_neighbours(vectors, idx, n)
        return self.item_ids_[neighbours], similarity

    def score(self, X, y=None):
        """NDCG@10 of held-out interactions (every pair relevant).

        The default score of model selection: ``GridSearchCV(model, grid)``
        ranks candidates by it. For other metrics or a rating threshold use
        :func:`skkernelnet.metrics.make_ranking_scorer`.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2)
            Held-out (user id, item id) pairs, disjoint from the training pairs.
        y : None
            Ignored.

        Returns
        -------
        float
        """
        from .metrics import evaluate_recommender

        k = min(_VALIDATION_K, len(self.item_ids_))
        return evaluate_recommender(self, X, k=k)["ndcg"]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.target_tags.required = False
        return tags
