"""MovieLens ratings from a local file, as a time-ordered stream of click-like events.

The paper's first experiment (section 3.1.1, Table 1, Figure 7) trains DeepFM on ml-25m
and counts a rating of 3.5 or more as a positive. This loader reads the three layouts the
GroupLens releases use, from a path the reader gives (nothing is downloaded):

* ``ratings.csv`` of ml-25m, ml-20m and ml-latest: a ``userId,movieId,rating,timestamp``
  header, then comma-separated rows;
* ``u.data`` of ml-100k: tab-separated ``user item rating timestamp`` rows, no header;
* ``ratings.dat`` of ml-1m and ml-10m: ``user::movie::rating::timestamp`` rows.

The layout is recognised from the first line. Rows are parsed in chunks by NumPy's C
reader (ml-25m's 25M rows take seconds, with no pandas); any malformed row is reported
with its line number and text.

See: book/ch08_deepfm.md
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from ..checks import check_number
from ..events import Events, field_ids

__all__ = ["RATING_THRESHOLD", "MovieLensRatings", "detect_format", "read_ratings", "load_movielens"]

#: The paper's rule: a rating of 3.5 or more is a positive (section 3.1.1).
RATING_THRESHOLD = 3.5

_CSV_HEADER = "userId,movieId,rating,timestamp"
_FILE_NAMES = ("ratings.csv", "u.data", "ratings.dat")
_SEPARATORS = {"csv": ",", "udata": "\t", "dat": "::"}
_ROW = np.dtype([("user", "<i8"), ("movie", "<i8"), ("rating", "<f8"), ("time", "<i8")])
_EXPECTED = (
    f"a '{_CSV_HEADER}' header then comma-separated rows (ratings.csv), "
    "tab-separated 'user item rating timestamp' rows (u.data), "
    "or 'user::movie::rating::timestamp' rows (ratings.dat)"
)


@dataclass
class MovieLensRatings:
    """Raw ratings in file order: ``user``, ``movie`` (int64 IDs), ``rating`` (float64),
    ``time`` (int64 Unix seconds), and the ``path`` and ``format`` they came from.

    See: book/ch08_deepfm.md
    """

    user: np.ndarray
    movie: np.ndarray
    rating: np.ndarray
    time: np.ndarray
    path: Path
    format: str

    def __len__(self) -> int:
        return int(self.user.shape[0])


def _resolve(path: str | Path) -> Path:
    p = Path(path)
    hint = (
        "download it from the GroupLens MovieLens page and pass its path "
        "(ratings.csv of ml-25m or ml-latest, u.data of ml-100k, ratings.dat of ml-1m)"
    )
    if p.is_dir():
        for name in _FILE_NAMES:
            if (p / name).is_file():
                return p / name
        raise FileNotFoundError(f"no MovieLens ratings file ({', '.join(_FILE_NAMES)}) in folder {p}: {hint}")
    if not p.is_file():
        raise FileNotFoundError(f"MovieLens ratings file not found: {p}: {hint}")
    return p


def detect_format(path: str | Path) -> str:
    """``"csv"``, ``"udata"`` or ``"dat"``, from the file's first line.

    Raises ``FileNotFoundError`` for a missing file, ``ValueError`` naming the file and the
    expected layouts otherwise. See: book/ch08_deepfm.md
    """
    p = _resolve(path)
    with open(p, "rb") as f:
        first = f.readline(4096).decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    if not first.strip():
        raise ValueError(f"{p}: line 1 is empty; expected {_EXPECTED}")
    if first.replace(" ", "") == _CSV_HEADER:
        return "csv"
    if "::" in first and len(first.split("::")) == 4:
        return "dat"
    if "\t" in first and len(first.split("\t")) == 4:
        return "udata"
    raise ValueError(f"{p}: not a MovieLens ratings file: expected {_EXPECTED}; line 1 reads {first[:200]!r}")


def _row_problem(text: str, sep: str) -> str | None:
    """Why one line is not a valid rating row (``None`` if it is). The single source of
    truth for error messages; the fast path only detects that a chunk has a bad row."""
    parts = text.split(sep)
    if len(parts) != 4:
        return f"expected 4 values separated by {sep!r}, got {len(parts)}"
    names = ("user ID", "movie ID", "rating", "timestamp")
    values: list[float] = []
    for name, part in zip(names, parts):
        try:
            values.append(float(part) if name == "rating" else int(part))
        except ValueError:
            kind = "a number" if name == "rating" else "an integer"
            return f"the {name} {part!r} is not {kind}"
    user, movie, rating, time = values
    if user < 0 or movie < 0:
        return "IDs must be non-negative"
    if not (math.isfinite(rating) and 0.0 <= rating <= 5.0):
        return f"the rating {rating} is outside [0, 5]"
    if time < 0:
        return f"the timestamp {int(time)} is negative"
    return None


def _raise_bad_row(path: Path, text: str, first_line: int, sep: str, why: str) -> NoReturn:
    for offset, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        problem = _row_problem(line.rstrip("\r"), sep)
        if problem is not None:
            raise ValueError(f"{path}, line {first_line + offset}: {problem}: {line.rstrip()[:200]!r}")
    # The C reader refused something the row check accepts: report the reader's words.
    raise ValueError(f"{path}, lines {first_line}-{first_line + text.count(chr(10))}: {why}")


def _parse_chunk(path: Path, text: str, first_line: int, fmt: str) -> np.ndarray:
    sep = _SEPARATORS[fmt]
    if not text.strip():
        return np.zeros(0, dtype=_ROW)
    data = text.replace("::", ",") if fmt == "dat" else text
    try:
        rows = np.loadtxt(
            io.StringIO(data), delimiter="," if fmt != "udata" else "\t", dtype=_ROW, comments=None, ndmin=1
        )
    except ValueError as exc:
        _raise_bad_row(path, text, first_line, sep, str(exc))
    ok = (rows["user"] >= 0) & (rows["movie"] >= 0) & (rows["time"] >= 0)
    ok &= np.isfinite(rows["rating"]) & (rows["rating"] >= 0.0) & (rows["rating"] <= 5.0)
    if fmt == "dat" and text.count("::") != 3 * rows.shape[0]:
        ok[:] = False  # a stray ',' or ':' that the '::' -> ',' rewrite hid
    if not ok.all():
        _raise_bad_row(path, text, first_line, sep, "a value is out of range")
    return rows


def read_ratings(path: str | Path, *, chunk_bytes: int = 1 << 25) -> MovieLensRatings:
    """All ratings of a MovieLens file (or of the folder holding it), in file order.

    ``chunk_bytes`` sets how much text is parsed at a time. Raises ``FileNotFoundError``
    for a missing file, and ``ValueError`` for a wrong layout or a malformed row (naming the
    file, the line number and the line's text). See: book/ch08_deepfm.md
    """
    if int(chunk_bytes) < 1:
        raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
    p = _resolve(path)
    fmt = detect_format(p)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in _ROW.names or ()}
    with open(p, "rb") as f:
        line = 1
        if fmt == "csv":
            f.readline()  # the header
            line = 2
        rest = b""
        while True:
            block = f.read(int(chunk_bytes))
            buf = rest + block
            if block:
                cut = buf.rfind(b"\n") + 1
                if cut == 0:
                    rest = buf
                    continue
                buf, rest = buf[:cut], buf[cut:]
            elif not buf:
                break
            else:
                rest = b""
            text = buf.decode("utf-8", errors="replace")
            rows = _parse_chunk(p, text, line, fmt)
            for name, chunks in columns.items():
                chunks.append(rows[name].copy())  # plain columns; the row records are freed
            line += text.count("\n")
            if not block:
                break
    if sum(c.shape[0] for c in columns["user"]) == 0:
        raise ValueError(f"{p}: no ratings (the file holds no data rows); expected {_EXPECTED}")
    arrays = {name: np.concatenate(columns.pop(name)) for name in list(columns)}
    return MovieLensRatings(**arrays, path=p, format=fmt)


def load_movielens(
    path: str | Path, *, threshold: float = RATING_THRESHOLD, chunk_bytes: int = 1 << 25
) -> Events:
    """MovieLens ratings as :class:`~monolith_ref.events.Events`, sorted by time.

    ``label`` is ``rating >= threshold`` (3.5, the paper's rule); ``fields`` are the user and
    movie IDs salted per field (``field_names == ("user", "movie")``); ``user``/``item`` keep
    the file's own IDs; ``request_id`` is the row's position in the file (0-based); there
    are no dense features and no true probabilities. Ties in time keep file order. Split in
    time with :meth:`~monolith_ref.events.Events.split_by_time`,
    :meth:`~monolith_ref.events.Events.split_at_fraction` or
    :meth:`~monolith_ref.events.Events.chunks` (``n`` consecutive "days" of equal size).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a wrong layout or
    a malformed row (with its line number). See: book/ch08_deepfm.md
    """
    check_number(threshold, "threshold")
    r = read_ratings(path, chunk_bytes=chunk_bytes)
    order = np.argsort(r.time, kind="stable")
    user = r.user[order].astype(np.uint64)
    movie = r.movie[order].astype(np.uint64)
    return Events(
        time=r.time[order],
        request_id=order.astype(np.uint64),
        user=user,
        item=movie,
        fields=np.stack([field_ids("user", user), field_ids("movie", movie)], axis=1),
        field_names=("user", "movie"),
        dense=np.zeros((len(order), 0), dtype=np.float32),
        label=(r.rating[order] >= threshold).astype(np.float32),
        prob=None,
    )
