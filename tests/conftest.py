import pytest

from skkernelnet.datasets import get_data_home


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
