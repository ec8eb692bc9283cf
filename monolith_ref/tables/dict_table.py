"""DictTable: the collisionless embedding table in plain Python, and the oracle for the others.

A Python ``dict`` maps each ID to an :class:`Entry` holding its embedding, its optimizer
state and the last time it was seen. That is the whole idea of Monolith's table (paper
section 2.1) without any of the engineering: every ID that is admitted gets a row of its own,
so no two IDs ever share parameters, and rows that go unseen for longer than the TTL are
removed so that memory follows the live IDs rather than every ID ever seen.

It is written to be read, one ID at a time. The fast tables of later chapters must give
bit-identical results for the same operations, and the tests check them against this one.

See: book/ch03_dict_table.md
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from dataclasses import dataclass

import numpy as np

from ..checks import check_int
from .base import TableBase, TableConfig, initial_rows

__all__ = ["Entry", "DictTable"]


@dataclass
class Entry:
    """One ID's row: embedding (float32, dim), optimizer state (float32), last-seen time.

    See: book/ch03_dict_table.md
    """

    embedding: np.ndarray
    opt_state: np.ndarray
    last_seen: int


class DictTable(TableBase):
    """The pure-Python collisionless table. See: book/ch03_dict_table.md

    >>> from monolith_ref.tables import DictTable, TableConfig
    >>> table = DictTable(TableConfig(dim=4, seed=0, ttl=3600))
    >>> table.lookup([7, 42, 7], now=0).shape
    (3, 4)
    >>> len(table), 42 in table
    (2, True)
    """

    def __init__(self, config: TableConfig) -> None:
        super().__init__(config)
        self._entries: MutableMapping[int, Entry] = self._new_map()
        self._filter = None if config.filter is None else config.filter.build(config.seed)

    def _new_map(self) -> MutableMapping[int, Entry]:
        """The ID -> entry map. A Python dict here; chapter 4 swaps in a cuckoo hash map."""
        return {}

    # ---- lookup: insert on miss (training only) ------------------------------------

    def _new_entry(self, key: int, now: int) -> Entry:
        """A fresh row for ``key``: initial values depend only on (seed, key)."""
        cfg = self.config
        row = initial_rows(cfg.seed, np.array([key], dtype=np.uint64), cfg.dim, cfg.init_scale)[0].copy()
        return Entry(embedding=row, opt_state=cfg.optimizer.initial_state(cfg.dim), last_seen=now)

    def _lookup(self, ids: np.ndarray, now: int, train: bool) -> np.ndarray:
        out = np.zeros((ids.shape[0], self.config.dim), dtype=np.float32)
        for i, key in enumerate(ids.tolist()):
            entry = self._entries.get(key)
            if entry is None:
                if not train:
                    continue  # serving never inserts: an unknown ID reads zeros
                if self._filter is not None and not self._filter.admit(key, now):
                    continue  # not admitted yet: zeros, and no row
                entry = self._new_entry(key, now)
                self._entries[key] = entry
                if self._filter is not None:
                    self._filter.forget(key)
                self._touch(key)
            elif train:
                entry.last_seen = now  # a training lookup refreshes the row's clock
                self._touch(key)
            out[i] = entry.embedding
        return out

    # ---- gradients: sum per ID, then one optimizer step ----------------------------

    def _apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
        summed: dict[int, np.ndarray] = {}
        for key, grad in zip(ids.tolist(), grads):
            if key not in self._entries:
                continue  # no row (never admitted, or expired): the gradient is dropped
            if key in summed:
                summed[key] = summed[key] + grad
            else:
                summed[key] = grad.copy()
        for key, grad in summed.items():
            entry = self._entries[key]
            self.config.optimizer.step(entry.embedding, entry.opt_state, grad)
            self._touch(key)

    # ---- expiry: forget rows unseen for longer than the TTL ------------------------

    def _expire(self, now: int) -> int:
        ttl = self.config.ttl
        assert ttl is not None
        stale = [key for key, entry in self._entries.items() if now - entry.last_seen > ttl]
        for key in stale:
            del self._entries[key]
            self._touch(key)
        if self._filter is not None:
            self._filter.expire(now, ttl)  # forget pending IDs that went quiet, too
        return len(stale)

    # ---- an extension: evict down to a capacity (not in the paper) -----------------

    def evict_lru(self, max_rows: int) -> int:
        """Remove the least recently seen rows until at most ``max_rows`` remain.

        Ties on last-seen time go by smaller ID first. Monolith expires by time only; a
        capacity bound with least-recently-used eviction is what TFRA and TorchRec offer, and
        it keeps memory bounded even under a burst of new IDs. Returns how many were removed.
        See: book/ch05_filters.md
        """
        excess = len(self._entries) - check_int(max_rows, "max_rows", low=0)
        if excess <= 0:
            return 0
        oldest = sorted(self._entries.items(), key=lambda item: (item[1].last_seen, item[0]))[:excess]
        for key, _ in oldest:
            del self._entries[key]
            self._touch(key)
        return excess

    # ---- export / load -------------------------------------------------------------

    def _export(self, ids: np.ndarray | None) -> dict[str, np.ndarray]:
        if ids is None:
            keys = sorted(self._entries)
        else:
            keys = sorted({k for k in ids.tolist() if k in self._entries})
        cfg = self.config
        entries = [self._entries[k] for k in keys]
        return {
            "ids": np.array(keys, dtype=np.uint64),
            "embeddings": np.array([e.embedding for e in entries], dtype=np.float32).reshape(len(keys), cfg.dim),
            "opt_state": np.array([e.opt_state for e in entries], dtype=np.float32).reshape(len(keys), cfg.state_width),
            "last_seen": np.array([e.last_seen for e in entries], dtype=np.int64),
        }

    def _load(self, state: dict[str, np.ndarray]) -> None:
        rows, new_filter = self._check_state(state)  # validated before anything changes
        entries = self._new_map()
        for k, e, o, t in zip(rows["ids"].tolist(), rows["embeddings"], rows["opt_state"], rows["last_seen"]):
            entries[int(k)] = Entry(embedding=e.copy(), opt_state=o.copy(), last_seen=int(t))
        for key in set(self._entries) | set(entries):
            self._touch(key)
        self._entries = entries
        self._filter = new_filter

    # ---- size ----------------------------------------------------------------------

    def _has(self, key: int) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def memory_bytes(self) -> int:
        """Bytes of the map, its keys, every entry's objects and arrays, and the filter."""
        total = self._map_bytes()
        for key, entry in self._entries.items():
            total += sys.getsizeof(key) + sys.getsizeof(entry) + sys.getsizeof(entry.__dict__)
            total += sys.getsizeof(entry.embedding) + sys.getsizeof(entry.opt_state)
            total += sys.getsizeof(entry.last_seen)
        if self._filter is not None:
            total += self._filter.memory_bytes()
        return total

    def _map_bytes(self) -> int:
        """Bytes of the ID -> entry map's own structure (CPython's size of the dict)."""
        return sys.getsizeof(self._entries)
