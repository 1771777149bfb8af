"""Neural networks with kernelized weight matrices, as scikit-learn estimators.

Every input neuron ``i`` of a kernelized layer owns a small learned vector
``u_i``, every output neuron ``j`` a vector ``v_j``, and the weight between
them is ``W_ij = K(u_i, v_j)`` for a kernel ``K``.

Submodules are imported lazily so that ``import skkernelnet`` stays cheap
(torch is only loaded when a kernel, layer or estimator is first used).
"""

import importlib

from ._version import __version__

_LAZY = {
    "KernelLinear": "skkernelnet.layers",
    "KernelNetwork": "skkernelnet.networks",
    "KernelNetClassifier": "skkernelnet.estimators",
    "KernelNetRegressor": "skkernelnet.estimators",
    "KernelCollaborativeFilter": "skkernelnet.recommender",
    "KernelImplicitRecommender": "skkernelnet.implicit_feedback",
    "RatingBaseline": "skkernelnet.recommender",
    "fetch_movielens": "skkernelnet.datasets",
    "make_ratings": "skkernelnet.datasets",
}

__all__ = ["__version__", *sorted(_LAZY)]

_SUBMODULES = {
    "kernels",
    "positions",
    "layers",
    "networks",
    "training",
    "estimators",
    "recommender",
    "implicit_feedback",
    "metrics",
    "datasets",
    "model_files",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"skkernelnet.{name}")
    raise AttributeError(f"module 'skkernelnet' has no attribute {name!r}")


def __dir__():
    return sorted(set(__all__) | _SUBMODULES)
