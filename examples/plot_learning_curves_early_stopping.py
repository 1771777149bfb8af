"""
==================================
Learning curves and early stopping
==================================

Every estimator records its training objective after each iteration in
``loss_curve_``. With ``early_stopping=True`` it also holds out
``validation_fraction`` of the training data, scores it after each iteration
(accuracy for classifiers, :math:`R^2` for regressors, minus the RMSE for the
recommender) into ``validation_scores_``, stops once the score has not improved
by ``tol`` for ``n_iter_no_change`` iterations, and restores the parameters of
the best iteration, ``best_iter_``.

This example draws both curves for the two solvers, mini-batch Adam (one point
per epoch) and full-batch L-BFGS (one point per iteration), on the digits.
"""

# %%
# Fit with early stopping
# -----------------------
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skkernelnet import KernelNetClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

common = dict(
    hidden_layer_sizes=(64,),
    kernel="rbf",
    embedding_dim=5,
    early_stopping=True,
    validation_fraction=0.2,
    n_iter_no_change=15,
    random_state=0,
)
models = {
    "adam": KernelNetClassifier(solver="adam", learning_rate_init=3e-3, max_iter=300, **common),
    "lbfgs": KernelNetClassifier(solver="lbfgs", max_iter=500, **common),
}
for name, model in models.items():
    model.fit(X_train, y_train)
    print(
        f"{name}: stopped after {model.n_iter_} iterations ({model.stop_reason_}), "
        f"best iteration {model.best_iter_}, validation accuracy "
        f"{model.best_validation_score_:.3f}, test accuracy {model.score(X_test, y_test):.3f}"
    )

# %%
# The curves
# ----------
# The training objective keeps falling; the validation accuracy levels off and
# then wanders. The dashed line marks ``best_iter_``, whose parameters the fitted
# model holds; the curves go on for ``n_iter_no_change`` iterations after it.
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, (name, model) in zip(axes, models.items()):
    iterations = range(1, len(model.loss_curve_) + 1)
    ax.plot(iterations, model.loss_curve_, color="C0")
    ax.set_yscale("log")
    ax.set_xlabel("epoch" if name == "adam" else "iteration")
    ax.set_ylabel("training objective (loss_curve_)", color="C0")
    twin = ax.twinx()
    twin.plot(iterations, model.validation_scores_, color="C1")
    twin.set_ylabel("validation accuracy (validation_scores_)", color="C1")
    twin.set_ylim(0.8, 1.0)
    ax.axvline(model.best_iter_, color="k", ls="--", lw=1)
    ax.annotate(
        f"best_iter_ = {model.best_iter_}",
        (model.best_iter_, 0.5),
        xycoords=("data", "axes fraction"),
        xytext=(5, 0),
        textcoords="offset points",
    )
    ax.set_title(f'solver="{name}"')
fig.tight_layout()

# %%
# Continuing to train
# -------------------
# The Adam solver also offers ``partial_fit``, which runs one epoch on the data
# it is given (without early stopping), and ``warm_start=True`` makes ``fit``
# continue from the current parameters instead of starting over. Either way the
# new iterations are appended to ``loss_curve_``.
incremental = KernelNetClassifier(solver="adam", learning_rate_init=3e-3, random_state=0)
classes = sorted(set(y_train))
for _ in range(30):
    incremental.partial_fit(X_train, y_train, classes=classes)
print(f"after 30 partial_fit calls: {incremental.n_iter_} epochs, "
      f"test accuracy {incremental.score(X_test, y_test):.3f}")  # fmt: skip
plt.show()
