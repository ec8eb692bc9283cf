"""Bytes on the log: the layout of feature records and of joined training examples.

A log carries bytes, not Python objects, so every record that travels through it (the
features a server logs when it answers a request, the examples the joiner writes for the
trainer) needs a fixed layout that both ends agree on. Ours is one NumPy structured dtype
per record kind, little-endian and packed (no padding), so a whole batch encodes with one
``tobytes()`` and decodes with one ``np.frombuffer``:

Feature record (``41 + 8 F + 4 D`` bytes, ``F`` sparse fields and ``D`` dense values)::

    offset  type      name
    0       u64       request_id   the join key
    8       i64       time         event time of the request (seconds)
    16      u64       user         0 unless flags bit 0
    24      u64       item         0 unless flags bit 1
    32      u8        flags        bit 0: has user, bit 1: has item, bit 2: has prob
    33      f32       prob         the true click probability (synthetic data), else 0
    37      u16       n_fields     F
    39      u16       n_dense      D
    41      u64[F]    fields       sparse feature IDs, in the order of ``field_names``
    41+8F   f32[D]    dense        dense features, in the order of ``dense_names``

Example record: a feature record followed by ``label f32, sample_rate f32, join_time i64``
(16 bytes). Features carry no label: the label comes from the actions the joiner matched.

The field *names* are not in the bytes: like a schema registry in production, the reader
passes them in, and the counts in every record are checked against them.

See: book/ch09_streaming.md
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..checks import check_id
from ..events import Events

if TYPE_CHECKING:  # the joiner's Example; only its attributes are read here
    from .joiner import Example

__all__ = [
    "HAS_USER",
    "HAS_ITEM",
    "HAS_PROB",
    "feature_dtype",
    "example_dtype",
    "encode_features",
    "decode_features",
    "JoinedBatch",
    "encode_examples",
    "decode_examples",
    "request_key",
]

#: Bits of the ``flags`` byte.
HAS_USER, HAS_ITEM, HAS_PROB = 1, 2, 4

_HEADER = [
    ("request_id", "<u8"),
    ("time", "<i8"),
    ("user", "<u8"),
    ("item", "<u8"),
    ("flags", "u1"),
    ("prob", "<f4"),
    ("n_fields", "<u2"),
    ("n_dense", "<u2"),
]
_TRAILER = [("label", "<f4"), ("sample_rate", "<f4"), ("join_time", "<i8")]
_TRAILER_DTYPE = np.dtype(_TRAILER)


def _check_counts(num_fields: int, num_dense: int) -> None:
    for name, value in (("num_fields", num_fields), ("num_dense", num_dense)):
        if not 0 <= value < 2**16:
            raise ValueError(f"{name} must be in [0, 65536) to fit the u16 count, got {value}")


def feature_dtype(num_fields: int, num_dense: int = 0) -> np.dtype:
    """The packed little-endian dtype of one feature record. See: book/ch09_streaming.md"""
    _check_counts(num_fields, num_dense)
    return np.dtype(_HEADER + [("fields", "<u8", (num_fields,)), ("dense", "<f4", (num_dense,))])


def example_dtype(num_fields: int, num_dense: int = 0) -> np.dtype:
    """The dtype of one example record: a feature record, then label, sample rate, join time.

    See: book/ch09_streaming.md
    """
    return np.dtype(feature_dtype(num_fields, num_dense).descr + _TRAILER)


def _split(buffer: bytes, size: int, n: int) -> list[bytes]:
    return [buffer[i * size : (i + 1) * size] for i in range(n)]


def _fill_features(rec: np.ndarray, events: Events) -> None:
    """Write the feature columns of ``events`` into the structured array ``rec``."""
    rec["request_id"] = events.request_id
    rec["time"] = events.time
    flags = np.zeros(len(events), dtype=np.uint8)
    for column, bit in (("user", HAS_USER), ("item", HAS_ITEM), ("prob", HAS_PROB)):
        values = getattr(events, column)
        if values is not None:
            rec[column] = values
            flags |= bit
    rec["flags"] = flags
    rec["n_fields"] = len(events.field_names)
    rec["n_dense"] = events.dense.shape[1]
    rec["fields"] = events.fields
    rec["dense"] = events.dense


def encode_features(events: Events) -> list[bytes]:
    """One feature record per event, in order (the payloads a server would log).

    See: book/ch09_streaming.md
    """
    if not isinstance(events, Events):
        raise TypeError(f"encode_features needs Events, got {type(events).__name__}")
    rec = np.zeros(len(events), dtype=feature_dtype(len(events.field_names), events.dense.shape[1]))
    _fill_features(rec, events)
    return _split(rec.tobytes(), rec.dtype.itemsize, len(events))


def _as_payloads(payloads: Sequence[bytes], what: str) -> list[bytes]:
    if isinstance(payloads, (bytes, bytearray, memoryview, str)):
        raise TypeError(f"{what} must be a sequence of byte strings, not a single {type(payloads).__name__}")
    out = list(payloads)
    for i, p in enumerate(out):
        if not isinstance(p, (bytes, bytearray, memoryview)):
            raise TypeError(f"{what}[{i}] must be bytes, got {type(p).__name__}")
    return out


def _records(values: list[bytes], dtype: np.dtype, what: str, num_fields: int, num_dense: int) -> np.ndarray:
    """Parse ``values`` as records of ``dtype``; check sizes, counts and flags."""
    size = dtype.itemsize
    for i, v in enumerate(values):
        if len(v) != size:
            raise ValueError(
                f"{what} {i} has {len(v)} bytes; with {num_fields} fields and {num_dense} dense values "
                f"a record has {size} bytes (wrong schema, or a truncated record?)"
            )
    rec = np.frombuffer(b"".join(values), dtype=dtype)
    for column, expected in (("n_fields", num_fields), ("n_dense", num_dense)):
        bad = np.flatnonzero(rec[column] != expected)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{what} {i} says {column}={int(rec[column][i])}, the reader expects {expected}")
    bad = np.flatnonzero(rec["flags"] & ~np.uint8(HAS_USER | HAS_ITEM | HAS_PROB))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{what} {i} has unknown flag bits {int(rec['flags'][i]):#04x}")
    return rec


def _names(names: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError(f"{what} must be a sequence of names, not the string {names!r}")
    out = tuple(names)
    if not all(isinstance(n, str) for n in out):
        raise TypeError(f"{what} must hold strings, got {out!r}")
    return out


def _optional_column(rec: np.ndarray, column: str, bit: int, dtype: type, what: str) -> np.ndarray | None:
    has = (rec["flags"] & bit) != 0
    if has.all() and rec.size:
        return rec[column].astype(dtype)
    if has.any():
        raise ValueError(
            f"{what}s mix records with and without {column!r} (record {int(np.flatnonzero(~has)[0])} has none); "
            "a batch must be all one way"
        )
    return None


def _events(rec: np.ndarray, field_names: tuple[str, ...], dense_names: tuple[str, ...],
            label: np.ndarray, what: str) -> Events:
    n = rec.shape[0]
    return Events(
        time=rec["time"].astype(np.int64),
        request_id=rec["request_id"].astype(np.uint64),
        user=_optional_column(rec, "user", HAS_USER, np.uint64, what),
        item=_optional_column(rec, "item", HAS_ITEM, np.uint64, what),
        fields=rec["fields"].astype(np.uint64).reshape(n, len(field_names)),
        field_names=field_names,
        dense=rec["dense"].astype(np.float32).reshape(n, len(dense_names)),
        label=label,
        prob=_optional_column(rec, "prob", HAS_PROB, np.float32, what),
        dense_names=dense_names,
    )


def decode_features(payloads: Sequence[bytes], field_names: Sequence[str],
                    dense_names: Sequence[str] = ()) -> Events:
    """The :class:`Events` of a batch of feature records (labels all 0), in order.

    ``field_names``/``dense_names`` are the reader's schema; a record whose size or counts
    do not match it raises ``ValueError``. See: book/ch09_streaming.md
    """
    fields, dense = _names(field_names, "field_names"), _names(dense_names, "dense_names")
    values = _as_payloads(payloads, "payloads")
    rec = _records(values, feature_dtype(len(fields), len(dense)), "feature record", len(fields), len(dense))
    return _events(rec, fields, dense, np.zeros(rec.shape[0], dtype=np.float32), "feature record")


@dataclass
class JoinedBatch:
    """Decoded examples: their :class:`Events` (label from the joined action, 0 for a
    negative), the rate at which each example's kind was kept (divide by it to undo the
    sampling), and when the joiner emitted it. See: book/ch09_streaming.md
    """

    events: Events
    sample_rate: np.ndarray
    join_time: np.ndarray

    def __len__(self) -> int:
        return len(self.events)


def encode_examples(examples: Sequence[Example]) -> list[bytes]:
    """One example record per joined example: its feature payload plus label, sample rate
    and join time. See: book/ch09_streaming.md
    """
    examples = list(examples)
    trailer = np.zeros(len(examples), dtype=_TRAILER_DTYPE)
    for i, ex in enumerate(examples):
        if not isinstance(ex.payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"example {i} has a payload of type {type(ex.payload).__name__}, not bytes")
        trailer[i] = (ex.label, ex.sample_rate, ex.join_time)
    tails = _split(trailer.tobytes(), _TRAILER_DTYPE.itemsize, len(examples))
    return [bytes(ex.payload) + tail for ex, tail in zip(examples, tails)]


def decode_examples(values: Sequence[bytes], field_names: Sequence[str],
                    dense_names: Sequence[str] = ()) -> JoinedBatch:
    """The inverse of :func:`encode_examples`, in the given order. See: book/ch09_streaming.md"""
    fields, dense = _names(field_names, "field_names"), _names(dense_names, "dense_names")
    rec = _records(_as_payloads(values, "values"), example_dtype(len(fields), len(dense)),
                   "example record", len(fields), len(dense))
    events = _events(rec, fields, dense, rec["label"].astype(np.float32), "example record")
    return JoinedBatch(events, rec["sample_rate"].astype(np.float32), rec["join_time"].astype(np.int64))


def request_key(request_id: int) -> bytes:
    """The 8-byte log key of a request: its ID, *big*-endian.

    Big-endian so that byte-wise order is numeric order, which is how sorted key-value
    stores (and log compaction tools) compare keys. The log only hashes the key to pick a
    partition, so every record of one request lands in the same partition.
    See: book/ch09_streaming.md
    """
    return check_id(request_id, "request_id").to_bytes(8, "big")
