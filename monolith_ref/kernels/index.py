"""The index: a bucketed cuckoo hash map from a key to a row number, in one uint64 array.

``num_buckets`` buckets of :data:`SLOTS` (4) slots; key ``k`` lives in bucket ``h0(k)`` or
``h1(k)``, in any of its 4 slots. A bucket is one 64-byte record, its four keys then its
four row numbers (``index[b]``, uint64), so a probe reads one cache line; a lookup reads at
most two. An insert that finds both buckets full kicks a resident to its other bucket, as
in chapter 4. Four slots per bucket let the index fill to about 90% before inserts fail,
against about 50% for the one-slot, two-table map of chapter 4 (the book measures both);
tables size it for :data:`TARGET_LOAD`. Buckets are picked by multiply-shift range
reduction, so their number need not be a power of two.

The two hashes are ``splitmix(key + off0)`` and ``splitmix(key + off1)``, with the offsets
of :func:`index_offsets`; every kernel takes ``(index, off0, off1, nb)`` first.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..hashing import seed_offset
from .mix import splitmix
from .prefetch import PREFETCH_AHEAD, prefetch

__all__ = ["SLOTS", "TARGET_LOAD", "NO_ROW", "FREE_SLOT", "buckets_for", "index_offsets", "new_index", "bucket",
           "find", "find_many", "index_insert", "index_delete", "index_clear", "index_rebuild"]

#: Slots per bucket: four keys and their four row numbers fill one 64-byte cache line.
SLOTS = 4
#: Load factor the index is sized for (it grows when an insert fails, near 90% for 4 slots).
TARGET_LOAD = 0.8
#: The row number kernels return for a key without a row.
NO_ROW = np.int64(-1)
#: The row number stored in an empty index slot.
FREE_SLOT = np.uint64(0xFFFFFFFFFFFFFFFF)


def buckets_for(rows: int) -> int:
    """Buckets for ``rows`` keys at :data:`TARGET_LOAD` of the slots (at least 2).

    See: book/ch06_numba.md
    """
    return max(2, int(np.ceil(rows / (SLOTS * TARGET_LOAD))))


def index_offsets(seed: int) -> tuple[np.uint64, np.uint64]:
    """The two hash offsets ``(off0, off1)`` of an index with hash seed ``seed``.

    ``seed_offset(seed, 1)`` and ``seed_offset(seed, 2)``: a table whose index is rebuilt
    with new hash functions moves ``seed`` on by 2, so no offset is used twice.
    See: book/ch06_numba.md
    """
    return seed_offset(seed, 1), seed_offset(seed, 2)


def new_index(num_buckets: int) -> np.ndarray:
    """An empty index of ``num_buckets`` buckets: ``(num_buckets, 2 * SLOTS)`` uint64.

    Raises ``MemoryError`` from 2**32 buckets on (the bucket hash keeps 32 bits).
    See: book/ch06_numba.md
    """
    if num_buckets >= 2**32:
        raise MemoryError(f"an index of {num_buckets} buckets is beyond the 2**32 the bucket hash can address")
    index = np.empty((num_buckets, 2 * SLOTS), dtype=np.uint64)  # 4 keys, then 4 rows
    index_clear(index)
    return index


@njit(cache=True, nogil=True, inline="always")
def bucket(key: np.uint64, offset: np.uint64, nb: np.uint64) -> np.int64:
    """Bucket in ``[0, nb)``: the hash's top 32 bits times ``nb``, top 32 bits of that.

    See: book/ch06_numba.md
    """
    return np.int64(((splitmix(key + offset) >> np.uint64(32)) * nb) >> np.uint64(32))


@njit(cache=True, nogil=True, inline="always")
def find(index, off0, off1, nb, key) -> np.int64:
    """The row of ``key``, or :data:`NO_ROW`: its first bucket, then (if absent) its second.

    See: book/ch06_numba.md
    """
    r = NO_ROW
    b = bucket(key, off0, nb)
    for s in range(SLOTS):
        if index[b, s] == key and index[b, SLOTS + s] != FREE_SLOT:
            r = np.int64(index[b, SLOTS + s])
    if r < 0:
        b = bucket(key, off1, nb)
        for s in range(SLOTS):
            if index[b, s] == key and index[b, SLOTS + s] != FREE_SLOT:
                r = np.int64(index[b, SLOTS + s])
    return r


@njit(cache=True, nogil=True)
def find_many(index, off0, off1, nb, ids, out, ahead=PREFETCH_AHEAD) -> None:
    """Row of each ID into ``out`` (-1 if absent), prefetching the first bucket of the ID
    ``ahead`` positions on (0: no prefetching; chapter 6 measures both).

    See: book/ch06_numba.md
    """
    n = ids.shape[0]
    for i in range(n):
        if ahead > 0 and i + ahead < n:
            prefetch(index, bucket(ids[i + ahead], off0, nb))
        out[i] = find(index, off0, off1, nb, ids[i])


@njit(cache=True, nogil=True)
def index_insert(index, off0, off1, nb, key, row, max_kicks) -> bool:
    """Put ``key -> row`` in a free slot of one of its buckets, kicking residents on if
    both are full. On failure the index is left as it was and False is returned.

    See: book/ch06_numba.md
    """
    urow = np.uint64(row)
    for b in (bucket(key, off0, nb), bucket(key, off1, nb)):
        for s in range(SLOTS):
            if index[b, SLOTS + s] == FREE_SLOT:
                index[b, s] = key
                index[b, SLOTS + s] = urow
                return True
    # Both buckets full: a kick-out chain. Remember it so a failure can be undone.
    trail_b = np.empty(max_kicks, dtype=np.int64)
    trail_s = np.empty(max_kicks, dtype=np.int64)
    b = bucket(key, off0, nb)
    for step in range(max_kicks):
        s = step % SLOTS
        trail_b[step] = b
        trail_s[step] = s
        old_key, old_row = index[b, s], index[b, SLOTS + s]
        index[b, s] = key
        index[b, SLOTS + s] = urow
        key, urow = old_key, old_row
        b0 = bucket(key, off0, nb)
        alt = bucket(key, off1, nb) if b0 == b else b0
        for t in range(SLOTS):
            if index[alt, SLOTS + t] == FREE_SLOT:
                index[alt, t] = key
                index[alt, SLOTS + t] = urow
                return True
        b = alt
    for step in range(max_kicks - 1, -1, -1):  # undo, newest first
        b, s = trail_b[step], trail_s[step]
        old_key, old_row = index[b, s], index[b, SLOTS + s]
        index[b, s] = key
        index[b, SLOTS + s] = urow
        key, urow = old_key, old_row
    return False


@njit(cache=True, nogil=True)
def index_delete(index, off0, off1, nb, key) -> None:
    """Free the slot that holds ``key`` (nothing if the key is absent).

    See: book/ch06_numba.md
    """
    for b in (bucket(key, off0, nb), bucket(key, off1, nb)):
        for s in range(SLOTS):
            if index[b, SLOTS + s] != FREE_SLOT and index[b, s] == key:
                index[b, SLOTS + s] = FREE_SLOT
                return


@njit(cache=True, nogil=True)
def index_clear(index) -> None:
    """Empty every slot: keys 0, row numbers :data:`FREE_SLOT`.

    See: book/ch06_numba.md
    """
    for b in range(index.shape[0]):
        for s in range(SLOTS):
            index[b, s] = 0
            index[b, SLOTS + s] = FREE_SLOT


@njit(cache=True, nogil=True)
def index_rebuild(index, off0, off1, nb, row_key, live, top, max_kicks) -> bool:
    """Insert every live row into an empty index (in row order); False if one fails.

    See: book/ch06_numba.md
    """
    index_clear(index)
    for r in range(top):
        if live[r]:
            if not index_insert(index, off0, off1, nb, row_key[r], np.int64(r), max_kicks):
                return False
    return True
