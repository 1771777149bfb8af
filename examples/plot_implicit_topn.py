"""
=======================================
Top-N recommendation from implicit data
=======================================

:class:`~skkernelnet.KernelImplicitRecommender` learns from *which* items users
interacted with, not from ratings, and is trained for ranked lists; its
ranking blends the kernelized autoencoder with a closed-form item-item model
(EASE), with the blend weight chosen on held-out interactions. This
example fits a small model to the MovieLens "latest-small" data that ships with
skkernelnet, treating every rating as an interaction, measures its top-10 lists
on held-out ratings with :mod:`skkernelnet.metrics` next to the most popular
items, recommends for a new user from three films without refitting, and lists
the nearest neighbours of a few well-known films.
"""

# %%
# Fit on interactions only
# ------------------------
# 10% of the ratings are held out; a held-out rating of at least 4 stars is a
# relevant item for its user. The model sees the training pairs only, without
# their ratings. One hidden layer of 200 kernelized neurons and at most 40
# epochs keep the example fast; early stopping holds out a share of the
# training interactions and keeps the epoch with the best NDCG@10 on them (the
# step size is larger than the default, for the few epochs); the same held-out
# interactions then choose the item-item model's penalty and the network's
# weight in the blend.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skkernelnet import KernelImplicitRecommender
from skkernelnet.datasets import fetch_movielens
from skkernelnet.metrics import ranking_metrics, relevant_items_by_user

movielens = fetch_movielens("latest-small")
X, y = movielens.data, movielens.target
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=0)

model = KernelImplicitRecommender(
    hidden_layer_sizes=(200,), learning_rate_init=3e-3, max_iter=40, random_state=0
)
model.fit(X_train)
print(f"epochs: {model.n_iter_}, best: {model.best_iter_}")
print(
    f"item-item penalty {model.item_item_alpha_:.1f}, network weight {model.network_weight_}"
)
for weight, ndcg in model.item_item_validation_["network_weight"].items():
    print(f"    held-out NDCG@10 with network weight {weight:.1f}: {ndcg:.4f}")

# %%
# Measure the top-10 lists
# ------------------------
# Every test user with a relevant item ranks all the films they did not rate in
# training. The most popular films (by number of training ratings), with the
# same exclusion, are the yardstick.
users, relevant = relevant_items_by_user(X_test, y_test, threshold=4)
ours, _ = model.recommend(users, n=10)

popular_order = model.item_ids_[np.argsort(-model.item_popularity_, kind="stable")]
seen = {}
for user, item in X_train:
    seen.setdefault(user, set()).add(item)
popular = np.array([[i for i in popular_order if i not in seen[u]][:10] for u in users])

n_items = len(model.item_ids_)
scores = {
    "KernelImplicitRecommender": ranking_metrics(relevant, ours, k=10, n_items=n_items),
    "most popular": ranking_metrics(relevant, popular, k=10, n_items=n_items),
}
metrics = ["precision", "recall", "ndcg", "map"]
for name, values in scores.items():
    print(f"{name:26s} " + "  ".join(f"{m}@10 {values[m]:.3f}" for m in metrics))

fig, ax = plt.subplots(figsize=(7, 3.5))
width = 0.38
for offset, (name, values) in zip((-width / 2, width / 2), scores.items()):
    ax.bar(np.arange(len(metrics)) + offset, [values[m] for m in metrics], width, label=name)
ax.set_xticks(np.arange(len(metrics)), [f"{m}@10" for m in metrics])
ax.set_ylabel("mean over test users")
ax.set_title("Top-10 lists on held-out MovieLens ratings (relevant: >= 4 stars)")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# A new user, without refitting
# -----------------------------
# A user's history is the input of both paths, so a user who signed up after
# training is one forward pass away from their list.
titles = dict(zip(movielens.item_ids, movielens.item_titles))
history = [260, 1196, 1210]  # the first Star Wars trilogy
print("history:", "; ".join(titles[i] for i in history))
items, _ = model.recommend(history=[history], n=5)
for item in items[0]:
    print("   ", titles[item])

# %%
# Similar films
# -------------
# Films are similar when the same users' codes score them alike: the cosine of
# their output weight vectors, centred so that the component every popular film
# shares does not make them all alike.
for film in (1, 318, 2571):  # Toy Story, The Shawshank Redemption, The Matrix
    neighbours, similarity = model.similar_items([film], n=4)
    print(f"{titles[film]}:")
    for item, value in zip(neighbours[0], similarity[0]):
        print(f"    {value:.2f}  {titles[item]}")
