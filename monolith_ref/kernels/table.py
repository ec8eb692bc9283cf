"""A table's batch operations, built from the index and row kernels.

:func:`lookup_train` is a whole training lookup (find, insert misses, stamp and copy) and
:func:`expire_rows` a whole expiry sweep, each one compiled call. Neither grows anything:
when the arena is full or an insert fails, :func:`lookup_train` returns a status code and
the position it reached, and the caller grows the storage and calls again from there.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .index import find, find_many, index_delete, index_insert
from .rows import new_row, release_row, stamp_gather

__all__ = ["OK", "INDEX_FULL", "ARENA_FULL", "lookup_train", "expire_rows"]

#: Status codes of :func:`lookup_train`: done; the index could not take a key; no free row.
OK, INDEX_FULL, ARENA_FULL = 0, 1, 2


@njit(cache=True, nogil=True)
def lookup_train(ids, now, start, insert, out, rows, index, off0, off1, nb, max_kicks,
                 seed_offset, scale, opt_init, emb, opt, seen, row_key, live, touched, free, state):
    """Training lookups from position ``start``: refresh hits; insert misses if ``insert``
    (else mark them -1 in ``rows`` for the caller's filter). Returns (status, position).

    Three passes: find every row (independent probes, whose cache misses the CPU overlaps),
    then the misses in batch order, then stamp and copy the rows.
    See: book/ch06_numba.md
    """
    n = ids.shape[0]
    find_many(index, off0, off1, nb, ids[start:], rows[start:])
    for i in range(start, n):
        if rows[i] >= 0:
            continue
        key = ids[i]
        r = find(index, off0, off1, nb, key)  # inserted earlier in this batch?
        if r < 0:
            if not insert:
                continue
            r = new_row(key, now, seed_offset, scale, opt_init, emb, opt, seen, row_key, live, touched, free, state)
            if r < 0:
                stamp_gather(start, i, now, rows, out, emb, seen, touched)
                return ARENA_FULL, i
            if not index_insert(index, off0, off1, nb, key, r, max_kicks):
                # give the row back; the caller grows the index and calls again from i
                release_row(r, live, free, state)
                touched[r] = 0
                stamp_gather(start, i, now, rows, out, emb, seen, touched)
                return INDEX_FULL, i
        rows[i] = r
    stamp_gather(start, n, now, rows, out, emb, seen, touched)
    return OK, n


@njit(cache=True, nogil=True)
def expire_rows(now, ttl, index, off0, off1, nb, seen, row_key, live, touched, free, state):
    """Free every live row unseen for longer than ``ttl``; return the removed keys.

    See: book/ch06_numba.md
    """
    removed = np.empty(state[2], dtype=np.uint64)
    k = 0
    for r in range(state[1]):
        if live[r] and now - seen[r] > ttl:
            index_delete(index, off0, off1, nb, row_key[r])
            release_row(r, live, free, state)
            touched[r] = 0
            removed[k] = row_key[r]
            k += 1
    return removed[:k]
