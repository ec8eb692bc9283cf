"""Admission filters: which IDs earn a row, and when (paper section 2.1).

Most IDs in a recommender's traffic are seen a handful of times and then never again (the
long tail). Giving each of them a row costs memory and buys little: a row trained on two
examples is mostly noise. Monolith therefore filters IDs before they enter the table. Each
filter here is a frozen settings object (put it in ``TableConfig(filter=...)``) whose
``build(seed)`` makes the stateful filter a table consults:

* :class:`OccurrenceFilter`: exact counts; admit an ID at its ``threshold``-th occurrence.
* :class:`CountMinFilter`: the same rule on a count-min sketch: fixed memory, never
  under-counts, may admit a little early when IDs share counters.
* :class:`ProbabilisticFilter`: memoryless; admit each occurrence with a fixed probability,
  in the two modes of Monolith's open-source ``ProbabilisticFilter``.

A table calls ``admit(key, now)`` once per training occurrence of an ID without a row and
``forget(key)`` once it has inserted it. Randomness is a pure function of the seed, the key
and a draw counter, so every table implementation sees the same decisions.

See: book/ch05_filters.md
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from .checks import check_int
from .hashing import mix64, mix64_int, unit_float
from .tables.base import StateMismatchError

__all__ = [
    "OccurrenceFilter",
    "CountMinFilter",
    "ProbabilisticFilter",
    "OccurrenceCounter",
    "CountMinSketch",
    "ProbabilisticAdmitter",
    "equal_probability",
]


def _array(state: dict[str, np.ndarray], key: str, dtype: type, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if key not in state:
        raise StateMismatchError(f"filter state is missing {key!r}")
    arr = np.asarray(state[key])
    if arr.dtype != dtype:
        raise StateMismatchError(f"filter state {key!r} must be {np.dtype(dtype).name}, got {arr.dtype}")
    if shape is not None and arr.shape != shape:
        raise StateMismatchError(f"filter state {key!r} must have shape {shape}, got {arr.shape}")
    return arr


# =========================================================================== exact counts


@dataclass(frozen=True)
class OccurrenceFilter:
    """Admit an ID at its ``threshold``-th occurrence, counting exactly.

    ``threshold=1`` admits every ID at once. Pending IDs (seen, not yet admitted) are
    counted in a dict; a pending ID unseen for longer than the table's TTL is forgotten.
    See: book/ch05_filters.md
    """

    threshold: int

    def __post_init__(self) -> None:
        check_int(self.threshold, "OccurrenceFilter.threshold", low=1)

    def build(self, seed: int) -> OccurrenceCounter:
        return OccurrenceCounter(self.threshold)


class OccurrenceCounter:
    """The state of an :class:`OccurrenceFilter`: ``key -> (count, last seen)``. See: book/ch05_filters.md"""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self._pending: dict[int, list[int]] = {}

    def admit(self, key: int, now: int) -> bool:
        count = self._pending.get(key, [0, now])[0] + 1
        if count >= self.threshold:
            self._pending.pop(key, None)
            return True
        self._pending[key] = [count, now]
        return False

    def count(self, key: int) -> int:
        """How many times ``key`` has been seen while pending."""
        return self._pending.get(key, [0, 0])[0]

    def forget(self, key: int) -> None:
        self._pending.pop(key, None)

    def expire(self, now: int, ttl: int) -> int:
        stale = [k for k, (_, seen) in self._pending.items() if now - seen > ttl]
        for k in stale:
            del self._pending[k]
        return len(stale)

    def __len__(self) -> int:
        return len(self._pending)

    def export(self) -> dict[str, np.ndarray]:
        keys = sorted(self._pending)
        return {
            "keys": np.array(keys, dtype=np.uint64),
            "counts": np.array([self._pending[k][0] for k in keys], dtype=np.int64),
            "last_seen": np.array([self._pending[k][1] for k in keys], dtype=np.int64),
        }

    def load(self, state: dict[str, np.ndarray]) -> None:
        keys = _array(state, "keys", np.uint64)
        counts = _array(state, "counts", np.int64, keys.shape)
        seen = _array(state, "last_seen", np.int64, keys.shape)
        if keys.ndim != 1 or (counts < 1).any() or (counts >= self.threshold).any():
            raise StateMismatchError("filter counts must be 1-D and between 1 and threshold - 1")
        if np.unique(keys).size != keys.size:
            raise StateMismatchError("filter keys must be unique")
        self._pending = {int(k): [int(c), int(t)] for k, c, t in zip(keys.tolist(), counts.tolist(), seen.tolist())}

    def memory_bytes(self) -> int:
        total = sys.getsizeof(self._pending)
        for key, value in self._pending.items():
            total += sys.getsizeof(key) + sys.getsizeof(value) + sum(sys.getsizeof(v) for v in value)
        return total


# =========================================================================== count-min


@dataclass(frozen=True)
class CountMinFilter:
    """Admit an ID once a count-min sketch estimates ``threshold`` occurrences.

    ``depth`` rows of ``width`` counters; an occurrence adds one to the ID's counter in each
    row (saturating at 65,535), and the estimate is the smallest of them. Hash collisions can
    only add, so the estimate never under-counts: an ID is never admitted late, but it may be
    admitted early (a *false admission*). With ``e`` Euler's number, the overcount exceeds
    ``e * N / width`` with probability at most ``exp(-depth)`` after ``N`` occurrences.
    The sketch cannot forget one ID, so ``expire`` clears it whole once a TTL has passed
    since the last clear (a tumbling window). See: book/ch05_filters.md
    """

    threshold: int
    width: int = 1 << 16
    depth: int = 4

    def __post_init__(self) -> None:
        check_int(self.threshold, "CountMinFilter.threshold", low=1)
        check_int(self.width, "CountMinFilter.width", low=1)
        check_int(self.depth, "CountMinFilter.depth", low=1)

    def build(self, seed: int) -> CountMinSketch:
        return CountMinSketch(self.threshold, self.width, self.depth, seed)


class CountMinSketch:
    """The state of a :class:`CountMinFilter`: a ``(depth, width)`` array of uint16 counters.

    See: book/ch05_filters.md
    """

    MAX = np.iinfo(np.uint16).max

    def __init__(self, threshold: int, width: int, depth: int, seed: int) -> None:
        self.threshold, self.width, self.depth, self.seed = threshold, width, depth, seed
        self.counters = np.zeros((depth, width), dtype=np.uint16)
        self.window_start: int | None = None

    def columns(self, key: int) -> list[int]:
        """The counter each row uses for ``key`` (row ``d`` hashes with seed ``seed + d``)."""
        return [mix64_int(key, (self.seed + d) % 2**64) % self.width for d in range(self.depth)]

    def estimate(self, key: int) -> int:
        """The sketch's count of ``key``: the minimum over rows, never below the true count."""
        return int(min(self.counters[d, c] for d, c in enumerate(self.columns(key))))

    def estimate_many(self, keys: np.ndarray) -> np.ndarray:
        """Vectorized :meth:`estimate` for an array of keys."""
        keys = np.asarray(keys, dtype=np.uint64)
        cols = [(mix64(keys, (self.seed + d) % 2**64) % np.uint64(self.width)).astype(np.int64) for d in range(self.depth)]
        return np.min([self.counters[d, c] for d, c in enumerate(cols)], axis=0).astype(np.int64)

    def admit(self, key: int, now: int) -> bool:
        if self.window_start is None:
            self.window_start = now
        for d, c in enumerate(self.columns(key)):
            if self.counters[d, c] < self.MAX:
                self.counters[d, c] += 1
        return self.estimate(key) >= self.threshold

    def forget(self, key: int) -> None:
        """A sketch cannot forget one key; its counters age out with :meth:`expire`."""

    def expire(self, now: int, ttl: int) -> int:
        if self.window_start is not None and now - self.window_start > ttl:
            cleared = int(np.count_nonzero(self.counters))
            self.counters[:] = 0
            self.window_start = None
            return cleared
        return 0

    def export(self) -> dict[str, np.ndarray]:
        start = -1 if self.window_start is None else self.window_start
        return {"counters": self.counters.copy(), "window_start": np.array([start], dtype=np.int64)}

    def load(self, state: dict[str, np.ndarray]) -> None:
        counters = _array(state, "counters", np.uint16, (self.depth, self.width))
        start = _array(state, "window_start", np.int64, (1,))
        self.counters = counters.copy()
        self.window_start = None if start[0] < 0 else int(start[0])

    def memory_bytes(self) -> int:
        return int(self.counters.nbytes) + 8


# =========================================================================== probabilistic


def equal_probability(threshold: int) -> float:
    """Per-occurrence admission probability ``1 - 0.05**(1/threshold)``.

    After ``threshold`` occurrences an ID is admitted with probability 95%, whatever the
    threshold: Monolith's "equal probability" mode. See: book/ch05_filters.md
    """
    t = check_int(threshold, "threshold", low=1)
    return -math.expm1(math.log(0.05) / t)


@dataclass(frozen=True)
class ProbabilisticFilter:
    """Memoryless admission: each occurrence of a new ID is admitted with probability ``p``.

    ``mode="equal"``: ``p = 1 - 0.05**(1/threshold)`` (:func:`equal_probability`), so after
    ``c`` occurrences an ID is in with probability ``1 - (1 - p)**c``, 95% at ``c=threshold``.
    ``mode="proportional"``: ``p = 1/threshold`` per occurrence (Monolith admits with
    probability count/threshold for a batch holding the ID ``count`` times; we see one
    occurrence at a time). No per-ID state: the draw for an occurrence is a hash of the seed,
    the key and a running draw counter, so it is reproducible. See: book/ch05_filters.md
    """

    threshold: int
    mode: str = "equal"

    def __post_init__(self) -> None:
        check_int(self.threshold, "ProbabilisticFilter.threshold", low=1)
        if self.mode not in ("equal", "proportional"):
            raise ValueError(f"ProbabilisticFilter.mode must be 'equal' or 'proportional', got {self.mode!r}")

    @property
    def probability(self) -> float:
        """The per-occurrence admission probability."""
        return equal_probability(self.threshold) if self.mode == "equal" else 1.0 / self.threshold

    def build(self, seed: int) -> ProbabilisticAdmitter:
        return ProbabilisticAdmitter(self.probability, seed)


class ProbabilisticAdmitter:
    """The state of a :class:`ProbabilisticFilter`: just a draw counter. See: book/ch05_filters.md"""

    def __init__(self, probability: float, seed: int) -> None:
        self.probability, self.seed = probability, seed
        self.draws = 0

    def admit(self, key: int, now: int) -> bool:
        u = unit_float(mix64_int(key, self.seed) ^ self.draws, self.seed)
        self.draws += 1
        return u < self.probability

    def forget(self, key: int) -> None:
        """Nothing is held per key."""

    def expire(self, now: int, ttl: int) -> int:
        return 0

    def export(self) -> dict[str, np.ndarray]:
        return {"draws": np.array([self.draws], dtype=np.int64)}

    def load(self, state: dict[str, np.ndarray]) -> None:
        draws = _array(state, "draws", np.int64, (1,))
        if draws[0] < 0:
            raise StateMismatchError("filter draws must be >= 0")
        self.draws = int(draws[0])

    def memory_bytes(self) -> int:
        return 8
