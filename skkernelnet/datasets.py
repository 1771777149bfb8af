"""Rating datasets: the MovieLens loaders and a synthetic rating generator.

MovieLens "latest-small" ships with the package. MovieLens 100K, 1M, 10M, 20M, 25M
and 32M may not be redistributed, so they are read from a local folder (see
:func:`get_data_home`) or downloaded from GroupLens on first use. Rating files are
parsed in blocks straight into the returned arrays, so loading MovieLens 32M (an
877 MB ``ratings.csv``) needs little more memory than the arrays themselves.
"""

import csv
import functools
import hashlib
import io
import os
import shutil
import sys
import tempfile
import urllib.request
import warnings
import zipfile
from collections import namedtuple
from importlib import resources
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = ["RemoteFile", "REMOTE_FILES", "get_data_home", "fetch_movielens", "make_ratings"]

RemoteFile = namedtuple("RemoteFile", ["url", "sha256", "filename"])
RemoteFile.__doc__ = """Archive to download: its URL, expected sha256 hex digest and file name.

Examples
--------
>>> REMOTE_FILES["1m"].filename
'ml-1m.zip'
"""

# Tests replace these entries (monkeypatch.setitem) to point at a local server. The sha256
# digests of 10M-32M agree with independent public records (tensorflow_datasets' checksum
# list for 20M and 25M) and the archives' sizes; GroupLens itself publishes MD5 sidecars
# (ml-10m.zip.md5 ...: ce571fd5..., cd245b17..., 6b51fb27..., d472be33...).
REMOTE_FILES = {
    "100k": RemoteFile(
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",  # 4,924,029 bytes
        "ml-100k.zip",
    ),
    "1m": RemoteFile(
        "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",  # 5,917,549 bytes
        "ml-1m.zip",
    ),
    "10m": RemoteFile(
        "https://files.grouplens.org/datasets/movielens/ml-10m.zip",
        "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",  # 65,566,137 bytes
        "ml-10m.zip",
    ),
    "20m": RemoteFile(
        "https://files.grouplens.org/datasets/movielens/ml-20m.zip",
        "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",  # 198,702,078 bytes
        "ml-20m.zip",
    ),
    "25m": RemoteFile(
        "https://files.grouplens.org/datasets/movielens/ml-25m.zip",
        "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",  # 261,978,986 bytes
        "ml-25m.zip",
    ),
    "32m": RemoteFile(
        "https://files.grouplens.org/datasets/movielens/ml-32m.zip",
        "e4a68655d7386b8f95f2f2424b2ff975dfdd15ffd59e0d864a14dca43e99d6ee",  # 238,950,008 bytes
        "ml-32m.zip",
    ),
}

_ALIASES = {"latest-small": "latest-small", "ml-latest-small": "latest-small"}
_ALIASES.update({k: k for k in ("100k", "1m", "10m", "20m", "25m", "32m")})
_ALIASES.update({f"ml-{k}": k for k in ("100k", "1m", "10m", "20m", "25m", "32m")})
_ALIASES["ml-10M100K"] = "10m"  # the folder name inside ml-10m.zip
_FOLDERS = {"100k": "ml-100k", "1m": "ml-1m", "latest-small": "ml-latest-small"}
_FOLDERS.update({"10m": "ml-10M100K", "20m": "ml-20m", "25m": "ml-25m", "32m": "ml-32m"})
_CSV_HEADER = b"userId,movieId,rating"
_TITLES = {"100k": "100K", "1m": "1M", "10m": "10M", "20m": "20M", "25m": "25M", "32m": "32M"}
# Rating files are read in blocks of this many bytes (tests shrink it).
_BLOCK_BYTES = 1 << 24
_SUBSETS = ("all", "train", "test")
_EXT = {"train": "base", "test": "test"}
_SPLITS_100K = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
_GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_CITATION = (
    "F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and\n"
    "Context. ACM Transactions on Interactive Intelligent Systems (TiiS) 5, 4: 19:1-19:19.\n"
    "https://doi.org/10.1145/2827872"
)


def get_data_home(data_home=None):
    """Return the folder where the MovieLens datasets are looked for and downloaded to.

    Nothing is created here; the folder is made only when a download needs it.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder to use. If None, the environment variable ``SKKERNELNET_DATA`` is used
        when set, else ``$XDG_CACHE_HOME/skkernelnet`` (``~/.cache/skkernelnet`` when
        ``XDG_CACHE_HOME`` is unset).

    Returns
    -------
    data_home : pathlib.Path
        The folder, with ``~`` expanded.

    Examples
    --------
    >>> from skkernelnet.datasets import get_data_home
    >>> str(get_data_home("/tmp/movielens"))
    '/tmp/movielens'
    """
    if data_home is None:
        data_home = os.environ.get("SKKERNELNET_DATA") or None
    if data_home is None:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        data_home = os.path.join(cache, "skkernelnet")
    return Path(os.path.expanduser(os.fspath(data_home)))


def _safe_extract(archive, target):
    """Extract a zip archive into ``target``, refusing members that would land outside it."""
    target = Path(target).resolve()
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            name = member.filename
            dest = (target / name).resolve()
            if os.path.isabs(name) or ".." in Path(name).parts or not dest.is_relative_to(target):
                raise OSError(f"Refusing to extract unsafe archive member {name!r} from {archive}")
        zf.extractall(target)


def _download(remote, data_home, folder, verbose=False):
    """Download, verify and unpack ``remote`` so that ``data_home/folder`` exists."""
    data_home.mkdir(parents=True, exist_ok=True)
    if verbose:
        print(f"Downloading {remote.url} to {data_home}", file=sys.stderr)
    # Everything goes to temporary names first, so an interrupted or failed download never
    # leaves something that a later call would mistake for a complete dataset.
    fd, part = tempfile.mkstemp(prefix=f".{remote.filename}.", suffix=".part", dir=data_home)
    unpack = None
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(remote.url, timeout=60) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != remote.sha256:
            raise OSError(
                f"Checksum mismatch for {remote.url}: expected sha256 {remote.sha256}, "
                f"got {digest.hexdigest()}; the file was removed"
            )
        unpack = Path(tempfile.mkdtemp(prefix=f".{folder}.", dir=data_home))
        _safe_extract(part, unpack)
        if not (unpack / folder).is_dir():
            raise OSError(f"{remote.url} does not contain the folder {folder!r}")
        dest = data_home / folder
        if not dest.exists():
            os.replace(unpack / folder, dest)
        else:  # an incomplete copy is already there: add the missing files, keep the user's
            for child in (unpack / folder).iterdir():
                if not (dest / child.name).exists():
                    os.replace(child, dest / child.name)
    finally:
        Path(part).unlink(missing_ok=True)
        if unpack is not None:
            shutil.rmtree(unpack, ignore_errors=True)


_FIELDS = [("user", np.int64), ("item", np.int64), ("rating", np.float64), ("time", np.int64)]


class _RatingColumns:
    """The output arrays of :func:`_read_ratings`, filled one block of lines at a time."""

    def __init__(self, n_rows, n_fields):
        self.pairs = np.empty((n_rows, 2), dtype=np.int64)
        self.ratings = np.empty(n_rows, dtype=np.float64)
        self.timestamps = np.empty(n_rows, dtype=np.int64) if n_fields == 4 else None
        self.filled = 0

    def add(self, records, source, first_line):
        """Store a block of parsed lines (a structured array of :data:`_FIELDS`)."""
        end = self.filled + len(records)
        if end > len(self.ratings):  # the file changed between the two passes
            raise ValueError(f"{source}: the file changed while it was being read")
        bad = np.flatnonzero((records["user"] < 0) | (records["item"] < 0))
        if bad.size:
            raise ValueError(f"{source}: line {first_line + int(bad[0])} holds a negative id")
        self.pairs[self.filled : end, 0] = records["user"]
        self.pairs[self.filled : end, 1] = records["item"]
        self.ratings[self.filled : end] = records["rating"]
        if self.timestamps is not None:
            self.timestamps[self.filled : end] = records["time"]
        self.filled = end

    def result(self):
        n = self.filled
        timestamps = None if self.timestamps is None else self.timestamps[:n]
        return self.pairs[:n], self.ratings[:n], timestamps


def _parse_block(text, sep, n_fields, source, first_line):
    """Parse ``user<sep>item<sep>rating[<sep>timestamp]`` lines into a structured array."""
    # np.loadtxt's C parser with integer fields parses ~1M lines a second, about 3x
    # np.fromstring into floats; a pandas frame of strings would hold the text many times.
    dtype = np.dtype(_FIELDS[:n_fields])
    if not text.strip():
        return np.empty(0, dtype)
    delimiter = sep.decode()
    if len(delimiter) > 1:  # "::" (1M, 10M): loadtxt takes a one-character delimiter
        text, delimiter = text.replace(sep, sep[:1]), delimiter[0]
    try:
        return np.loadtxt(
            io.BytesIO(text), dtype=dtype, delimiter=delimiter, comments=None, ndmin=1
        )
    except ValueError as exc:
        last = first_line + text.count(b"\n")
        raise ValueError(
            f"{source}: malformed ratings file in lines {first_line}..{last} (each line must "
            f"be {n_fields} numbers: user id, item id, rating"
            f"{', timestamp' if n_fields == 4 else ''}; {exc})"
        ) from None


def _read_ratings(open_binary, sep, source, header=None):
    """Read a MovieLens ratings file into ``(pairs, ratings, timestamps)`` arrays.

    ``open_binary()`` opens the file for reading bytes. A first pass counts the lines so
    that the int64 (n, 2) pairs, float64 ratings and int64 timestamps (None for 3 fields)
    are allocated once; the second pass parses blocks of ``_BLOCK_BYTES`` straight into
    them. Peak memory is therefore the returned arrays plus a few blocks, whatever the
    size of the file. ``header``, when given, is the expected first line (its leading
    column names).
    """
    n_newlines, first, last_byte = 0, b"", b"\n"
    with open_binary() as f:
        if header is not None:
            found = f.readline().strip()
            if not found.startswith(header):
                raise ValueError(f"{source}: expected a header starting {header!r}, got {found!r}")
        for block in iter(lambda: f.read(_BLOCK_BYTES), b""):
            if b"\n" not in first:
                first = (first + block).lstrip()
            n_newlines += block.count(b"\n")
            last_byte = block[-1:]
    first = first.partition(b"\n")[0].strip()
    if not first:
        return np.empty((0, 2), np.int64), np.empty(0), None
    n_fields = first.count(sep) + 1
    if n_fields not in (3, 4):
        raise ValueError(f"{source}: expected 3 or 4 fields per line, found {n_fields}")
    columns = _RatingColumns(n_newlines + (last_byte != b"\n"), n_fields)
    line = 2 if header is not None else 1
    with open_binary() as f:
        if header is not None:
            f.readline()
        rest = b""
        while True:
            block = f.read(_BLOCK_BYTES)
            if block:
                block = rest + block
                cut = block.rfind(b"\n")
                if cut < 0:
                    rest = block
                    continue
                text, rest = block[:cut], block[cut + 1 :]
            else:
                text, rest = rest, b""
            # Lines skipped by strip() (leading blank ones) shift the reported numbers;
            # only error messages use them.
            values = _parse_block(text, sep, n_fields, source, line)
            columns.add(values, source, line)
            line += text.count(b"\n") + 1
            if not block:
                break
    return columns.result()


def _items_100k(folder):
    genres = _GENRES_100K
    if (folder / "u.genre").is_file():
        lines = (folder / "u.genre").read_text("latin-1").splitlines()
        genres = tuple(line.split("|")[0] for line in lines if line.strip())
    ids, titles, item_genres = [], [], []
    for line in (folder / "u.item").read_text("latin-1").splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        ids.append(int(fields[0]))
        titles.append(fields[1])
        flags = fields[5 : 5 + len(genres)]
        item_genres.append([g for g, flag in zip(genres, flags, strict=False) if flag == "1"])
    return ids, titles, item_genres


def _read_text(path):
    """Text of a MovieLens file: UTF-8 in the newer releases, latin-1 in 100K and 1M."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _items_dat(folder):
    ids, titles, item_genres = [], [], []
    for line in _read_text(folder / "movies.dat").splitlines():
        if line.strip():
            movie_id, title, genres = line.split("::", 2)
            ids.append(int(movie_id))
            titles.append(title)
            item_genres.append(genres.split("|") if genres else [])
    return ids, titles, item_genres


def _items_csv(folder):
    return _items_latest(_read_text(folder / "movies.csv"))


def _items_latest(text):
    ids, titles, item_genres = [], [], []
    for row in csv.DictReader(io.StringIO(text)):
        ids.append(int(row["movieId"]))
        titles.append(row["title"])
        genres = row["genres"]
        item_genres.append([] if genres == "(no genres listed)" else genres.split("|"))
    return ids, titles, item_genres


# name -> (ratings file, separator, expected header or None, items file, items reader)
_LAYOUTS = {
    "100k": ("u.data", b"\t", None, "u.item", _items_100k),
    "1m": ("ratings.dat", b"::", None, "movies.dat", _items_dat),
    "10m": ("ratings.dat", b"::", None, "movies.dat", _items_dat),
    "20m": ("ratings.csv", b",", _CSV_HEADER, "movies.csv", _items_csv),
    "25m": ("ratings.csv", b",", _CSV_HEADER, "movies.csv", _items_csv),
    "32m": ("ratings.csv", b",", _CSV_HEADER, "movies.csv", _items_csv),
}


def _check_args(name, subset, split):
    key = _ALIASES.get(name) if isinstance(name, str) else None
    if key is None:
        raise ValueError(f"Unknown MovieLens dataset {name!r}; valid names: {sorted(_ALIASES)}")
    if subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {list(_SUBSETS)}, got {subset!r}")
    if key != "100k":
        if subset != "all" or split is not None:
            raise ValueError(
                f"subset={subset!r}, split={split!r}: only the 100k dataset has predefined "
                "splits; use subset='all' and split=None (then e.g. train_test_split)"
            )
    elif subset == "all" and split is not None:
        raise ValueError(f"split={split!r} needs subset='train' or 'test', not subset='all'")
    elif subset != "all" and split not in _SPLITS_100K:
        raise ValueError(f"subset={subset!r} needs split in {list(_SPLITS_100K)}, got {split!r}")
    return key


def _import_pandas():
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            "as_frame=True requires pandas; install it with `pip install pandas` "
            "or call fetch_movielens with as_frame=False"
        ) from exc
    return pd


def _n_distinct(ids):
    """Number of distinct non-negative ids; a count table is much faster than np.unique."""
    if ids.size == 0:
        return 0
    if ids.max() < 4 * ids.size + (1 << 20):
        return int(np.count_nonzero(np.bincount(ids)))
    return int(np.unique(ids).size)


def _describe(key, subset, split, users, items, ratings, timestamps):
    title = "MovieLens" + (f" {_TITLES[key]}" if key in _TITLES else "")
    if key == "latest-small":
        title += " latest-small (2016-10 snapshot, bundled with skkernelnet)"
        redistribution = "may be redistributed, with its README, under these same conditions"
    else:
        redistribution = "may NOT be redistributed without separate permission"
    part = "all ratings" if subset == "all" else f"{split}.{_EXT[subset]}"
    scale = f"{ratings.min():g}..{ratings.max():g}" if ratings.size else "n/a"
    stamps = "present" if timestamps is not None else "not in this copy of the file"
    return (
        f"{title}\n{'=' * len(title)}\n\n"
        f"Subset: {part}. {ratings.size:,} ratings ({scale}) by {_n_distinct(users):,} users "
        f"on {_n_distinct(items):,} items. Timestamps: {stamps}.\n\n"
        "Source: GroupLens Research, University of Minnesota, "
        "https://grouplens.org/datasets/movielens/\n\n"
        "Licence (summary; see the dataset's README for the full terms): research use only; no\n"
        "commercial or revenue-bearing use without permission; do not state or imply endorsement\n"
        "by the University of Minnesota or GroupLens; acknowledge the data in publications.\n"
        f"The data {redistribution}.\n\nCitation:\n{_CITATION}\n"
    )


def fetch_movielens(
    name,
    *,
    data_home=None,
    subset="all",
    split=None,
    download_if_missing=True,
    as_frame=False,
    return_X_y=False,
    verbose=False,
):
    """Load a MovieLens rating dataset as (user id, item id) -> rating.

    ================  ==========  =======  ======  ======  ===========================
    name              ratings     users    items   scale   where it comes from
    ================  ==========  =======  ======  ======  ===========================
    ``latest-small``  100,004     671      9,066   0.5..5  bundled with the package
    ``100k``          100,000     943      1,682   1..5    ``data_home`` or download
    ``1m``            1,000,209   6,040    3,706   1..5    ``data_home`` or download
    ``10m``           10,000,054  69,878   10,677  0.5..5  ``data_home`` or download
    ``20m``           20,000,263  138,493  26,744  0.5..5  ``data_home`` or download
    ``25m``           25,000,095  162,541  59,047  0.5..5  ``data_home`` or download
    ``32m``           32,000,204  200,948  84,432  0.5..5  ``data_home`` or download
    ================  ==========  =======  ======  ======  ===========================

    (items: items with at least one rating; ``item_ids`` lists the whole catalogue.)
    The downloadable datasets are read from ``data_home/<folder>/``, the layout of the
    official zip files: ``ml-100k/`` (``u.data``, ``u.item``, ``u1.base``, ...),
    ``ml-1m/`` and ``ml-10M100K/`` (``ratings.dat`` and ``movies.dat``, fields separated
    by ``::``), ``ml-20m/``, ``ml-25m/`` and ``ml-32m/`` (``ratings.csv`` and
    ``movies.csv`` with a header line). When missing they are downloaded from GroupLens
    (see ``REMOTE_FILES``: 5 MB for 100K up to 262 MB for 25M), checked against a pinned
    sha256 and unpacked there; the zip is deleted afterwards. Their licence forbids
    redistribution: do not commit them. ``ratings.dat`` is accepted with or without its
    timestamp field.

    The ratings file is parsed in blocks of 16 MB straight into the returned arrays (no
    pandas frame of strings, no copy of the whole text), so the peak memory of a load is
    the arrays, 32 bytes a rating, plus a few blocks: about 1.1 GB for 32M.
    ``as_frame=True`` adds the DataFrame (another 32 bytes a rating and two object
    columns).

    Parameters
    ----------
    name : {"latest-small", "100k", "1m", "10m", "20m", "25m", "32m"}
        The dataset; the names with an ``"ml-"`` prefix (``"ml-1m"``, ...) and
        ``"ml-10M100K"`` work too.
    data_home : str or path-like, default=None
        Folder holding ``ml-100k/``, ``ml-1m/``, ...; see :func:`get_data_home`. Not used
        for ``"latest-small"``.
    subset : {"all", "train", "test"}, default="all"
        ``"train"``/``"test"`` (100K only) load the ``.base``/``.test`` file of ``split``.
    split : {"u1", "u2", "u3", "u4", "u5", "ua", "ub"}, default=None
        Predefined 100K split, required when ``subset`` is not ``"all"``. u1..u5 are the
        80/20 folds whose tests partition the data; ua/ub hold out 10 ratings per user.
    download_if_missing : bool, default=True
        If False, raise :class:`FileNotFoundError` instead of downloading.
    as_frame : bool, default=False
        If True, ``data`` is a pandas DataFrame, ``target`` a Series and ``frame`` the
        ratings joined with the item titles and genres. Requires pandas.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    verbose : bool, default=False
        If True, report downloads on standard error.

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        With ``data`` (n_ratings, 2) int64 array of raw MovieLens (user id, item id) (no
        re-indexing), ``target`` float64 ratings, ``timestamps`` int64 Unix times or None
        when the file has none, ``feature_names`` ``["user_id", "item_id"]``,
        ``target_names`` ``["rating"]``, ``item_ids`` (every item of the catalogue, also
        unrated ones), ``item_titles`` (object array of str) and ``item_genres`` (list of
        lists of str), both in ``item_ids`` order, ``frame`` (DataFrame or None), ``DESCR``
        (counts, licence summary, citation) and ``name``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    ValueError
        For an unknown ``name``, ``subset`` or ``split``, or a malformed file.
    FileNotFoundError
        If the data is missing and ``download_if_missing`` is False.
    OSError
        If a download fails its checksum or contains unsafe paths.

    Examples
    --------
    >>> from skkernelnet.datasets import fetch_movielens
    >>> ml = fetch_movielens("latest-small")
    >>> ml.data.shape, ml.target.min(), ml.target.max()
    ((100004, 2), np.float64(0.5), np.float64(5.0))
    >>> X, y = fetch_movielens("latest-small", return_X_y=True)
    >>> train = fetch_movielens("100k", subset="train", split="u1")  # doctest: +SKIP
    >>> train.data.shape  # doctest: +SKIP
    (80000, 2)
    """
    key = _check_args(name, subset, split)
    if key == "latest-small":
        folder = resources.files("skkernelnet.data").joinpath("ml-latest-small")
        ratings_file, sep, header = folder.joinpath("ratings.csv"), b",", _CSV_HEADER
        ratings_source = "ml-latest-small/ratings.csv"
        item_info = _items_latest(folder.joinpath("movies.csv").read_text("utf-8"))
    else:
        home = get_data_home(data_home)
        folder = home / _FOLDERS[key]
        fname, sep, header, item_file, reader = _LAYOUTS[key]
        if key == "100k" and subset != "all":
            fname = f"{split}.{_EXT[subset]}"
        ratings_file = folder / fname
        if not ratings_file.is_file():
            if not download_if_missing:
                remote = REMOTE_FILES[key]
                raise FileNotFoundError(
                    f"MovieLens {_TITLES[key]} not found: looked for {ratings_file}. Download "
                    f"{remote.url} and unzip it into {home}, set SKKERNELNET_DATA or pass "
                    "data_home to a folder holding it, or use download_if_missing=True."
                )
            _download(REMOTE_FILES[key], home, _FOLDERS[key], verbose=verbose)
        ratings_source = str(ratings_file)
        if (folder / item_file).is_file():
            item_info = reader(folder)
        else:
            warnings.warn(f"{folder / item_file} not found: no item titles or genres", stacklevel=2)
            item_info = ([], [], [])

    pairs, target, timestamps = _read_ratings(
        functools.partial(ratings_file.open, "rb"), sep, ratings_source, header
    )
    users, items = pairs[:, 0], pairs[:, 1]
    item_ids, titles, genres = item_info
    bunch = Bunch(
        data=pairs,
        target=target,
        timestamps=timestamps,
        feature_names=["user_id", "item_id"],
        target_names=["rating"],
        item_ids=np.asarray(item_ids, dtype=np.int64),
        item_titles=np.array(titles, dtype=object),
        item_genres=genres,
        frame=None,
        DESCR=_describe(key, subset, split, users, items, target, timestamps),
        name=_FOLDERS[key],
    )
    if as_frame:
        pd = _import_pandas()
        bunch.data = pd.DataFrame({"user_id": users, "item_id": items})
        bunch.target = pd.Series(target, name="rating")
        frame = bunch.data.assign(rating=target)
        if timestamps is not None:
            frame["timestamp"] = timestamps
        # A left join on item_id without pandas' merge, which would copy every column
        # (gigabytes at 32M ratings); unknown items get NaN as in a merge.
        position = _catalogue_position(bunch.item_ids, items)
        known = position >= 0
        for column, values in (("title", titles), ("genres", ["|".join(g) for g in genres])):
            table = np.array(list(values) + [np.nan], dtype=object)
            frame[column] = table[np.where(known, position, len(table) - 1)]
        bunch.frame = frame
    if return_X_y:
        return bunch.data, bunch.target
    return bunch


def _catalogue_position(item_ids, items):
    """Index of each of ``items`` in ``item_ids``, -1 where absent."""
    if item_ids.size == 0:
        return np.full(items.shape, -1, dtype=np.int64)
    top = max(int(item_ids.max()), int(items.max(initial=0)))
    if item_ids.min() >= 0 and items.min(initial=0) >= 0 and top < (1 << 24):
        table = np.full(top + 1, -1, dtype=np.int64)  # MovieLens ids are small integers
        table[item_ids[::-1]] = np.arange(item_ids.size)[::-1]  # first occurrence wins
        return table[items]
    order = np.argsort(item_ids, kind="stable")
    sorted_ids = item_ids[order]
    slot = np.minimum(np.searchsorted(sorted_ids, items), sorted_ids.size - 1)
    return np.where(sorted_ids[slot] == items, order[slot], -1)


def _sample_pairs(rng, user_w, item_w, n_ratings):
    """Draw ``n_ratings`` distinct flat cell indices ``user * n_items + item``.

    A cell's chance to be drawn grows with ``user_w[user] * item_w[item]``.
    """
    n_users, n_items = user_w.size, item_w.size
    n_cells = n_users * n_items
    if n_ratings == n_cells:
        return np.arange(n_cells, dtype=np.int64)
    if n_cells <= max(1 << 24, 3 * n_ratings):
        # Small or dense grids: exact weighted sampling without replacement
        # (Efraimidis-Spirakis keys), O(n_cells) but n_cells is bounded here.
        keys = rng.standard_exponential(n_cells) / np.outer(user_w, item_w).ravel()
        return np.argpartition(keys, n_ratings - 1)[:n_ratings].astype(np.int64)
    # Sparse grids (density < 1/3): draw cells with replacement and drop repeats, so memory
    # stays O(n_ratings). The hottest user x item corner saturates, as in real data; after a
    # few rounds the rest is filled uniformly, where at least 2/3 of the draws are new.
    user_cdf, item_cdf = np.cumsum(user_w / user_w.sum()), np.cumsum(item_w / item_w.sum())
    flat, accept = np.empty(0, np.int64), 1.0
    for round_ in range(64):
        need = n_ratings - flat.size
        if need <= 0:
            break
        m = min(int(need / max(accept, 0.05) * 1.05) + 64, 4 * n_ratings)
        if round_ < 6:
            u = np.searchsorted(user_cdf, rng.random(m) * user_cdf[-1], side="right")
            i = np.searchsorted(item_cdf, rng.random(m) * item_cdf[-1], side="right")
            new = np.minimum(u, n_users - 1) * n_items + np.minimum(i, n_items - 1)
        else:
            new = rng.integers(0, n_cells, size=m, dtype=np.int64)
        before = flat.size
        # Sort + mask: np.unique's hash path is several times slower on ~10M int64.
        flat = np.sort(np.concatenate([flat, new]))
        flat = flat[np.concatenate(([True], flat[1:] != flat[:-1]))]
        accept = max((flat.size - before) / m, 1e-3)
    if flat.size > n_ratings:  # drop the surplus at random, not the largest indices
        flat = np.delete(flat, rng.choice(flat.size, flat.size - n_ratings, replace=False))
    return flat


def make_ratings(
    n_users=1000,
    n_items=500,
    density=0.05,
    *,
    n_ratings=None,
    rank=5,
    noise=0.5,
    rating_scale=(1, 5),
    integer=True,
    popularity_skew=1.0,
    random_state=None,
    return_X_y=False,
):
    """Generate a synthetic explicit-feedback rating dataset.

    Observed (user, item) pairs are distinct and sampled without building the dense matrix,
    with a popularity skew like that of real rating data: user activity weights are
    lognormal (sigma ``popularity_skew``) and item popularity weights lognormal (sigma
    ``1.5 * popularity_skew``), so a few users rate a lot and a few items are rated a lot.
    Each rating is ``mu + b_u + b_i + <p_u, q_i> + noise * eps``, clipped to
    ``rating_scale`` (and rounded to whole stars if ``integer``).

    Parameters
    ----------
    n_users, n_items : int, default=1000, 500
        Number of users and items; ids run over ``range(n_users)`` and ``range(n_items)``.
        Users or items that draw no rating may exist.
    density : float in (0, 1], default=0.05
        Fraction of the ``n_users * n_items`` cells that are rated.
    n_ratings : int, default=None
        Exact number of ratings; overrides ``density`` when given.
    rank : int, default=5
        Dimension of the latent factors ``p_u`` and ``q_i``.
    noise : float, default=0.5
        Standard deviation of the Gaussian rating noise, in rating units.
    rating_scale : (float, float), default=(1, 5)
        Lowest and highest rating.
    integer : bool, default=True
        Round ratings to integers (after adding noise, before clipping).
    popularity_skew : float, default=1.0
        Strength of the popularity skew; 0 samples pairs uniformly.
    random_state : int, RandomState instance, Generator or None, default=None
        Seed for reproducible output.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        ``data`` (n_ratings, 2) int64 (user id, item id) in random order, ``target``
        float64 ratings, ``feature_names``, ``target_names``, the true parameters
        ``global_mean``, ``user_bias``, ``item_bias``, ``user_factors``, ``item_factors``,
        and ``DESCR``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Notes
    -----
    Memory is O(n_ratings + n_users + n_items). A MovieLens-10M-shaped set
    (``n_users=69878, n_items=10677, n_ratings=9_000_000``) took about 4 s and under
    1 GB peak memory on one CPU core when this was written.

    Examples
    --------
    >>> from skkernelnet.datasets import make_ratings
    >>> X, y = make_ratings(200, 100, density=0.1, random_state=0, return_X_y=True)
    >>> X.shape, y.min(), y.max()
    ((2000, 2), np.float64(1.0), np.float64(5.0))
    """
    n_users, n_items, rank = int(n_users), int(n_items), int(rank)
    if n_users < 1 or n_items < 1 or rank < 1:
        raise ValueError(f"n_users, n_items, rank must be >= 1, got {n_users}, {n_items}, {rank}")
    n_cells = n_users * n_items
    if n_ratings is None:
        if not 0 < density <= 1:
            raise ValueError(f"density must be in (0, 1], got {density!r}")
        n_ratings = max(1, round(density * n_cells))
    n_ratings = int(n_ratings)
    if not 1 <= n_ratings <= n_cells:
        raise ValueError(f"n_ratings must be in [1, n_users * n_items], got {n_ratings}")
    low, high = float(rating_scale[0]), float(rating_scale[1])
    if not low < high:
        raise ValueError(f"rating_scale must be (low, high) with low < high, got {rating_scale!r}")
    if noise < 0 or popularity_skew < 0:
        raise ValueError(f"noise, popularity_skew must be >= 0, got {noise!r}, {popularity_skew!r}")
    if isinstance(random_state, np.random.Generator):
        rng = random_state
    else:
        rng = np.random.default_rng(check_random_state(random_state).randint(2**31 - 1))

    user_w = np.exp(popularity_skew * rng.standard_normal(n_users))
    item_w = np.exp(1.5 * popularity_skew * rng.standard_normal(n_items))
    flat = _sample_pairs(rng, user_w, item_w, n_ratings)
    flat = flat[rng.permutation(flat.size)]
    users, items = np.divmod(flat, n_items)
    del flat

    # Sizes relative to the scale width, set so that 1..5 resembles MovieLens (mean ~3.5).
    span = high - low
    mu = low + 0.625 * span
    user_bias = rng.normal(0, 0.1 * span, n_users)
    item_bias = rng.normal(0, 0.125 * span, n_items)
    scale = np.sqrt(0.15 * span / np.sqrt(rank))
    P = rng.normal(0, scale, (n_users, rank))
    Q = rng.normal(0, scale, (n_items, rank))
    target = np.empty(n_ratings)
    for start in range(0, n_ratings, 1 << 20):  # chunks keep the (n, rank) gathers small
        u, i = users[start : start + (1 << 20)], items[start : start + (1 << 20)]
        dot = np.einsum("ij,ij->i", P[u], Q[i])
        target[start : start + u.size] = mu + user_bias[u] + item_bias[i] + dot
    target += noise * rng.standard_normal(n_ratings)
    if integer:
        np.round(target, out=target)
    np.clip(target, low, high, out=target)

    data = np.column_stack([users, items])
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        feature_names=["user_id", "item_id"],
        target_names=["rating"],
        global_mean=mu,
        user_bias=user_bias,
        item_bias=item_bias,
        user_factors=P,
        item_factors=Q,
        DESCR=(
            f"Synthetic ratings from skkernelnet.datasets.make_ratings: {n_ratings:,} ratings "
            f"by {n_users:,} users on {n_items:,} items, rank {rank}, noise {noise}, "
            f"scale {low:g}..{high:g}, popularity skew {popularity_skew}."
        ),
    )
