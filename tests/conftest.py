import os

import pytest
from hypothesis import HealthCheck, settings

from skkernelnet.datasets import get_data_home

# Property-based tests (hypothesis). "ci", the default, is reproducible: the same examples
# on every run and machine (derandomize), sized so that the whole suite stays within its
# CI budget. "thorough" draws fresh random examples, ten times as many, for a search by
# hand: SKKERNELNET_HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_fuzz_*.py
# A failure prints the falsifying example; keep it as a regular test beside the fuzz test.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=100,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=1000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("SKKERNELNET_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def movielens_home():
    """Folder holding ml-100k/ and ml-1m/ (never part of the repository: licence).

    The library's data folder: $SKKERNELNET_DATA when set (.ci/test sets it to
    ../shared/data when that exists), else the user's cache folder.
    """
    path = get_data_home()
    if not ((path / "ml-100k").is_dir() or (path / "ml-1m").is_dir()):
        pytest.skip(
            "MovieLens 100K/1M not found: set SKKERNELNET_DATA to a folder holding "
            "ml-100k/ and ml-1m/ (see README)"
        )
    return path
