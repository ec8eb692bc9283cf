"""Exercise 5.1: a count-min sketch for admission filtering.

A count-min sketch counts occurrences of keys in fixed memory: ``depth`` rows of ``width``
counters. It may over-count (keys share counters) but never under-counts, which is what an
admission filter needs: an ID is never admitted *later* than its threshold. Chapter 5
(book/ch05_filters.md) explains it. Grade with ``monolith-ref grade 5``.
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (for self.counters)

from monolith_ref.hashing import mix64_int  # noqa: F401  (a seeded 64-bit hash of an int)


class CountMin:
    """A count-min sketch over non-negative integer keys (Exercise 5.1)."""

    def __init__(self, width: int, depth: int, seed: int = 0) -> None:
        """Keep ``self.counters``, a ``(depth, width)`` NumPy array of zeros, plus ``width``,
        ``depth`` and ``seed``. Raise ``ValueError`` if ``width`` or ``depth`` is below 1.

        Counters must count every ``add`` without wrapping around or saturating (the grader
        adds up to 20,000 occurrences to one sketch): use a 64-bit integer dtype (``np.int64``
        or ``np.uint64``). A ``uint8`` counter wraps at 256 and then under-counts. Small
        saturating counters (the package's 16-bit ones, Monolith's 4-bit ones) suit a filter,
        which only asks whether a count has reached its threshold; ``estimate`` here returns
        the count itself."""
        raise NotImplementedError("Exercise 5.1: CountMin.__init__ is not written yet")

    def columns(self, key: int) -> list[int]:
        """The counter column of ``key`` in each row: row ``d`` uses an independent hash,
        e.g. ``mix64_int(key, seed + d) % width``. Returns ``depth`` integers."""
        raise NotImplementedError("Exercise 5.1: CountMin.columns is not written yet")

    def add(self, key: int, count: int = 1) -> None:
        """Record ``count`` occurrences of ``key``: add to its counter in every row."""
        raise NotImplementedError("Exercise 5.1: CountMin.add is not written yet")

    def estimate(self, key: int) -> int:
        """The estimated count of ``key``: the smallest of its ``depth`` counters."""
        raise NotImplementedError("Exercise 5.1: CountMin.estimate is not written yet")

    def admits(self, key: int, threshold: int) -> bool:
        """Whether ``key``'s estimate has reached ``threshold`` (the filter's decision)."""
        raise NotImplementedError("Exercise 5.1: CountMin.admits is not written yet")
