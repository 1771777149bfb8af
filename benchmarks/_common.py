"""Shared helpers of the benchmark scripts: environment record, data location, output."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def data_home():
    """Folder with ml-100k/ and ml-1m/: the library's, $SKKERNELNET_DATA when set."""
    from skkernelnet.datasets import get_data_home

    return get_data_home()


def item_user_codes(pairs):
    """Row (item) and column (user) of each ``(user id, item id)`` pair in the items x users
    ratings matrix, ids numbered in sorted order (``skkernelnet._ratings.factorize``)."""
    from skkernelnet._ratings import factorize

    return factorize(pairs[:, 1])[1], factorize(pairs[:, 0])[1]


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment():
    """Versions, CPU, threads and date, recorded with every result."""
    import numpy
    import scipy
    import sklearn
    import torch

    import skkernelnet

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "skkernelnet": skkernelnet.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def write_results(name, payload, markdown=None):
    """Write results/<name>.json (with the environment) and optionally results/<name>.md."""
    RESULTS.mkdir(exist_ok=True)
    payload = {"environment": environment(), **payload}
    _write_atomic(RESULTS / f"{name}.json", json.dumps(payload, indent=2, default=float) + "\n")
    if markdown is not None:
        _write_atomic(RESULTS / f"{name}.md", markdown)
    return payload


def _write_atomic(path, text):
    """Write through a temporary file and a rename: a reader (another benchmark process
    merging its results) never sees a half-written file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def markdown_table(header, rows):
    """A GitHub-flavoured Markdown table from a header and rows of strings."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
