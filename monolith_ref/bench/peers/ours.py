"""Our own tables as contestants: ``NumbaTable``, ``ShardedTable`` and ``DictTable``.

See: book/ch06_numba.md
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...tables import DictTable, NumbaTable, ShardedTable
from ...tables.base import filter_state
from .spec import ALL_WORKLOADS, PeerConfig, groups_by_time

__all__ = ["OursAdapter"]


class OursAdapter:
    """``NumbaTable``, ``ShardedTable`` or ``DictTable`` through the table protocol.

    ``kind``: ``"numba"``, ``"sharded"`` (``num_shards`` shards, ``threads`` threads) or
    ``"dict"``. Each is built from :meth:`~monolith_ref.bench.peers.spec.PeerConfig.table_config` (Adagrad; an
    ``OccurrenceFilter(threshold)`` when threshold > 1). See: book/ch06_numba.md
    """

    exact = True
    supports = ALL_WORKLOADS

    def __init__(self, spec: PeerConfig, kind: str = "numba", threads: int = 1, num_shards: int = 2,
                 capacity: int | None = None) -> None:
        self.spec, self.kind = spec, kind
        cfg = spec.table_config()
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
            helper = OursAdapter(self.spec, "numba", capacity=keys.shape[0])
            helper.load(keys, now)
            self.table.load({**helper.table.export(), **filter_state(self.table.admission_filter)})
            self.table.pop_touched()
            return
        with self.table.filter_bypassed():
            for t, part in groups_by_time(now):
                self.table.lookup(keys[part], now=t)
        self.table.pop_touched()

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        return self.table.lookup(ids, now=0, train=False)

    def train(self, ids: np.ndarray, now: int) -> np.ndarray:
        return self.table.lookup(ids, now=now)

    def apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
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
