"""
====================================================
Similar movies, and recommendations for a new viewer
====================================================

A fitted :class:`~skkernelnet.KernelCollaborativeFilter` answers two questions
of a recommender in production besides "what rating would this user give?":
*which movies are like this one?* (:meth:`~skkernelnet.KernelCollaborativeFilter.similar_items`)
and *what should someone who signed up after training watch?* (``history`` of
:meth:`~skkernelnet.KernelCollaborativeFilter.recommend`, which folds a new
user in from a few ratings without refitting).

The model learns from ratings alone. Two movies are similar when the model
predicts that the same users like both more than their usual, and the same
users less: the cosine between the movies' rows of the predicted rating matrix
after each user's mean is removed (see :ref:`similar`).
"""

# %%
# Fit a small model to the bundled MovieLens ratings
# --------------------------------------------------
# One hidden layer of 100 neurons and at most 100 L-BFGS iterations keep this
# example fast; the default, larger model is the one to use for accuracy.
# ``alpha=0.3`` (more weight decay than the default 0.045) keeps this small
# model's fit short.
import matplotlib.pyplot as plt
import numpy as np

from skkernelnet import KernelCollaborativeFilter
from skkernelnet.datasets import fetch_movielens

movielens = fetch_movielens("latest-small")
X, y = movielens.data, movielens.target
title = dict(zip(movielens.item_ids, movielens.item_titles))

model = KernelCollaborativeFilter(
    hidden_layer_sizes=(100,), alpha=0.3, max_iter=100, blend=False, random_state=0
).fit(X, y)
print(f"{len(model.user_ids_)} users, {len(model.item_ids_)} movies, {model.n_iter_} iterations")
print(f"validation RMSE {-model.best_validation_score_:.3f}, "
      f"network weight {model.network_weights_.round(2).tolist()}")

# %%
# Neighbours of a few well-known films
# ------------------------------------
# ``similar_items`` compares every query with every movie, exactly, in bounded
# chunks. A movie rated by a handful of users has a noisy representation, so we
# ask for more neighbours than we show and keep those with at least 30 ratings.
counts = dict(zip(*np.unique(X[:, 1], return_counts=True)))
queries = {1: "Toy Story", 260: "Star Wars", 858: "The Godfather", 593: "Silence of the Lambs"}
neighbours, similarity = model.similar_items(list(queries), n=200)

fig, axes = plt.subplots(len(queries), 1, figsize=(7, 2.2 * len(queries)))
for ax, query, row, scores in zip(axes, queries, neighbours, similarity):
    keep = [k for k, movie in enumerate(row) if counts[movie] >= 30][:5]
    names = [title[row[k]][:45] for k in keep]
    print(f"\n{title[query]}")
    for k, name in zip(keep, names):
        print(f"  {scores[k]:.2f}  {name}")
    ax.barh(names[::-1], scores[keep][::-1], color="tab:blue")
    ax.set_xlim(0, 1)
    ax.set_title(f"most similar to {title[query]}", fontsize=10)
axes[-1].set_xlabel("cosine similarity of predicted-rating profiles")
fig.tight_layout()
plt.show()

# %%
# The neighbours share audiences (the other Star Wars films and Indiana Jones
# next to Star Wars). Many similarities are close to 1: the predictions of a
# small model trained for seconds vary mostly along one direction, how much a
# film is liked by the users who like acclaimed films, and the ranking among
# the top neighbours is decided by the remaining directions.
#
# A new viewer, folded in from four ratings
# -----------------------------------------
# Someone who was not in the training data rates four movies. ``recommend``
# with their ``history`` folds them in (their output neuron is solved for
# against the fixed movie codes, in milliseconds) and ranks the unseen movies;
# without a history every new user would get the same popularity list.
history_items = [260, 1196, 1210, 2571]  # Star Wars IV, V, VI and The Matrix
history = ([["new viewer", item] for item in history_items], [5.0, 5.0, 4.5, 5.0])
print("history:", ", ".join(title[i] for i in history_items))

items, scores = model.recommend(["new viewer"], n=8, history=history)
print("\nrecommended with the history:")
for item, score in zip(items[0], scores[0]):
    print(f"  {score:.2f}  {title[item]}")
popular, _ = model.recommend(["new viewer"], n=8)
print("\nwithout a history (popularity):", "; ".join(title[i] for i in popular[0]))
print(f"{len(set(items[0]) - set(popular[0]))} of the 8 differ from the popularity list")

# %%
# How far the history moves the list depends on how much the model trusts its
# networks over the bias baseline (``network_weights_``, fitted on held-out
# ratings): this small model gives them a small weight, so its top of the list
# for the new viewer stays the popularity list, and the folded-in predictions
# move mostly by the viewer's rating bias (they rate above average), with the
# network adding a few hundredths more to the science-fiction films than to
# the romances. :ref:`fold_in` measures the fold-in of the default model on
# MovieLens-1M, with the networks' weights it fitted there.
films = [1200, 1240, 541, 1721, 8533]  # Aliens, Terminator, Blade Runner, Titanic, Notebook
pairs = [["new viewer", film] for film in films]
folded = model.predict(pairs, history=history)
fallback = model.predict(pairs)  # what every unknown user gets
for film, before, after in zip(films, fallback, folded):
    print(f"  {before:.2f} -> {after:.2f}  {title[film]}")
