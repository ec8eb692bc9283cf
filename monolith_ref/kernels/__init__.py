"""Compiled building blocks: the index, the rows, the optimizer steps, as public kernels.

What :class:`~monolith_ref.tables.NumbaTable` is built from, and what other compiled code
builds on (the serving table, the benchmark's peers, the chapter 6 lab and exercise): plain
functions over arrays, each ``@njit(cache=True, nogil=True)``, so they are compiled on first
use, cached on disk, and release the GIL while they run.

* :mod:`~monolith_ref.kernels.mix`: ``splitmix``, the 64-bit mixer for one key;
* :mod:`~monolith_ref.kernels.prefetch`: the CPU's prefetch hint, ``PREFETCH_AHEAD``;
* :mod:`~monolith_ref.kernels.index`: the bucketed cuckoo index (``find``, ``find_many``,
  ``index_insert``, ``index_delete``, ``index_rebuild``, ...);
* :mod:`~monolith_ref.kernels.rows`: initial rows, taking and releasing rows, copying them;
* :mod:`~monolith_ref.kernels.arena`: :class:`~monolith_ref.kernels.arena.RowArena`, the arrays the row kernels use;
* :mod:`~monolith_ref.kernels.optim`: optimizer steps and ``apply_gradients``;
* :mod:`~monolith_ref.kernels.table`: a whole training lookup and a whole expiry sweep.

All arithmetic follows :class:`~monolith_ref.tables.DictTable` operation for operation
(float32 sums in batch order, the same optimizer formulas, the same initial-row recipe), so
a table built from these kernels is bit-identical to it for any sequence of operations.

Debugging tip: set ``NUMBA_DISABLE_JIT=1`` in the environment before importing
``monolith_ref`` and every kernel runs as plain Python, so ``print`` and ``pdb`` work
inside it (slowly). The test suite runs once that way on a small case.

See: book/ch06_numba.md
"""

from __future__ import annotations

from .arena import RowArena
from .index import (FREE_SLOT, NO_ROW, SLOTS, TARGET_LOAD, bucket, buckets_for, find, find_many, index_clear,
                    index_delete, index_insert, index_offsets, index_rebuild, new_index)
from .mix import splitmix
from .optim import OPT_ADAGRAD, OPT_FTRL, OPT_SGD, apply_gradients, optimizer_code, optimizer_step
from .prefetch import PREFETCH_AHEAD, jit_enabled, prefetch
from .rows import gather, init_row, new_row, new_rows, release_row, release_rows, stamp_gather, take_row
from .table import ARENA_FULL, INDEX_FULL, OK, expire_rows, lookup_train

__all__ = [
    "RowArena",
    "SLOTS", "TARGET_LOAD", "NO_ROW", "FREE_SLOT", "buckets_for", "index_offsets", "new_index", "bucket", "find",
    "find_many", "index_insert", "index_delete", "index_clear", "index_rebuild",
    "splitmix",
    "OPT_SGD", "OPT_ADAGRAD", "OPT_FTRL", "optimizer_code", "optimizer_step", "apply_gradients",
    "PREFETCH_AHEAD", "prefetch", "jit_enabled",
    "init_row", "take_row", "release_row", "new_row", "new_rows", "release_rows", "gather", "stamp_gather",
    "OK", "INDEX_FULL", "ARENA_FULL", "lookup_train", "expire_rows",
]
