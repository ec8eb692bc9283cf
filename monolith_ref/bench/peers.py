"""The tables a user would otherwise reach for, behind one small benchmark interface.

Every contestant of the benchmark (``monolith_ref.bench``) is an object with the same few
methods, so one harness can feed them all the same keys:

* ``load(keys, now)``: make ``keys`` resident, each last seen at ``now[i]`` (not timed);
* ``lookup(ids)``: serving lookups, no inserts (unknown IDs read zeros);
* ``train(ids, now)``: training lookups: insert unseen IDs (through the admission rule,
  if the peer was built with ``threshold`` > 1) and refresh the last-seen time;
* ``apply(ids, grads)``: sum the gradients per ID, then one Adagrad step per row;
* ``expire(now)``: remove rows unseen for longer than the TTL; return how many;
* ``memory_bytes()``: bytes held (``None`` where it cannot be measured).

A peer sets ``supports`` to the workloads it can run. The peers:

* :class:`CollisionlessEmbedding`: **the seed blog post's mock**, as written there (a dict
  of NumPy vectors and a Python loop per ID); :class:`SeedMockAdapter` drives it.
* :class:`DictArena`: a Python ``dict`` from ID to a row number, plus NumPy arrays.
* :class:`TypedDictTable`: ``numba.typed.Dict`` (uint64 -> int64), used inside ``@njit``.
* :class:`PandasTable`: pandas' C hash table (``UInt64HashTable``) plus ``np.take``.
* :class:`TorchHashed`: ``torch.nn.Embedding`` over hashed IDs (a fixed-size table).
* :class:`GatherCeiling`: rows whose positions are already known, no hashing at all.
* :class:`OursAdapter`: ``NumbaTable``, ``ShardedTable`` and ``DictTable`` themselves.

Peers that can insert start new rows from :func:`monolith_ref.tables.initial_rows` (the same
recipe as our tables), so their lookups return exactly our rows and the harness can check
that every contestant computed the same thing. See: book/ch06_numba.md
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np
from numba import njit, types
from numba.typed import Dict

from ..hashing import GOLDEN_GAMMA, mix64
from ..tables import TableConfig, initial_rows
from ..tables.base import filter_state
from ..tables.numba_table import _ADAGRAD, _apply, _init_row

__all__ = [
    "PeerSpec",
    "CollisionlessEmbedding",
    "FilteredCollisionlessEmbedding",
    "SeedMockAdapter",
    "DictArena",
    "TypedDictTable",
    "PandasTable",
    "TorchHashed",
    "GatherCeiling",
    "OursAdapter",
    "ALL_WORKLOADS",
]

#: Workload names: hit lookups, training lookups, Adagrad updates, an expire sweep.
ALL_WORKLOADS = frozenset({"hits", "train", "train_filter", "apply", "expire"})


class PeerSpec:
    """What every contestant is built with. See: book/ch06_numba.md

    ``dim``; ``capacity``: rows to allocate up front (peers with arenas); ``seed`` and
    ``scale`` of the initial rows; Adagrad's ``lr``, ``initial_accumulator`` and ``eps``;
    ``ttl`` in seconds; ``threshold``: admit an unseen ID at its ``threshold``-th occurrence
    (1 admits at once, as ``OccurrenceFilter``).
    """

    def __init__(self, dim: int, capacity: int, seed: int = 0, scale: float = 0.01, lr: float = 0.01,
                 initial_accumulator: float = 1.0, eps: float = 1e-10, ttl: int = 1_000_000,
                 threshold: int = 1) -> None:
        self.dim, self.capacity, self.seed, self.scale = int(dim), int(capacity), int(seed), float(scale)
        self.lr, self.initial_accumulator, self.eps = float(lr), float(initial_accumulator), float(eps)
        self.ttl, self.threshold = int(ttl), int(threshold)

    @property
    def seed_offset(self) -> np.uint64:
        """``(seed + 1) * GOLDEN`` modulo 2**64: the offset :func:`initial_rows` hashes with."""
        return np.uint64(((self.seed + 1) * int(GOLDEN_GAMMA)) % 2**64)

    def config(self, filtered: bool = True) -> TableConfig:
        """The same settings as a :class:`TableConfig` for our tables."""
        from ..filters import OccurrenceFilter
        from ..optim import Adagrad

        opt = Adagrad(lr=self.lr, initial_accumulator=self.initial_accumulator, eps=self.eps)
        filt = OccurrenceFilter(self.threshold) if (filtered and self.threshold > 1) else None
        return TableConfig(dim=self.dim, seed=self.seed, ttl=self.ttl, init_scale=self.scale, optimizer=opt,
                           filter=filt)


def _groups_by_time(now: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(t, positions)`` for each distinct time in ``now``, positions in their order."""
    order = np.argsort(now, kind="stable")
    times, starts = np.unique(now[order], return_index=True)
    return [(int(t), np.sort(part)) for t, part in zip(times.tolist(), np.split(order, starts[1:]))]


# =========================================================================== the seed's mock


class CollisionlessEmbedding:
    """THE SEED BLOG POST'S MOCK, as written there (only its lost indentation restored).

    A dict from ID to a NumPy vector, a dict of last-seen times, a Python loop per ID.
    ``update`` is plain SGD, one step per occurrence (the mock has no optimizer state).
    Not our code: it is the baseline the book starts from. See: book/ch06_numba.md
    """

    def __init__(self, dim: int, ttl_seconds: int = 7 * 86400):
        self.dim = dim
        self.ttl = ttl_seconds
        self.table: dict[int, np.ndarray] = {}  # id → vector
        self.last_seen: dict[int, float] = {}  # id → unix ts

    def lookup(self, ids: list[int], now: float) -> np.ndarray:
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for i, k in enumerate(ids):
            if k not in self.table:
                # new ID — allocate a fresh embedding (e.g., Xavier init)
                self.table[k] = np.random.randn(self.dim).astype(np.float32) * 0.01
                self.last_seen[k] = now
            out[i] = self.table[k]
        return out

    def update(self, ids: list[int], grads: np.ndarray, lr: float = 1e-3):
        for i, k in enumerate(ids):
            self.table[k] -= lr * grads[i]

    def expire(self, now: float):
        stale = [k for k, ts in self.last_seen.items() if now - ts > self.ttl]
        for k in stale:
            del self.table[k]
            del self.last_seen[k]


class FilteredCollisionlessEmbedding(CollisionlessEmbedding):
    """The seed's mock with an exact occurrence count bolted on (OUR addition, not the post's).

    Used only for the filtered training workload, so that the mock does the same admission
    work as the tables it is compared with. See: book/ch06_numba.md
    """

    def __init__(self, dim: int, ttl_seconds: int = 7 * 86400, threshold: int = 2):
        super().__init__(dim, ttl_seconds)
        self.threshold = threshold
        self.pending: dict[int, int] = {}

    def lookup(self, ids: list[int], now: float) -> np.ndarray:
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for i, k in enumerate(ids):
            if k not in self.table:
                count = self.pending.get(k, 0) + 1
                if count < self.threshold:
                    self.pending[k] = count
                    continue
                self.pending.pop(k, None)
                self.table[k] = np.random.randn(self.dim).astype(np.float32) * 0.01
                self.last_seen[k] = now
            out[i] = self.table[k]
        return out


class SeedMockAdapter:
    """Drives :class:`CollisionlessEmbedding` (or the filtered variant) in the benchmark.

    IDs go in as a Python list of ints (the mock's signature); ``apply`` is the mock's own
    SGD ``update`` (it has no Adagrad). Its rows are its own random draws, so its outputs
    are not compared with ours. See: book/ch06_numba.md
    """

    name, label, exact = "seed_mock", "seed's mock (blog post)", False
    supports = ALL_WORKLOADS

    def __init__(self, spec: PeerSpec) -> None:
        self.spec = spec
        if spec.threshold > 1:
            self.mock: CollisionlessEmbedding = FilteredCollisionlessEmbedding(spec.dim, spec.ttl, spec.threshold)
        else:
            self.mock = CollisionlessEmbedding(spec.dim, spec.ttl)

    def load(self, keys: np.ndarray, now: np.ndarray) -> None:
        """Through the mock's own (unfiltered) lookup, one call per distinct ``now``."""
        for t, part in _groups_by_time(now):
            CollisionlessEmbedding.lookup(self.mock, keys[part].tolist(), t)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        # The mock has no read-only lookup; on resident keys its lookup only reads.
        return self.mock.lookup(ids.tolist(), 0)

    def train(self, ids: np.ndarray, now: int) -> np.ndarray:
        return self.mock.lookup(ids.tolist(), now)

    def apply(self, ids: np.ndarray, grads: np.ndarray) -> None:
        self.mock.update(ids.tolist(), grads, lr=self.spec.lr)

    def expire(self, now: int) -> int:
        before = len(self.mock.table)
        self.mock.expire(now)
        return before - len(self.mock.table)

    def __len__(self) -> int:
        return len(self.mock.table)

    def memory_bytes(self) -> int:
        m = self.mock
        total = sys.getsizeof(m.table) + sys.getsizeof(m.last_seen)
        for k, v in m.table.items():
            total += sys.getsizeof(k) + sys.getsizeof(v) + sys.getsizeof(m.last_seen[k])
        return total


# =========================================================================== shared arena


class _Arena:
    """Rows in flat NumPy arrays: embeddings, Adagrad accumulators, last seen, key, live."""

    def __init__(self, spec: PeerSpec) -> None:
        cap, dim = spec.capacity, spec.dim
        self.spec = spec
        self.emb = np.zeros((cap, dim), dtype=np.float32)
        self.acc = np.zeros((cap, dim), dtype=np.float32)
        self.seen = np.zeros(cap, dtype=np.int64)
        self.keys = np.zeros(cap, dtype=np.uint64)
        self.live = np.zeros(cap, dtype=np.bool_)
        self.free = np.zeros(cap, dtype=np.int64)
        self.state = np.zeros(3, dtype=np.int64)  # n_free, top, n_live
        self.lr, self.eps = np.float32(spec.lr), np.float32(spec.eps)

    def take_rows(self, n: int) -> np.ndarray:
        """``n`` free rows: the free list first, then the unused top."""
        n_free, top = int(self.state[0]), int(self.state[1])
        reuse = min(n, n_free)
        rows = np.empty(n, dtype=np.int64)
        rows[:reuse] = self.free[n_free - reuse : n_free][::-1]
        fresh = n - reuse
        if top + fresh > self.emb.shape[0]:
            raise MemoryError("benchmark arena is full: give the peer a larger capacity")
        rows[reuse:] = np.arange(top, top + fresh)
        self.state[0] -= reuse
        self.state[1] += fresh
        self.state[2] += n
        return rows

    def init_rows(self, rows: np.ndarray, keys: np.ndarray, now: int | np.ndarray) -> None:
        s = self.spec
        self.emb[rows] = initial_rows(s.seed, keys, s.dim, s.scale)
        self.acc[rows] = np.float32(s.initial_accumulator)
        self.seen[rows] = now
        self.keys[rows] = keys
        self.live[rows] = True

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` of the embeddings (one ``np.take``); zeros where ``rows`` is -1."""
        if not rows.size or rows.min() >= 0:
            return np.take(self.emb, rows, axis=0)
        out = np.take(self.emb, np.maximum(rows, 0), axis=0)
        out[rows < 0] = 0.0
        return out

    def adagrad(self, rows: np.ndarray, grads: np.ndarray) -> None:
        """Sum per row in batch order (``np.add.at``), then one vectorized Adagrad step."""
        present = rows >= 0
        rows, grads = rows[present], grads[present]
        uniq, inverse = np.unique(rows, return_inverse=True)
        summed = np.zeros((uniq.shape[0], grads.shape[1]), dtype=np.float32)
        np.add.at(summed, inverse, grads)
        acc = self.acc[uniq] + summed * summed
        self.acc[uniq] = acc
        self.emb[uniq] = self.emb[uniq] - self.lr * (summed / (np.sqrt(acc) + self.eps))

    def stale_rows(self, now: int, ttl: int) -> np.ndarray:
        top = int(self.state[1])
        return np.flatnonzero(self.live[:top] & (now - self.seen[:top] > ttl))

    def release(self, rows: np.ndarray) -> None:
        self.live[rows] = False
        n_free = int(self.state[0])
        self.free[n_free : n_free + rows.size] = rows
        self.state[0] += rows.size
        self.state[2] -= rows.size

    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in (self.emb, self.acc, self.seen, self.keys, self.live, self.free))


# =========================================================================== dict + arena


class DictArena:
    """A Python ``dict`` mapping each ID to a row number of NumPy arrays.

    What most people write first after the mock: the dict is touched once per ID in a
    Python loop (a list comprehension), every row operation is vectorized NumPy.
    See: book/ch06_numba.md
    """

    name, label, exact = "dict_arena", "Python dict + NumPy arena", True
    supports = ALL_WORKLOADS

    def __init__(self, spec: PeerSpec) -> None:
        self.spec = spec
        self.arena = _Arena(spec)
        self.index: dict[int, int] = {}
        self.pending: dict[int, int] = {}

    def load(self, keys: np.ndarray, now: np.ndarray) -> None:
        rows = self.arena.take_rows(keys.shape[0])
        self.arena.init_rows(rows, keys, now)
        self.index.update(zip(keys.tolist(), rows.tolist()))

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        get = self.index.get
        return np.array([get(k, -1) for k in ids.tolist()], dtype=np.int64)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        return self.arena.gather(self._rows(ids))

    def train(self, ids: np.ndarray, now: int) -> np.ndarray:
        rows = self._rows(ids)
        miss = np.flatnonzero(rows < 0)
        if miss.size:
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
                new_rows = self.arena.take_rows(len(new_keys))
                self.arena.init_rows(new_rows, np.array(new_keys, dtype=np.uint64), now)
                self.index.update(zip(new_keys, new_rows.tolist()))
                placeholder = rows <= -2
                rows[placeholder] = new_rows[-2 - rows[placeholder]]
        hit = rows[rows >= 0]
        self.arena.seen[hit] = now
        return self.arena.gather(rows)

    def apply(self, ids: np.ndarray, grads: np.ndarray) -> None:
        self.arena.adagrad(self._rows(ids), grads)

    def expire(self, now: int) -> int:
        stale = self.arena.stale_rows(now, self.spec.ttl)
        index = self.index
        for k in self.arena.keys[stale].tolist():
            del index[k]
        self.arena.release(stale)
        return int(stale.size)

    def __len__(self) -> int:
        return len(self.index)

    def memory_bytes(self) -> int:
        total = sys.getsizeof(self.index) + self.arena.nbytes()
        for k, r in self.index.items():
            total += sys.getsizeof(k) + sys.getsizeof(r)
        return total


# =========================================================================== numba.typed.Dict


@njit(cache=True, nogil=True)
def _td_load(d, keys, rows) -> None:
    for i in range(keys.shape[0]):
        d[keys[i]] = rows[i]


@njit(cache=True, nogil=True)
def _td_rows(d, ids, rows) -> None:
    for i in range(ids.shape[0]):
        v = d.get(ids[i])  # one probe; None when absent
        rows[i] = -1 if v is None else v


@njit(cache=True, nogil=True)
def _td_lookup(d, ids, emb, out) -> None:
    row = np.empty(1, dtype=np.int64)  # d.get() types as Optional(int64); storing it unwraps it
    for i in range(ids.shape[0]):
        v = d.get(ids[i])
        if v is None:
            out[i, :] = 0.0
        else:
            row[0] = v
            out[i, :] = emb[row[0]]


@njit(cache=True, nogil=True)
def _td_train(d, pending, threshold, ids, now, emb, acc, seen, keys, live, free, state, seed_offset, scale,
              acc0, out) -> int:
    """Lookup-or-insert; an exact occurrence count in a second typed dict when threshold > 1.
    Returns the number of rows it could not get (0 unless the arena is full)."""
    missing = 0
    scratch = np.empty(1, dtype=np.int64)  # d.get() types as Optional(int64); storing it unwraps it
    for i in range(ids.shape[0]):
        k = ids[i]
        v = d.get(k)
        scratch[0] = -1 if v is None else v
        r = scratch[0]
        if r < 0:
            if threshold > 1:
                p = pending.get(k)
                scratch[0] = 0 if p is None else p
                c = scratch[0] + 1
                if c < threshold:
                    pending[k] = c
                    out[i, :] = 0.0
                    continue
                if p is not None:
                    pending.pop(k)
            if state[0] > 0:
                state[0] -= 1
                r = free[state[0]]
            elif state[1] < emb.shape[0]:
                r = state[1]
                state[1] += 1
            else:
                missing += 1
                out[i, :] = 0.0
                continue
            state[2] += 1
            d[k] = r
            _init_row(seed_offset, k, scale, emb[r])
            acc[r, :] = acc0
            keys[r] = k
            live[r] = True
        seen[r] = now
        out[i, :] = emb[r]
    return missing


def _scatter_adagrad(rows, grads, emb, acc, lr, eps) -> None:
    """Known rows: sum each row's gradients in batch order, then one Adagrad step per row.

    The same compiled kernel NumbaTable uses (``numba_table._apply``), so the peers pay the
    same update cost and only their indexes differ."""
    touched = np.empty(emb.shape[0], dtype=np.uint8)  # the kernel marks rows; peers ignore it
    params = np.array([lr, eps], dtype=np.float32)
    _apply(rows, grads, _ADAGRAD, params, emb, acc, touched)


@njit(cache=True, nogil=True)
def _td_expire(d, now, ttl, seen, keys, live, free, state) -> int:
    removed = 0
    for r in range(state[1]):
        if live[r] and now - seen[r] > ttl:
            d.pop(keys[r])
            live[r] = False
            free[state[0]] = r
            state[0] += 1
            state[2] -= 1
            removed += 1
    return removed


class TypedDictTable:
    """``numba.typed.Dict`` (uint64 -> int64) from ID to row, every loop inside ``@njit``.

    What a Numba user would try first: Numba's own hash map, used from compiled code. The
    admission count (``threshold`` > 1) is a second typed dict. See: book/ch06_numba.md
    """

    name, label, exact = "typed_dict", "numba.typed.Dict in @njit", True
    supports = ALL_WORKLOADS

    def __init__(self, spec: PeerSpec) -> None:
        self.spec = spec
        self.arena = _Arena(spec)
        self.index = Dict.empty(key_type=types.uint64, value_type=types.int64)
        self.pending = Dict.empty(key_type=types.uint64, value_type=types.int64)
        self._acc0 = np.full(spec.dim, spec.initial_accumulator, dtype=np.float32)

    def load(self, keys: np.ndarray, now: np.ndarray) -> None:
        rows = self.arena.take_rows(keys.shape[0])
        self.arena.init_rows(rows, keys, now)
        _td_load(self.index, keys, rows)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        out = np.empty((ids.shape[0], self.spec.dim), dtype=np.float32)
        _td_lookup(self.index, ids, self.arena.emb, out)
        return out

    def train(self, ids: np.ndarray, now: int) -> np.ndarray:
        a, s = self.arena, self.spec
        out = np.empty((ids.shape[0], s.dim), dtype=np.float32)
        missing = _td_train(self.index, self.pending, s.threshold, ids, np.int64(now), a.emb, a.acc, a.seen, a.keys,
                            a.live, a.free, a.state, s.seed_offset, s.scale, self._acc0, out)
        if missing:
            raise MemoryError("benchmark arena is full: give the peer a larger capacity")
        return out

    def apply(self, ids: np.ndarray, grads: np.ndarray) -> None:
        rows = np.empty(ids.shape[0], dtype=np.int64)
        _td_rows(self.index, ids, rows)
        _scatter_adagrad(rows, grads, self.arena.emb, self.arena.acc, self.arena.lr, self.arena.eps)

    def expire(self, now: int) -> int:
        a = self.arena
        return int(_td_expire(self.index, np.int64(now), np.int64(self.spec.ttl), a.seen, a.keys, a.live, a.free,
                              a.state))

    def __len__(self) -> int:
        return len(self.index)

    def memory_bytes(self) -> None:
        """Not measurable: the typed dict's storage lives in Numba's own allocator."""
        return None


# =========================================================================== pandas


class PandasTable:
    """pandas' C hash table (``UInt64HashTable``): ``lookup`` for rows, ``get_labels`` to add.

    The hash table maps an ID to a *label* (0, 1, 2, ... in insertion order) and an array
    maps labels to rows. It cannot delete a key, so an expire sweep rebuilds it from the
    surviving keys (``map_locations``). pandas is a benchmark-only dependency (the ``bench``
    extra); this uses its private ``pandas._libs.hashtable`` module. See: book/ch06_numba.md
    """

    name, label, exact = "pandas", "pandas UInt64HashTable + take", True
    supports = ALL_WORKLOADS

    def __init__(self, spec: PeerSpec) -> None:
        from pandas._libs import hashtable

        self._ht = hashtable
        self.spec = spec
        self.arena = _Arena(spec)
        self.table = hashtable.UInt64HashTable(spec.capacity)
        self.label_rows = np.zeros(spec.capacity, dtype=np.int64)
        self.n_labels = 0
        self.identity = True  # label == row until the first expire sweep frees a row
        self.pending: dict[int, int] = {}

    def load(self, keys: np.ndarray, now: np.ndarray) -> None:
        rows = self.arena.take_rows(keys.shape[0])
        self.arena.init_rows(rows, keys, now)
        self._add(keys, rows)

    def _add(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Give distinct, absent ``keys`` the next labels, pointing at ``rows``."""
        labels = self.table.get_labels(keys, self._ht.UInt64Vector(), self.n_labels, -1)
        if labels.size and int(labels.max()) >= self.label_rows.shape[0]:
            grown = np.zeros(2 * (int(labels.max()) + 1), dtype=np.int64)
            grown[: self.n_labels] = self.label_rows[: self.n_labels]
            self.label_rows = grown
        self.label_rows[labels] = rows
        self.identity = self.identity and bool(np.array_equal(labels, rows))
        self.n_labels += keys.shape[0]

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        labels = self.table.lookup(ids)
        if self.identity:  # no row freed yet: the label is the row (-1 when absent)
            return labels
        rows = np.take(self.label_rows, labels)
        rows[labels < 0] = -1
        return rows

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        return self.arena.gather(self._rows(ids))

    def train(self, ids: np.ndarray, now: int) -> np.ndarray:
        rows = self._rows(ids)
        miss = np.flatnonzero(rows < 0)
        if miss.size and self.spec.threshold <= 1:
            # Every miss is admitted at its first occurrence: insert the distinct missing
            # keys in order of first appearance, then look the whole batch up again.
            miss_keys = ids[miss]
            _, first = np.unique(miss_keys, return_index=True)
            new = miss_keys[np.sort(first)]
            new_rows = self.arena.take_rows(new.shape[0])
            self.arena.init_rows(new_rows, new, now)
            self._add(new, new_rows)
            rows = self._rows(ids)
        elif miss.size:
            # The admission count is a Python dict, one miss at a time; positions before an
            # ID's admission keep reading zeros.
            keys = ids.tolist()
            new_keys: list[int] = []
            new_at: dict[int, int] = {}
            pending, threshold = self.pending, self.spec.threshold
            for i in miss.tolist():
                k = keys[i]
                j = new_at.get(k)
                if j is None:
                    count = pending.get(k, 0) + 1
                    if count < threshold:
                        pending[k] = count
                        continue
                    pending.pop(k, None)
                    j = new_at[k] = len(new_keys)
                    new_keys.append(k)
                rows[i] = -2 - j
            if new_keys:
                new = np.array(new_keys, dtype=np.uint64)
                new_rows = self.arena.take_rows(new.shape[0])
                self.arena.init_rows(new_rows, new, now)
                self._add(new, new_rows)
                placeholder = rows <= -2
                rows[placeholder] = new_rows[-2 - rows[placeholder]]
        hit = rows[rows >= 0]
        self.arena.seen[hit] = now
        return self.arena.gather(rows)

    def apply(self, ids: np.ndarray, grads: np.ndarray) -> None:
        self.arena.adagrad(self._rows(ids), grads)

    def expire(self, now: int) -> int:
        stale = self.arena.stale_rows(now, self.spec.ttl)
        self.arena.release(stale)
        top = int(self.arena.state[1])
        alive = np.flatnonzero(self.arena.live[:top])
        self.table = self._ht.UInt64HashTable(max(self.spec.capacity, alive.size))
        self.table.map_locations(self.arena.keys[alive])
        self.label_rows[: alive.size] = alive
        self.n_labels = int(alive.size)
        self.identity = bool(np.array_equal(alive, np.arange(alive.size)))
        return int(stale.size)

    def __len__(self) -> int:
        return int(self.arena.state[2])

    def memory_bytes(self) -> int:
        return int(self.table.sizeof()) + int(self.label_rows.nbytes) + self.arena.nbytes()


# =========================================================================== torch


class TorchHashed:
    """``torch.nn.Embedding`` with as many rows as resident IDs, indexed by ``hash(id) % rows``.

    The fixed-size table a user would pick instead of a collisionless one: no inserts, no
    expiry, and IDs that share a row share its parameters (chapter 2). Updates go through a
    sparse gradient and ``torch.optim.Adagrad``. See: book/ch06_numba.md
    """

    name, label, exact = "torch_hashed", "torch.nn.Embedding, hashed IDs", False
    supports = frozenset({"hits", "train", "apply"})

    def __init__(self, spec: PeerSpec, num_rows: int) -> None:
        import torch

        self.torch, self.spec, self.num_rows = torch, spec, int(num_rows)
        gen = torch.Generator().manual_seed(spec.seed)
        weight = torch.empty(self.num_rows, spec.dim).uniform_(-spec.scale, spec.scale, generator=gen)
        self.emb = torch.nn.Embedding(self.num_rows, spec.dim, sparse=True, _weight=weight)
        self.opt = torch.optim.Adagrad(self.emb.parameters(), lr=spec.lr,
                                       initial_accumulator_value=spec.initial_accumulator, eps=spec.eps)

    def load(self, keys: np.ndarray, now: np.ndarray) -> None:
        """Nothing to insert: every ID already has a row (shared with others)."""

    def _rows(self, ids: np.ndarray) -> Any:
        return self.torch.from_numpy((mix64(ids, self.spec.seed) % np.uint64(self.num_rows)).astype(np.int64))

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.emb(self._rows(ids)).numpy()

    def train(self, ids: np.ndarray, now: int) -> np.ndarray:
        return self.lookup(ids)

    def apply(self, ids: np.ndarray, grads: np.ndarray) -> None:
        torch = self.torch
        rows = self._rows(ids)
        self.emb.weight.grad = torch.sparse_coo_tensor(rows[None], torch.from_numpy(grads), (self.num_rows, self.spec.dim),
                                                       check_invariants=False)
        with warnings.catch_warnings():  # torch's Adagrad builds sparse tensors without checks
            warnings.filterwarnings("ignore", message="Sparse invariant checks")
            self.opt.step()

    def expire(self, now: int) -> int:
        return 0

    def __len__(self) -> int:
        return self.num_rows

    def memory_bytes(self) -> int:
        state = self.opt.state.get(self.emb.weight, {})
        extra = sum(v.numel() * v.element_size() for v in state.values() if hasattr(v, "numel"))
        return int(self.emb.weight.numel() * self.emb.weight.element_size() + extra)


# =========================================================================== the ceiling


@njit(cache=True, nogil=True)
def _gather_rows(rows, emb, out) -> None:
    for i in range(rows.shape[0]):
        out[i, :] = emb[rows[i]]


@njit(cache=True, nogil=True)
def _scan_expire(now, ttl, seen, live, top) -> int:
    removed = 0
    for r in range(top):
        if live[r] and now - seen[r] > ttl:
            live[r] = False
            removed += 1
    return removed


class GatherCeiling:
    """The ceiling: the row positions are known in advance, so there is nothing to hash.

    ``mode="numpy"`` gathers with ``np.take`` (and updates with NumPy); ``mode="njit"`` with
    compiled loops. The harness takes the faster of the two. ``lookup``/``train``/``apply``
    take *row positions*, not IDs (the harness computes them before the clock starts); new
    IDs of a training stream get rows set up in advance. See: book/ch06_numba.md
    """

    exact = True
    supports = frozenset({"hits", "train", "train_filter", "apply", "expire"})
    takes_rows = True

    def __init__(self, spec: PeerSpec, mode: str = "numpy") -> None:
        if mode not in ("numpy", "njit"):
            raise ValueError(f"mode must be 'numpy' or 'njit', got {mode!r}")
        self.spec, self.mode = spec, mode
        self.name = f"ceiling_{mode}"
        self.label = "ceiling: np.take, rows known" if mode == "numpy" else "ceiling: @njit gather, rows known"
        self.arena = _Arena(spec)

    def load(self, keys: np.ndarray, now: np.ndarray) -> None:
        rows = self.arena.take_rows(keys.shape[0])
        self.arena.init_rows(rows, keys, now)

    def prepare(self, keys: np.ndarray, now: int = 2**40) -> None:
        """Set up rows for keys that a training stream will bring (not timed); they are
        stamped far in the future, so no sweep removes them."""
        rows = self.arena.take_rows(keys.shape[0])
        self.arena.init_rows(rows, keys, now)

    def lookup(self, rows: np.ndarray) -> np.ndarray:
        if self.mode == "numpy":
            return np.take(self.arena.emb, rows, axis=0)
        out = np.empty((rows.shape[0], self.spec.dim), dtype=np.float32)
        _gather_rows(rows, self.arena.emb, out)
        return out

    def train(self, rows: np.ndarray, now: int) -> np.ndarray:
        return self.lookup(rows)

    def apply(self, rows: np.ndarray, grads: np.ndarray) -> None:
        if self.mode == "numpy":
            self.arena.adagrad(rows, grads)
        else:
            _scatter_adagrad(rows, grads, self.arena.emb, self.arena.acc, self.arena.lr, self.arena.eps)

    def expire(self, now: int) -> int:
        a = self.arena
        if self.mode == "numpy":
            stale = a.stale_rows(now, self.spec.ttl)
            a.live[stale] = False
            return int(stale.size)
        return int(_scan_expire(np.int64(now), np.int64(self.spec.ttl), a.seen, a.live, np.int64(a.state[1])))

    def __len__(self) -> int:
        return int(self.arena.live.sum())

    def memory_bytes(self) -> int:
        a = self.arena
        return int(a.emb.nbytes + a.acc.nbytes)


# =========================================================================== ours


class OursAdapter:
    """``NumbaTable``, ``ShardedTable`` or ``DictTable`` through the table protocol.

    ``kind``: ``"numba"``, ``"sharded"`` (``num_shards`` shards, ``threads`` threads) or
    ``"dict"``. Each is built from :meth:`PeerSpec.config` (Adagrad; an
    ``OccurrenceFilter(threshold)`` when threshold > 1). See: book/ch06_numba.md
    """

    exact = True
    supports = ALL_WORKLOADS

    def __init__(self, spec: PeerSpec, kind: str = "numba", threads: int = 1, num_shards: int = 2,
                 capacity: int | None = None) -> None:
        from ..tables import DictTable, NumbaTable, ShardedTable

        self.spec, self.kind = spec, kind
        cfg = spec.config()
        cap = spec.capacity if capacity is None else int(capacity)
        if kind == "numba":
            self.table: Any = NumbaTable(cfg, capacity=cap)
            self.name, self.label = "numba", "NumbaTable (ours)"
        elif kind == "sharded":
            per_shard = max(1, -(-cap // num_shards) * 51 // 50 + 64)  # routing is not perfectly even
            self.table = ShardedTable(cfg, num_shards=num_shards, threads=threads,
                                      shard_factory=lambda c: NumbaTable(c, capacity=per_shard))
            self.name = f"sharded_{threads}t"
            self.label = f"ShardedTable (ours), {num_shards} shards, {threads} thread{'s' if threads > 1 else ''}"
        elif kind == "dict":
            self.table = DictTable(cfg)
            self.name, self.label = "dict_table", "DictTable (ours, pure Python)"
        else:
            raise ValueError(f"kind must be 'numba', 'sharded' or 'dict', got {kind!r}")

    def load(self, keys: np.ndarray, now: np.ndarray) -> None:
        """Insert through training lookups, one call per distinct ``now`` (not timed).

        Resident keys skip the admission filter: it is switched off while they go in.
        """
        if self.kind == "dict":  # fill a NumbaTable (fast), then hand its rows over: same state
            from ..tables import NumbaTable

            helper = OursAdapter(self.spec, "numba", capacity=keys.shape[0])
            helper.load(keys, now)
            state = helper.table.export()
            state.update(filter_state(self.table._filter))
            self.table.load(state)
            self.table.pop_touched()
            assert isinstance(helper.table, NumbaTable)
            return
        shards = getattr(self.table, "shards", [self.table])
        saved = [shard._filter for shard in shards]
        for shard in shards:
            shard._filter = None
        try:
            for t, part in _groups_by_time(now):
                self.table.lookup(keys[part], now=t)
        finally:
            for shard, f in zip(shards, saved):
                shard._filter = f
        self.table.pop_touched()

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        return self.table.lookup(ids, now=0, train=False)

    def train(self, ids: np.ndarray, now: int) -> np.ndarray:
        return self.table.lookup(ids, now=now)

    def apply(self, ids: np.ndarray, grads: np.ndarray) -> None:
        self.table.apply_gradients(ids, grads)

    def expire(self, now: int) -> int:
        return int(self.table.expire(now))

    def close(self) -> None:
        if hasattr(self.table, "close"):
            self.table.close()

    def __len__(self) -> int:
        return len(self.table)

    def memory_bytes(self) -> int:
        return int(self.table.memory_bytes())
