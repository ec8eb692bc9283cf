"""The Criteo display-advertising data (the Kaggle challenge's ``train.txt``), streamed.

The paper's online-training experiment (section 3.1.2, Table 2, Figures 9-10) uses this
data: 7 days of ad impressions in time order, a click label, 13 integer features and 26
hashed categorical features. Each line is tab-separated::

    label  I1 ... I13  C1 ... C26

``label`` is 0 or 1; ``I*`` are integers (possibly negative, possibly empty); ``C*`` are
8-hex-digit hashes (possibly empty). The file holds no timestamps, but its lines are in time
order and the 7 days are of about equal size, so the line number stands in for time and
:func:`day_of_line` recovers the day. Nothing is downloaded: the reader gets the file and
passes its path. Files of tens of millions of lines are read in batches, never whole.

See: book/ch08_deepfm.md
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..events import Events, field_ids

__all__ = [
    "NUM_INT_FEATURES",
    "NUM_CAT_FEATURES",
    "INT_NAMES",
    "CAT_NAMES",
    "MISSING",
    "CRITEO_DAYS",
    "iter_criteo",
    "load_criteo",
    "count_lines",
    "day_of_line",
]

NUM_INT_FEATURES = 13
NUM_CAT_FEATURES = 26
INT_NAMES = tuple(f"I{i}" for i in range(1, NUM_INT_FEATURES + 1))
CAT_NAMES = tuple(f"C{i}" for i in range(1, NUM_CAT_FEATURES + 1))
#: The raw value an empty categorical gets (hashes are 8 hex digits, so below 2**32).
MISSING = 2**32
#: Days in the Kaggle training file.
CRITEO_DAYS = 7

_COLUMNS = 1 + NUM_INT_FEATURES + NUM_CAT_FEATURES
_EXPECTED = f"{_COLUMNS} tab-separated columns (label, I1-I13 integers, C1-C26 8-hex-digit hashes)"

# Hex digit of each ASCII code; 255 marks "not a hex digit".
_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate("0123456789abcdef"):
    _HEX[ord(_c)] = _i
    _HEX[ord(_c.upper())] = _i


def _resolve(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir() and (p / "train.txt").is_file():
        return p / "train.txt"
    if not p.is_file():
        raise FileNotFoundError(
            f"Criteo data file not found: {p}: download the Criteo display-advertising "
            "challenge data (its train.txt) and pass its path"
        )
    return p


def _bad(path: Path, line_no: int, text: str, problem: str) -> NoReturn:
    raise ValueError(f"{path}, line {line_no}: {problem}: {text.rstrip()[:200]!r}")


_PAD = 24  # bytes after a block, >= the widest field _gather reads (19)
_INT = re.compile(r"-?[0-9]{1,18}")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")


def _check_row(path: Path, line_no: int, text: str) -> None:
    """Raise the error for one line, if it has one: the slow path that names the problem.

    The rules match the vectorized parser's: a label ``0``/``1``; integers as an optional
    ``-`` and 1 to 18 digits; categoricals as exactly 8 hex digits; empty values allowed.
    """
    text = text.rstrip("\n").removesuffix("\r")
    if not text:
        return  # blank lines are skipped
    parts = text.split("\t")
    if len(parts) != _COLUMNS:
        _bad(path, line_no, text, f"expected {_COLUMNS} tab-separated columns, got {len(parts)}")
    if parts[0] not in ("0", "1"):
        _bad(path, line_no, text, f"the label must be 0 or 1, got {parts[0]!r}")
    for name, value in zip(INT_NAMES, parts[1 : 1 + NUM_INT_FEATURES]):
        if value and not _INT.fullmatch(value):
            _bad(path, line_no, text, f"{name} must be an integer (up to 18 digits) or empty, got {value!r}")
    for name, value in zip(CAT_NAMES, parts[1 + NUM_INT_FEATURES :]):
        if value and not _HEX8.fullmatch(value):
            _bad(path, line_no, text, f"{name} must be 8 hex digits or empty, got {value!r}")


def _gather(buf: np.ndarray, start: np.ndarray, length: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``width`` bytes of each field (0 past its end) and the in-field mask.

    ``buf`` ends with at least ``width`` bytes of padding, so a window of ``width`` bytes
    starting at any field fits; one fancy index per field copies all of its bytes.
    """
    windows = sliding_window_view(buf, width)
    chars = windows[np.minimum(start, windows.shape[0] - 1)]
    inside = np.arange(width) < length[..., None]
    return np.where(inside, chars, 0), inside


_LOW4 = np.uint64(0x000F000F000F000F)
_LOW8 = np.uint64(0x000000FF000000FF)
_LOW16 = np.uint64(0xFFFF)


def _pack_nibbles(digits: np.ndarray) -> np.ndarray:
    """``(..., 8)`` hex digit values (first = most significant) -> ``(...)`` uint64 values.

    The 8 digits are read as one little-endian 64-bit word (digit ``k`` in byte ``k``) and
    packed pairwise: nibbles into bytes, bytes into 16-bit halves, halves into 32 bits.
    Equal to ``sum(digits[..., k] << 4 * (7 - k))``, with a few whole-array operations.
    """
    x = np.ascontiguousarray(digits, dtype=np.uint8).view("<u8")[..., 0].astype(np.uint64)
    x = ((x & _LOW4) << np.uint64(4)) | ((x >> np.uint64(8)) & _LOW4)
    x = ((x & _LOW8) << np.uint64(8)) | ((x >> np.uint64(16)) & _LOW8)
    return ((x & _LOW16) << np.uint64(16)) | ((x >> np.uint64(32)) & _LOW16)


def _parse_block(path: Path, block: bytes, first_line: int) -> Events:
    """Parse whole lines (``block`` ends with a newline) into Events, vectorized over bytes.

    Tabs and newlines give every field's start and end; labels, integers and hex hashes are
    then decoded with array arithmetic. Any problem hands over to :func:`_check_row`.
    """
    buf = np.frombuffer(block + bytes(_PAD), dtype=np.uint8)  # padding for _gather
    line_end = np.flatnonzero(buf == 10)
    line_start = np.concatenate([[0], line_end[:-1] + 1])
    cr = (line_end > line_start) & (buf[np.maximum(line_end - 1, 0)] == 13)
    line_end = line_end - cr  # a Windows '\r\n' ends the line too
    keep = line_end > line_start  # blank lines are skipped
    tabs = np.flatnonzero(buf == 9)
    tab_count = np.diff(np.searchsorted(tabs, np.concatenate([[0], line_end + cr])))

    def locate() -> NoReturn:
        text = block.decode("utf-8", errors="replace").split("\n")
        for i in range(len(line_end)):
            _check_row(path, first_line + i, text[i])
        raise ValueError(f"{path}, lines {first_line}-{first_line + len(line_end) - 1}: malformed rows")

    if (tab_count[keep] != _COLUMNS - 1).any() or tab_count[~keep].any():
        locate()
    rows = np.flatnonzero(keep)
    t = tabs.reshape(-1, _COLUMNS - 1)
    start = np.concatenate([line_start[rows, None], t + 1], axis=1)  # (n, 40)
    length = np.concatenate([t, line_end[rows, None]], axis=1) - start

    # label: one byte, '0' or '1'
    label = buf[np.minimum(start[:, 0], buf.size - 1)]
    if ((length[:, 0] != 1) | ((label != 48) & (label != 49))).any():
        locate()

    # I1-I13: optional '-', then 1-18 digits; empty is 0.
    ilen = length[:, 1 : 1 + NUM_INT_FEATURES]
    if ilen.max(initial=0) > 19:
        locate()
    chars, inside = _gather(buf, start[:, 1 : 1 + NUM_INT_FEATURES], ilen, max(int(ilen.max(initial=0)), 1))
    neg = chars[..., 0] == 45  # '-'
    digit = inside.copy()
    digit[..., 0] &= ~neg
    d = chars.astype(np.int64) - 48
    n_digits = digit.sum(axis=-1)
    if (((d < 0) | (d > 9)) & digit).any() or ((n_digits == 0) & (ilen > 0)).any() or (n_digits > 18).any():
        locate()
    values = np.zeros(ilen.shape, dtype=np.int64)
    for k in range(chars.shape[-1]):  # Horner, one character position at a time
        values = np.where(digit[..., k], values * 10 + d[..., k], values)
    values = np.where(neg, -values, values)

    # C1-C26: exactly 8 hex digits, or empty (the field's MISSING value).
    clen = length[:, 1 + NUM_INT_FEATURES :]
    empty = clen == 0
    if (~empty & (clen != 8)).any():
        locate()
    windows = sliding_window_view(buf, 8)
    chars = windows[np.minimum(start[:, 1 + NUM_INT_FEATURES :], windows.shape[0] - 1)]  # (n, 26, 8)
    digits = _HEX[chars]
    if ((digits == 255).any(axis=-1) & ~empty).any():
        locate()
    raw = _pack_nibbles(digits)
    raw[empty] = MISSING

    line_idx = rows.astype(np.int64) + (first_line - 1)  # 0-based line index
    return Events(
        time=line_idx,
        request_id=line_idx.astype(np.uint64),
        user=None,
        item=None,
        fields=np.stack([field_ids(name, raw[:, j]) for j, name in enumerate(CAT_NAMES)], axis=1),
        field_names=CAT_NAMES,
        dense=np.log1p(np.maximum(values, 0)).astype(np.float32),
        label=(label == 49).astype(np.float32),
        prob=None,
        dense_names=INT_NAMES,
    )


def iter_criteo(
    path: str | Path, batch_size: int = 65536, *, max_lines: int | None = None, block_bytes: int = 1 << 24
) -> Iterator[Events]:
    """Stream a Criteo file as :class:`~monolith_ref.events.Events` batches of ``batch_size``
    (the last one may be shorter).

    Per batch: ``fields`` (uint64, ``(b, 26)``) are C1-C26 salted per field by
    :func:`~monolith_ref.events.field_ids`, an empty value becoming the field's own
    "missing" ID (raw value :data:`MISSING`); ``dense`` (float32, ``(b, 13)``) is
    ``log(1 + max(x, 0))`` of I1-I13, empty as 0; ``label`` is float32 0/1; ``time`` and
    ``request_id`` are the 0-based line index (:func:`day_of_line` turns it into a day).
    ``user``/``item``/``prob`` are ``None``. Blank lines are skipped. ``max_lines`` stops
    after that many lines; ``block_bytes`` is how much is read and parsed at a time.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file, the
    line number and the problem for a wrong layout or a malformed row (wrong number of
    columns, a label not 0/1, a non-integer I, a C that is not 8 hex digits).
    See: book/ch08_deepfm.md
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_lines is not None and int(max_lines) < 0:
        raise ValueError(f"max_lines must be >= 0 or None, got {max_lines}")
    if int(block_bytes) < 1:
        raise ValueError(f"block_bytes must be >= 1, got {block_bytes}")
    p = _resolve(path)
    _check_layout(p)
    return _batches(_blocks(p, max_lines, int(block_bytes)), int(batch_size))


def _blocks(p: Path, max_lines: int | None, block_bytes: int) -> Iterator[Events]:
    """Parsed blocks of whole lines, up to ``max_lines`` lines."""
    line, rest = 1, b""
    with open(p, "rb") as f:
        while max_lines is None or line <= max_lines:
            data = f.read(block_bytes)
            buf = rest + data
            if not data:
                if not buf:
                    return
                buf, rest = buf + b"\n", b""  # the last line had no newline
            else:
                cut = buf.rfind(b"\n") + 1
                if cut == 0:
                    rest = buf
                    continue
                buf, rest = buf[:cut], buf[cut:]
            if max_lines is not None:
                allowed = max_lines - line + 1
                ends = np.flatnonzero(np.frombuffer(buf, np.uint8) == 10)
                if ends.size > allowed:
                    buf = buf[: int(ends[allowed - 1]) + 1]
            yield _parse_block(p, buf, line)
            line += buf.count(b"\n")
            if not data:
                return


def _batches(blocks: Iterator[Events], batch_size: int) -> Iterator[Events]:
    """Re-cut a stream of Events into batches of ``batch_size``."""
    pending: list[Events] = []
    size = 0
    for block in blocks:
        pending.append(block)
        size += len(block)
        if size < batch_size:
            continue
        merged = Events.concat(pending) if len(pending) > 1 else pending[0]
        cut = size - size % batch_size
        for a in range(0, cut, batch_size):
            yield merged[a : a + batch_size]
        pending, size = [merged[cut:]], size - cut
    if size:
        yield Events.concat(pending) if len(pending) > 1 else pending[0]


def _check_layout(p: Path) -> None:
    """A wrong file (not tab-separated, or the unlabeled test file) fails on line 1."""
    with open(p, "rb") as f:
        first = f.readline(1 << 16).decode("utf-8", errors="replace").rstrip("\n").removesuffix("\r")
    if not first:
        return  # an empty file yields nothing; blank lines are skipped
    n = len(first.split("\t"))
    if n == _COLUMNS - 1:
        raise ValueError(
            f"{p}, line 1: {n} columns, one short of {_EXPECTED}: this looks like the "
            "unlabeled test.txt; the experiments need the labeled train.txt"
        )
    if n != _COLUMNS:
        raise ValueError(f"{p}: not a Criteo display-ads file: expected {_EXPECTED}; line 1 has {n} column(s)")


def load_criteo(path: str | Path, *, max_lines: int | None = None) -> Events:
    """A whole (small or truncated) Criteo file as one :class:`~monolith_ref.events.Events`:
    :func:`iter_criteo` concatenated. For the full 45M-line file, stream instead.
    See: book/ch08_deepfm.md"""
    batches = list(iter_criteo(path, max_lines=max_lines))
    if not batches:
        raise ValueError(f"{_resolve(path)}: no rows to load")
    return Events.concat(batches)


def count_lines(path: str | Path) -> int:
    """Lines in a file (a last line without a newline counts), read in binary blocks. See: book/ch08_deepfm.md"""
    p = _resolve(path)
    count, last = 0, b"\n"
    with open(p, "rb") as f:
        while block := f.read(1 << 24):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def day_of_line(line: np.ndarray | int, total_lines: int, days: int = CRITEO_DAYS) -> np.ndarray:
    """The day (0..days-1) of 0-based line indices in a file of ``total_lines`` equal days.

    Criteo's training file covers 7 days in order, of about equal size, so line ``i`` falls
    on day ``i * days // total_lines``. See: book/ch08_deepfm.md
    """
    if int(total_lines) < 1 or int(days) < 1:
        raise ValueError(f"total_lines and days must be >= 1, got {total_lines} and {days}")
    idx = np.asarray(line, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= int(total_lines)):
        raise ValueError(f"line indices must be in [0, {total_lines}), got {int(idx.min())}..{int(idx.max())}")
    return idx * int(days) // int(total_lines)

