"""The seed blog post's mock, as written there, and the adapter that benchmarks it.

See: book/ch06_numba.md
"""

from __future__ import annotations

import sys

import numpy as np

from .spec import ALL_WORKLOADS, PeerConfig, groups_by_time

__all__ = ["CollisionlessEmbedding", "FilteredCollisionlessEmbedding", "SeedMockAdapter"]


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

    IDs go in as a Python list of ints (the mock's signature); ``apply_gradients`` is the mock's own
    SGD ``update`` (it has no Adagrad). Its rows are its own random draws, so its outputs
    are not compared with ours. See: book/ch06_numba.md
    """

    name, label, exact = "seed_mock", "seed's mock (blog post)", False
    supports = ALL_WORKLOADS

    def __init__(self, spec: PeerConfig) -> None:
        self.spec = spec
        if spec.threshold > 1:
            self.mock: CollisionlessEmbedding = FilteredCollisionlessEmbedding(spec.dim, spec.ttl, spec.threshold)
        else:
            self.mock = CollisionlessEmbedding(spec.dim, spec.ttl)

    def load(self, keys: np.ndarray, now: np.ndarray) -> None:
        """Through the mock's own (unfiltered) lookup, one call per distinct ``now``."""
        for t, part in groups_by_time(now):
            CollisionlessEmbedding.lookup(self.mock, keys[part].tolist(), t)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        # The mock has no read-only lookup; on resident keys its lookup only reads.
        return self.mock.lookup(ids.tolist(), 0)

    def train(self, ids: np.ndarray, now: int) -> np.ndarray:
        return self.mock.lookup(ids.tolist(), now)

    def apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
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
