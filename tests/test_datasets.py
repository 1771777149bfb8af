import functools
import hashlib
import http.server
import os
import sys
import threading
import tracemalloc
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


def _publish(server, members, monkeypatch, sha256=None, key="100k"):
    """Zip ``members`` ({name: text}), serve it and point REMOTE_FILES[key] at it."""
    root, url = server
    filename = f"ml-{key}.zip"
    archive = root / filename
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    remote = RemoteFile(f"{url}/{filename}", sha256 or digest, filename)
    monkeypatch.setitem(datasets.REMOTE_FILES, key, remote)
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


# --------------------------------------------------------------------------- 10M to 32M

# Miniatures of the official archives: 10M's `::` layout (half-star ratings, UTF-8
# movies.dat, folder ml-10M100K) and the CSV layout of 20M, 25M and 32M (header line,
# quoted titles with commas, "(no genres listed)", extra files the loader ignores).
_MOVIES_DAT = "1::Toy Story (1995)::Adventure|Animation\n7::Amélie (2001)::Comedy|Romance\n"
_RATINGS_DAT = "1::1::5::838985046\n1::7::3.5::838983525\n9::1::0.5::868245777\n"
_MOVIES_CSV = (
    "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"
    '7,"Amélie (Fabuleux destin d\'Amélie Poulain, Le) (2001)",Comedy|Romance\n'
    "8,Unrated Film (2019),(no genres listed)\n"
)
_RATINGS_CSV = (
    "userId,movieId,rating,timestamp\n1,1,5.0,838985046\n1,7,3.5,838983525\n9,1,0.5,868245777\n"
)
_BIG = {
    "10m": ("ml-10M100K", {"ratings.dat": _RATINGS_DAT, "movies.dat": _MOVIES_DAT, "tags.dat": ""}),
    **{
        key: (f"ml-{key}", {"ratings.csv": _RATINGS_CSV, "movies.csv": _MOVIES_CSV, "tags.csv": ""})
        for key in ("20m", "25m", "32m")
    },
}


@pytest.mark.parametrize("key", sorted(_BIG))
def test_download_10m_to_32m(key, server, monkeypatch, tmp_path):
    folder, files = _BIG[key]
    _publish(server, {f"{folder}/{n}": t for n, t in files.items()}, monkeypatch, key=key)
    home = tmp_path / "home"
    with pytest.raises(FileNotFoundError, match=f"MovieLens {key.upper()} not found.*{folder}"):
        fetch_movielens(key, data_home=home, download_if_missing=False)
    b = fetch_movielens(f"ml-{key}", data_home=home)
    assert sorted(os.listdir(home)) == [folder]  # no zip or temporary files left
    assert b.data.dtype == np.int64 and b.target.dtype == np.float64
    np.testing.assert_array_equal(b.data, [[1, 1], [1, 7], [9, 1]])
    np.testing.assert_array_equal(b.target, [5.0, 3.5, 0.5])
    np.testing.assert_array_equal(b.timestamps, [838985046, 838983525, 868245777])
    assert b.item_titles[1].startswith("Amélie") and b.item_genres[1] == ["Comedy", "Romance"]
    assert b.name == folder and f"MovieLens {key.upper()}" in b.DESCR
    assert "3 ratings (0.5..5) by 2 users on 2 items" in b.DESCR
    if key != "10m":
        assert b.item_ids.tolist() == [1, 7, 8] and b.item_genres[2] == []
    # Cached now: no network needed.
    monkeypatch.setitem(datasets.REMOTE_FILES, key, RemoteFile("http://0.0.0.0:9/", "0", "x"))
    X, y = fetch_movielens(key, data_home=home, return_X_y=True)
    np.testing.assert_array_equal(X, b.data)


@pytest.mark.parametrize("key", ["10m", "32m"])
def test_10m_to_32m_as_frame(key, tmp_path):
    pytest.importorskip("pandas")
    folder, files = _BIG[key]
    (tmp_path / folder).mkdir()
    for name, text in files.items():
        (tmp_path / folder / name).write_text(text, encoding="utf-8")
    (tmp_path / folder / files_ratings(key)).open("a").write(
        "9::99::4::1\n" if key == "10m" else "9,99,4.0,1\n"
    )  # an item missing from the catalogue
    b = fetch_movielens(key, data_home=tmp_path, as_frame=True, download_if_missing=False)
    assert list(b.frame.columns) == ["user_id", "item_id", "rating", "timestamp", "title", "genres"]
    assert b.frame["title"].tolist()[:3] == [
        "Toy Story (1995)", b.item_titles[1], "Toy Story (1995)"
    ]  # fmt: skip
    assert b.frame["genres"].iloc[1] == "Comedy|Romance"
    assert b.frame["title"].isna().tolist() == [False, False, False, True]
    assert b.data.shape == (4, 2) and b.target.name == "rating"


def files_ratings(key):
    return "ratings.dat" if key == "10m" else "ratings.csv"


def test_csv_header_checked(tmp_path):
    (tmp_path / "ml-20m").mkdir()
    (tmp_path / "ml-20m" / "ratings.csv").write_text("user,item,stars\n1,1,5\n")
    (tmp_path / "ml-20m" / "movies.csv").write_text(_MOVIES_CSV)
    with pytest.raises(ValueError, match="expected a header starting b'userId,movieId,rating'"):
        fetch_movielens("20m", data_home=tmp_path, download_if_missing=False)


def _ratings_lines(n, seed=0, sep="::"):
    rng = np.random.default_rng(seed)
    users, items = rng.integers(1, 300_000, n), rng.integers(1, 300_000, n)
    stars, stamps = rng.integers(1, 11, n) / 2, rng.integers(789_652_009, 1_700_000_000, n)
    lines = [f"{u}{sep}{i}{sep}{r:g}{sep}{t}" for u, i, r, t in zip(users, items, stars, stamps)]
    return lines, (np.column_stack([users, items]), stars, stamps)


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 24])
@pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
def test_block_reader_boundaries(tmp_path, monkeypatch, block, ending):
    # Lines cut by block boundaries anywhere, CRLF, with or without a final newline.
    lines, (pairs, stars, stamps) = _ratings_lines(50)
    path = tmp_path / "ratings.dat"
    path.write_bytes(("\n".join(lines).replace("\n", ending or "\n") + ending).encode())
    monkeypatch.setattr(datasets, "_BLOCK_BYTES", block)
    got_pairs, got_stars, got_stamps = datasets._read_ratings(
        functools.partial(path.open, "rb"), b"::", "ratings.dat"
    )
    np.testing.assert_array_equal(got_pairs, pairs)
    np.testing.assert_array_equal(got_stars, stars)
    np.testing.assert_array_equal(got_stamps, stamps)


def test_block_reader_memory_is_bounded(tmp_path, monkeypatch):
    # Peak memory while reading is the returned arrays plus a few blocks, not a multiple of
    # the file size (a whole-file parse needs about 4x the arrays: text, copy, floats).
    n = 200_000
    lines, _ = _ratings_lines(n, sep=",")
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n" + "\n".join(lines) + "\n")
    monkeypatch.setattr(datasets, "_BLOCK_BYTES", 1 << 16)
    opener = functools.partial(path.open, "rb")
    tracemalloc.start()
    try:
        result = datasets._read_ratings(opener, b",", "ratings.csv", b"userId,movieId,rating")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    output = sum(a.nbytes for a in result)
    assert output == n * 32
    assert peak < output + (1 << 20), (peak, output, path.stat().st_size)


@pytest.mark.parametrize(
    "lines, message",
    [
        (["1::1::5::1", "1::2.5::3::2"], r"lines 1..2 .*4 numbers.*'2.5'"),
        (["1::1::5::1", "-1::2::3::2"], "line 2 holds a negative id"),
        (["1::1::5::1", "1::2::3::2", "1::3::3"], r"lines 1..3 .*4 numbers"),
        (["1::1::5", "1::2::3::2"], r"lines 1..2 .*3 numbers"),
    ],
)
def test_malformed_lines_are_located(tmp_path, lines, message):
    _write_1m(tmp_path / "ml-1m", lines)
    with pytest.raises(ValueError, match=message):
        fetch_movielens("1m", data_home=tmp_path, download_if_missing=False)


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        ({"name": "5m"}, "'5m'"),
        ({"name": "ML-10M"}, "'ML-10M'"),
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
