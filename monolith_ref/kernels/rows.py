"""Rows: draw a key's initial row, take and release arena rows, copy rows out.

The arena (:class:`~monolith_ref.kernels.arena.RowArena`) keeps one array per field, row ``r``
belonging to one key: ``emb`` (embeddings), ``opt`` (optimizer state), ``seen`` (last-seen
time), ``row_key``, ``live``, ``touched``, and a free list ``free`` with ``state`` =
``[n_free, top, n_live]``. Expired rows go on the free list and are reused first.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..hashing import GOLDEN_GAMMA
from .index import NO_ROW
from .mix import splitmix
from .prefetch import PREFETCH_AHEAD, prefetch

__all__ = ["init_row", "take_row", "release_row", "new_row", "new_rows", "release_rows", "gather", "stamp_gather"]


@njit(cache=True, nogil=True)
def init_row(seed_offset: np.uint64, key: np.uint64, scale: float, out: np.ndarray) -> None:
    """The initial row of ``key``: :func:`monolith_ref.tables.initial_rows`, one row.

    See: book/ch06_numba.md
    """
    h = splitmix(key + seed_offset)
    for j in range(out.shape[0]):
        bits = splitmix(h + np.uint64(j + 1) * GOLDEN_GAMMA)
        unit = np.float64(bits >> np.uint64(11)) * 1.1102230246251565e-16  # 2**-53
        out[j] = np.float32((2.0 * unit - 1.0) * scale)


@njit(cache=True, nogil=True, inline="always")
def take_row(key, row_key, live, free, state, capacity) -> np.int64:
    """A row for ``key``: the last freed one, else the next never used; -1 if the arena is
    full. ``state`` holds [n_free, top, n_live].

    See: book/ch06_numba.md
    """
    if state[0] > 0:
        state[0] -= 1
        r = np.int64(free[state[0]])
    elif state[1] < capacity:
        r = state[1]
        state[1] += 1
    else:
        return NO_ROW
    row_key[r] = key
    live[r] = True
    state[2] += 1
    return r


@njit(cache=True, nogil=True, inline="always")
def release_row(r, live, free, state) -> None:
    """Put row ``r`` back on the free list (the next :func:`take_row` reuses it).

    See: book/ch06_numba.md
    """
    live[r] = False
    free[state[0]] = r
    state[0] += 1
    state[2] -= 1


@njit(cache=True, nogil=True)
def new_row(key, now, seed_offset, scale, opt_init, emb, opt, seen, row_key, live, touched, free, state):
    """Take a row for ``key`` and give it the key's initial values; -1 if none is left.

    See: book/ch06_numba.md
    """
    r = take_row(key, row_key, live, free, state, emb.shape[0])
    if r < 0:
        return NO_ROW
    init_row(seed_offset, key, scale, emb[r])
    for j in range(opt_init.shape[0]):
        opt[r, j] = opt_init[j]
    seen[r] = now
    touched[r] = 1
    return r


@njit(cache=True, nogil=True)
def new_rows(keys, now, seed_offset, scale, opt_init, emb, opt, seen, row_key, live, touched, free, state,
             rows) -> int:
    """:func:`new_row` for ``keys[i]``, last seen ``now[i]``, into ``rows[i]``, in order.

    Returns how many keys got a row: all of them, unless the arena filled up first.
    See: book/ch06_numba.md
    """
    for i in range(keys.shape[0]):
        r = new_row(keys[i], now[i], seed_offset, scale, opt_init, emb, opt, seen, row_key, live, touched, free,
                    state)
        if r < 0:
            return i
        rows[i] = r
    return keys.shape[0]


@njit(cache=True, nogil=True)
def release_rows(rows, live, touched, free, state) -> None:
    """:func:`release_row` for each of ``rows``, in order, clearing its touched flag.

    See: book/ch06_numba.md
    """
    for i in range(rows.shape[0]):
        release_row(rows[i], live, free, state)
        touched[rows[i]] = 0


@njit(cache=True, nogil=True)
def stamp_gather(start, stop, now, rows, out, emb, seen, touched) -> None:
    """For positions ``start..stop``: stamp row ``rows[i]`` last seen ``now``, mark it
    touched, copy it to ``out[i]`` (zeros where ``rows[i]`` is -1).

    See: book/ch06_numba.md
    """
    dim = emb.shape[1]
    for i in range(start, stop):
        if i + PREFETCH_AHEAD < stop:
            ahead = rows[i + PREFETCH_AHEAD]
            if ahead >= 0:
                prefetch(emb, ahead)
                prefetch(seen, ahead)
        r = rows[i]
        if r < 0:
            for j in range(dim):
                out[i, j] = 0.0
            continue
        seen[r] = now
        touched[r] = 1
        for j in range(dim):
            out[i, j] = emb[r, j]


@njit(cache=True, nogil=True)
def gather(rows, emb, out) -> None:
    """Copy row ``rows[i]`` of ``emb`` to ``out[i]`` (zeros where ``rows[i]`` is -1).

    See: book/ch06_numba.md
    """
    n = rows.shape[0]
    for i in range(n):
        if i + PREFETCH_AHEAD < n and rows[i + PREFETCH_AHEAD] >= 0:
            prefetch(emb, rows[i + PREFETCH_AHEAD])
        r = rows[i]
        if r >= 0:
            for j in range(emb.shape[1]):
                out[i, j] = emb[r, j]
        else:
            for j in range(emb.shape[1]):
                out[i, j] = 0.0
