"""ShardedTable: N tables behind one, IDs routed by a hash, batches run shard-parallel.

Monolith spreads its embedding tables over many parameter servers (paper §2, Figure 2): each
ID belongs to one shard, picked by hashing the ID, and a worker's batch is split by shard,
sent out, and the answers put back in order. :class:`ShardedTable` does the same inside one
process: ``num_shards`` tables (``NumbaTable`` by default), a routing hash independent of
the tables' own hashes, and a thread per shard. The Numba kernels release the GIL, so on two
cores two shards really do run at once.

Rows are a pure function of ``(seed, id)`` and each ID always meets the same shard, so a
sharded table holds exactly what one table would, bit for bit. Admission filters are per
shard, as on a real parameter server: an exact :class:`~monolith_ref.filters.OccurrenceFilter`
gives the same admissions as one table; sketch and probabilistic filters see only their
shard's traffic.

See: book/ch07_sharding.md
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from numba import njit

from .base import FILTER_PREFIX, EmbeddingTable, TableBase, TableConfig, check_ids, check_row_state
from .numba_table import NumbaTable, seed_offset, splitmix

__all__ = ["ShardedTable", "route", "split_by_shard"]

#: Salt for the routing hash, so that shard choice is independent of the tables' hashes.
ROUTE_SALT = 0x5EED_0F_5A4D


@njit(cache=True, nogil=True)
def _route(ids, offset, num_shards, out) -> None:
    n = np.uint64(num_shards)
    for i in range(ids.shape[0]):
        out[i] = np.int64(splitmix(ids[i] + offset) % n)


@njit(cache=True, nogil=True)
def _counting_sort(shards, num_shards):
    """Positions grouped by shard, batch order kept inside each group (a stable counting sort)."""
    counts = np.zeros(num_shards + 1, dtype=np.int64)
    for i in range(shards.shape[0]):
        counts[shards[i] + 1] += 1
    for s in range(num_shards):
        counts[s + 1] += counts[s]
    order = np.empty(shards.shape[0], dtype=np.int64)
    fill = counts[:-1].copy()
    for i in range(shards.shape[0]):
        s = shards[i]
        order[fill[s]] = i
        fill[s] += 1
    return order, counts


def _salted(seed: int) -> np.uint64:
    return seed_offset((int(seed) ^ ROUTE_SALT) % 2**64)


def route(ids: np.ndarray, num_shards: int, seed: int = 0) -> np.ndarray:
    """The shard (0..num_shards-1) of each ID: a salted splitmix64 mixer, then modulo.

    Equal to ``mix64(ids, seed ^ ROUTE_SALT) % num_shards``, computed in a compiled loop.
    See: book/ch07_sharding.md
    """
    if int(num_shards) < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    ids = np.ascontiguousarray(ids, dtype=np.uint64)
    out = np.empty(ids.shape[0], dtype=np.int64)
    _route(ids, _salted(seed), int(num_shards), out)
    return out


def split_by_shard(shards: np.ndarray, num_shards: int) -> list[np.ndarray]:
    """Positions of the batch that go to each shard, each in batch order.

    A counting sort: one pass to count, one to place; no comparison sort.
    See: book/ch07_sharding.md
    """
    order, bounds = _counting_sort(np.ascontiguousarray(shards, dtype=np.int64), int(num_shards))
    return [order[bounds[s] : bounds[s + 1]] for s in range(int(num_shards))]


class ShardedTable(TableBase):
    """``num_shards`` tables behind the table protocol. See: book/ch07_sharding.md

    ``num_shards`` defaults to the number of CPUs (at least 2, at most 16);
    ``shard_factory(config)`` builds each shard (default :class:`NumbaTable`); ``threads``
    is the size of the thread pool (default: one per shard, up to the CPU count; 1 runs the
    shards one after another in the caller's thread).
    """

    def __init__(self, config: TableConfig, num_shards: int | None = None,
                 shard_factory: Callable[[TableConfig], EmbeddingTable] | None = None,
                 threads: int | None = None) -> None:
        super().__init__(config)
        cpus = os.cpu_count() or 1
        n = min(16, max(2, cpus)) if num_shards is None else num_shards
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"num_shards must be an integer >= 1, got {num_shards!r}")
        self.num_shards = int(n)
        self._factory = shard_factory or NumbaTable
        self.shards: list[Any] = [self._factory(config) for _ in range(self.num_shards)]
        t = min(self.num_shards, cpus) if threads is None else threads
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
            raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
        self.threads = int(t)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="shard") if self.threads > 1 else None

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles carry the shards, not the thread pool (a new one is made)."""
        state = self.__dict__.copy()
        state["_pool"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.threads > 1:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="shard")

    def close(self) -> None:
        """Stop the worker threads (they also stop when the table is garbage-collected)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)

    # ---- routing ---------------------------------------------------------------------

    def shard_of(self, ids: Any) -> np.ndarray:
        """The shard of each ID. See: book/ch07_sharding.md"""
        return route(check_ids(ids), self.num_shards, self.config.seed)

    def _parts(self, ids: np.ndarray) -> list[tuple[int, np.ndarray]]:
        positions = split_by_shard(route(ids, self.num_shards, self.config.seed), self.num_shards)
        return [(s, pos) for s, pos in enumerate(positions) if pos.size]

    def _run(self, fn: Callable[[int, np.ndarray], Any], parts: list[tuple[int, np.ndarray]]) -> list[Any]:
        if self._pool is None or len(parts) < 2:
            return [fn(s, pos) for s, pos in parts]
        return list(self._pool.map(lambda part: fn(*part), parts))

    # ---- the protocol ------------------------------------------------------------------

    def _lookup(self, ids: np.ndarray, now: int, train: bool) -> np.ndarray:
        out = np.empty((ids.shape[0], self.config.dim), dtype=np.float32)

        def one(s: int, pos: np.ndarray) -> None:
            out[pos] = self.shards[s]._lookup(ids[pos], now, train)

        self._run(one, self._parts(ids))
        return out

    def _apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
        def one(s: int, pos: np.ndarray) -> None:
            self.shards[s]._apply_gradients(ids[pos], grads[pos])

        self._run(one, self._parts(ids))

    def _expire(self, now: int) -> int:
        parts = [(s, np.empty(0)) for s in range(self.num_shards)]
        return int(sum(self._run(lambda s, _: self.shards[s]._expire(now), parts)))

    def _export(self, ids: np.ndarray | None) -> dict[str, np.ndarray]:
        states = [shard._export(None if ids is None else ids[route(ids, self.num_shards, self.config.seed) == s])
                  for s, shard in enumerate(self.shards)]
        keys = np.concatenate([st["ids"] for st in states])
        order = np.argsort(keys, kind="stable")
        out = {k: np.concatenate([st[k] for st in states])[order] for k in ("ids", "embeddings", "opt_state", "last_seen")}
        for s, st in enumerate(states):
            out.update({f"shard{s}/{k}": v for k, v in st.items() if k.startswith(FILTER_PREFIX)})
        return out

    def _load(self, state: dict[str, np.ndarray]) -> None:
        rows = check_row_state(state, self.config)
        shards = route(rows["ids"], self.num_shards, self.config.seed)
        parts = []
        for s in range(self.num_shards):
            mask = shards == s
            part = {k: v[mask] for k, v in rows.items()}
            prefix = f"shard{s}/"
            part.update({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
            parts.append(part)
        # Load into fresh shards first: a state that does not fit raises before anything changes.
        fresh = [self._factory(self.config) for _ in range(self.num_shards)]
        for table, part in zip(fresh, parts):
            table._load(part)
        for shard in self.shards:  # keys touched before, and every key that was there, stay touched
            self._touched.update(shard.touched_ids().tolist())
            self._touched.update(shard._export(None)["ids"].tolist())
        self.shards = fresh

    def _has(self, key: int) -> bool:
        s = int(route(np.array([key], dtype=np.uint64), self.num_shards, self.config.seed)[0])
        return self.shards[s]._has(key)

    def __len__(self) -> int:
        return sum(len(shard) for shard in self.shards)

    def touched_ids(self) -> np.ndarray:
        keys = set(self._touched)
        for shard in self.shards:
            keys.update(shard.touched_ids().tolist())
        return np.array(sorted(keys), dtype=np.uint64)

    def pop_touched(self) -> np.ndarray:
        out = self.touched_ids()
        self._touched.clear()
        for shard in self.shards:
            shard.pop_touched()
        return out

    def memory_bytes(self) -> int:
        """Bytes of every shard."""
        return sum(shard.memory_bytes() for shard in self.shards)

    def shard_sizes(self) -> np.ndarray:
        """Rows held by each shard (load balance). See: book/ch07_sharding.md"""
        return np.array([len(shard) for shard in self.shards], dtype=np.int64)
