"""Exercise 6.1: a compiled batch lookup-or-insert kernel over flat arrays.

Chapter 6 (book/ch06_numba.md) replaces the dict of chapter 3 with flat arrays and ``@njit``
kernels. Here you write the heart of such a table with the simplest index there is: open
addressing with *linear probing*. The grader drives your kernel with batches of IDs and
compares every output row, and every last-seen time, with ``DictTable``'s, bit for bit.
Grade with ``monolith-ref grade 6``.

The arrays (all allocated by the caller, large enough):

* ``slot_keys`` (uint64, ``num_slots``) and ``slot_rows`` (int64, ``num_slots``): the index.
  ``slot_rows[s] == -1`` marks an empty slot; ``num_slots`` is a power of two and
  ``mask == num_slots - 1``.
* ``embeddings`` (float32, ``capacity x dim``), ``last_seen`` (int64), ``row_key`` (uint64):
  the rows, filled from row 0 upwards; ``n_rows`` rows are in use.

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

    For each ``ids[i]`` in order:

    * its home slot is ``s = splitmix(key + offset) & mask``; probe ``s, s+1, s+2, ...``
      (wrapping with ``& mask``) until you find the key (``slot_rows[s] >= 0`` and
      ``slot_keys[s] == key``) or an empty slot (``slot_rows[s] == -1``);
    * found: its row ``r = slot_rows[s]``; set ``last_seen[r] = now``;
    * empty: insert. The new row is ``r = n_rows`` (then ``n_rows += 1``); fill it with
      ``init_row(offset, key, scale, embeddings[r])``, set ``last_seen[r] = now`` and
      ``row_key[r] = key``, and claim the slot (``slot_keys[s] = key``, ``slot_rows[s] = r``);
    * copy ``embeddings[r]`` into ``out[i]``.

    A key repeated in the batch is inserted once, then found.
    """
    raise NotImplementedError("Exercise 6.1: lookup_or_insert is not written yet")
