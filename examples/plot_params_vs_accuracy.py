r"""
==============================================
Accuracy against the number of free parameters
==============================================

A dense layer from :math:`n_\text{in}` to :math:`n_\text{out}` neurons trains
:math:`n_\text{in} n_\text{out}` weights. An ungated kernelized layer trains a
point of ``embedding_dim`` numbers per neuron (and, for kernels that are never
negative, ``scale_rank`` signed scales): :math:`(n_\text{in} + n_\text{out})(d + r)`
numbers.
How much accuracy does that compression cost?

This example trains one-hidden-layer networks of several widths on the digits:
scikit-learn's dense :class:`~sklearn.neural_network.MLPClassifier` and
:class:`~skkernelnet.KernelNetClassifier` with ungated RBF layers, and plots
test accuracy against the number of trained numbers.
"""

# %%
# Train both families over a range of widths
# ------------------------------------------
# Both use full-batch L-BFGS for at most 300 iterations and the same small L2
# penalty. For the MLP we count the entries of ``coefs_`` and ``intercepts_``;
# for the kernelized network, ``module_.n_free_parameters()`` (also available as
# ``n_free_parameters_``).
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from skkernelnet import KernelNetClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

widths = [8, 16, 32, 64, 128]
dense, kernelized = "MLPClassifier (dense)", "KernelNetClassifier, ungated RBF, d=3, r=2"
curves = {dense: [], kernelized: []}
for width in widths:
    with warnings.catch_warnings():  # a few fits stop at max_iter; that is the budget
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier((width,), solver="lbfgs", alpha=1e-4, max_iter=300, random_state=0)
        mlp.fit(X_train, y_train)
        knet = KernelNetClassifier(
            (width,), kernel="rbf", embedding_dim=3, gated=False, max_iter=300, random_state=0
        ).fit(X_train, y_train)
    n_mlp = sum(w.size for w in mlp.coefs_) + sum(b.size for b in mlp.intercepts_)
    n_knet = knet.module_.n_free_parameters()
    curves[dense].append((n_mlp, mlp.score(X_test, y_test)))
    curves[kernelized].append((n_knet, knet.score(X_test, y_test)))
    print(
        f"width {width:3d}: dense {n_mlp:5d} parameters, accuracy {curves[dense][-1][1]:.3f} | "
        f"kernelized {n_knet:5d} parameters, accuracy {curves[kernelized][-1][1]:.3f}"
    )

# %%
# The trade-off
# -------------
fig, ax = plt.subplots(figsize=(7, 4.5))
for (name, points), marker in zip(curves.items(), ["o", "s"]):
    n_params, accuracy = zip(*points)
    ax.plot(n_params, accuracy, marker=marker, label=name)
    for width, n, acc in zip(widths, n_params, accuracy):
        ax.annotate(str(width), (n, acc), xytext=(4, -10), textcoords="offset points", fontsize=8)
ax.set_xscale("log")
ax.set_xlabel("number of trained parameters")
ax.set_ylabel("test accuracy")
ax.set_ylim(0.8, 1.0)
ax.set_title("digits, one hidden layer (labels: its width)")
ax.legend(loc="lower right")
ax.grid(alpha=0.3)
fig.tight_layout()

# %%
# On this small problem the two families lie close to one curve: per trained
# parameter, the kernelized networks are about as accurate as the dense ones,
# and less so at the smallest sizes. What the kernel changes is how
# the count grows with the width: with the sum :math:`n_\text{in} + n_\text{out}`
# of the layer sizes, not with their product. The widest kernelized network
# here (128 hidden neurons) has fewer parameters than the dense network with 32.
#
# The saving grows with the layers: for the 6,040-to-500 layers of a MovieLens
# model it is a factor of about 77 (see :ref:`parameter_counts`). It is a
# saving in parameters, not in arithmetic: each layer still computes its full
# weight matrix from the kernel, so an epoch costs about what it costs for a
# dense network of the same width.
plt.show()
