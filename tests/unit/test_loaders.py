"""Tests for the MovieLens and Criteo loaders, on small fixtures written in the real formats.

tests/fixtures/movielens/ratings.csv  the ml-25m / ml-latest layout (header, grouped by user)
tests/fixtures/movielens/u.data       the ml-100k layout (tab-separated, no header)
tests/fixtures/criteo/train_small.txt the Criteo Kaggle layout (label, I1-I13, C1-C26)

Malformed variants are written to tmp_path by the tests themselves.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from monolith_ref.data import (
    RATING_THRESHOLD,
    count_lines,
    day_of_line,
    detect_format,
    iter_criteo,
    load_criteo,
    load_movielens,
    read_ratings,
)
from monolith_ref.data.criteo import CAT_NAMES, MISSING
from monolith_ref.events import Events, field_ids

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RATINGS_CSV = FIXTURES / "movielens" / "ratings.csv"
U_DATA = FIXTURES / "movielens" / "u.data"
CRITEO = FIXTURES / "criteo" / "train_small.txt"


def _rewrite(src: Path, dst: Path, line_no: int, text: str) -> Path:
    """A copy of ``src`` whose 1-based line ``line_no`` reads ``text``."""
    lines = src.read_text().splitlines()
    lines[line_no - 1] = text
    dst.write_text("\n".join(lines) + "\n")
    return dst


# --------------------------------------------------------------------------- MovieLens


def _csv_rows(path: Path) -> list[tuple[int, int, float, int]]:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        return [(int(u), int(m), float(r), int(t)) for u, m, r, t in reader]


def test_movielens_csv_matches_a_plain_reading() -> None:
    rows = _csv_rows(RATINGS_CSV)
    ev = load_movielens(RATINGS_CSV)
    assert len(ev) == len(rows) == 26
    assert ev.is_time_sorted()
    assert ev.field_names == ("user", "movie") and ev.dense.shape == (26, 0) and ev.prob is None
    for k in range(len(ev)):
        u, m, r, t = rows[int(ev.request_id[k])]  # request_id is the row's position in the file
        assert (int(ev.user[k]), int(ev.item[k]), int(ev.time[k])) == (u, m, t)
        assert ev.label[k] == (1.0 if r >= 3.5 else 0.0)
    assert np.array_equal(ev.fields[:, 0], field_ids("user", ev.user))
    assert np.array_equal(ev.fields[:, 1], field_ids("movie", ev.item))
    assert not set(ev.fields[:, 0].tolist()) & set(ev.fields[:, 1].tolist())


def test_movielens_rule_is_rating_at_least_3_5() -> None:
    assert RATING_THRESHOLD == 3.5
    r = read_ratings(RATINGS_CSV)
    assert {3.0, 3.5} <= set(r.rating.tolist())  # the fixture has both sides of the line
    ev = load_movielens(RATINGS_CSV)
    assert ev.label.sum() == (r.rating >= 3.5).sum()
    assert load_movielens(RATINGS_CSV, threshold=4.0).label.sum() == (r.rating >= 4.0).sum()


def test_movielens_ties_in_time_keep_file_order() -> None:
    ev = load_movielens(RATINGS_CSV)
    same = np.flatnonzero(np.diff(ev.time) == 0)
    assert same.size > 0  # the fixture has ties
    for i in same:
        assert ev.request_id[i] < ev.request_id[i + 1]


def test_movielens_u_data_and_folder_and_dat(tmp_path: Path) -> None:
    assert detect_format(U_DATA) == "udata"
    ev = load_movielens(U_DATA)
    raw = np.loadtxt(U_DATA, dtype=np.int64)
    assert len(ev) == 30 and ev.is_time_sorted()
    assert ev.label.sum() == (raw[:, 2] >= 4).sum()  # integer stars: 4 and 5 are >= 3.5
    # a folder is searched for its ratings file (ratings.csv first)
    assert detect_format(RATINGS_CSV.parent) == "csv"
    assert len(load_movielens(RATINGS_CSV.parent)) == 26
    # the ml-1m layout
    dat = tmp_path / "ratings.dat"
    dat.write_text("".join(f"{u}::{m}::{r}::{t}\n" for u, m, r, t in raw))
    assert detect_format(dat) == "dat"
    ev_dat = load_movielens(dat)
    assert np.array_equal(ev_dat.time, ev.time) and np.array_equal(ev_dat.label, ev.label)


@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 1 << 20])
def test_movielens_chunking_does_not_change_the_result(chunk_bytes: int) -> None:
    a, b = load_movielens(RATINGS_CSV), load_movielens(RATINGS_CSV, chunk_bytes=chunk_bytes)
    for name in ("time", "request_id", "user", "item", "fields", "label"):
        assert np.array_equal(getattr(a, name), getattr(b, name))


def test_movielens_time_ordered_splits() -> None:
    ev = load_movielens(RATINGS_CSV)
    parts = ev.chunks(4)
    assert sum(map(len, parts)) == len(ev)
    assert all(p.time.max() <= q.time.min() for p, q in zip(parts, parts[1:]))
    train, test = ev.split_at_fraction(0.75)
    assert train.time.max() < test.time.min()


def test_movielens_missing_file_says_where_to_get_it(tmp_path: Path) -> None:
    missing = tmp_path / "ml-25m" / "ratings.csv"
    with pytest.raises(FileNotFoundError) as err:
        load_movielens(missing)
    msg = str(err.value)
    assert str(missing) in msg and "GroupLens MovieLens page" in msg
    assert "http" not in msg and "www" not in msg
    with pytest.raises(FileNotFoundError, match="no MovieLens ratings file"):
        load_movielens(tmp_path)  # a folder without one


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("movieId,title,genres\n1,Toy Story (1995),Animation\n", "not a MovieLens ratings file"),
        ("1,2,3.5,1000\n", "not a MovieLens ratings file"),  # a ratings.csv without its header
        ("", "line 1 is empty"),
        ("userId,movieId,rating,timestamp\n", "no ratings"),
    ],
)
def test_movielens_wrong_format_names_the_file(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=why) as err:
        load_movielens(path)
    assert str(path) in str(err.value)
    assert "userId,movieId,rating,timestamp" in str(err.value) or why in ("no ratings",)
    with pytest.raises(ValueError, match="not a MovieLens ratings file"):
        load_movielens(CRITEO)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("7,50,4.0", "expected 4 values"),
        ("7,50,4.0,1100000000,9", "expected 4 values"),
        ("7,fifty,4.0,1100000000", "movie ID 'fifty' is not an integer"),
        ("7,50,good,1100000000", "rating 'good' is not a number"),
        ("7,50,7.5,1100000000", "outside"),
        ("7,50,nan,1100000000", "outside"),
        ("-7,50,4.0,1100000000", "non-negative"),
        ("7,50,4.0,-1", "negative"),
        ("7;50;4.0;1100000000", "expected 4 values"),
    ],
)
@pytest.mark.parametrize("chunk_bytes", [40, 1 << 20])
def test_movielens_malformed_row_names_its_line(tmp_path: Path, bad: str, why: str, chunk_bytes: int) -> None:
    line_no = 17
    path = _rewrite(RATINGS_CSV, tmp_path / "ratings.csv", line_no, bad)
    with pytest.raises(ValueError, match=why) as err:
        load_movielens(path, chunk_bytes=chunk_bytes)
    msg = str(err.value)
    assert f"line {line_no}:" in msg and bad in msg and str(path) in msg


def test_movielens_malformed_u_data_row(tmp_path: Path) -> None:
    path = _rewrite(U_DATA, tmp_path / "u.data", 12, "12\t34\tfive\t874700000")
    with pytest.raises(ValueError, match=r"line 12: the rating 'five' is not a number"):
        load_movielens(path)


def test_movielens_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    text = RATINGS_CSV.read_text()
    path.write_text(text.replace("\n", "\n\n", 3))
    assert len(load_movielens(path)) == 26


# --------------------------------------------------------------------------- Criteo


def _reference_criteo(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A slow, obvious reading of a Criteo file: labels, dense, fields."""
    labels, dense, fields = [], [], []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        labels.append(float(parts[0]))
        dense.append([math.log1p(max(int(x), 0)) if x else 0.0 for x in parts[1:14]])
        fields.append([int(field_ids(name, int(x, 16) if x else MISSING)[0]) for name, x in zip(CAT_NAMES, parts[14:])])
    return np.array(labels), np.array(dense), np.array(fields, dtype=np.uint64)


def test_criteo_matches_a_plain_reading() -> None:
    labels, dense, fields = _reference_criteo(CRITEO)
    ev = load_criteo(CRITEO)
    assert len(ev) == 40 and ev.field_names == CAT_NAMES and ev.dense.shape == (40, 13)
    assert ev.user is None and ev.item is None and ev.prob is None
    assert np.array_equal(ev.label, labels.astype(np.float32))
    np.testing.assert_allclose(ev.dense, dense, rtol=1e-6)
    assert np.array_equal(ev.fields, fields)
    assert np.array_equal(ev.time, np.arange(40)) and np.array_equal(ev.request_id, np.arange(40, dtype=np.uint64))
    # the fixture has empty ints, empty categoricals and negative ints
    text = CRITEO.read_text()
    assert "\t\t" in text and "\t-" in text


def test_criteo_missing_categoricals_get_their_fields_own_id() -> None:
    ev = load_criteo(CRITEO)
    rows = [line.split("\t") for line in CRITEO.read_text().splitlines()]
    empties = [(i, j) for i, r in enumerate(rows) for j in range(26) if r[14 + j] == ""]
    assert empties
    for i, j in empties:
        assert ev.fields[i, j] == field_ids(CAT_NAMES[j], MISSING)[0]
    missing_ids = {int(field_ids(name, MISSING)[0]) for name in CAT_NAMES}
    assert len(missing_ids) == 26  # distinct per field


@pytest.mark.parametrize("block_bytes", [1, 100, 1000, 1 << 24])
def test_criteo_streaming_batches(block_bytes: int) -> None:
    whole = load_criteo(CRITEO)
    batches = list(iter_criteo(CRITEO, batch_size=7, block_bytes=block_bytes))
    assert [len(b) for b in batches] == [7, 7, 7, 7, 7, 5]
    joined = Events.concat(batches)
    for name in ("time", "fields", "dense", "label"):
        assert np.array_equal(getattr(joined, name), getattr(whole, name))
    assert [len(b) for b in iter_criteo(CRITEO, batch_size=10, max_lines=25, block_bytes=block_bytes)] == [10, 10, 5]


def test_criteo_crlf_blank_lines_and_no_final_newline(tmp_path: Path) -> None:
    lines = CRITEO.read_text().splitlines()
    path = tmp_path / "train.txt"
    path.write_bytes(("\r\n".join(lines[:5]) + "\r\n\r\n" + "\n".join(lines[5:])).encode())  # blank line 6
    ev = load_criteo(path)
    whole = load_criteo(CRITEO)
    assert len(ev) == 40
    assert np.array_equal(ev.fields, whole.fields) and np.array_equal(ev.dense, whole.dense)
    assert ev.time.tolist() == list(range(5)) + list(range(6, 41))  # time is the line index
    assert load_criteo(tmp_path).fields.shape == (40, 26)  # a folder holding train.txt


def test_criteo_days_from_line_numbers() -> None:
    assert count_lines(CRITEO) == 40
    days = day_of_line(np.arange(40), 40)
    assert days[0] == 0 and days[-1] == 6 and (np.diff(days) >= 0).all()
    assert np.bincount(days).tolist() == [6, 6, 6, 5, 6, 6, 5]
    assert day_of_line(np.arange(70), 70, days=7).tolist() == np.repeat(np.arange(7), 10).tolist()
    with pytest.raises(ValueError, match="line indices"):
        day_of_line(40, 40)


def test_criteo_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        iter_criteo(tmp_path / "train.txt", 10)
    assert "train.txt" in str(err.value) and "Criteo" in str(err.value) and "http" not in str(err.value)


def test_criteo_wrong_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a Criteo display-ads file") as err:
        load_criteo(RATINGS_CSV)
    assert str(RATINGS_CSV) in str(err.value) and "40 tab-separated columns" in str(err.value)
    unlabeled = tmp_path / "test.txt"
    unlabeled.write_text("\n".join(line.split("\t", 1)[1] for line in CRITEO.read_text().splitlines()) + "\n")
    with pytest.raises(ValueError, match="unlabeled test.txt"):
        load_criteo(unlabeled)


def _criteo_line(label: str = "1", ints: list[str] | None = None, cats: list[str] | None = None) -> str:
    ints = ints if ints is not None else ["1"] * 13
    cats = cats if cats is not None else ["0a1b2c3d"] * 26
    return "\t".join([label] + ints + cats)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (_criteo_line()[:-9], "expected 40 tab-separated columns, got 39"),
        (_criteo_line() + "\t00000000", "expected 40 tab-separated columns, got 41"),
        (_criteo_line(label="2"), "label must be 0 or 1, got '2'"),
        (_criteo_line(label=""), "label must be 0 or 1"),
        (_criteo_line(ints=["1"] * 4 + ["x1"] + ["1"] * 8), "I5 must be an integer"),
        (_criteo_line(ints=["1.5"] + ["1"] * 12), "I1 must be an integer"),
        (_criteo_line(ints=["1"] * 12 + ["-"]), "I13 must be an integer"),
        (_criteo_line(ints=["1"] * 12 + ["1" * 19]), "I13 must be an integer"),
        (_criteo_line(cats=["0a1b2c3g"] + ["0a1b2c3d"] * 25), "C1 must be 8 hex digits"),
        (_criteo_line(cats=["0a1b2c3d"] * 25 + ["abc"]), "C26 must be 8 hex digits"),
        (_criteo_line(cats=["0a1b2c3d"] * 25 + ["0a1b2c3d0"]), "C26 must be 8 hex digits"),
        (_criteo_line(cats=["0a1b2c3d"] * 7 + ["0a1b2c\u00e93"] + ["0a1b2c3d"] * 18), "C8 must be 8 hex digits"),
    ],
)
@pytest.mark.parametrize("block_bytes", [300, 1 << 24])
def test_criteo_malformed_row_names_its_line(tmp_path: Path, bad: str, why: str, block_bytes: int) -> None:
    line_no = 23
    path = _rewrite(CRITEO, tmp_path / "train.txt", line_no, bad)
    with pytest.raises(ValueError, match=why) as err:
        list(iter_criteo(path, batch_size=8, block_bytes=block_bytes))
    msg = str(err.value)
    assert f"line {line_no}:" in msg and str(path) in msg
    assert bad[:150] in msg or repr(bad)[1:150] in msg
