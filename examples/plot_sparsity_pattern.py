r"""
==================================================
Exact zeros: the sparsity of finite-support layers
==================================================

The finite-support kernel :math:`K(u, v) = \max(0, 1 - \lVert u - v \rVert^2 / r^2)`
is exactly zero once two neuron points are at least :math:`r` apart, so a layer
built on it has weights that are exactly zero: not small, zero. Which weights
vanish is decided by where the layer puts its points, that is, it is learned.

This example looks at the effective weight matrix of trained finite-support
layers, reads off their :meth:`~skkernelnet.layers.KernelLinear.sparsity`, and
shows which knobs set how sparse they are.
"""

# %%
# A gated finite-support network on the digits
# --------------------------------------------
# In the gated form the weight is :math:`\tilde W_{ij} K(u_i, v_j)`. The points
# start close together (every kernel value near 1), so the layer starts dense;
# the penalty ``kernel_alpha`` on :math:`\tfrac12 \lVert K \rVert^2` then pushes
# apart the points of neurons that need no connection, until their weight is
# exactly zero.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skkernelnet import KernelNetClassifier
from skkernelnet.kernels import FiniteSupportKernel

# The fits stop at max_iter=200, the budget that keeps this example fast.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

clf = KernelNetClassifier(
    hidden_layer_sizes=(64,),
    kernel="finite_support",
    gated=True,
    kernel_alpha=1.0,
    max_iter=200,
    random_state=0,
).fit(X_train, y_train)
first, second = clf.module_.layers
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")
print(f"layer 1 (64 pixels -> 64 hidden): {first.sparsity():.1%} of the weights are exactly 0")
print(f"layer 2 (64 hidden -> 10 classes): {second.sparsity():.1%} of the weights are exactly 0")

# %%
# The effective weight matrix
# ---------------------------
# ``layer.weight`` is the effective ``(in_features, out_features)`` matrix. We
# draw the first layer's weights (white: exactly zero) with the hidden neurons
# sorted by their number of connections, and, for each pixel, how many hidden
# neurons it still reaches.
W = first.weight.detach().numpy()
order = np.argsort(-(W != 0).sum(axis=0))
limit = np.abs(W).max()
fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), width_ratios=[2.2, 1, 1])
masked = np.ma.masked_equal(W[:, order].T, 0)
image = axes[0].imshow(masked, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
axes[0].set_facecolor("white")
axes[0].set(xlabel="input pixel", ylabel="hidden neuron (sorted)")
axes[0].set_title(f"layer 1 weights, {first.sparsity():.0%} exactly zero")
fig.colorbar(image, ax=axes[0], shrink=0.8)

fan_out = (W != 0).sum(axis=1).reshape(8, 8)
image = axes[1].imshow(fan_out, cmap="magma")
axes[1].set_title("hidden neurons reached\nby each pixel")
axes[1].set_xticks([])
axes[1].set_yticks([])
fig.colorbar(image, ax=axes[1], shrink=0.8)

axes[2].imshow(X_train.std(axis=0).reshape(8, 8), cmap="gray")
axes[2].set_title("pixel standard deviation\n(for comparison)")
axes[2].set_xticks([])
axes[2].set_yticks([])
fig.tight_layout()

# %%
# The pixels that carry information keep connections; the border pixels, which
# are nearly always blank, lose all of theirs. Whole hidden neurons lose every
# input too (the empty rows): the penalty prunes neurons as well as weights. No
# pruning step or threshold was involved: the pattern is the geometry of the
# learned points.
#
# What sets the sparsity
# ----------------------
# We refit the same network for a few values of ``kernel_alpha`` and of the
# radius ``r`` of the kernel (:class:`~skkernelnet.kernels.FiniteSupportKernel`),
# and record the first layer's sparsity and the test accuracy.
kernel_alphas = [0.1, 1.0, 3.0]
radii = [0.5, 2.0]
results = {}
for radius in radii:
    for kernel_alpha in kernel_alphas:
        model = KernelNetClassifier(
            hidden_layer_sizes=(64,),
            kernel=FiniteSupportKernel(radius=radius),
            gated=True,
            kernel_alpha=kernel_alpha,
            max_iter=200,
            random_state=0,
        ).fit(X_train, y_train)
        results[radius, kernel_alpha] = (
            model.module_.layers[0].sparsity(),
            model.score(X_test, y_test),
        )

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
for radius, marker in zip(radii, ["o", "s"]):
    sparsity, accuracy = zip(*(results[radius, a] for a in kernel_alphas))
    left.plot(kernel_alphas, sparsity, marker=marker, label=f"radius {radius}")
    right.plot(kernel_alphas, accuracy, marker=marker, label=f"radius {radius}")
left.set(xscale="log", xlabel="kernel_alpha", ylabel="fraction of zero weights (layer 1)")
right.set(xscale="log", xlabel="kernel_alpha", ylabel="test accuracy", ylim=(0.8, 1.0))
left.legend()
right.legend()
fig.tight_layout()

# %%
# Both knobs act in the same direction: a stronger ``kernel_alpha`` and a
# smaller radius give sparser layers. Accuracy hardly moves until the layer is
# so sparse that it cuts connections it needs (radius 0.5 with
# ``kernel_alpha=3``). The radius acts through the initialisation: a gated layer
# starts with its points within about :math:`10^{-3}` of each other, and a
# smaller radius means that the penalty has less far to push them before their
# kernel value reaches zero.
#
# In the ungated form (``gated=False``) the points start spread out, at a scale
# fixed by ``embedding_dim``, and the radius decides how many pairs start inside
# each other's support. A bare :class:`~skkernelnet.layers.KernelLinear` shows
# this at initialisation, without any training:
import torch

from skkernelnet.layers import KernelLinear

torch.manual_seed(0)
for radius in [0.5, 1.0, 1.5, 2.0, 3.0]:
    layer = KernelLinear(64, 64, kernel=FiniteSupportKernel(radius=radius), gated=False)
    print(f"ungated, radius {radius}: {layer.sparsity():.0%} zero weights at initialisation")

plt.show()
