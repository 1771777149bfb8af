"""
==========================================
Movies in a learned rating embedding space
==========================================

:class:`~skkernelnet.KernelCollaborativeFilter` learns from ratings alone: it
never sees a title or a genre. This example fits a small model to the MovieLens
"latest-small" ratings that ship with skkernelnet and draws the movies in the
space the network learned, coloured by genre, to see whether that information
emerged anyway.

With ``orientation="item"`` (the default, the model of Muller et al., 2018) every
movie is a sample: its vector of ratings by all users goes through the network,
and the activations of the last hidden layer are the movie's code, exposed as
``item_embeddings_``. (With ``orientation="user"`` the roles swap and a movie is
an input neuron whose ``item_embeddings_`` are its kernel points ``[u, v]``.) We
project the codes to two dimensions with a PCA.
"""

# %%
# Fit a small rating autoencoder
# ------------------------------
# One hidden layer of 100 kernelized neurons and at most 100 L-BFGS iterations
# keep this example fast; early stopping holds out a share of the training
# ratings and restores the best iteration. ``blend=False`` trains only the
# item-based autoencoder whose codes we draw (by default a user-based one is
# trained alongside and the two predictions are blended, for accuracy).
import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import train_test_split

from skkernelnet import KernelCollaborativeFilter
from skkernelnet.datasets import fetch_movielens
from skkernelnet.recommender import RatingBaseline

movielens = fetch_movielens("latest-small")
X, y = movielens.data, movielens.target  # X: (user id, movie id) pairs
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=0)

model = KernelCollaborativeFilter(
    hidden_layer_sizes=(100,), alpha=2.0, max_iter=100, blend=False, random_state=0
).fit(X_train, y_train)
baseline = RatingBaseline().fit(X_train, y_train)
print(f"iterations: {model.n_iter_}, best: {model.best_iter_}")
print(f"test RMSE, kernel model: {root_mean_squared_error(y_test, model.predict(X_test)):.3f}")
print(f"test RMSE, mean + biases: {root_mean_squared_error(y_test, baseline.predict(X_test)):.3f}")

# %%
# :class:`~skkernelnet.recommender.RatingBaseline` (the global mean plus user and
# item biases) is the yardstick of rating models. This small model, trained for
# seconds, is meant for pictures, not for accuracy: the default, larger model is
# the one to use for predictions (see the :ref:`benchmarks`).
#
# Project the codes of the movies with at least 40 training ratings
# -----------------------------------------------------------------
# A movie seen by a handful of users has a code built from a handful of
# ratings; we keep the movies with enough ratings to place them reliably.
codes = model.item_embeddings_  # (n_movies, 100), rows in model.item_ids_ order
n_ratings = np.bincount(np.searchsorted(model.item_ids_, X_train[:, 1]), minlength=len(codes))
keep = n_ratings >= 40
points = PCA(n_components=2, random_state=0).fit_transform(codes[keep])

catalogue = np.searchsorted(movielens.item_ids, model.item_ids_[keep])
titles = movielens.item_titles[catalogue]
genres = [movielens.item_genres[k] for k in catalogue]
mean_rating = (
    np.bincount(
        np.searchsorted(model.item_ids_, X_train[:, 1]), weights=y_train, minlength=len(codes)
    )[keep]
    / n_ratings[keep]
)
print(f"{keep.sum()} movies drawn")

# %%
# Colour by genre, and by average rating
# --------------------------------------
# A movie has several genres; we colour it by the first of these groups that it
# belongs to, from the most to the least specific.
GROUPS = [
    ("Animation / Children", {"Animation", "Children"}),
    ("Horror", {"Horror"}),
    ("Sci-Fi / Fantasy", {"Sci-Fi", "Fantasy"}),
    ("Action / Adventure", {"Action", "Adventure"}),
    ("Romance", {"Romance"}),
    ("Crime / Thriller", {"Crime", "Thriller", "Mystery", "Film-Noir"}),
    ("Drama", {"Drama"}),
    ("Comedy", {"Comedy"}),
]
group = np.array(
    [next((k for k, (_, gs) in enumerate(GROUPS) if gs & set(g)), len(GROUPS)) for g in genres]
)

fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6.5))
for k, (name, _) in enumerate(GROUPS):
    left.scatter(*points[group == k].T, s=14, color=plt.cm.tab10(k), label=name, alpha=0.8)
left.scatter(*points[group == len(GROUPS)].T, s=14, color="0.7", label="other")
left.legend(fontsize=8, loc="best", markerscale=1.5)
left.set_title("movie codes (PCA), coloured by genre")

sc = right.scatter(*points.T, c=mean_rating, cmap="RdYlBu", s=14, vmin=2.5, vmax=4.5)
fig.colorbar(sc, ax=right, label="average training rating")
right.set_title("the same points, coloured by average rating")

# Label the most rated movies.
for k in np.argsort(-n_ratings[keep])[:14]:
    for ax in (left, right):
        ax.annotate(
            titles[k].split(" (")[0][:28], points[k], fontsize=7, xytext=(3, 3),
            textcoords="offset points",
        )  # fmt: skip
for ax in (left, right):
    ax.margins(x=0.2, y=0.08)  # room for the labels
    ax.set_xlabel("first principal component")
    ax.set_ylabel("second principal component")
fig.tight_layout()

# %%
# What the codes hold
# -------------------
# The network placed the movies from ratings alone, and yet the picture is
# organised. Two quantities dominate rating data: how well a movie is rated on
# average (the item bias) and how often it is rated (its popularity). The
# correlations of the two principal components with them tell which directions
# of the map they took:
log_count = np.log(n_ratings[keep])
for k in range(2):
    print(
        f"component {k + 1}: correlation with the average rating "
        f"{np.corrcoef(points[:, k], mean_rating)[0, 1]:+.2f}, "
        f"with log(number of ratings) {np.corrcoef(points[:, k], log_count)[0, 1]:+.2f}"
    )

# %%
# Genres then occupy regions of the map: movies that the same users rate alike
# lie together. The mean position of each genre group, in units of the spread of
# the map, makes that visible in numbers:
centre, spread = points.mean(axis=0), points.std(axis=0)
for k, (name, _) in enumerate(GROUPS):
    mean = (points[group == k].mean(axis=0) - centre) / spread
    count = np.sum(group == k)
    print(f"{name:>22}: {count:3d} movies, mean position ({mean[0]:+.2f}, {mean[1]:+.2f})")

# %%
# The most rated movies, whose codes are the best determined, are labelled. A
# map of 9,000 movies from one minute of training on 100,000 ratings is coarse,
# but it is learned from nothing but who rated what, and how.
plt.show()
