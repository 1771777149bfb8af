"""A mini-batch training step of a KernelNetwork on dense input, its backward pass written out.

A step of Adam on a small network is bound by per-operation overhead, not by
arithmetic, and autograd records and replays a node for every operation. This
step runs the forward pass without autograd and takes the loss and its
gradient with respect to the network's output from the task (written out by
the estimators, or by autograd for any differentiable loss,
:func:`autograd_loss_and_grad`). The rest is written out with the operations
autograd would run:

* the data path: each layer's product with its weight, bias and activation;
* the weights of layers over a kernel whose values and gradients are written
  out (RBF and finite support, see :meth:`~skkernelnet.kernels.Kernel._written_out`),
  gated (``W * K``) or plain (``K``): the gradients of ``W`` and of the
  embeddings, and of the kernel penalty when there is one.

Other layers (signed scales, other kernels) compute their weight with autograd
and get its gradient from one backward call over these small graphs. The
objective and its gradient are those of the autograd path (the tests compare
them), up to the rounding of the kernel penalty's gradient, which is added to
the kernel's before the embeddings' gradients rather than after.

Used by the estimators' Adam solver when the network is a plain
:class:`~skkernelnet.networks.KernelNetwork` without hooks, fed dense batches.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import KernelLinear, _concat_coordinates, half_squared_norm, reuse_kernel_matrices
from .networks import KernelNetwork

__all__ = ["DenseStep", "autograd_loss_and_grad"]

_aten = torch.ops.aten

# The activations, applied in place to the fresh output of a layer.
_IN_PLACE = {
    nn.ReLU: torch.relu_,
    nn.Sigmoid: torch.sigmoid_,
    nn.Tanh: torch.tanh_,
    nn.Identity: lambda x: x,
}

# The gradient of an activation's input from its output, as autograd computes it.
_ACTIVATION_BACKWARD = {
    nn.ReLU: lambda grad, out: _aten.threshold_backward.default(grad, out, 0),
    nn.Sigmoid: _aten.sigmoid_backward.default,
    nn.Tanh: _aten.tanh_backward.default,
    nn.Identity: lambda grad, out: grad,
}


def _hooked(module):
    """Whether hooks watch ``module``, its sub-modules or their parameters."""
    for m in module.modules():
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks:
            return True
        if getattr(m, "_backward_pre_hooks", None):
            return True
    for p in module.parameters():
        if getattr(p, "_backward_hooks", None) or getattr(p, "_post_accumulate_grad_hooks", None):
            return True
    hooks = nn.modules.module
    return any(
        getattr(hooks, name, None)
        for name in (
            "_global_forward_hooks",
            "_global_forward_pre_hooks",
            "_global_backward_hooks",
            "_global_backward_pre_hooks",
        )
    )


def _accumulate(param, grad):
    """Add ``grad`` to ``param.grad`` as autograd does (the tensor itself when there is none)."""
    if not param.requires_grad:
        return
    if param.grad is None:
        param.grad = grad if grad.is_contiguous() else grad.contiguous()
    else:
        param.grad.add_(grad)


def _learned_part(grad, fixed):
    """The columns of an embedding gradient that belong to the learned coordinates."""
    if fixed is None:
        return grad
    return grad[:, fixed.shape[1] :]


class DenseStep:
    """Forward and backward pass of a :class:`KernelNetwork` on a dense batch.

    Parameters
    ----------
    network : KernelNetwork
    kernel_penalty : float, default=0.0
        Weight ``c`` of the kernel penalty ``c * sum_l 1/2 ||K_l||^2`` in the
        objective (``kernel_alpha / total sample weight`` for the estimators).

    Examples
    --------
    >>> import torch
    >>> from skkernelnet.networks import KernelNetwork
    >>> net = KernelNetwork(4, (8,), 1, kernel="rbf", activation="relu", dtype=torch.float64)
    >>> step = DenseStep.for_network(net)
    >>> x, y = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 1, dtype=torch.float64)
    >>> value = step(x, autograd_loss_and_grad(lambda output: ((output - y) ** 2).mean()))
    >>> all(p.grad is not None for p in net.parameters())
    True
    """

    def __init__(self, network, kernel_penalty=0.0):
        self.network = network
        self.activation = _IN_PLACE[type(network.activation)]
        self.activation_backward = _ACTIVATION_BACKWARD[type(network.activation)]
        self.kernel_penalty = float(kernel_penalty)
        # What each step reads of a layer, looked up once (module attribute access is slow).
        self.layers = [_LayerParts(layer) for layer in network.layers]

    @classmethod
    def for_network(cls, network, kernel_penalty=0.0):
        """The step for ``network``, or None where it does not apply (autograd does it all).

        It applies to a :class:`KernelNetwork` itself (not a subclass) of
        :class:`~skkernelnet.layers.KernelLinear` layers, with an activation
        among ReLU, sigmoid, tanh and identity, no output activation, and no
        hooks on its modules or parameters. The step holds the network's
        parameters themselves: make a new one after replacing any of them.
        """
        if type(network) is not KernelNetwork:
            return None
        if not all(type(layer) is KernelLinear for layer in network.layers):
            return None
        if type(network.activation) not in _ACTIVATION_BACKWARD:
            return None
        if type(network.output_activation) is not nn.Identity or _hooked(network):
            return None
        return cls(network, kernel_penalty)

    def __call__(self, x, loss_and_grad):
        """Run the step: gradients are added to the parameters' ``.grad``.

        Parameters
        ----------
        x : dense Tensor of shape (n_samples, in_features)
            The batch, in the network's dtype and on its device.
        loss_and_grad : callable
            ``loss_and_grad(output) -> (loss, grad)``: the data loss of the
            network's output (shape (n_samples, out_features)) as a scalar
            Tensor, and its gradient with respect to that output (see
            :func:`autograd_loss_and_grad` for any differentiable loss).

        Returns
        -------
        float
            The objective: the data loss plus the kernel penalty.
        """
        layers, c = self.layers, self.kernel_penalty
        graphs, penalties = [], []  # of the layers whose weight autograd differentiates
        penalty = 0.0  # sum of 1/2 ||K_l||^2 when c > 0
        with torch.no_grad():
            weights, kernels = [], []
            for parts in layers:
                if parts.written is None:
                    weight, kernel_penalty = parts.weight_graph(c)
                    graphs.append(weight)
                    if kernel_penalty is not None:
                        penalties.append(kernel_penalty)
                    weights.append(weight.detach())
                    kernels.append(None)
                    continue
                K = parts.kernel_matrix()
                kernels.append(K)
                weights.append(K if parts.W is None else parts.W * K)
                if c:
                    flat = K.reshape(-1)
                    penalty += 0.5 * float(torch.dot(flat, flat))
            # forward: the operations of KernelLinear.forward and KernelNetwork.forward
            inputs = []
            h = x
            last = len(layers) - 1
            for i, (parts, weight) in enumerate(zip(layers, weights)):
                inputs.append(h)
                h = h @ weight
                if parts.bias is not None:
                    h = h + parts.bias
                if i < last:
                    h = self.activation(h)
            loss, grad = loss_and_grad(h)
            graph_grads = []
            for i in range(last, -1, -1):
                parts, h = layers[i], inputs[i]
                grad_weight = h.T @ grad
                if parts.bias is not None:
                    _accumulate(parts.bias, grad.sum(0))
                if i > 0:  # the gradient of this layer's input, through the activation
                    grad = self.activation_backward(grad @ weights[i].T, h)
                if parts.written is None:
                    graph_grads.append(grad_weight)
                else:
                    parts.accumulate_grads(kernels[i], grad_weight, c)
        if graphs:
            graph_grads.reverse()  # collected from the last layer down
            root_grads = graph_grads + [torch.full_like(p, c) for p in penalties]
            torch.autograd.backward(graphs + penalties, root_grads)
            penalty += sum(float(p.detach()) for p in penalties)
        return float(loss) + c * penalty


class _LayerParts:
    """The parameters and buffers of a KernelLinear that a step reads, and its kernel's."""

    def __init__(self, layer):
        self.layer = layer
        self.W, self.bias = layer.W, layer.bias
        self.u, self.v = layer.u, layer.v
        self.input_positions, self.output_positions = layer.input_positions, layer.output_positions
        self.needs_U = self.u is not None and self.u.requires_grad
        self.needs_V = self.v is not None and self.v.requires_grad
        # (function, hyperparameter) when the weight is written out, else None
        self.written = None if layer.input_scale is not None else layer.kernel._written_out()

    def embeddings(self):
        return (
            _concat_coordinates(self.input_positions, self.u),
            _concat_coordinates(self.output_positions, self.v),
        )

    def kernel_matrix(self):
        function, hyperparameter = self.written
        return function.values(*self.embeddings(), hyperparameter)

    def weight_graph(self, c):
        """The weight with its autograd graph, and the kernel penalty's when ``c > 0``."""
        with torch.enable_grad():
            if not c:
                return self.layer.weight, None
            with reuse_kernel_matrices(self.layer):  # one K for both uses
                return self.layer.weight, half_squared_norm(self.layer.kernel_matrix())

    def accumulate_grads(self, K, grad_weight, c):
        """Gradients of ``W``, ``u`` and ``v`` from that of the weight ``W * K`` (or ``K``)."""
        W = self.W
        if W is not None:
            _accumulate(W, grad_weight * K)
            grad_K = grad_weight * W
        else:
            grad_K = grad_weight
        if c:
            grad_K = grad_K + c * K  # the gradient of c/2 ||K||^2
        if not (self.needs_U or self.needs_V):
            return
        function, hyperparameter = self.written
        U, V = self.embeddings()
        grad_U, grad_V = function.embedding_grads(
            U, V, K, hyperparameter, grad_K, self.needs_U, self.needs_V
        )
        if self.needs_U:
            _accumulate(self.u, _learned_part(grad_U, self.input_positions))
        if self.needs_V:
            _accumulate(self.v, _learned_part(grad_V, self.output_positions))

def autograd_loss_and_grad(data_loss):
    """A ``loss_and_grad`` for :class:`DenseStep` from a differentiable ``data_loss(output)``.

    Examples
    --------
    >>> import torch
    >>> loss, grad = autograd_loss_and_grad(lambda out: (out**2).sum())(torch.ones(2, 1))
    >>> float(loss), grad.flatten().tolist()
    (2.0, [2.0, 2.0])
    """

    def loss_and_grad(output):
        output = output.detach().requires_grad_()
        with torch.enable_grad():
            loss = data_loss(output)
        (grad,) = torch.autograd.grad(loss, output)
        return loss.detach(), grad

    return loss_and_grad
