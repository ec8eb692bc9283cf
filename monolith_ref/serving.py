"""Serving replicas and parameter synchronization (paper §2.2.3).

Monolith's serving parameter servers hold their own copy of the model, and the training
side pushes changes to them while they keep answering requests. Three ideas from the paper
are built here:

* **Only touched keys.** Tables record which IDs changed since the last hand-off
  (:meth:`~monolith_ref.tables.EmbeddingTable.pop_touched`); a sync sends exactly those rows
  (and the IDs that were removed), not the whole table. Few of a huge table's IDs change in a
  minute, so the push is a small fraction of a full copy.
* **Dense parameters lag.** The dense network changes slowly, so it is pushed only every
  ``dense_every`` syncs (the paper: sparse at minute level, dense daily).
* **No pause, no half-applied sync.** A :class:`ServingReplica` keeps two copies of the
  model and serves from one while a sync is applied to the other, then swaps (double
  buffering). A request works on one copy from start to end, so it sees the state before a
  sync or after it, never a mixture. The price is twice the serving memory.

Serving copies hold embeddings only: no optimizer state, no timestamps, no filter.
Each byte pushed is counted (:class:`SyncReport`).

See: book/ch10_sync.md
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numba import njit

from .checks import check_int
from .events import Events
from .models import DeepFM, DeepFMHead
from .tables.base import check_ids
from .kernels import (SLOTS, TARGET_LOAD, find, find_many, gather, index_clear, index_delete, index_insert,
                      index_offsets, index_rebuild, release_row, take_row)

__all__ = ["SparseDelta", "SyncUpdate", "SyncReport", "ServingTable", "ServingModel", "ServingReplica",
           "ParameterSync", "replica_for"]

_ROW_ID_BYTES = 8  # a uint64 ID travels with each row


# =========================================================================== what a sync carries


@dataclass(frozen=True)
class SparseDelta:
    """The rows of one table that changed: ``ids`` (uint64, sorted) with their ``embeddings``
    (float32, one row each), and ``removed`` IDs (expired since the last sync).

    See: book/ch10_sync.md
    """

    ids: np.ndarray
    embeddings: np.ndarray
    removed: np.ndarray

    @property
    def nbytes(self) -> int:
        """Bytes on the wire: IDs, rows and removed IDs, as raw arrays."""
        return int(self.ids.nbytes + self.embeddings.nbytes + self.removed.nbytes)


@dataclass(frozen=True)
class SyncUpdate:
    """One push from training to serving: a sparse delta per table, and (every K-th sync)
    the dense parameters. ``version`` counts syncs from 1; ``time`` is the event time of the
    push. See: book/ch10_sync.md
    """

    version: int
    time: int
    sparse: Mapping[str, SparseDelta]
    dense: Mapping[str, torch.Tensor] | None = None

    @property
    def sparse_bytes(self) -> int:
        return sum(d.nbytes for d in self.sparse.values())

    @property
    def dense_bytes(self) -> int:
        if self.dense is None:
            return 0
        return sum(int(t.numel() * t.element_size()) for t in self.dense.values())


@dataclass(frozen=True)
class SyncReport:
    """What one sync moved, and what a full copy would have moved at that moment.

    See: book/ch10_sync.md
    """

    version: int
    time: int
    rows: dict[str, int]
    removed: dict[str, int]
    sparse_bytes: int
    dense_bytes: int
    full_bytes: int

    @property
    def bytes(self) -> int:
        return self.sparse_bytes + self.dense_bytes

    @property
    def fraction(self) -> float:
        """Bytes pushed / bytes of a full copy."""
        return self.bytes / self.full_bytes if self.full_bytes else 0.0


# =========================================================================== the serving table


@njit(cache=True, nogil=True)
def _upsert(index, off0, off1, nb, ids, values, emb, row_key, live, free, state, max_kicks):
    """Write ``values[i]`` as the row of ``ids[i]``, inserting new IDs. Returns (status, i):
    status 0 done; 1 the arena is full at i; 2 the index could not take ``ids[i]``."""
    for i in range(ids.shape[0]):
        r = find(index, off0, off1, nb, ids[i])
        if r < 0:
            r = take_row(ids[i], row_key, live, free, state, emb.shape[0])
            if r < 0:
                return 1, i
            if not index_insert(index, off0, off1, nb, ids[i], r, max_kicks):
                release_row(r, live, free, state)
                return 2, i
        for j in range(emb.shape[1]):
            emb[r, j] = values[i, j]
    return 0, ids.shape[0]


@njit(cache=True, nogil=True)
def _remove(index, off0, off1, nb, ids, live, free, state) -> int:
    rows = np.empty(ids.shape[0], dtype=np.int64)
    find_many(index, off0, off1, nb, ids, rows, 0)
    removed = 0
    for i in range(ids.shape[0]):
        r = rows[i]
        if r >= 0 and live[r]:
            index_delete(index, off0, off1, nb, ids[i])
            release_row(r, live, free, state)
            removed += 1
    return removed


class ServingTable:
    """ID -> embedding for serving: the index of :class:`~monolith_ref.tables.NumbaTable`
    over an arena of embeddings only. Unknown IDs read zeros, as a serving lookup of the
    training table does. Rows arrive by :meth:`apply` (a sync), never by lookups.

    See: book/ch10_sync.md
    """

    def __init__(self, dim: int, capacity: int = 1024, max_kicks: int = 64) -> None:
        self.dim = check_int(dim, "ServingTable dim", low=1)
        capacity = check_int(capacity, "ServingTable capacity", low=1)
        self.max_kicks, self.generation = int(max_kicks), 0
        self._alloc_arena(capacity)
        self._alloc_index(max(2, int(np.ceil(capacity / (SLOTS * TARGET_LOAD)))))

    def _alloc_arena(self, capacity: int) -> None:
        self.embeddings = np.zeros((capacity, self.dim), dtype=np.float32)
        self._row_key = np.zeros(capacity, dtype=np.uint64)
        self._live = np.zeros(capacity, dtype=np.bool_)
        self._free = np.zeros(capacity, dtype=np.int64)
        self._state = np.zeros(3, dtype=np.int64)  # n_free, top, n_live

    def _grow_arena(self) -> None:
        old = (self.embeddings, self._row_key, self._live, self._free, self._state.copy())
        top = int(old[4][1])
        self._alloc_arena(2 * old[0].shape[0])
        self.embeddings[:top], self._row_key[:top], self._live[:top] = old[0][:top], old[1][:top], old[2][:top]
        self._free[: old[3].shape[0]] = old[3]
        self._state[:] = old[4]

    def _alloc_index(self, num_buckets: int) -> None:
        self._off0, self._off1 = index_offsets(0x5E2F + 2 * self.generation)  # serving's own hash seeds
        self._index = np.empty((num_buckets, 2 * SLOTS), dtype=np.uint64)
        index_clear(self._index)
        self._nb = np.uint64(num_buckets)

    def _grow_index(self) -> None:
        """Twice the buckets and new hash seeds, then every live row goes back in."""
        buckets = int(self._nb)
        while True:
            buckets *= 2
            self.generation += 1
            self._alloc_index(buckets)
            if index_rebuild(*self._args(), self._row_key, self._live, int(self._state[1]), self.max_kicks):
                return

    def _args(self) -> tuple:
        return self._index, self._off0, self._off1, self._nb

    def lookup(self, ids: Any) -> np.ndarray:
        """float32 ``(n, dim)`` rows; zeros for IDs the replica does not hold."""
        keys = check_ids(ids)
        rows = np.empty(keys.shape[0], dtype=np.int64)
        find_many(*self._args(), keys, rows)
        out = np.empty((keys.shape[0], self.dim), dtype=np.float32)
        gather(rows, self.embeddings, out)
        return out

    def apply(self, delta: SparseDelta) -> None:
        """Upsert ``delta.ids`` with ``delta.embeddings``, then drop ``delta.removed``."""
        ids = check_ids(delta.ids)
        values = np.ascontiguousarray(delta.embeddings, dtype=np.float32)
        if values.shape != (ids.shape[0], self.dim):
            raise ValueError(f"a delta for a table of dim {self.dim} needs embeddings of shape "
                             f"({ids.shape[0]}, {self.dim}), got {values.shape}")
        removed = check_ids(delta.removed)
        start = 0
        while start < ids.shape[0]:
            status, at = _upsert(*self._args(), ids[start:], values[start:], self.embeddings, self._row_key,
                                 self._live, self._free, self._state, self.max_kicks)
            start += int(at)
            if status == 1:
                self._grow_arena()
            elif status == 2:
                self._grow_index()
        if removed.shape[0]:
            _remove(*self._args(), removed, self._live, self._free, self._state)

    def export(self) -> dict[str, np.ndarray]:
        """Every row, sorted by ID: ``{"ids", "embeddings"}`` (for tests and checks)."""
        top = int(self._state[1])
        rows = np.flatnonzero(self._live[:top])
        rows = rows[np.argsort(self._row_key[rows], kind="stable")]
        return {"ids": self._row_key[rows].copy(), "embeddings": self.embeddings[rows].copy()}

    def __len__(self) -> int:
        return int(self._state[2])

    def memory_bytes(self) -> int:
        return int(sum(a.nbytes for a in (self._index, self.embeddings, self._row_key, self._live, self._free)))


# =========================================================================== a serving copy of DeepFM


class ServingModel:
    """One serving copy of a DeepFM: two :class:`ServingTable` and a copy of the dense head.

    See: book/ch10_sync.md
    """

    def __init__(self, head: DeepFMHead, capacity: int = 1024) -> None:
        self.head = copy.deepcopy(head).eval()
        self.tables = {"vectors": ServingTable(head.dim, capacity), "weights": ServingTable(1, capacity)}

    def apply(self, update: SyncUpdate) -> None:
        for name, delta in update.sparse.items():
            if name not in self.tables:
                raise KeyError(f"a sync for unknown table {name!r} (serving has {sorted(self.tables)})")
            self.tables[name].apply(delta)
        if update.dense is not None:
            self.head.load_state_dict(update.dense)

    @torch.no_grad()
    def logits(self, fields: np.ndarray, dense: np.ndarray | None = None) -> torch.Tensor:
        fields = np.asarray(fields)
        b, f = fields.shape
        flat = fields.reshape(-1)
        emb = torch.from_numpy(self.tables["vectors"].lookup(flat)).reshape(b, f, self.head.dim)
        w = torch.from_numpy(self.tables["weights"].lookup(flat)).reshape(b, f, 1)
        d = None
        if self.head.num_dense:
            d = torch.as_tensor(np.asarray(dense, dtype=np.float32))
        return self.head(emb, w, d)


class ServingReplica:
    """A serving replica that keeps answering while syncs arrive (double buffering).

    :meth:`predict` reads the *active* copy; :meth:`apply` writes a sync into the standby
    copy, makes it active (an atomic swap), waits for requests still on the old copy to
    finish, and applies the same sync to it. A request therefore sees one version from start
    to end. ``version`` is the last applied sync's.

    See: book/ch10_sync.md
    """

    def __init__(self, head: DeepFMHead, capacity: int = 1024) -> None:
        self._copies = [ServingModel(head, capacity), ServingModel(head, capacity)]
        self._active = 0
        self._readers = [0, 0]
        self._cond = threading.Condition()
        self._write = threading.Lock()
        self.version = 0
        self.applied: list[int] = []

    @property
    def tables(self) -> dict[str, ServingTable]:
        """The active copy's tables (for inspection)."""
        return self._copies[self._active].tables

    def memory_bytes(self) -> int:
        """Both copies' tables (the double buffer costs twice one copy)."""
        return sum(t.memory_bytes() for c in self._copies for t in c.tables.values())

    def _wait_idle(self, which: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._readers[which] == 0)

    def apply(self, update: SyncUpdate) -> None:
        """Apply one sync without pausing reads (see the class docstring)."""
        if update.version <= self.version:
            raise ValueError(f"sync version {update.version} is not newer than the replica's {self.version}")
        with self._write:
            standby = 1 - self._active
            self._wait_idle(standby)
            self._copies[standby].apply(update)
            with self._cond:
                old, self._active = self._active, standby
                self.version = update.version
            self._wait_idle(old)
            self._copies[old].apply(update)
            self.applied.append(update.version)

    def _enter(self) -> tuple[int, ServingModel, int]:
        with self._cond:
            which = self._active
            self._readers[which] += 1
            return which, self._copies[which], self.version

    def _leave(self, which: int) -> None:
        with self._cond:
            self._readers[which] -= 1
            self._cond.notify_all()

    def lookup(self, table: str, ids: Any) -> tuple[np.ndarray, int]:
        """Rows of ``ids`` in one table, and the version they come from."""
        which, model, version = self._enter()
        try:
            return model.tables[table].lookup(ids), version
        finally:
            self._leave(which)

    def predict(self, events: Events, log_odds_shift: float = 0.0, batch_size: int = 4096) -> np.ndarray:
        """Click probabilities for ``events``; each batch of ``batch_size`` is answered by one
        version. ``log_odds_shift`` is added to every logit (chapter 9's log-odds correction)."""
        out = np.empty(len(events), dtype=np.float32)
        for start in range(0, len(events), batch_size):
            part = events[start : start + batch_size]
            which, model, _ = self._enter()
            try:
                dense = part.dense if part.dense.shape[1] else None
                logits = model.logits(part.fields, dense) + log_odds_shift
            finally:
                self._leave(which)
            out[start : start + len(part)] = torch.sigmoid(logits).numpy()  # as training.predict
        return out


# =========================================================================== the sync


@dataclass
class ParameterSync:
    """Pushes a training DeepFM's changes to a :class:`ServingReplica`.

    Each :meth:`sync` takes the touched keys of both tables (``pop_touched``), exports their
    rows, and sends them with the IDs removed since the last sync; the dense head goes along
    on the first sync and then every ``dense_every`` syncs. The first sync to an empty replica
    sends every row (a full copy), whatever was touched. ``reports`` keeps a
    :class:`SyncReport` per sync. The sync owns the tables' touched-key hand-off: nothing
    else may call ``pop_touched`` on them.

    See: book/ch10_sync.md
    """

    model: DeepFM
    replica: ServingReplica
    dense_every: int = 1
    reports: list[SyncReport] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_int(self.dense_every, "dense_every", low=1)

    def _tables(self) -> dict[str, Any]:
        return {"vectors": self.model.vectors.table, "weights": self.model.weights.table}

    def full_bytes(self) -> int:
        """Bytes of a full copy now: every row with its ID, plus the dense head."""
        sparse = sum(len(t) * (_ROW_ID_BYTES + 4 * t.config.dim) for t in self._tables().values())
        dense = sum(int(p.numel() * p.element_size()) for p in self.model.head.state_dict().values())
        return int(sparse + dense)

    def build(self, now: int, with_dense: bool | None = None) -> SyncUpdate:
        """The next update (hands off the touched keys; does not apply it)."""
        version = self.replica.version + 1
        if with_dense is None:
            with_dense = (version - 1) % self.dense_every == 0
        sparse = {}
        for name, table in self._tables().items():
            keys = table.pop_touched()
            if version == 1:  # an empty replica gets everything, touched or not
                state = table.export()
                keys = np.union1d(keys, state["ids"]).astype(np.uint64)
            else:
                state = table.export(keys)
            present = state["ids"]
            removed = np.setdiff1d(keys, present, assume_unique=True)
            sparse[name] = SparseDelta(present, state["embeddings"], removed.astype(np.uint64))
        dense = None
        if with_dense:
            dense = {k: v.detach().clone() for k, v in self.model.head.state_dict().items()}
        return SyncUpdate(version=version, time=int(now), sparse=sparse, dense=dense)

    def sync(self, now: int, with_dense: bool | None = None) -> SyncReport:
        """Build the next update, apply it to the replica, and report its size."""
        update = self.build(now, with_dense)
        self.replica.apply(update)
        report = SyncReport(
            version=update.version, time=update.time,
            rows={k: int(d.ids.shape[0]) for k, d in update.sparse.items()},
            removed={k: int(d.removed.shape[0]) for k, d in update.sparse.items()},
            sparse_bytes=update.sparse_bytes, dense_bytes=update.dense_bytes, full_bytes=self.full_bytes(),
        )
        self.reports.append(report)
        return report


def replica_for(model: DeepFM, capacity: int | None = None) -> ServingReplica:
    """An empty replica shaped like ``model`` (its first sync fills it).

    See: book/ch10_sync.md
    """
    cap = capacity or max(1024, len(model.vectors.table))
    return ServingReplica(model.head, cap)
