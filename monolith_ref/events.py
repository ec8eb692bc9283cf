"""The event schema: one batch of events as columns, and how raw values become feature IDs.

Every source of events in the package returns an :class:`Events`: the synthetic stream
(:mod:`monolith_ref.data.synthetic`), the MovieLens and Criteo readers; the streaming codec
decodes to it, and training, serving and the metrics read it. It lives in a module of its
own, below all of them, so that none of them depends on the synthetic world. Feature IDs are
salted per field (:func:`field_ids`), so that all fields can share one table.

See: book/ch08_deepfm.md
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields as dc_fields
from typing import Any

import numpy as np

from .hashing import mix64

__all__ = ["SECONDS_PER_HOUR", "SECONDS_PER_DAY", "Events", "field_ids", "field_seed"]

#: Seconds in an hour of event time (``Events.time`` is integer seconds).
SECONDS_PER_HOUR = 3600
#: Seconds in a day of event time.
SECONDS_PER_DAY = 86400


# --------------------------------------------------------------------------- feature IDs


def field_seed(name: str) -> int:
    """A stable 64-bit seed derived from a field's name (the first 8 bytes of its BLAKE2b).

    See: book/ch08_deepfm.md
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a field name must be a non-empty string, got {name!r}")
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def field_ids(name: str, values: np.ndarray | int) -> np.ndarray:
    """The feature IDs of a field's raw values: ``mix64(values, field_seed(name))``.

    Salting by field keeps IDs distinct across fields (user 5 and movie 5 get different
    feature IDs), so all fields can share one table; ``mix64`` is a bijection, so distinct
    values of one field stay distinct. See: book/ch08_deepfm.md
    """
    return mix64(values, field_seed(name))


# --------------------------------------------------------------------------- events


def _optional(arr: np.ndarray | None, key: Any) -> np.ndarray | None:
    return None if arr is None else arr[key]


@dataclass
class Events:
    """A batch of events as columns, sorted by time (the loaders and the generator sort).

    ``time``: int64 seconds of event time. ``request_id``: uint64, unique per event (the key
    the online joiner uses). ``user``/``item``: the data set's own IDs (uint64), or ``None``
    where the data has none (Criteo). ``fields``: uint64 ``(n, F)``, the sparse feature IDs
    the model looks up, one column per name in ``field_names``, salted per field by
    :func:`field_ids`. ``dense``: float32 ``(n, D)`` (``D`` may be 0), named by
    ``dense_names``. ``label``: float32 0/1. ``prob``: float32 true click probability
    (synthetic data only), else ``None``.

    Index with a slice, a boolean mask or an integer array: ``events[events.time < t]``.
    See: book/ch08_deepfm.md
    """

    time: np.ndarray
    request_id: np.ndarray
    user: np.ndarray | None
    item: np.ndarray | None
    fields: np.ndarray
    field_names: tuple[str, ...]
    dense: np.ndarray
    label: np.ndarray
    prob: np.ndarray | None = None
    dense_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = np.shape(self.time)[0] if np.ndim(self.time) == 1 else -1
        if n < 0:
            raise ValueError(f"Events.time must be a 1-D array, got shape {np.shape(self.time)}")
        self.field_names = tuple(self.field_names)
        self.dense_names = tuple(self.dense_names)
        for name in ("request_id", "user", "item", "label", "prob"):
            arr = getattr(self, name)
            if arr is not None and (np.ndim(arr) != 1 or np.shape(arr)[0] != n):
                raise ValueError(f"Events.{name} must be a 1-D array of length {n}, got shape {np.shape(arr)}")
        if np.ndim(self.fields) != 2 or self.fields.shape != (n, len(self.field_names)):
            raise ValueError(
                f"Events.fields must have shape ({n}, {len(self.field_names)}) to match "
                f"field_names {self.field_names}, got {np.shape(self.fields)}"
            )
        if np.ndim(self.dense) != 2 or self.dense.shape[0] != n:
            raise ValueError(f"Events.dense must have shape ({n}, D), got {np.shape(self.dense)}")
        if self.dense_names and len(self.dense_names) != self.dense.shape[1]:
            raise ValueError(
                f"Events.dense_names has {len(self.dense_names)} names for {self.dense.shape[1]} dense columns"
            )
        if self.fields.dtype != np.uint64:
            raise ValueError(f"Events.fields must be uint64, got {self.fields.dtype}")

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def __repr__(self) -> str:
        span = f", time {int(self.time[0])}..{int(self.time[-1])}" if len(self) else ""
        return f"Events(n={len(self)}, fields={self.field_names}, dense={self.dense.shape[1]}{span})"

    def __getitem__(self, key: slice | np.ndarray | Sequence[int]) -> Events:
        if isinstance(key, (int, np.integer)):
            raise TypeError("index Events with a slice, a boolean mask or an integer array, not a single integer")
        if not isinstance(key, slice):
            key = np.asarray(key)
            if key.size == 0 and key.dtype.kind not in "biu":
                key = key.astype(np.intp)  # an empty list selects nothing
            if key.dtype == np.bool_:
                if key.shape != (len(self),):
                    raise IndexError(f"boolean mask of shape {key.shape} does not match {len(self)} events")
            elif key.dtype.kind not in "iu" and key.size:
                raise TypeError(f"index Events with a slice, a boolean mask or an integer array, not {key.dtype}")
        return Events(
            time=self.time[key],
            request_id=self.request_id[key],
            user=_optional(self.user, key),
            item=_optional(self.item, key),
            fields=self.fields[key],
            field_names=self.field_names,
            dense=self.dense[key],
            label=self.label[key],
            prob=_optional(self.prob, key),
            dense_names=self.dense_names,
        )

    # ---- splits ------------------------------------------------------------------------

    def split_by_time(self, t: int) -> tuple[Events, Events]:
        """``(events before t, events at or after t)``. See: book/ch08_deepfm.md"""
        before = self.time < t
        return self[before], self[~before]

    def split_at_fraction(self, fraction: float) -> tuple[Events, Events]:
        """Split in time so that about ``fraction`` of the events come first.

        The cut is a timestamp, so events that share a time never straddle it.
        See: book/ch08_deepfm.md
        """
        if not 0.0 < float(fraction) < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        if len(self) == 0:
            return self[:0], self[:0]
        cut = int(np.sort(self.time)[min(int(fraction * len(self)), len(self) - 1)])
        return self.split_by_time(cut)

    def chunks(self, n: int) -> list[Events]:
        """``n`` consecutive pieces of (nearly) equal size, in order: time-ordered "days".

        See: book/ch08_deepfm.md
        """
        if int(n) < 1:
            raise ValueError(f"the number of chunks must be >= 1, got {n}")
        bounds = np.linspace(0, len(self), int(n) + 1).astype(np.int64)
        return [self[int(a) : int(b)] for a, b in zip(bounds[:-1], bounds[1:])]

    def day_index(self, day_seconds: int = SECONDS_PER_DAY) -> np.ndarray:
        """Each event's day, counted from the first event's day (``time // day_seconds``)."""
        if int(day_seconds) < 1:
            raise ValueError(f"day_seconds must be >= 1, got {day_seconds}")
        if len(self) == 0:
            return np.zeros(0, dtype=np.int64)
        day = self.time // int(day_seconds)
        return day - day.min()

    def days(self, day_seconds: int = SECONDS_PER_DAY) -> list[Events]:
        """The events of each day from the first event's day to the last, empty days included.

        Expects events sorted by time. See: book/ch08_deepfm.md
        """
        day = self.day_index(day_seconds)
        if day.size == 0:
            return []
        starts = np.searchsorted(day, np.arange(int(day[-1]) + 2))
        return [self[int(a) : int(b)] for a, b in zip(starts[:-1], starts[1:])]

    def batches(self, batch_size: int, drop_last: bool = False) -> Iterator[Events]:
        """Consecutive batches of ``batch_size`` events, in order. See: book/ch08_deepfm.md"""
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n, b = len(self), int(batch_size)
        stop = n - n % b if drop_last else n
        for start in range(0, stop, b):
            yield self[start : start + b]

    @staticmethod
    def concat(parts: Sequence[Events]) -> Events:
        """One :class:`Events` from several with the same fields, in the given order."""
        if not parts:
            raise ValueError("Events.concat needs at least one part")
        first = parts[0]
        for p in parts[1:]:
            if p.field_names != first.field_names or p.dense_names != first.dense_names:
                raise ValueError("Events.concat: parts have different field or dense names")
        cols: dict[str, Any] = {}
        for f in dc_fields(Events):
            values = [getattr(p, f.name) for p in parts]
            if f.name in ("field_names", "dense_names"):
                cols[f.name] = values[0]
            elif any(v is None for v in values):
                if not all(v is None for v in values):
                    raise ValueError(f"Events.concat: column {f.name!r} is missing from some parts")
                cols[f.name] = None
            else:
                cols[f.name] = np.concatenate(values)
        return Events(**cols)

    def is_time_sorted(self) -> bool:
        """True if ``time`` never decreases."""
        return bool(np.all(self.time[1:] >= self.time[:-1]))
