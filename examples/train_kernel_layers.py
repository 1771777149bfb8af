"""
Train a small network of kernelized layers on handwritten digits
================================================================

A :class:`~skkernelnet.networks.KernelNetwork` with one hidden layer of
finite-support kernelized layers (``W_ij = W_free_ij * K(u_i, v_j)``) is trained
full-batch with the library's L-BFGS loop on scikit-learn's 8x8 digits, with the
reference loss (cross-entropy plus the two penalties of
:meth:`~skkernelnet.layers.KernelLinear.regularization`). It prints the test
accuracy and how many of each layer's weights the kernel has set exactly to
zero. Runs in a few seconds on a laptop CPU.

This is the library's placeholder "main job" until the recommender estimators
land; run it with ``python examples/train_kernel_layers.py``.
"""

import time

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skkernelnet.networks import KernelNetwork
from skkernelnet.training import TrainingMonitor, lbfgs


def main(max_iter=300, hidden=64, embedding_dim=5, alpha=1e-3, kernel_alpha=1e-2, seed=0):
    start = time.perf_counter()
    # A network this small gains nothing from intra-op threads, and on a busy machine a
    # thread waiting for a core slows every tiny operation down by orders of magnitude.
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    scaler = StandardScaler().fit(X_train)
    to_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    X_train, X_test = to_tensor(scaler.transform(X_train)), to_tensor(scaler.transform(X_test))
    y_train, y_test = torch.as_tensor(y_train), torch.as_tensor(y_test)

    net = KernelNetwork(
        X_train.shape[1],
        (hidden,),
        10,
        embedding_dim=embedding_dim,
        kernel="finite_support",
        gated=True,
        activation="tanh",
    )
    n = X_train.shape[0]

    def closure():
        net.zero_grad(set_to_none=True)
        free, kern = net.regularization()
        loss = torch.nn.functional.cross_entropy(net(X_train), y_train)
        loss = loss + (alpha * free + kernel_alpha * kern) / n
        loss.backward()
        return loss.item()

    monitor = TrainingMonitor(net, max_iter=max_iter, tol=1e-6, n_iter_no_change=20)
    with monitor:
        lbfgs(list(net.parameters()), closure, monitor)
    result = monitor.result

    with torch.no_grad():
        accuracy = (net(X_test).argmax(1) == y_test).float().mean().item()
    print(
        f"KernelNetwork 64 -> {hidden} -> 10, finite-support kernel, d={embedding_dim}: "
        f"{result.n_iter} L-BFGS iterations ({result.stop_reason}), "
        f"final training objective {result.loss_curve[-1]:.4f}"
    )
    print(f"test accuracy: {accuracy:.3f}")
    for i, layer in enumerate(net.layers):
        print(
            f"layer {i} ({layer.in_features} x {layer.out_features}): "
            f"{layer.sparsity():.1%} of weights exactly zero"
        )
    print(f"done in {time.perf_counter() - start:.1f} s")
    return accuracy


if __name__ == "__main__":
    main()
