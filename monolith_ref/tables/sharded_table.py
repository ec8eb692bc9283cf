"""ShardedTable: N tables behind one, IDs routed by a hash, batches run shard-parallel.

Monolith spreads its embedding tables over many parameter servers (paper §2, Figure 2): each
ID belongs to one shard, picked by hashing the ID, and a worker's batch is split by shard,
sent out, and the answers put back in order. :class:`ShardedTable` does the same inside one
process: ``num_shards`` tables (``NumbaTable`` by default), a routing hash independent of
the tables' own hashes (:mod:`~monolith_ref.tables.routing`, which also splits and merges
the exported state by shard), and a thread per shard. The Numba kernels release the GIL, so on two
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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..checks import check_int
from .base import EmbeddingTable, TableBase, TableConfig, check_ids, check_row_state
from .numba_table import NumbaTable
from .routing import merge_states, route, route_key, split_by_shard, split_state

__all__ = ["ShardedTable"]


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
        self.num_shards = check_int(min(16, max(2, cpus)) if num_shards is None else num_shards, "num_shards", low=1)
        self._factory = shard_factory or NumbaTable
        self.shards: list[Any] = [self._factory(config) for _ in range(self.num_shards)]
        self.threads = check_int(min(self.num_shards, cpus) if threads is None else threads, "threads", low=1)
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
        if ids is None:  # each shard's full export carries its filter
            return merge_states([shard.export() for shard in self.shards])
        where = route(ids, self.num_shards, self.config.seed)
        return merge_states([shard._export(ids[where == s]) for s, shard in enumerate(self.shards)])

    def _load(self, state: dict[str, np.ndarray]) -> None:
        rows = check_row_state(state, self.config)
        parts = split_state({**state, **rows}, self.num_shards, self.config.seed)
        # Load into fresh shards first: a state that does not fit raises before anything changes.
        fresh = [self._factory(self.config) for _ in range(self.num_shards)]
        for table, part in zip(fresh, parts):
            table._load(part)
        for shard in self.shards:  # keys touched before, and every key that was there, stay touched
            self._touched.update(shard.touched_ids().tolist())
            self._touched.update(shard._export(None)["ids"].tolist())
        self.shards = fresh

    @contextmanager
    def filter_bypassed(self) -> Iterator[None]:
        """Every shard's :meth:`~monolith_ref.tables.base.TableBase.filter_bypassed` at once.

        See: book/ch06_numba.md
        """
        with ExitStack() as stack:
            for shard in self.shards:
                stack.enter_context(shard.filter_bypassed())
            yield

    def _has(self, key: int) -> bool:
        return self.shards[route_key(key, self.num_shards, self.config.seed)]._has(key)

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
