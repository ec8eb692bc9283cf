"""Exercise 6.1 (solution): a compiled batch lookup-or-insert kernel over flat arrays.

See exercises/ex06_numba_lookup.py for the spec and book/ch06_numba.md for the idea.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from monolith_ref.kernels import init_row, splitmix


@njit(cache=False)
def lookup_or_insert(ids, now, offset, scale, slot_keys, slot_rows, mask, embeddings, last_seen, row_key, n_rows, out):
    """Linear probing from each key's home slot; insert on an empty slot."""
    for i in range(ids.shape[0]):
        key = ids[i]
        s = np.int64(splitmix(key + offset) & mask)
        while slot_rows[s] >= 0 and slot_keys[s] != key:
            s = (s + 1) & np.int64(mask)
        r = slot_rows[s]
        if r < 0:
            r = n_rows
            n_rows += 1
            init_row(offset, key, scale, embeddings[r])
            row_key[r] = key
            slot_keys[s] = key
            slot_rows[s] = r
        last_seen[r] = now
        out[i, :] = embeddings[r]
    return n_rows
