"""The naive dense formulation of the paper's rating model, for tests and benchmarks.

A line-by-line port of the authors' TensorFlow code (kernelNet_MovieLens):
the kernel through broadcast differences, a norm and a square; a dense ratings
matrix in and a dense reconstruction out; the loss masked to observed entries.
It is the yardstick that :class:`~skkernelnet.KernelCollaborativeFilter`'s
sparse path must match in value and gradient, and beat in speed. It is not used
by the library itself.
"""

from __future__ import annotations

import torch

__all__ = ["reference_kernel", "reference_forward", "reference_loss"]


def reference_kernel(u, v):
    """``max(0, 1 - ||u_i - v_j||^2)`` through an ``(n_in, n_out, d)`` broadcast."""
    dist = torch.norm(u.unsqueeze(1) - v.unsqueeze(0), p=2, dim=2)
    return torch.clamp(1.0 - dist**2, min=0.0)


def reference_forward(R, layers, activation=torch.sigmoid):
    """Dense forward pass; ``layers`` is a list of ``(u, v, W, b)`` tensors."""
    y = R
    for k, (u, v, W, b) in enumerate(layers):
        y = y @ (W * reference_kernel(u, v)) + b
        if k < len(layers) - 1:
            y = activation(y)
    return y


def reference_loss(R, mask, layers, lambda_2, lambda_s, activation=torch.sigmoid):
    """The authors' objective: masked half squared error plus both penalties.

    ``0.5 * sum(mask * (R - R_hat)**2) + sum_l (lambda_2/2 ||W_l||^2 +
    lambda_s/2 ||K_l||^2)`` with ``R`` dense, zero where unobserved.
    """
    prediction = reference_forward(R, layers, activation)
    loss = 0.5 * torch.sum((mask * (R - prediction)) ** 2)
    for u, v, W, _ in layers:
        loss = loss + lambda_2 * 0.5 * torch.sum(W**2)
        loss = loss + lambda_s * 0.5 * torch.sum(reference_kernel(u, v) ** 2)
    return loss
