"""
===============================================================
Receptive fields with and without imposed pixel positions
===============================================================

The weight from pixel :math:`i` to hidden neuron :math:`j` of a kernelized
layer is :math:`W_{ij} K(u_i, v_j)`. Usually the points :math:`u_i` of the
pixels are learned, and nothing makes them respect the image's geometry
(:ref:`sphx_glr_auto_examples_plot_digits_feature_embeddings.py`). Here we
give them instead: ``input_positions=grid_positions((8, 8))`` puts every pixel
at its place on the 8 x 8 grid, fixed, and each hidden neuron learns only
where its own point :math:`v_j` lies on that grid (see :ref:`theory_positions`).
We draw each hidden neuron's weights over the pixel grid, its *receptive
field*, for the two networks.
"""

# %%
# Two networks that differ only in the pixels' positions
# ------------------------------------------------------
# Both gate a free weight per connection with a finite-support kernel of
# radius 2.5 (``gated=True``): with fixed pixel positions the kernel is zero
# for every pixel more than 2.5 pixels away from the neuron's point, so the
# layer is a locally connected one whose patches are placed by training.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skkernelnet import KernelNetClassifier
from skkernelnet.kernels import FiniteSupportKernel
from skkernelnet.positions import grid_positions

# The fits may stop at max_iter: that budget is enough for the picture.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

common = dict(
    hidden_layer_sizes=(32,),
    kernel=FiniteSupportKernel(radius=2.5),
    embedding_dim=2,
    gated=True,
    max_iter=200,
    random_state=0,
)
pixels = grid_positions((8, 8))  # (64, 2): row and column of each pixel, centred
models = {
    "learned positions": KernelNetClassifier(**common),
    "fixed pixel-grid positions": KernelNetClassifier(**common, input_positions=pixels),
}
for name, model in models.items():
    model.fit(X_train, y_train)
    zeros = model.module_.layers[0].sparsity()
    print(
        f"{name:27s} test accuracy {model.score(X_test, y_test):.3f}, "
        f"{model.n_free_parameters_} trained parameters, "
        f"{100 * zeros:.0f} % of first-layer weights exactly zero"
    )

# %%
# The receptive fields
# --------------------
# Column ``j`` of the first layer's effective weight (``module_.layers[0].weight``,
# of shape ``(64, 32)``) is hidden neuron ``j``'s receptive field; reshaped to
# 8 x 8 it is drawn where the pixels are. Red is positive, blue negative,
# white exactly zero. With fixed positions a cross marks the neuron's learned
# point :math:`v_j`, in pixel coordinates.
n_shown = 8
fig, axes = plt.subplots(2, n_shown, figsize=(12, 3.4))
for row, (name, model) in zip(axes, models.items()):
    layer = model.module_.layers[0]
    weight = layer.weight.detach().numpy()
    centres = layer.output_embeddings.detach().numpy() + 3.5  # grid_positions is centred
    for j, ax in enumerate(row):
        field = weight[:, j].reshape(8, 8)
        limit = np.abs(field).max() or 1.0
        ax.imshow(field, cmap="RdBu_r", vmin=-limit, vmax=limit)
        if layer.input_positions is not None:
            ax.plot(centres[j, 1], centres[j, 0], "kx", ms=6)
        ax.set_xticks([])
        ax.set_yticks([])
    row[0].set_ylabel(name.replace(" positions", "\npositions"), fontsize=9)
fig.suptitle("first 8 hidden neurons' weights over the 8 x 8 pixel grid")
fig.tight_layout()

# %%
# With learned positions every hidden neuron draws on pixels all over the image,
# because the classification loss does not care whether the pixels it groups are
# neighbours. With the pixels held at their grid positions, the finite-support
# kernel confines each neuron to a disk of radius 2.5 pixels around its learned
# centre, so the layer learns local stroke detectors whose placement, not shape
# of support, is trained.
#
# The prior makes the layer interpretable; on these small, centred digits it does
# not make it more accurate, not even with a tenth of the training images
# (``benchmarks/bench_positions.py``, :ref:`theory_positions`).
plt.show()
