"""RowArena: the rows of a table in flat arrays, the storage the row kernels work on.

One array per field, row ``r`` belonging to one key: ``embeddings (capacity, dim)`` and
``opt_state (capacity, width)`` (float32), ``last_seen`` (int64), ``row_key`` (uint64),
``live`` (bool), ``touched`` (uint8: changed since the last hand-off), and the free list
``free`` (int32) with ``state`` = ``[n_free, top, n_live]`` (int64). An arena also knows
how to start a row: the key's initial values (``seed``, ``scale``) and the optimizer's
initial state (``opt_init``), so every user of it draws the same rows as
:func:`~monolith_ref.tables.initial_rows`.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numpy as np

from ..checks import check_int
from ..hashing import seed_offset
from .rows import new_rows, release_rows

__all__ = ["RowArena"]


class RowArena:
    """Rows in flat arrays, with a free list; rows never move, the arena only doubles.

    ``capacity`` rows of dimension ``dim``; ``opt_init``: the optimizer state of a new row
    (its length is the state width); ``seed`` and ``scale``: the initial-row recipe. Its
    arrays are what :mod:`monolith_ref.kernels` take, in the order of :meth:`arrays`.
    See: book/ch06_numba.md
    """

    def __init__(self, capacity: int, dim: int, opt_init: np.ndarray, seed: int = 0, scale: float = 0.01) -> None:
        capacity = check_int(capacity, "capacity", low=1)
        self.dim = check_int(dim, "dim", low=1)
        self.opt_init = np.ascontiguousarray(opt_init, dtype=np.float32).reshape(-1)
        self.seed_offset = seed_offset(seed)
        self.scale = float(scale)
        self._allocate(int(capacity))

    def _allocate(self, capacity: int) -> None:
        self.embeddings = np.zeros((capacity, self.dim), dtype=np.float32)
        self.opt_state = np.zeros((capacity, self.opt_init.shape[0]), dtype=np.float32)
        self.last_seen = np.zeros(capacity, dtype=np.int64)
        self.row_key = np.zeros(capacity, dtype=np.uint64)
        self.live = np.zeros(capacity, dtype=np.bool_)
        self.touched = np.zeros(capacity, dtype=np.uint8)
        self.free = np.zeros(capacity, dtype=np.int32)
        self.state = np.zeros(3, dtype=np.int64)  # n_free, top, n_live

    @property
    def capacity(self) -> int:
        """Rows allocated."""
        return int(self.embeddings.shape[0])

    @property
    def top(self) -> int:
        """Rows ever used: every live row is below it."""
        return int(self.state[1])

    def __len__(self) -> int:
        return int(self.state[2])

    def arrays(self) -> tuple[np.ndarray, ...]:
        """``(embeddings, opt_state, last_seen, row_key, live, touched, free, state)``: the
        arguments the kernels take after the initial-row recipe."""
        return (self.embeddings, self.opt_state, self.last_seen, self.row_key, self.live, self.touched, self.free,
                self.state)

    def reset(self, capacity: int) -> None:
        """Forget every row; ``capacity`` empty rows."""
        self._allocate(int(capacity))

    def grow(self) -> None:
        """Double the arena, keeping every row where it is."""
        old = self.arrays()
        top = self.top
        self._allocate(2 * self.capacity)
        for new, prev in zip(self.arrays()[:6], old[:6]):
            new[:top] = prev[:top]
        self.free[: old[6].shape[0]] = old[6]
        self.state[:] = old[7]

    def add(self, keys: np.ndarray, now: int | np.ndarray) -> np.ndarray:
        """Rows for ``keys`` (distinct, not yet in the arena), each with its initial values
        and last seen ``now`` (one time, or one per key); the arena doubles when full."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        times = np.broadcast_to(np.asarray(now, dtype=np.int64), keys.shape).copy()
        rows = np.empty(keys.shape[0], dtype=np.int64)
        done = 0
        while True:
            done += new_rows(keys[done:], times[done:], self.seed_offset, self.scale, self.opt_init, *self.arrays(),
                             rows[done:])
            if done == keys.shape[0]:
                return rows
            self.grow()

    def release(self, rows: np.ndarray) -> None:
        """Put ``rows`` back on the free list, in order (they are reused newest first)."""
        release_rows(np.ascontiguousarray(rows, dtype=np.int64), self.live, self.touched, self.free, self.state)

    def stale_rows(self, now: int, ttl: int) -> np.ndarray:
        """The live rows unseen for longer than ``ttl`` at ``now``, in row order."""
        top = self.top
        return np.flatnonzero(self.live[:top] & (now - self.last_seen[:top] > ttl))

    def nbytes(self) -> int:
        """Bytes of the row arrays and the free list."""
        return sum(int(a.nbytes) for a in self.arrays()[:7])
