"""ArenaPeer: what the dict and pandas peers share, an ID-to-row index over an arena.

Such a peer finds the rows of a batch with its own index (``_rows``), reads them with one
``np.take`` and updates them with vectorized NumPy; new rows come from the same
:class:`~monolith_ref.kernels.arena.RowArena` as NumbaTable's. Misses go through an exact
occurrence count when ``threshold`` > 1 (as :class:`~monolith_ref.filters.OccurrenceFilter`):
an unseen ID is admitted at its ``threshold``-th sighting, counted in a Python dict, one miss
at a time; admitted IDs get rows in order of first appearance; positions before an ID's
admission keep reading zeros.

See: book/ch06_numba.md
"""

from __future__ import annotations

import abc

import numpy as np

from .row_ops import adagrad_numpy, take_rows
from .spec import ALL_WORKLOADS, PeerConfig

__all__ = ["ArenaPeer"]


class ArenaPeer(abc.ABC):
    """A benchmark peer made of an index (``_rows``, ``_insert``: the subclass) and an arena.

    See: book/ch06_numba.md
    """

    exact = True
    supports = ALL_WORKLOADS

    def __init__(self, spec: PeerConfig) -> None:
        self.spec = spec
        self.arena = spec.arena()
        self.pending: dict[int, int] = {}  # occurrence counts of IDs not yet admitted

    @abc.abstractmethod
    def _rows(self, ids: np.ndarray) -> np.ndarray:
        """The row of each ID, -1 where it has none."""

    @abc.abstractmethod
    def _insert(self, keys: np.ndarray, now: int | np.ndarray) -> np.ndarray:
        """Rows (with their initial values) for distinct, absent ``keys``, entered in the index."""

    def load(self, keys: np.ndarray, now: np.ndarray) -> None:
        self._insert(keys, now)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        return take_rows(self.arena, self._rows(ids))

    def train(self, ids: np.ndarray, now: int) -> np.ndarray:
        rows = self._rows(ids)
        self._insert_misses(ids, rows, now)
        return self._stamp(rows, now)

    def _insert_misses(self, ids: np.ndarray, rows: np.ndarray, now: int) -> None:
        """Fill ``rows`` (-1: a miss) in place for every miss the occurrence count admits."""
        miss = np.flatnonzero(rows < 0)
        if not miss.size:
            return
        keys = ids.tolist()
        new_keys: list[int] = []
        new_at: dict[int, int] = {}  # key -> index in new_keys
        threshold, pending = self.spec.threshold, self.pending
        for i in miss.tolist():
            k = keys[i]
            j = new_at.get(k)
            if j is None:
                if threshold > 1:
                    count = pending.get(k, 0) + 1
                    if count < threshold:
                        pending[k] = count
                        continue
                    pending.pop(k, None)
                j = new_at[k] = len(new_keys)
                new_keys.append(k)
            rows[i] = -2 - j  # placeholder: the j-th new key
        if new_keys:
            new_rows = self._insert(np.array(new_keys, dtype=np.uint64), now)
            placeholder = rows <= -2
            rows[placeholder] = new_rows[-2 - rows[placeholder]]

    def _stamp(self, rows: np.ndarray, now: int) -> np.ndarray:
        """Mark the present rows last seen ``now`` and read them (zeros where -1)."""
        hit = rows[rows >= 0]
        self.arena.last_seen[hit] = now
        return take_rows(self.arena, rows)

    def apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
        adagrad_numpy(self.arena, self._rows(ids), grads, self.spec.lr, self.spec.eps)

    def __len__(self) -> int:
        return len(self.arena)
