"""A naive dense port of the authors' MovieLens model, trained with scipy's L-BFGS-B.

This reproduces what the reference code (kernelNet_MovieLens, TensorFlow 1)
computes, in torch: a dense ratings matrix in, the kernel through broadcast
differences and a norm, a dense reconstruction out, the loss masked to observed
entries, ``lambda_2 = 60`` and ``lambda_s = 0.013``, and scipy's L-BFGS-B with
``maxcor=10`` driving a flat float64 copy of the parameters (as TF's
``ScipyOptimizerInterface`` did). It is the yardstick for speed; it is run for a
bounded number of iterations only.

    python benchmarks/reference_port.py --dataset 1m --max-iter 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.optimize
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_home, item_user_codes  # noqa: E402

from skkernelnet._reference import reference_forward, reference_loss  # noqa: E402
from skkernelnet.datasets import fetch_movielens  # noqa: E402


class ReferencePort:
    """Item-based kernel autoencoder as in the reference code, on dense matrices."""

    def __init__(self, hidden=(500, 500), lambda_2=60.0, lambda_s=0.013, max_iter=1000,
                 embedding_dim=5, seed=0):
        self.hidden = hidden
        self.lambda_2 = lambda_2
        self.lambda_s = lambda_s
        self.max_iter = max_iter
        self.embedding_dim = embedding_dim
        self.seed = seed

    def _init(self, n_users):
        gen = torch.Generator().manual_seed(self.seed)
        sizes = [n_users, *self.hidden, n_users]
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(6.0 / (n_in + n_out))

            def trunc(shape):
                return torch.fmod(torch.randn(shape, generator=gen), 2.0) * 1e-3

            layers.append([
                trunc((n_in, self.embedding_dim)),
                trunc((n_out, self.embedding_dim)),
                (torch.rand((n_in, n_out), generator=gen) * 2 - 1) * bound,
                torch.zeros(n_out),
            ])
        return layers

    def fit(self, R, init=None):
        """R: dense (n_items, n_users) float32 tensor, zero where unobserved.

        ``init``, a list of ``(u, v, W, b)`` per layer, replaces the random start.
        """
        mask = (R > 0).to(torch.float32)
        layers = self._init(R.shape[1]) if init is None else init
        flat = [t for layer in layers for t in layer]
        shapes = [t.shape for t in flat]
        sizes = [t.numel() for t in flat]
        self.iteration_times_, self.eval_times_ = [], []

        def unpack(x):
            tensors = []
            for chunk, shape in zip(np.split(x, np.cumsum(sizes)[:-1]), shapes):
                tensors.append(torch.tensor(chunk, dtype=torch.float32).reshape(shape)
                               .requires_grad_())
            return [tensors[i : i + 4] for i in range(0, len(tensors), 4)]

        def fun(x):
            start = time.perf_counter()
            params = unpack(x)
            loss = reference_loss(R, mask, params, self.lambda_2, self.lambda_s)
            grads = torch.autograd.grad(loss, [t for p in params for t in p])
            grad = np.concatenate([g.reshape(-1).numpy() for g in grads]).astype(np.float64)
            self.eval_times_.append(time.perf_counter() - start)
            return loss.item(), grad

        last = [time.perf_counter()]

        def callback(_x):
            now = time.perf_counter()
            self.iteration_times_.append(now - last[0])
            last[0] = now

        x0 = np.concatenate([t.reshape(-1).numpy() for t in flat]).astype(np.float64)
        start = time.perf_counter()
        last[0] = start
        result = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", callback=callback,
                                         options={"maxiter": self.max_iter, "maxcor": 10})
        self.fit_seconds_ = time.perf_counter() - start
        self.n_iter_ = result.nit
        self.n_evals_ = result.nfev
        self.layers_ = [[t.detach() for t in layer] for layer in unpack(result.x)]
        self.R_ = R
        return self

    def predict_matrix(self):
        with torch.no_grad():
            return reference_forward(self.R_, self.layers_).clamp(1.0, 5.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="1m", choices=["100k", "1m"])
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = fetch_movielens(args.dataset, data_home=data_home())
    rng = np.random.RandomState(0)
    train = rng.permutation(len(data.target))[: int(0.9 * len(data.target))]
    items, users = item_user_codes(data.data)
    R = torch.zeros(items.max() + 1, users.max() + 1)
    R[items[train], users[train]] = torch.as_tensor(data.target[train], dtype=torch.float32)
    port = ReferencePort(max_iter=args.max_iter).fit(R)
    print(f"{args.max_iter} L-BFGS-B iterations: {port.fit_seconds_:.1f} s, "
          f"median iteration {statistics.median(port.iteration_times_):.2f} s, "
          f"median evaluation {statistics.median(port.eval_times_):.2f} s")


if __name__ == "__main__":
    main()
