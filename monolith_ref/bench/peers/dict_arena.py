"""The dict peer: a Python ``dict`` from ID to row number, rows in an arena of NumPy arrays.

See: book/ch06_numba.md
"""

from __future__ import annotations

import sys

import numpy as np

from .arena_peer import ArenaPeer
from .spec import PeerConfig

__all__ = ["DictArena"]


class DictArena(ArenaPeer):
    """A Python ``dict`` mapping each ID to a row number of NumPy arrays.

    What most people write first after the mock: the dict is touched once per ID in a
    Python loop (a list comprehension), every row operation is vectorized NumPy; new rows
    come from the same arena as NumbaTable's. See: book/ch06_numba.md
    """

    name, label = "dict_arena", "Python dict + NumPy arena"

    def __init__(self, spec: PeerConfig) -> None:
        super().__init__(spec)
        self.index: dict[int, int] = {}

    def _insert(self, keys: np.ndarray, now: int | np.ndarray) -> np.ndarray:
        rows = self.arena.add(keys, now)
        self.index.update(zip(keys.tolist(), rows.tolist()))
        return rows

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        get = self.index.get
        return np.array([get(k, -1) for k in ids.tolist()], dtype=np.int64)

    def expire(self, now: int) -> int:
        stale = self.arena.stale_rows(now, self.spec.ttl)
        index = self.index
        for k in self.arena.row_key[stale].tolist():
            del index[k]
        self.arena.release(stale)
        return int(stale.size)

    def memory_bytes(self) -> int:
        total = sys.getsizeof(self.index) + self.arena.nbytes()
        for k, r in self.index.items():
            total += sys.getsizeof(k) + sys.getsizeof(r)
        return total
