"""The typed-dict peer: ``numba.typed.Dict`` from ID to row, every loop compiled.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import Dict

from ...kernels import new_row, release_row
from .row_ops import adagrad_compiled
from .spec import ALL_WORKLOADS, PeerConfig

__all__ = ["TypedDictTable"]


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
def _td_train(d, pending, threshold, ids, now, out, seed_offset, scale, opt_init, emb, opt, seen, row_key, live,
              touched, free, state) -> int:
    """Lookup-or-insert; an exact occurrence count in a second typed dict when threshold > 1.
    New rows come from the arena kernels. Returns the number of rows it could not get (0
    unless the arena is full)."""
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
            r = new_row(k, now, seed_offset, scale, opt_init, emb, opt, seen, row_key, live, touched, free, state)
            if r < 0:
                missing += 1
                out[i, :] = 0.0
                continue
            d[k] = r
        seen[r] = now
        out[i, :] = emb[r]
    return missing


@njit(cache=True, nogil=True)
def _td_expire(d, now, ttl, seen, row_key, live, free, state) -> int:
    removed = 0
    for r in range(state[1]):
        if live[r] and now - seen[r] > ttl:
            d.pop(row_key[r])
            release_row(r, live, free, state)
            removed += 1
    return removed


class TypedDictTable:
    """``numba.typed.Dict`` (uint64 -> int64) from ID to row, every loop inside ``@njit``.

    What a Numba user would try first: Numba's own hash map, used from compiled code. The
    admission count (``threshold`` > 1) is a second typed dict. See: book/ch06_numba.md
    """

    name, label, exact = "typed_dict", "numba.typed.Dict in @njit", True
    supports = ALL_WORKLOADS

    def __init__(self, spec: PeerConfig) -> None:
        self.spec = spec
        self.arena = spec.arena()
        self.index = Dict.empty(key_type=types.uint64, value_type=types.int64)
        self.pending = Dict.empty(key_type=types.uint64, value_type=types.int64)

    def load(self, keys: np.ndarray, now: np.ndarray) -> None:
        _td_load(self.index, keys, self.arena.add(keys, now))

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        out = np.empty((ids.shape[0], self.spec.dim), dtype=np.float32)
        _td_lookup(self.index, ids, self.arena.embeddings, out)
        return out

    def train(self, ids: np.ndarray, now: int) -> np.ndarray:
        a, s = self.arena, self.spec
        out = np.empty((ids.shape[0], s.dim), dtype=np.float32)
        missing = _td_train(self.index, self.pending, s.threshold, ids, np.int64(now), out, a.seed_offset, a.scale,
                            a.opt_init, *a.arrays())
        if missing:
            raise MemoryError("benchmark arena is full: give the peer a larger capacity")
        return out

    def apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
        rows = np.empty(ids.shape[0], dtype=np.int64)
        _td_rows(self.index, ids, rows)
        adagrad_compiled(self.arena, rows, grads, self.spec.lr, self.spec.eps)

    def expire(self, now: int) -> int:
        a = self.arena
        return int(_td_expire(self.index, np.int64(now), np.int64(self.spec.ttl), a.last_seen, a.row_key, a.live,
                              a.free, a.state))

    def __len__(self) -> int:
        return len(self.index)

    def memory_bytes(self) -> None:
        """Not measurable: the typed dict's storage lives in Numba's own allocator."""
        return None
