"""NumbaTable: the collisionless table as flat arrays and compiled batch kernels.

The table is built from :mod:`monolith_ref.kernels` (chapter 6 draws the layout):

* **An index**: a *bucketed* cuckoo hash map (:mod:`monolith_ref.kernels.index`).
  ``num_buckets`` buckets of ``SLOTS`` (4) slots, one 64-byte record each, so a lookup
  reads at most two cache lines. The index is sized for ``TARGET_LOAD`` (80%) and rebuilt
  with new hash functions and twice the buckets when an insert fails.
* **An arena** of rows (:class:`~monolith_ref.kernels.arena.RowArena`): ``embeddings (capacity,
  dim)``, ``opt_state (capacity, width)``, ``last_seen``, ``row_key``, ``live``,
  ``touched``. The index maps a key to a row number. Expired rows go on a free list and are
  reused; a full arena doubles.

The kernels never grow anything; this class does, in Python, and calls them again. All
arithmetic follows :class:`~monolith_ref.tables.DictTable` operation for operation (float32
sums in batch order, the same optimizer formulas, the same initial-row recipe), so the two
tables are bit-identical for any sequence of operations. Debugging tip: with
``NUMBA_DISABLE_JIT=1`` set before ``monolith_ref`` is imported, the kernels run as Python.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numpy as np

from ..checks import check_int
from ..kernels import (ARENA_FULL, OK, SLOTS, RowArena, apply_gradients, buckets_for, expire_rows, find, find_many,
                       gather, index_offsets, index_rebuild, lookup_train, new_index, optimizer_code)
from .base import TableBase, TableConfig, check_ids

__all__ = ["NumbaTable"]


class NumbaTable(TableBase):
    """The collisionless table as flat arrays and ``@njit`` kernels. See: book/ch06_numba.md

    ``capacity``: rows allocated up front (the arena doubles when full). ``max_kicks``:
    the longest kick-out chain in the index before it doubles. Results are bit-identical
    to :class:`DictTable` for any sequence of operations, filters and optimizers included.
    """

    def __init__(self, config: TableConfig, capacity: int = 1024, max_kicks: int = 64) -> None:
        super().__init__(config)
        capacity = check_int(capacity, "capacity", low=1)
        self.max_kicks = check_int(max_kicks, "max_kicks", low=1)
        self._code, self._params = optimizer_code(config.optimizer)
        self._filter = None if config.filter is None else config.filter.build(config.seed)
        self._removed: set[int] = set()
        #: The rows (:class:`~monolith_ref.kernels.arena.RowArena`); read it, do not resize it.
        self.arena = RowArena(capacity, config.dim, config.optimizer.initial_state(config.dim), config.seed,
                              config.init_scale)
        self._alloc_index(buckets_for(capacity), generation=0)

    # ---- storage: the arena (``self.arena``) and the index ------------------------------

    @property
    def index(self) -> np.ndarray:
        """The index, ``(num_buckets, 2 * SLOTS)`` uint64: each bucket's keys, then their rows."""
        return self._index

    def index_args(self) -> tuple[np.ndarray, np.uint64, np.uint64, np.uint64]:
        """``(index, off0, off1, nb)``: the first arguments of the index kernels, for this table."""
        return self._index, self._off0, self._off1, self._nb

    def _alloc_index(self, num_buckets: int, generation: int) -> None:
        self.generation = generation
        self._off0, self._off1 = index_offsets((self.config.seed + 2 * generation) % 2**64)
        self._index = new_index(num_buckets)
        self._nb = np.uint64(num_buckets)

    def _grow_index(self) -> None:
        """New hash seeds and twice the buckets, then reinsert every live row."""
        buckets = self._index.shape[0]
        while True:
            buckets *= 2
            self._alloc_index(buckets, self.generation + 1)
            if index_rebuild(*self.index_args(), self.arena.row_key, self.arena.live, self.arena.top,
                             self.max_kicks):
                return

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        rows = np.empty(ids.shape[0], dtype=np.int64)
        find_many(*self.index_args(), ids, rows)
        return rows

    # ---- the protocol ------------------------------------------------------------------

    def _lookup(self, ids: np.ndarray, now: int, train: bool) -> np.ndarray:
        out = np.empty((ids.shape[0], self.config.dim), dtype=np.float32)
        if not train:
            gather(self._rows_of(ids), self.arena.embeddings, out)
            return out
        rows = np.empty(ids.shape[0], dtype=np.int64)
        self._train_pass(ids, now, insert=self._filter is None, out=out, rows=rows)
        if self._filter is not None:
            self._admit_misses(ids, now, out, rows)
        return out

    def _train_pass(self, ids, now, insert, out, rows) -> None:
        a = self.arena
        start = 0
        while True:
            status, start = lookup_train(
                ids, np.int64(now), start, insert, out, rows, *self.index_args(), self.max_kicks,
                a.seed_offset, a.scale, a.opt_init, *a.arrays(),
            )
            if status == OK:
                return
            if status == ARENA_FULL:
                a.grow()
            else:
                self._grow_index()

    def _admit_misses(self, ids: np.ndarray, now: int, out: np.ndarray, rows: np.ndarray) -> None:
        """Misses, in batch order, through the filter (the compiled pass skipped them); then
        one compiled pass inserts (or refreshes) every admitted position, in batch order."""
        assert self._filter is not None
        miss = np.flatnonzero(rows < 0)
        if miss.size == 0:
            return
        admit = self._filter.admit
        admitted: set[int] = set()
        take = []
        for j, key in enumerate(ids[miss].tolist()):
            if key in admitted or admit(key, now):  # admitted earlier in this batch, or now
                admitted.add(key)
                take.append(j)
        if not take:
            return
        pos = miss[np.array(take, dtype=np.int64)]
        sub_out = np.empty((pos.size, self.config.dim), dtype=np.float32)
        sub_rows = np.empty(pos.size, dtype=np.int64)
        self._train_pass(ids[pos], now, True, sub_out, sub_rows)
        out[pos] = sub_out
        rows[pos] = sub_rows
        for key in admitted:
            self._filter.forget(key)

    def _apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
        a = self.arena
        apply_gradients(self._rows_of(ids), grads, self._code, self._params, a.embeddings, a.opt_state, a.touched)

    def _expire(self, now: int) -> int:
        ttl = self.config.ttl
        assert ttl is not None
        a = self.arena
        removed = expire_rows(np.int64(now), np.int64(ttl), *self.index_args(), a.last_seen, a.row_key, a.live,
                              a.touched, a.free, a.state)
        self._removed.update(removed.tolist())
        if self._filter is not None:
            self._filter.expire(now, ttl)
        return int(removed.shape[0])

    def _live_rows(self) -> np.ndarray:
        top = self.arena.top
        rows = np.flatnonzero(self.arena.live[:top])
        return rows[np.argsort(self.arena.row_key[rows], kind="stable")]

    def _export(self, ids: np.ndarray | None) -> dict[str, np.ndarray]:
        if ids is None:
            rows = self._live_rows()
        else:
            found = self._rows_of(np.unique(ids))
            rows = found[found >= 0]
        a = self.arena
        return {
            "ids": a.row_key[rows].copy(),
            "embeddings": a.embeddings[rows].copy(),
            "opt_state": a.opt_state[rows].copy(),
            "last_seen": a.last_seen[rows].copy(),
        }

    def _load(self, state: dict[str, np.ndarray]) -> None:
        rows, new_filter = self._check_state(state)  # validated before anything changes
        old_keys = self.arena.row_key[self._live_rows()].tolist()
        n = rows["ids"].shape[0]
        a = self.arena
        a.reset(max(n, 1))
        a.embeddings[:n] = rows["embeddings"]
        a.opt_state[:n] = rows["opt_state"]
        a.last_seen[:n] = rows["last_seen"]
        a.row_key[:n] = rows["ids"]
        a.live[:n] = True
        a.touched[:n] = 1
        a.state[:] = (0, n, n)
        self._alloc_index(buckets_for(max(n, 1)), self.generation + 1)
        if not index_rebuild(*self.index_args(), a.row_key, a.live, n, self.max_kicks):
            self._grow_index()
        self._removed.update(old_keys)
        self._filter = new_filter

    def _has(self, key: int) -> bool:
        return find(*self.index_args(), np.uint64(key)) >= 0

    def contains(self, ids) -> np.ndarray:
        return self._rows_of(check_ids(ids)) >= 0

    def __len__(self) -> int:
        return len(self.arena)

    # ---- touched keys (flags per row, plus the keys removed since the last pop) ----------

    def touched_ids(self) -> np.ndarray:
        a, top = self.arena, self.arena.top
        flagged = a.row_key[:top][(a.touched[:top] != 0) & a.live[:top]]
        keys = set(flagged.tolist()) | self._removed
        return np.array(sorted(keys), dtype=np.uint64)

    def pop_touched(self) -> np.ndarray:
        out = self.touched_ids()
        self.arena.touched[:] = 0
        self._removed.clear()
        return out

    # ---- sizes -------------------------------------------------------------------------

    def memory_bytes(self) -> int:
        """Bytes of every array the table holds (index, arena, free list) and its filter."""
        total = int(self._index.nbytes) + self.arena.nbytes()
        return total + (self._filter.memory_bytes() if self._filter is not None else 0)

    def stats(self) -> dict[str, float]:
        """Rows, arena capacity, index slots, index load factor, and the index generation."""
        slots = self._index.shape[0] * SLOTS
        return {
            "size": len(self),
            "capacity": self.arena.capacity,
            "index_slots": int(slots),
            "load_factor": len(self) / slots,
            "generation": self.generation,
        }
