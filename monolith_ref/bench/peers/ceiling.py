"""The ceiling: rows whose positions are known in advance, so there is nothing to hash.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .row_ops import adagrad_compiled, adagrad_numpy
from .spec import PeerConfig

__all__ = ["GatherCeiling"]


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
    compiled loops. The harness takes the faster of the two. ``lookup``/``train``/``apply_gradients``
    take *row positions*, not IDs (the harness computes them before the clock starts); new
    IDs of a training stream get rows set up in advance. See: book/ch06_numba.md
    """

    exact = True
    supports = frozenset({"hits", "train", "train_filter", "apply", "expire"})
    takes_rows = True

    def __init__(self, spec: PeerConfig, mode: str = "numpy") -> None:
        if mode not in ("numpy", "njit"):
            raise ValueError(f"mode must be 'numpy' or 'njit', got {mode!r}")
        self.spec, self.mode = spec, mode
        self.name = f"ceiling_{mode}"
        self.label = "ceiling: np.take, rows known" if mode == "numpy" else "ceiling: @njit gather, rows known"
        self.arena = spec.arena()

    def load(self, keys: np.ndarray, now: np.ndarray) -> None:
        self.arena.add(keys, now)

    def prepare(self, keys: np.ndarray, now: int = 2**40) -> None:
        """Set up rows for keys that a training stream will bring (not timed); they are
        stamped far in the future, so no sweep removes them."""
        self.arena.add(keys, now)

    def lookup(self, rows: np.ndarray) -> np.ndarray:
        if self.mode == "numpy":
            return np.take(self.arena.embeddings, rows, axis=0)
        out = np.empty((rows.shape[0], self.spec.dim), dtype=np.float32)
        _gather_rows(rows, self.arena.embeddings, out)
        return out

    def train(self, rows: np.ndarray, now: int) -> np.ndarray:
        return self.lookup(rows)

    def apply_gradients(self, rows: np.ndarray, grads: np.ndarray) -> None:
        update = adagrad_numpy if self.mode == "numpy" else adagrad_compiled
        update(self.arena, rows, grads, self.spec.lr, self.spec.eps)

    def expire(self, now: int) -> int:
        a = self.arena
        if self.mode == "numpy":
            stale = a.stale_rows(now, self.spec.ttl)
            a.live[stale] = False
            return int(stale.size)
        return int(_scan_expire(np.int64(now), np.int64(self.spec.ttl), a.last_seen, a.live, np.int64(a.top)))

    def __len__(self) -> int:
        return int(self.arena.live.sum())

    def memory_bytes(self) -> int:
        a = self.arena
        return int(a.embeddings.nbytes + a.opt_state.nbytes)
