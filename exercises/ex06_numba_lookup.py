"""Exercise 6.1: a compiled batch lookup-or-insert kernel over flat arrays.

Chapter 6 (book/ch06_numba.md) replaces the dict of chapter 3 with flat arrays and ``@njit``
kernels. Here you write the heart of such a table with the simplest index there is: open
addressing with *linear probing*. The grader drives your kernel with batches of IDs and
compares every output row, and every last-seen time, with ``DictTable``'s, bit for bit.
Grade with ``monolith-ref grade 6``.

The state, in arrays the caller allocates (large enough) and your kernel updates in place:

* the index, ``slot_keys`` (uint64) and ``slot_rows`` (int64), ``num_slots`` entries each;
  ``num_slots`` is a power of two and ``mask == num_slots - 1``. A slot is empty when its
  ``slot_rows`` entry is ``-1``; otherwise it says that key ``slot_keys[s]`` lives in row
  ``slot_rows[s]``;
* the rows, ``embeddings`` (float32, ``capacity x dim``), ``last_seen`` (int64) and
  ``row_key`` (uint64); rows ``0 .. n_rows - 1`` are in use.

Helpers you may call inside your kernel (both compiled):

* ``splitmix(z)``: the splitmix64 finaliser on a ``np.uint64``;
* ``init_row(offset, key, scale, out)``: writes ``key``'s initial row into ``out`` (the same
  bits ``DictTable`` draws; ``offset`` is the ``seed_offset`` argument below).
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (np.uint64, np.int64 in your kernel)
from numba import njit

from monolith_ref.kernels import init_row, splitmix  # noqa: F401


@njit(cache=False)
def lookup_or_insert(ids, now, offset, scale, slot_keys, slot_rows, mask, embeddings, last_seen, row_key, n_rows, out):
    """Training lookups of ``ids`` (uint64) at time ``now``; return the new ``n_rows``.

    What must hold when it returns:

    * ``out[i]`` (float32, ``len(ids) x dim``) is the row of ``ids[i]``: the stored embedding
      of a key that has a row, else a new row initialised exactly as ``DictTable`` would for
      that key (``init_row`` with ``offset`` and ``scale``);
    * every key of the batch has exactly one row and one slot, and its ``last_seen`` is
      ``now``; a key repeated in the batch gets one row, made at its first occurrence;
    * new keys take the next free rows, ``n_rows``, ``n_rows + 1``, ..., and record their key
      in ``row_key``; the return value is the number of rows now in use. Rows of known keys
      change only in ``last_seen``;
    * the index stays consistent, so that the next call (with the same arrays) finds every key
      inserted so far.

    The index is open addressing with *linear probing*: a key's search starts at its home slot,
    ``splitmix(key + offset) & mask``, and walks forward one slot at a time (wrapping around
    at the end) until it meets the key or an empty slot. Nothing is ever deleted here, so an
    empty slot proves the key absent, and it is exactly where the key belongs.

    Hints: get it right in plain Python on small arrays first (drop ``@njit`` while you debug;
    the grader wants it back). Keep the key arithmetic in ``np.uint64`` and the slot and row numbers in
    ``np.int64``; Numba refuses, or silently converts to float, a mix of the two. The grader
    also packs many keys into a tiny index, where home slots collide.
    """
    raise NotImplementedError("Exercise 6.1: lookup_or_insert is not written yet")
