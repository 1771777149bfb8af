"""Feed-forward networks of kernelized layers.

:class:`KernelNetwork` stacks :class:`~skkernelnet.layers.KernelLinear` layers
with activations in between. It knows nothing of training or of scikit-learn.
"""

from __future__ import annotations

import torch
from torch import nn

from .kernels import get_kernel
from .layers import KernelLinear, _signed_by_default

__all__ = ["KernelNetwork", "ACTIVATIONS", "get_activation"]

ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
}


def get_activation(name):
    """Return a fresh activation module for ``name`` (scikit-learn's names).

    Examples
    --------
    >>> get_activation("relu")
    ReLU()
    """
    try:
        return ACTIVATIONS[name]()
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}."
        ) from None


class KernelNetwork(nn.Module):
    """A multilayer perceptron whose every layer is a :class:`KernelLinear`.

    Parameters
    ----------
    n_inputs : int
        Number of input features.
    hidden_layer_sizes : sequence of int
        Width of each hidden layer (may be empty: a single kernelized layer).
    n_outputs : int
        Number of outputs.
    embedding_dim : int, default=5
        Dimension of every layer's neuron embeddings.
    kernel : str, Kernel or callable, default="finite_support"
        Kernel of every layer (each layer gets its own copy).
    gated : bool, default=True
        Whether every layer gates a free weight with its kernel.
    activation : str, default="logistic"
        Activation after each hidden layer.
    output_activation : str, default="identity"
        Activation after the last layer.
    device, dtype
        As for :class:`torch.nn.Linear`.
    scale_rank : int, default=1
        Signed scales per neuron of ungated layers over a non-negative kernel
        (see :class:`KernelLinear`); ignored by layers that have no signed
        scales (gated, or a kernel that takes both signs).
    input_positions : array-like of shape (n_inputs, p), default=None
        Known positions of the inputs: the first ``p <= embedding_dim``
        coordinates of the first layer's input neurons (see
        :class:`KernelLinear`).
    freeze_input_positions : bool, default=True
        Keep them fixed, or only start from them.

    Examples
    --------
    >>> import torch
    >>> net = KernelNetwork(10, (16, 8), 3, embedding_dim=2, kernel="rbf")
    >>> net(torch.randn(4, 10)).shape
    torch.Size([4, 3])
    >>> net.hidden(torch.randn(4, 10)).shape
    torch.Size([4, 8])
    """

    def __init__(
        self,
        n_inputs,
        hidden_layer_sizes,
        n_outputs,
        *,
        embedding_dim=5,
        kernel="finite_support",
        gated=True,
        activation="logistic",
        output_activation="identity",
        device=None,
        dtype=None,
        scale_rank=1,
        input_positions=None,
        freeze_input_positions=True,
    ):
        super().__init__()
        sizes = [n_inputs, *hidden_layer_sizes, n_outputs]
        given_positions = {
            "input_positions": input_positions,
            "freeze_input_positions": freeze_input_positions,
        }
        if not _signed_by_default(get_kernel(kernel), gated):
            scale_rank = 1  # no signed scales to have several of
        self.layers = nn.ModuleList(
            KernelLinear(
                n_in,
                n_out,
                embedding_dim=embedding_dim,
                kernel=kernel,
                gated=gated,
                scale_rank=scale_rank,
                device=device,
                dtype=dtype,
                **(given_positions if depth == 0 else {}),
            )
            for depth, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))
        )
        self.activation = get_activation(activation)
        self.output_activation = get_activation(output_activation)

    def hidden(self, x):
        """Activations of the last hidden layer (the input itself when there is none)."""
        # not self.layers[:-1]: slicing a ModuleList builds a new module at every call
        *hidden, _ = self.layers
        for layer in hidden:
            x = self.activation(layer(x))
        return x

    def forward(self, x):
        return self.output_activation(self.layers[-1](self.hidden(x)))

    def forward_at(self, x, index):
        """Output only at the pairs of ``index`` (see :meth:`KernelLinear.forward_at`)."""
        return self.output_activation(self.layers[-1].forward_at(self.hidden(x), index))

    def regularization(self, *, kernel=True):
        """Sums over layers of ``1/2 ||W||^2`` and of ``1/2 ||K||^2`` (zero unless ``kernel``)."""
        free, kern = zip(*(layer.regularization(kernel=kernel) for layer in self.layers))
        return torch.stack(free).sum(), torch.stack(kern).sum()

    def penalized_parameters(self):
        """The parameters in the ``1/2 ||W||^2`` term of :meth:`regularization`."""
        return [p for layer in self.layers for p in layer.penalized_parameters()]

    def free_penalty_value(self, params=None):
        """``regularization(kernel=False)[0]`` as a float, up to rounding, without autograd.

        One product per penalized parameter and a single read of the result: what
        a mini-batch loop, whose optimizer applies this penalty's gradient, reports
        beside the data loss at every step. ``params``, the list of
        :meth:`penalized_parameters`, saves looking them up at every call.

        Examples
        --------
        >>> net = KernelNetwork(4, (3,), 2, gated=True)
        >>> value = net.free_penalty_value()
        >>> abs(value - float(net.regularization(kernel=False)[0].detach())) < 1e-6
        True
        """
        if params is None:
            params = self.penalized_parameters()
        if not params:
            return 0.0
        with torch.no_grad():
            total = None
            for p in params:
                flat = p.reshape(-1)
                square = torch.dot(flat, flat)
                total = square if total is None else total + square
            return 0.5 * float(total)

    def n_free_parameters(self):
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
