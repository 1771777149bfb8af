"""Neuron positions given by the user: grids for image-like inputs, and their validation.

A kernelized layer places every input neuron at a point ``u_i`` and every
output neuron at a point ``v_j``. Usually both are learned. When the inputs
have a known geometry (the pixels of an image, sensors on a map, items with
known coordinates), their coordinates can be given instead:
:class:`~skkernelnet.layers.KernelLinear` takes ``input_positions`` and
``output_positions``, and the tabular estimators take ``input_positions``.
With a distance kernel (RBF, Laplacian, finite support) a fixed position makes
the weights vary smoothly over the inputs' geometry: see :ref:`theory_positions`.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["grid_positions", "check_positions"]


def grid_positions(shape, *, spacing=1.0):
    """Coordinates of the cells of a regular grid, in the order of a C-order flattening.

    Row ``k`` of the result holds the coordinates of the ``k``-th element of
    an array of shape ``shape`` flattened in C order (``image.reshape(-1)``,
    as scikit-learn's ``load_digits`` stores its 8 x 8 images): for an image
    of shape ``(height, width)``, column 0 is the row index and column 1 the
    column index. The grid is centred on the origin, with ``spacing`` between
    neighbours, so that kernel widths are measured in cells.

    Parameters
    ----------
    shape : int or tuple of int
        Size of the grid along each axis, e.g. ``(height, width)`` for an image
        or ``(depth, height, width)`` for a volume.
    spacing : float or tuple of float, default=1.0
        Distance between neighbouring cells along each axis.

    Returns
    -------
    positions : ndarray of shape (prod(shape), len(shape))
        One row of coordinates per cell.

    Examples
    --------
    >>> grid_positions((2, 3))
    array([[-0.5, -1. ],
           [-0.5,  0. ],
           [-0.5,  1. ],
           [ 0.5, -1. ],
           [ 0.5,  0. ],
           [ 0.5,  1. ]])
    >>> grid_positions((8, 8)).shape
    (64, 2)
    """
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    if not shape or not all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in shape
    ):
        raise ValueError(f"shape must be a non-empty tuple of positive integers, got {shape!r}.")
    spacing = np.asarray(spacing, dtype=np.float64)
    if spacing.ndim > 1 or spacing.size not in (1, len(shape)):
        raise ValueError(
            f"spacing must be one value or one per axis of {shape}, got {spacing.tolist()}."
        )
    spacing = np.broadcast_to(spacing, (len(shape),))
    if not (np.all(np.isfinite(spacing)) and np.all(spacing > 0)):
        raise ValueError(
            f"spacing must be positive and finite (one value, or one per axis of {shape}), "
            f"got {spacing.tolist()}."
        )
    axes = [(np.arange(n) - (n - 1) / 2) * step for n, step in zip(shape, spacing)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1)


def check_positions(positions, n_neurons, *, name="positions", of="neurons"):
    """Validate user-given neuron positions: a finite 2-D float array with one row per neuron.

    Parameters
    ----------
    positions : array-like of shape (n_neurons, n_coordinates)
        The positions; a torch tensor is accepted too.
    n_neurons : int
        Number of rows expected.
    name : str, default="positions"
        How error messages name the argument.
    of : str, default="neurons"
        What the rows are, for error messages ("input neurons", "features", ...).

    Returns
    -------
    positions : ndarray of float64, of shape (n_neurons, n_coordinates)
        A copy, so that later changes to the caller's array do not reach a model.

    Examples
    --------
    >>> check_positions([[0.0, 1.0], [2.0, 3.0]], 2).shape
    (2, 2)
    """
    try:
        array = np.array(
            positions.detach().cpu().numpy() if hasattr(positions, "detach") else positions,
            dtype=np.float64,
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers; {exc}") from None
    if array.ndim != 2:
        hint = " Use positions.reshape(-1, 1) for one coordinate each." if array.ndim == 1 else ""
        raise ValueError(
            f"{name} must be a 2-D array of shape ({n_neurons}, n_coordinates), a row of "
            f"coordinates for each of the {n_neurons} {of}; got shape {array.shape}.{hint}"
        )
    if array.shape[0] != n_neurons:
        raise ValueError(
            f"{name} has {array.shape[0]} rows, but there are {n_neurons} {of}; "
            f"expected shape ({n_neurons}, n_coordinates), got {array.shape}."
        )
    if array.shape[1] < 1:
        raise ValueError(
            f"{name} must have at least one coordinate per row, got shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return array
