"""The pandas peer: pandas' C hash table (``UInt64HashTable``) from ID to row, plus ``np.take``.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numpy as np

from .arena_peer import ArenaPeer
from .spec import PeerConfig

__all__ = ["PandasTable"]


class PandasTable(ArenaPeer):
    """pandas' C hash table (``UInt64HashTable``): ``lookup`` for rows, ``get_labels`` to add.

    The hash table maps an ID to a *label* (0, 1, 2, ... in insertion order) and an array
    maps labels to rows. It cannot delete a key, so an expire sweep rebuilds it from the
    surviving keys (``map_locations``). pandas is a benchmark-only dependency (the ``bench``
    extra); this uses its private ``pandas._libs.hashtable`` module. See: book/ch06_numba.md
    """

    name, label = "pandas", "pandas UInt64HashTable + take"

    def __init__(self, spec: PeerConfig) -> None:
        from pandas._libs import hashtable

        super().__init__(spec)
        self._ht = hashtable
        self.table = hashtable.UInt64HashTable(spec.capacity)
        self.label_rows = np.zeros(spec.capacity, dtype=np.int64)
        self.n_labels = 0
        self.identity = True  # label == row until the first expire sweep frees a row

    def _insert(self, keys: np.ndarray, now: int | np.ndarray) -> np.ndarray:
        """Rows for distinct, absent ``keys``, and the next labels pointing at them."""
        rows = self.arena.add(keys, now)
        labels = self.table.get_labels(keys, self._ht.UInt64Vector(), self.n_labels, -1)
        if labels.size and int(labels.max()) >= self.label_rows.shape[0]:
            grown = np.zeros(2 * (int(labels.max()) + 1), dtype=np.int64)
            grown[: self.n_labels] = self.label_rows[: self.n_labels]
            self.label_rows = grown
        self.label_rows[labels] = rows
        self.identity = self.identity and bool(np.array_equal(labels, rows))
        self.n_labels += keys.shape[0]
        return rows

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        labels = self.table.lookup(ids)
        if self.identity:  # no row freed yet: the label is the row (-1 when absent)
            return labels
        rows = np.take(self.label_rows, labels)
        rows[labels < 0] = -1
        return rows

    def train(self, ids: np.ndarray, now: int) -> np.ndarray:
        if self.spec.threshold > 1:  # the admission count: a Python dict, one miss at a time
            return super().train(ids, now)
        rows = self._rows(ids)
        miss = np.flatnonzero(rows < 0)
        if miss.size:
            # Every miss is admitted at its first occurrence: insert the distinct missing
            # keys in order of first appearance, then look the whole batch up again.
            miss_keys = ids[miss]
            _, first = np.unique(miss_keys, return_index=True)
            self._insert(miss_keys[np.sort(first)], now)
            rows = self._rows(ids)
        return self._stamp(rows, now)

    def expire(self, now: int) -> int:
        a = self.arena
        stale = a.stale_rows(now, self.spec.ttl)
        a.release(stale)
        alive = np.flatnonzero(a.live[: a.top])
        self.table = self._ht.UInt64HashTable(max(self.spec.capacity, alive.size))
        self.table.map_locations(a.row_key[alive])
        self.label_rows[: alive.size] = alive
        self.n_labels = int(alive.size)
        self.identity = bool(np.array_equal(alive, np.arange(alive.size)))
        return int(stale.size)

    def memory_bytes(self) -> int:
        return int(self.table.sizeof()) + int(self.label_rows.nbytes) + self.arena.nbytes()
