"""Model files: save a fitted rating model and load it back without executing code.

A model file is a zip archive with two members:

``manifest.json``
    The format name and version, the skkernelnet version that wrote it, the
    estimator class, its parameters, every fitted attribute that is a number,
    a string or a list of them, the id mappings (``user_ids_``, ``item_ids_``)
    when they are not plain numeric or string arrays, the configuration of each
    network, and the SHA-256 of ``arrays.npz``.
``arrays.npz``
    Every array: the networks' tensors (as NumPy arrays), biases, the sparse
    training ratings (the networks' input when predicting) and numeric or
    string id arrays. It is read with ``numpy.load(allow_pickle=False)``.

Loading parses JSON and NumPy arrays only, and builds networks and kernels
from a fixed list of skkernelnet classes: nothing in a file can make the
loader run code, unlike :mod:`pickle` (which keeps working for trusted files).
A file whose checksum does not match, that is truncated or not a zip archive,
or whose manifest is inconsistent raises ``ValueError``; so does a file of a
newer format version than this skkernelnet reads.

Examples
--------
>>> import os, tempfile
>>> from skkernelnet import KernelCollaborativeFilter
>>> from skkernelnet.datasets import make_ratings
>>> from skkernelnet import model_files
>>> X, y = make_ratings(60, 30, density=0.3, random_state=0, return_X_y=True)
>>> model = KernelCollaborativeFilter(hidden_layer_sizes=(8,), max_iter=3,
...                                   random_state=0).fit(X, y)
>>> path = os.path.join(tempfile.mkdtemp(), "model.skkn")
>>> model_files.save(model, path)
>>> model_files.read_manifest(path)["format_version"]
1
>>> model_files.load(path).predict(X[:3]).shape
(3,)
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import zipfile
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch

from . import kernels as _kernels
from ._version import __version__
from .networks import ACTIVATIONS, KernelNetwork

__all__ = ["FORMAT_VERSION", "save", "load", "read_manifest"]

FORMAT_NAME = "skkernelnet-model"
FORMAT_VERSION = 1

# Estimators a file may name, and the kernels and activations it may ask for:
# loading builds nothing else.
_ESTIMATORS = {"KernelCollaborativeFilter": "skkernelnet.recommender"}
_KERNEL_CLASSES = {
    cls.__name__: cls
    for cls in (
        _kernels.LinearKernel,
        _kernels.PolynomialKernel,
        _kernels.RBFKernel,
        _kernels.LaplacianKernel,
        _kernels.FiniteSupportKernel,
        _kernels.SumKernel,
        _kernels.ProductKernel,
        _kernels.ScaledKernel,
    )
}
_ACTIVATION_NAMES = {cls.__name__: name for name, cls in ACTIVATIONS.items()}
# Attributes rebuilt from the others after loading, as after unpickling.
_DERIVED = ("_views",)
_TORCH_DTYPES = {"torch.float32": torch.float32, "torch.float64": torch.float64}


# -- encoding ---------------------------------------------------------------------------
def _json_scalar(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        value = float(value)
        return value if np.isfinite(value) else {"float": repr(value)}
    if value is None or isinstance(value, str):
        return value
    raise TypeError


def _encode_kernel(kernel):
    if isinstance(kernel, str):
        return kernel
    if type(kernel).__name__ not in _KERNEL_CLASSES or type(kernel) is not _KERNEL_CLASSES.get(
        type(kernel).__name__
    ):
        raise ValueError(
            f"cannot save a model with kernel {kernel!r}: model files support the kernels "
            f"of skkernelnet.kernels ({sorted(_KERNEL_CLASSES)}) and their combinations; "
            "use pickle for custom kernels."
        )
    return {
        "class": type(kernel).__name__,
        "hyperparameters": {
            k: _encode_kernel(v) if isinstance(v, _kernels.Kernel) else _json_scalar(v)
            for k, v in kernel.hyperparameters.items()
        },
    }


def _decode_kernel(spec):
    if isinstance(spec, str):
        return spec
    if not isinstance(spec, dict) or spec.get("class") not in _KERNEL_CLASSES:
        raise ValueError(f"the model file names an unsupported kernel: {spec!r}.")
    args = {
        k: _decode_kernel(v) if isinstance(v, dict) and "class" in v else _decode_scalar(v)
        for k, v in spec.get("hyperparameters", {}).items()
    }
    return _KERNEL_CLASSES[spec["class"]](**args)


def _decode_scalar(value):
    if isinstance(value, dict) and set(value) == {"float"}:
        return float(value["float"])
    return value


def _encode_value(name, value, arrays):
    """JSON description of one attribute or parameter; arrays go to ``arrays``."""
    if isinstance(value, torch.nn.Module):
        if not isinstance(value, KernelNetwork):
            raise ValueError(f"cannot save attribute {name!r} of type {type(value).__name__}.")
        return _encode_network(name, value, arrays)
    if sp.issparse(value):
        csr = sp.csr_matrix(value)
        for part in ("data", "indices", "indptr"):
            arrays[f"{name}.{part}"] = getattr(csr, part)
        return {"kind": "csr", "shape": list(csr.shape)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biufU":
            arrays[name] = value
            return {"kind": "array"}
        if value.dtype.kind == "O" and value.ndim == 1:
            try:
                return {"kind": "object_array", "value": [_json_scalar(v) for v in value]}
            except TypeError:
                pass
        raise ValueError(
            f"cannot save attribute {name!r}: an array of dtype {value.dtype} whose entries "
            "are not all numbers or strings; use pickle for such ids."
        )
    if isinstance(value, os.PathLike):
        return {"kind": "json", "value": os.fspath(value)}
    if isinstance(value, torch.device):
        return {"kind": "device", "value": str(value)}
    if isinstance(value, torch.dtype):
        return {"kind": "torch_dtype", "value": str(value)}
    if isinstance(value, np.random.RandomState):
        kind, keys, pos, has_gauss, gauss = value.get_state()
        arrays[name] = keys
        return {"kind": "random_state", "value": [kind, int(pos), int(has_gauss), float(gauss)]}
    if isinstance(value, _kernels.Kernel):
        return {"kind": "kernel", "value": _encode_kernel(value)}
    if isinstance(value, (list, tuple)):
        try:
            items = [_json_scalar(v) for v in value]
        except TypeError:
            items = None
        if items is not None:
            return {"kind": "tuple" if isinstance(value, tuple) else "list", "value": items}
    else:
        try:
            return {"kind": "json", "value": _json_scalar(value)}
        except TypeError:
            pass
    raise ValueError(
        f"cannot save {name!r} of type {type(value).__name__} in a model file; use pickle."
    )


def _encode_network(name, network, arrays):
    layers = network.layers
    first = layers[0]
    config = {
        "n_inputs": first.in_features,
        "hidden_layer_sizes": [layer.out_features for layer in layers[:-1]],
        "n_outputs": layers[-1].out_features,
        "embedding_dim": first.embedding_dim,
        "kernel": _encode_kernel(first.kernel),
        "gated": first.gated,
        "activation": _ACTIVATION_NAMES[type(network.activation).__name__],
        "output_activation": _ACTIVATION_NAMES[type(network.output_activation).__name__],
        "scale_rank": first.scale_rank,
        "dtype": str(first.u.dtype),
    }
    for key, tensor in network.state_dict().items():
        arrays[f"{name}/{key}"] = tensor.detach().cpu().numpy()
    return {"kind": "network", "config": config, "training": network.training}


def _decode_network(name, spec, arrays, device):
    config = dict(spec["config"])
    dtype = _TORCH_DTYPES.get(config.pop("dtype"))
    if dtype is None:
        raise ValueError(f"the model file gives network {name!r} an unsupported dtype.")
    config["kernel"] = _decode_kernel(config["kernel"])
    activations = {config["activation"], config["output_activation"]}
    if not activations <= set(ACTIVATIONS):
        raise ValueError(f"the model file names unsupported activations: {activations}.")
    network = KernelNetwork(
        config.pop("n_inputs"),
        config.pop("hidden_layer_sizes"),
        config.pop("n_outputs"),
        dtype=dtype,
        **config,
    )
    prefix = f"{name}/"
    state = {
        key[len(prefix) :]: torch.from_numpy(np.array(arrays[key]))
        for key in arrays.files
        if key.startswith(prefix)
    }
    network.load_state_dict(state, strict=True)
    network.train(bool(spec.get("training", False)))
    return network.to(device)


def _decode_value(name, spec, arrays, device):
    kind = spec["kind"]
    if kind == "network":
        return _decode_network(name, spec, arrays, device)
    if kind == "csr":
        parts = [np.array(arrays[f"{name}.{p}"]) for p in ("data", "indices", "indptr")]
        return sp.csr_matrix(tuple(parts), shape=tuple(spec["shape"]))
    if kind == "array":
        return np.array(arrays[name])
    if kind == "object_array":
        out = np.empty(len(spec["value"]), dtype=object)
        out[:] = [_decode_scalar(v) for v in spec["value"]]
        return out
    if kind == "device":
        return torch.device(spec["value"])
    if kind == "torch_dtype":
        return _TORCH_DTYPES[spec["value"]]
    if kind == "random_state":
        state = np.random.RandomState()
        kind_name, pos, has_gauss, gauss = spec["value"]
        state.set_state((kind_name, np.array(arrays[name]), pos, has_gauss, gauss))
        return state
    if kind == "kernel":
        return _decode_kernel(spec["value"])
    if kind in ("list", "tuple"):
        values = [_decode_scalar(v) for v in spec["value"]]
        return tuple(values) if kind == "tuple" else values
    if kind == "json":
        return _decode_scalar(spec["value"])
    raise ValueError(f"unknown entry kind {kind!r} for {name!r}.")


# -- public functions -------------------------------------------------------------------
def _saved_attributes(model):
    """Fitted state: attributes set by fit (public ``*_`` ones and private runtime ones)."""
    return {
        name: value
        for name, value in vars(model).items()
        if name not in model.get_params(deep=False)
        and not name.startswith("__")
        and name not in _DERIVED
    }


def save(model, path):
    """Write a fitted model to ``path`` (see the module documentation for the format).

    Parameters
    ----------
    model : fitted KernelCollaborativeFilter
    path : str or path-like

    Raises
    ------
    ValueError
        If the model holds something the format cannot store without pickle
        (a custom kernel, ids that are neither numbers nor strings).

    Examples
    --------
    >>> import os, tempfile
    >>> from skkernelnet import KernelCollaborativeFilter
    >>> from skkernelnet.datasets import make_ratings
    >>> X, y = make_ratings(60, 30, density=0.3, random_state=0, return_X_y=True)
    >>> model = KernelCollaborativeFilter(hidden_layer_sizes=(8,), max_iter=3,
    ...                                   random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skkn")
    >>> save(model, path)
    >>> sorted(read_manifest(path)["attributes"])[:3]
    ['_device', '_dtype', '_random_state']
    """
    from sklearn.utils.validation import check_is_fitted

    cls_name = type(model).__name__
    if cls_name not in _ESTIMATORS:
        raise ValueError(f"model files support {sorted(_ESTIMATORS)}, not {cls_name}.")
    check_is_fitted(model, "module_")
    arrays = {}
    params = {
        name: _encode_value(f"param:{name}", value, arrays)
        for name, value in model.get_params(deep=False).items()
    }
    attributes = {
        name: _encode_value(name, value, arrays)
        for name, value in _saved_attributes(model).items()
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "skkernelnet_version": __version__,
        "class": cls_name,
        "params": params,
        "attributes": attributes,
        "sha256": {"arrays.npz": hashlib.sha256(payload).hexdigest()},
    }
    tmp = f"{os.fspath(path)}.tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=1))
        archive.writestr("arrays.npz", payload)
    os.replace(tmp, path)  # never leave a half-written model file under the final name


def _open(path):
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(
            f"{os.fspath(path)!r} is not a skkernelnet model file, or it is truncated "
            f"or corrupted ({error})."
        ) from None
    return archive


def read_manifest(path):
    """The manifest (format version, class, parameters, ...) of a model file, as a dict.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict
        ``format``, ``format_version``, ``skkernelnet_version``, ``class``,
        ``params``, ``attributes`` (how each fitted attribute is stored) and
        ``sha256``.

    Examples
    --------
    >>> import os, tempfile
    >>> from skkernelnet import KernelCollaborativeFilter
    >>> from skkernelnet.datasets import make_ratings
    >>> X, y = make_ratings(60, 30, density=0.3, random_state=0, return_X_y=True)
    >>> model = KernelCollaborativeFilter(hidden_layer_sizes=(8,), max_iter=3,
    ...                                   random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skkn")
    >>> save(model, path)
    >>> manifest = read_manifest(path)
    >>> manifest["class"], manifest["params"]["hidden_layer_sizes"]
    ('KernelCollaborativeFilter', {'kind': 'tuple', 'value': [8]})
    """
    with _open(path) as archive:
        return _read_manifest(archive, path)


def _read_manifest(archive, path):
    try:
        manifest = json.loads(archive.read("manifest.json").decode("utf-8"))
    except KeyError:
        raise ValueError(f"{os.fspath(path)!r} is not a skkernelnet model file.") from None
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as error:
        raise ValueError(
            f"{os.fspath(path)!r}: the manifest is corrupted or truncated ({error})."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ValueError(f"{os.fspath(path)!r} is not a skkernelnet model file.")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise ValueError(f"{os.fspath(path)!r}: the manifest has no valid format version.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} was written in model-file format version {version} "
            f"(by skkernelnet {manifest.get('skkernelnet_version', '?')}); this skkernelnet "
            f"({__version__}) reads versions up to {FORMAT_VERSION}. Upgrade skkernelnet "
            "to load it."
        )
    return manifest


def load(path, device=None, expected_class=None):
    """Read a model written by :func:`save`, without executing anything from the file.

    Parameters
    ----------
    path : str or path-like
    device : str or torch.device, optional
        Where to put the networks. By default the saved model's device when it
        is available here, else the CPU.
    expected_class : type, optional
        Refuse a file holding another estimator class.

    Returns
    -------
    The fitted estimator.

    Raises
    ------
    ValueError
        Not a model file, truncated, modified (checksum mismatch), inconsistent,
        or of a newer format version.

    Examples
    --------
    >>> import os, tempfile
    >>> from skkernelnet import KernelCollaborativeFilter
    >>> from skkernelnet.datasets import make_ratings
    >>> X, y = make_ratings(60, 30, density=0.3, random_state=0, return_X_y=True)
    >>> model = KernelCollaborativeFilter(hidden_layer_sizes=(8,), max_iter=3,
    ...                                   random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skkn")
    >>> save(model, path)
    >>> loaded = load(path)
    >>> bool((loaded.predict(X) == model.predict(X)).all())
    True
    """
    with _open(path) as archive:
        manifest = _read_manifest(archive, path)
        try:
            payload = archive.read("arrays.npz")
        except KeyError:
            raise ValueError(f"{os.fspath(path)!r}: the model file has no arrays.") from None
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            raise ValueError(
                f"{os.fspath(path)!r}: the arrays are corrupted or truncated ({error})."
            ) from None
    if hashlib.sha256(payload).hexdigest() != manifest.get("sha256", {}).get("arrays.npz"):
        raise ValueError(
            f"{os.fspath(path)!r}: checksum mismatch, the model file was modified or corrupted."
        )
    cls_name = manifest.get("class")
    if cls_name not in _ESTIMATORS:
        raise ValueError(f"{os.fspath(path)!r} holds an unsupported class {cls_name!r}.")
    cls = getattr(importlib.import_module(_ESTIMATORS[cls_name]), cls_name)
    if expected_class is not None and not issubclass(cls, expected_class):
        raise ValueError(
            f"{os.fspath(path)!r} holds a {cls_name}, not a {expected_class.__name__}."
        )
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as arrays:
            params = {
                name: _decode_value(f"param:{name}", spec, arrays, "cpu")
                for name, spec in manifest["params"].items()
            }
            model = cls(**params)
            saved_device = manifest["attributes"].get("_device", {}).get("value", "cpu")
            target = torch.device(device if device is not None else saved_device)
            if target.type == "cuda" and not torch.cuda.is_available():
                target = torch.device("cpu")
            for name, spec in manifest["attributes"].items():
                setattr(model, name, _decode_value(name, spec, arrays, target))
    except ValueError as error:
        raise ValueError(f"{os.fspath(path)!r}: inconsistent model file ({error}).") from None
    except (KeyError, TypeError, RuntimeError, AttributeError) as error:
        raise ValueError(
            f"{os.fspath(path)!r}: inconsistent model file ({type(error).__name__}: {error})."
        ) from None
    if "_device" in vars(model):
        model._device = target
    try:
        model._build_views()
    except (ValueError, RuntimeError, AttributeError) as error:
        raise ValueError(f"{os.fspath(path)!r}: inconsistent model file ({error}).") from None
    return model
