"""
=====================================================
Where does a kernelized network put the digit pixels?
=====================================================

The first layer of a :class:`~skkernelnet.KernelNetClassifier` gives every input
feature a learned point :math:`u_i`; the weight from pixel :math:`i` to hidden
neuron :math:`j` is :math:`K(u_i, v_j)`. With ``embedding_dim=2`` these points
form a map of the features, available after fitting as ``feature_embeddings_``.

The 8x8 digits are a natural test: the pixels have a true position on a grid.
Does the map the network learns for classification recover it? We colour every
pixel by its grid position (red for the row, blue for the column) and draw the
same colours at the learned positions, with a line between grid neighbours.
"""

# %%
# Fit a classifier with two-dimensional neuron embeddings
# -------------------------------------------------------
# An ungated layer (``gated=False``) takes its weights from the kernel alone
# (times a signed scale per neuron), so the positions of the points decide
# every weight; with the RBF kernel, pixels whose points are close send similar
# weights to every hidden neuron.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skkernelnet import KernelNetClassifier

# The fit may stop at max_iter: that budget is enough for the picture.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

clf = KernelNetClassifier(
    hidden_layer_sizes=(64,),
    kernel="rbf",
    embedding_dim=2,
    gated=False,
    max_iter=300,
    random_state=0,
).fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")
print(f"trained parameters: {clf.n_free_parameters_}")

embedding = clf.feature_embeddings_  # (64, 2): one point per pixel
print(embedding.shape)

# %%
# The grid and the learned map, side by side
# ------------------------------------------
row, col = np.divmod(np.arange(64), 8)
colours = np.column_stack([row / 7, 0.35 * np.ones(64), col / 7])
pixel_std = X_train.std(axis=0)
constant = pixel_std == 0  # pixels that are 0 in every training image
neighbours = [(i, i + 1) for i in range(64) if col[i] < 7]
neighbours += [(i, i + 8) for i in range(56)]


def draw(ax, points, title):
    for i, j in neighbours:
        ax.plot(*points[[i, j]].T, color="0.85", lw=0.8, zorder=1)
    ax.scatter(*points[~constant].T, c=colours[~constant], s=60, zorder=2)
    ax.scatter(*points[constant].T, facecolor="none", edgecolor="0.4", s=60, zorder=2)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


grid = np.column_stack([col, -row]).astype(float)
fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
draw(axes[0], grid, "pixel positions on the 8x8 grid")
draw(axes[1], embedding, "learned feature_embeddings_")
sc = axes[2].scatter(*embedding.T, c=pixel_std, cmap="viridis", s=60)
axes[2].set_title("learned map, coloured by pixel std")
axes[2].set_xticks([])
axes[2].set_yticks([])
fig.colorbar(sc, ax=axes[2], shrink=0.8)
fig.tight_layout()

# %%
# No grid
# -------
# The learned map does not look like the grid: neighbouring pixels (joined by
# grey lines) are scattered across it. A rank correlation between the distances
# of pixel pairs on the grid and in the map puts a number on it; for comparison,
# we also compute it for the pixels' correlations, the only trace of their
# positions that the training data carries.
varying = ~constant
grid_dist = pdist(grid[varying])
map_rho = spearmanr(pdist(embedding[varying]), grid_dist).correlation
corr_dist = 1 - np.corrcoef(X_train[:, varying].T)[np.triu_indices(varying.sum(), 1)]
corr_rho = spearmanr(corr_dist, grid_dist).correlation
print(f"grid distance vs learned-map distance, Spearman rho = {map_rho:+.2f}")
print(f"grid distance vs 1 - pixel correlation, Spearman rho = {corr_rho:+.2f}")

# %%
# This is expected. A fully connected network is indifferent to the order of its
# inputs: permute the pixels and it learns the same function. Nothing in the
# classification loss rewards placing neighbouring pixels close together, and
# even the pixel correlations reflect the grid only weakly on these small,
# centred digits.
#
# What the map does show is the role each pixel plays. Pixels that are zero in
# every image (hollow circles) get no gradient at all and stay where they were
# initialised; pixels that vary most, near the centre of the digits, sit apart
# from one another, where each can address its own set of hidden neurons. The
# same holds for the feature maps of other data: ``feature_embeddings_`` groups
# features by how the network uses them, not by any external geometry they may
# have.
plt.show()
