"""Validation behind KernelCollaborativeFilter's penalties and blend, on ML-100K u1.base only.

The official test file (u1.test) is never read: 10% of u1.base (seed 0) is held out as the
validation set, the rest trains, and each candidate's validation RMSE is printed.

* penalty scaling: ``alpha`` is the reference's ``lambda_2 / sqrt(n)``. The reference's ML-1M
  value (lambda_2 = 60, n = 900k ratings) is alpha = 0.063; a penalty that scaled with ``n``
  instead (per-rating, lambda_2 = 60 * n / 900k) is alpha = 0.063 * sqrt(n / 900k) here;
* ``kernel_alpha`` around the reference's lambda_s, scaled the same way;
* ``blend`` (item- plus user-based autoencoders) against the paper's single autoencoder.

    python benchmarks/choose_cf_defaults.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_home, markdown_table, write_results  # noqa: E402

from skkernelnet import KernelCollaborativeFilter  # noqa: E402
from skkernelnet.datasets import fetch_movielens  # noqa: E402


def main():
    torch.set_num_threads(2)
    base = fetch_movielens("100k", subset="train", split="u1", data_home=data_home())
    X_fit, X_val, y_fit, y_val = train_test_split(
        base.data, base.target, test_size=0.1, random_state=0
    )
    per_rating = 0.063 * np.sqrt(len(y_fit) / 900_000)  # what 1/n scaling would give here
    candidates = {
        "defaults (alpha=0.065, kernel_alpha=1.4e-5, blend)": {},
        f"alpha={per_rating:.3f} (penalty scaled with n)": {"alpha": per_rating},
        "alpha=0.1": {"alpha": 0.1},
        "alpha=0.045": {"alpha": 0.045},
        "kernel_alpha=1.4e-4": {"kernel_alpha": 1.4e-4},
        "kernel_alpha=1.4e-6": {"kernel_alpha": 1.4e-6},
        "blend=False (the paper's single autoencoder)": {"blend": False},
    }
    rows, results = [], {}
    for name, params in candidates.items():
        start = time.perf_counter()
        model = KernelCollaborativeFilter(random_state=0, **params).fit(X_fit, y_fit)
        rmse = float(np.sqrt(np.mean((model.predict(X_val) - y_val) ** 2)))
        seconds = time.perf_counter() - start
        results[name] = {"params": params, "validation_rmse": rmse, "fit_seconds": seconds,
                         "best_iter": model.best_iter_}
        rows.append([name, f"{rmse:.4f}", f"{model.best_iter_}", f"{seconds:.0f} s"])
        print(f"{name:<55} validation RMSE {rmse:.4f}", flush=True)
    table = markdown_table(["candidate (ML-100K u1.base, 10% held out)", "validation RMSE",
                            "best iteration", "fit time"], rows)
    print(table)
    write_results("choose_cf_defaults", {"results": results}, table)


if __name__ == "__main__":
    main()
