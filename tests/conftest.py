import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def movielens_home():
    """Folder holding ml-100k/ and ml-1m/ (never part of the repository: licence)."""
    home = os.environ.get("SKKERNELNET_DATA")
    path = Path(home) if home else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not ((path / "ml-100k").is_dir() or (path / "ml-1m").is_dir()):
        pytest.skip(
            "MovieLens 100K/1M not found: set SKKERNELNET_DATA to a folder holding "
            "ml-100k/ and ml-1m/ (see README)"
        )
    return path
