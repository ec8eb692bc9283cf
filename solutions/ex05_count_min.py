"""Exercise 5.1 (solution): a count-min sketch for admission filtering.

See exercises/ex05_count_min.py for the spec and book/ch05_filters.md for the idea.
"""

from __future__ import annotations

import numpy as np

from monolith_ref.hashing import mix64_int


class CountMin:
    """A count-min sketch over non-negative integer keys (Exercise 5.1, solved)."""

    def __init__(self, width: int, depth: int, seed: int = 0) -> None:
        """``depth`` rows of ``width`` int64 counters, all zero."""
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be >= 1, got {width} and {depth}")
        self.width, self.depth, self.seed = width, depth, seed
        self.counters = np.zeros((depth, width), dtype=np.int64)

    def columns(self, key: int) -> list[int]:
        """One column per row, each from its own seeded hash."""
        return [mix64_int(key, (self.seed + d) % 2**64) % self.width for d in range(self.depth)]

    def add(self, key: int, count: int = 1) -> None:
        """Add ``count`` to ``key``'s counter in every row."""
        for d, c in enumerate(self.columns(key)):
            self.counters[d, c] += count

    def estimate(self, key: int) -> int:
        """The minimum over rows: other keys can only have added to each counter."""
        return int(min(self.counters[d, c] for d, c in enumerate(self.columns(key))))

    def admits(self, key: int, threshold: int) -> bool:
        """True once the estimate reaches ``threshold``."""
        return self.estimate(key) >= threshold
