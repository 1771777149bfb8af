import functools
import hashlib
import http.server
import os
import sys
import threading
import zipfile

import numpy as np
import pytest

from skkernelnet import datasets
from skkernelnet.datasets import RemoteFile, fetch_movielens, get_data_home, make_ratings

# --------------------------------------------------------------------------- latest-small


@pytest.fixture(scope="module")
def small():
    return fetch_movielens("latest-small")


def test_latest_small_offline(small):
    assert small.data.shape == (100_004, 2) and small.data.dtype == np.int64
    assert small.target.dtype == np.float64 and small.target.shape == (100_004,)
    assert np.unique(small.data[:, 0]).size == 671
    assert np.unique(small.data[:, 1]).size == 9_066
    assert small.target.min() == 0.5 and small.target.max() == 5.0
    assert np.all(small.target * 2 == np.round(small.target * 2))  # half stars
    assert small.timestamps.dtype == np.int64 and small.timestamps.shape == (100_004,)
    assert small.feature_names == ["user_id", "item_id"] and small.target_names == ["rating"]
    assert len(small.item_ids) == len(small.item_titles) == len(small.item_genres) == 9_125
    assert small.item_titles[0] == "Toy Story (1995)"
    assert "Comedy" in small.item_genres[0]
    assert np.isin(small.data[:, 1], small.item_ids).all()
    assert "Harper" in small.DESCR and "100,004" in small.DESCR and small.name == "ml-latest-small"
    assert small.frame is None


def test_latest_small_aliases_and_return_X_y(small):
    X, y = fetch_movielens("ml-latest-small", return_X_y=True)
    np.testing.assert_array_equal(X, small.data)
    np.testing.assert_array_equal(y, small.target)


def test_latest_small_as_frame(small):
    pytest.importorskip("pandas")
    b = fetch_movielens("latest-small", as_frame=True)
    assert list(b.data.columns) == ["user_id", "item_id"] and b.target.name == "rating"
    assert list(b.frame.columns) == ["user_id", "item_id", "rating", "timestamp", "title", "genres"]
    assert len(b.frame) == 100_004
    np.testing.assert_array_equal(b.frame["item_id"].to_numpy(), small.data[:, 1])
    title = dict(zip(small.item_ids.tolist(), small.item_titles, strict=True))
    assert b.frame["title"].iloc[5] == title[int(small.data[5, 1])]
    X, y = fetch_movielens("latest-small", as_frame=True, return_X_y=True)
    assert X.shape == (100_004, 2) and y.shape == (100_004,)


def test_as_frame_without_pandas(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    with pytest.raises(ImportError, match="requires pandas"):
        fetch_movielens("latest-small", as_frame=True)


# --------------------------------------------------------------------------- 100K and 1M


def _need(home, folder):
    if not (home / folder).is_dir():
        pytest.skip(f"{folder} not found in {home}")
    return home


def test_100k(movielens_home):
    home = _need(movielens_home, "ml-100k")
    b = fetch_movielens("100k", data_home=home, download_if_missing=False)
    assert b.data.shape == (100_000, 2) and b.timestamps.shape == (100_000,)
    assert np.unique(b.data[:, 0]).size == 943 and np.unique(b.data[:, 1]).size == 1_682
    assert set(np.unique(b.target)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert b.item_titles[0] == "Toy Story (1995)"
    assert b.item_genres[0] == ["Animation", "Children's", "Comedy"]
    train = fetch_movielens("ml-100k", data_home=home, subset="train", split="u1")
    test = fetch_movielens("100k", data_home=home, subset="test", split="u1")
    assert train.data.shape == (80_000, 2) and test.data.shape == (20_000, 2)
    assert fetch_movielens("100k", data_home=home, subset="test", split="ua").data.shape == (
        9_430,
        2,
    )


def test_100k_via_env(movielens_home, monkeypatch):
    monkeypatch.setenv("SKKERNELNET_DATA", str(_need(movielens_home, "ml-100k")))
    assert fetch_movielens("100k", download_if_missing=False).data.shape == (100_000, 2)


def test_1m(movielens_home):
    home = _need(movielens_home, "ml-1m")
    b = fetch_movielens("1m", data_home=home, download_if_missing=False)
    assert b.data.shape == (1_000_209, 2) and b.target.shape == (1_000_209,)
    assert np.unique(b.data[:, 0]).size == 6_040 and np.unique(b.data[:, 1]).size == 3_706
    assert tuple(b.data[0]) == (1, 1193) and b.target[0] == 5.0
    assert b.timestamps is None  # this copy of ratings.dat has no timestamp field
    assert len(b.item_ids) == 3_883 and b.item_titles[0] == "Toy Story (1995)"
    assert "NOT be redistributed" in b.DESCR


def _write_1m(folder, lines):
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("\n".join(lines) + "\n")
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "2::Cité des enfants perdus, La (1995)::Adventure|Sci-Fi\n".encode("latin-1")
    )


def test_1m_with_timestamps(tmp_path):
    _write_1m(tmp_path / "ml-1m", ["1::1::5::978300760", "1::2::3::978302109", "2::1::4::1"])
    b = fetch_movielens("1m", data_home=tmp_path, download_if_missing=False)
    np.testing.assert_array_equal(b.data, [[1, 1], [1, 2], [2, 1]])
    np.testing.assert_array_equal(b.target, [5.0, 3.0, 4.0])
    np.testing.assert_array_equal(b.timestamps, [978300760, 978302109, 1])
    assert b.item_titles[1] == "Cité des enfants perdus, La (1995)"
    assert b.item_genres[1] == ["Adventure", "Sci-Fi"]


@pytest.mark.parametrize("lines", [["1::1::5", "1::2"], ["1::1::5", "1::x::3"], ["1::1"]])
def test_malformed_ratings_file(tmp_path, lines):
    _write_1m(tmp_path / "ml-1m", lines)
    with pytest.raises(ValueError, match="ratings.dat"):
        fetch_movielens("1m", data_home=tmp_path, download_if_missing=False)


def test_missing_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="looked for .*ml-100k.*u.data") as info:
        fetch_movielens("100k", data_home=tmp_path, download_if_missing=False)
    assert "ml-100k.zip" in str(info.value) and "SKKERNELNET_DATA" in str(info.value)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- download


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/"srv" over HTTP on 127.0.0.1; yields (folder, base URL)."""
    root = tmp_path / "srv"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


_GENRES = "unknown|0\nAction|1\nComedy|2\n"
_ITEMS = "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|1\n2|GoldenEye (1995)|||http://y|0|1|0\n"
_UDATA = "1\t1\t5\t874965758\n1\t2\t3\t876893171\n2\t1\t4\t878542960\n"


def _publish(server, members, monkeypatch, sha256=None):
    """Zip ``members`` ({name: text}), serve it and point REMOTE_FILES["100k"] at it."""
    root, url = server
    archive = root / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    remote = RemoteFile(f"{url}/ml-100k.zip", sha256 or digest, "ml-100k.zip")
    monkeypatch.setitem(datasets.REMOTE_FILES, "100k", remote)
    return digest


_OFFICIAL = {
    "ml-100k/u.data": _UDATA,
    "ml-100k/u.item": _ITEMS,
    "ml-100k/u.genre": _GENRES,
    "ml-100k/u1.base": _UDATA.split("\n", 1)[1],
    "ml-100k/u1.test": _UDATA.split("\n", 1)[0] + "\n",
}


def test_download(server, monkeypatch, tmp_path, capsys):
    _publish(server, _OFFICIAL, monkeypatch)
    home = tmp_path / "home"
    b = fetch_movielens("100k", data_home=home)
    np.testing.assert_array_equal(b.data, [[1, 1], [1, 2], [2, 1]])
    np.testing.assert_array_equal(b.target, [5.0, 3.0, 4.0])
    np.testing.assert_array_equal(b.timestamps, [874965758, 876893171, 878542960])
    assert list(b.item_titles) == ["Toy Story (1995)", "GoldenEye (1995)"]
    assert b.item_genres == [["Comedy"], ["Action"]]
    assert sorted(os.listdir(home)) == ["ml-100k"]  # no zip or temporary files left
    assert (home / "ml-100k" / "u1.test").is_file()
    assert capsys.readouterr() == ("", "")
    # Now cached: no network needed, and the splits read from the extracted folder.
    monkeypatch.setitem(datasets.REMOTE_FILES, "100k", RemoteFile("http://0.0.0.0:9/", "0", "x"))
    test = fetch_movielens("100k", data_home=home, subset="test", split="u1")
    np.testing.assert_array_equal(test.data, [[1, 1]])


def test_download_checksum_mismatch(server, monkeypatch, tmp_path):
    digest = _publish(server, _OFFICIAL, monkeypatch, sha256="0" * 64)
    home = tmp_path / "home"
    with pytest.raises(OSError, match="0{64}") as info:
        fetch_movielens("100k", data_home=home)
    assert digest in str(info.value)
    assert list(home.iterdir()) == []


def test_download_rejects_unsafe_members(server, monkeypatch, tmp_path):
    _publish(server, {**_OFFICIAL, "ml-100k/../../evil.txt": "x"}, monkeypatch)
    home = tmp_path / "home"
    with pytest.raises(OSError, match="unsafe archive member"):
        fetch_movielens("100k", data_home=home)
    assert list(home.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_safe_extract(tmp_path, name):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr(zipfile.ZipInfo(name), "bad")
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(OSError, match="unsafe"):
        datasets._safe_extract(archive, target)
    assert list(target.iterdir()) == []


def test_download_incomplete_archive(server, monkeypatch, tmp_path):
    _publish(server, {"other/u.data": _UDATA}, monkeypatch)
    with pytest.raises(OSError, match="ml-100k"):
        fetch_movielens("100k", data_home=tmp_path / "home")
    assert list((tmp_path / "home").iterdir()) == []


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        ({"name": "10m"}, "'10m'"),
        ({"name": None}, "None"),
        ({"name": "100k", "subset": "valid"}, "'valid'"),
        ({"name": "100k", "subset": "train"}, "None"),
        ({"name": "100k", "subset": "test", "split": "u9"}, "'u9'"),
        ({"name": "100k", "split": "u1"}, "'u1'"),
        ({"name": "1m", "subset": "train", "split": "u1"}, "'train'"),
        ({"name": "latest-small", "split": "ua"}, "'ua'"),
    ],
)
def test_bad_arguments(kwargs, bad, tmp_path):
    with pytest.raises(ValueError) as info:
        fetch_movielens(data_home=tmp_path, download_if_missing=False, **kwargs)
    assert bad in str(info.value)


def test_get_data_home(monkeypatch, tmp_path):
    monkeypatch.delenv("SKKERNELNET_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert get_data_home(tmp_path / "x") == tmp_path / "x"
    assert get_data_home() == get_data_home("~/.cache/skkernelnet").expanduser()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert get_data_home() == tmp_path / "cache" / "skkernelnet"
    monkeypatch.setenv("SKKERNELNET_DATA", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    assert get_data_home(str(tmp_path / "arg")) == tmp_path / "arg"
    assert not any(p.exists() for p in [tmp_path / "x", tmp_path / "cache", tmp_path / "env"])


# --------------------------------------------------------------------------- make_ratings


def _check_ratings(X, y, n_users, n_items, n, scale=(1, 5)):
    assert X.shape == (n, 2) and X.dtype == np.int64 and y.shape == (n,) and y.dtype == np.float64
    assert X[:, 0].min() >= 0 and X[:, 0].max() < n_users
    assert X[:, 1].min() >= 0 and X[:, 1].max() < n_items
    assert np.unique(X[:, 0] * n_items + X[:, 1]).size == n  # no repeated (user, item)
    assert y.min() >= scale[0] and y.max() <= scale[1]


def test_make_ratings():
    b = make_ratings(300, 200, density=0.05, random_state=0)
    _check_ratings(b.data, b.target, 300, 200, 3_000)
    assert set(np.unique(b.target)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 3.0 < b.target.mean() < 4.0
    assert b.user_factors.shape == (300, 5) and b.item_factors.shape == (200, 5)
    assert b.feature_names == ["user_id", "item_id"] and "3,000 ratings" in b.DESCR
    # popularity skew: the most rated item gets several times the average count
    counts = np.bincount(b.data[:, 1], minlength=200)
    assert counts.max() > 3 * counts.mean()


def test_make_ratings_deterministic():
    X1, y1 = make_ratings(100, 50, 0.1, random_state=42, return_X_y=True)
    X2, y2 = make_ratings(100, 50, 0.1, random_state=42, return_X_y=True)
    X3, _ = make_ratings(100, 50, 0.1, random_state=43, return_X_y=True)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


def test_make_ratings_options():
    X, y = make_ratings(
        50, 40, n_ratings=123, rating_scale=(0, 10), integer=False, popularity_skew=0,
        noise=0.1, rank=2, random_state=np.random.default_rng(1), return_X_y=True,
    )  # fmt: skip
    _check_ratings(X, y, 50, 40, 123, (0, 10))
    assert np.any(y != np.round(y))
    X, y = make_ratings(20, 10, density=1.0, random_state=0, return_X_y=True)
    _check_ratings(X, y, 20, 10, 200)


def test_make_ratings_sparse_path():
    # More than 2**24 cells: exercises the O(n_ratings) rejection sampler.
    X, y = make_ratings(20_000, 1_000, n_ratings=50_000, random_state=0, return_X_y=True)
    _check_ratings(X, y, 20_000, 1_000, 50_000)


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        ({"density": 0}, "0"),
        ({"density": 1.5}, "1.5"),
        ({"n_ratings": 10**9}, "1000000000"),
        ({"rating_scale": (5, 1)}, "(5, 1)"),
        ({"noise": -1}, "-1"),
        ({"rank": 0}, "0"),
    ],
)
def test_make_ratings_bad_arguments(kwargs, bad):
    with pytest.raises(ValueError) as info:
        make_ratings(10, 10, **kwargs)
    assert bad in str(info.value)
