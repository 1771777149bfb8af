"""Validation runs behind KernelCollaborativeFilter's data-dependent defaults.

Every number here comes from ML-1M folds 0-6 only, never from the test folds 7-9
of ``bench_sparse_suite.py``: for each ML-1M-derived protocol this script takes
its development version (``protocol_splits(..., development=True)``), holds
out 10% of it at random (seed 100) as validation ratings,
fits each candidate on the rest and reports the validation RMSE next to the
user+item bias baseline fitted on the same ratings.

    python benchmarks/choose_cf_mechanism.py --protocols sparse-0.06 wide-2 \\
        --candidates '{}' '{"hidden_layer_sizes": [100, 100]}'

Each candidate is a JSON dict of parameters over the defaults. ``--seeds N``
fits each candidate with ``random_state`` 0..N-1 and scores the average of
their predictions (a seed ensemble; the record keeps every single seed's RMSE
too). Results are merged into ``results/choose_cf_mechanism.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, data_home, markdown_table, write_results  # noqa: E402
from bench_sparse_suite import ML1M_PROTOCOLS, PROTOCOLS, protocol_splits, rmse  # noqa: E402

from skkernelnet import KernelCollaborativeFilter, RatingBaseline  # noqa: E402

NAME = "choose_cf_mechanism"


def development_data(protocol, home):
    """The ratings a protocol lets us choose on: its development version (folds 0-6)."""
    _, X_train, y_train, X_test, y_test = next(
        iter(protocol_splits(protocol, 1, home, development=True))
    )
    return np.concatenate([X_train, X_test]), np.concatenate([y_train, y_test])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--protocols", nargs="+", default=list(ML1M_PROTOCOLS), choices=ML1M_PROTOCOLS
    )
    parser.add_argument("--candidates", nargs="+", default=["{}"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--seeds", type=int, default=1,
        help="fit each candidate with this many seeds and score their averaged prediction",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    home = data_home()
    path = RESULTS / f"{NAME}.json"
    records = json.loads(path.read_text())["records"] if path.exists() else []
    for protocol in args.protocols:
        X, y = development_data(protocol, home)
        order = np.random.default_rng(100).permutation(len(y))
        n_val = len(y) // 10
        val, fit = order[:n_val], order[n_val:]
        bias = rmse(RatingBaseline().fit(X[fit], y[fit]).predict(X[val]), y[val])
        for text in args.candidates:
            params = json.loads(text)
            label = text if args.seeds == 1 else f"{text} averaged over {args.seeds} seeds"
            predictions, seconds, single = [], 0.0, []
            for seed in range(args.seeds):
                model = KernelCollaborativeFilter(**{"random_state": seed, **params})
                start = time.perf_counter()
                with threadpool_limits(limits=1, user_api="blas"):
                    model.fit(X[fit], y[fit])
                seconds += time.perf_counter() - start
                predictions.append(model.predict(X[val]))
                single.append(rmse(predictions[-1], y[val]))
                if seed == 0:
                    first = model
            score = rmse(np.mean(predictions, axis=0), y[val])
            record = {
                "protocol": protocol, "candidate": label, "val_rmse": score, "bias_rmse": bias,
                "ratio": score / bias, "fit_seconds": seconds, "n_fit": int(len(fit)),
                "n_iter": int(first.n_iter_), "seed_rmse": single,
                "network_weights": [float(w) for w in first.network_weights_],
            }
            records = [r for r in records
                       if (r["protocol"], r["candidate"]) != (protocol, label)] + [record]
            print(f"{protocol:12s} {label:45s} val {score:.4f} bias {bias:.4f} "
                  f"ratio {score / bias:.4f} ({seconds:.0f} s, weights "
                  f"{np.round(first.network_weights_, 2).tolist()}; single seeds "
                  f"{np.round(single, 4).tolist()})", flush=True)
            rows = [[r["protocol"], f"`{r['candidate']}`", f"{r['val_rmse']:.4f}",
                     f"{r['bias_rmse']:.4f}", f"{r['ratio']:.4f}", f"{r['fit_seconds']:.0f} s",
                     str(np.round(r["network_weights"], 2).tolist())]
                    for r in sorted(records, key=lambda r: (PROTOCOLS.index(r["protocol"]),
                                                            r["candidate"]))]
            table = markdown_table(["protocol", "candidate", "validation RMSE", "biases",
                                    "ratio", "fit", "network weights"], rows)
            write_results(NAME, {"records": records}, table)


if __name__ == "__main__":
    main()
