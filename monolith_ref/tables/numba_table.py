"""NumbaTable: the collisionless table as flat arrays and compiled batch kernels.

Debugging tip: set ``NUMBA_DISABLE_JIT=1`` in the environment before importing
``monolith_ref`` and every kernel below runs as plain Python, so ``print`` and ``pdb``
work inside it (slowly). The test suite runs once that way on a small case.

Layout (chapter 6 draws it):

* **An index**: a *bucketed* cuckoo hash map. ``num_buckets`` buckets of ``SLOTS`` (4)
  slots; key ``k`` lives in bucket ``h0(k)`` or ``h1(k)``, in any of its 4 slots. A bucket
  is one 64-byte record, its four keys then its four row numbers (``_index[b]``, uint64), so
  a probe reads one cache line; a lookup reads at most two. An insert that finds both
  buckets full kicks a resident to its other bucket, as in chapter 4. Four slots per bucket
  let the index fill to about 90% before inserts fail, against about 50% for the one-slot,
  two-table map of chapter 4 (the book measures both); the table sizes it for 80%. Buckets
  are picked by multiply-shift range reduction, so their number need not be a power of two.
* **An arena** of rows: ``embeddings (capacity, dim)``, ``opt_state (capacity, width)``,
  ``last_seen``, ``row_key``, ``live``, ``touched``. The index maps a key to a row number.
  Expired rows go on a free list and are reused.

All arithmetic follows :class:`~monolith_ref.tables.DictTable` operation for operation
(float32 sums in batch order, the same optimizer formulas, the same initial-row recipe), so
the two tables are bit-identical for any sequence of operations.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..hashing import GOLDEN_GAMMA
from ..optim import FTRL, SGD, Adagrad
from .base import TableBase, TableConfig, check_ids, check_row_state, filter_from_state, filter_state

__all__ = ["NumbaTable", "SLOTS", "TARGET_LOAD", "init_row", "splitmix", "seed_offset"]

SLOTS = 4
#: Load factor the index is sized for (it grows when an insert fails, near 90% for 4 slots).
TARGET_LOAD = 0.8
_EMPTY = np.int64(-1)
_FREE = np.uint64(0xFFFFFFFFFFFFFFFF)  # the row number of an empty index slot
_G = np.uint64(int(GOLDEN_GAMMA))
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

#: How many IDs ahead the kernels ask the CPU to fetch a bucket or a row (measured: 16
#: hides most of a cache miss on the benchmark's machine; 4 too few, 32 too many).
PREFETCH_AHEAD = 16

# kernel status codes
_OK, _INDEX_FULL, _ARENA_FULL, _MISS = 0, 1, 2, 3
# optimizer codes
_SGD, _ADAGRAD, _FTRL = 0, 1, 2


# =========================================================================== hashing


@njit(cache=True, nogil=True, inline="always")
def _splitmix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True, inline="always")
def _offset(seed: np.uint64) -> np.uint64:
    """``(seed + 1) * GOLDEN`` modulo 2**64, as :func:`monolith_ref.hashing.mix64` uses."""
    return (seed + np.uint64(1)) * _G


@njit(cache=True, nogil=True, inline="always")
def _bucket(key: np.uint64, offset: np.uint64, nb: np.uint64) -> np.int64:
    """Bucket in ``[0, nb)``: the hash's top 32 bits times ``nb``, top 32 bits of that."""
    return np.int64(((_splitmix(key + offset) >> np.uint64(32)) * nb) >> np.uint64(32))


@njit(cache=True, nogil=True)
def _init_row(seed_offset: np.uint64, key: np.uint64, scale: float, out: np.ndarray) -> None:
    """The initial row of ``key``: :func:`monolith_ref.tables.initial_rows`, one row."""
    h = _splitmix(key + seed_offset)
    for j in range(out.shape[0]):
        bits = _splitmix(h + np.uint64(j + 1) * _G)
        unit = np.float64(bits >> np.uint64(11)) * 1.1102230246251565e-16  # 2**-53
        out[j] = np.float32((2.0 * unit - 1.0) * scale)


#: Public names for the compiled helpers, for exercises and notebooks that write kernels.
splitmix = _splitmix
init_row = _init_row


def seed_offset(seed: int) -> np.uint64:
    """``(seed + 1) * GOLDEN`` modulo 2**64: the offset :func:`init_row` and the hashes add.

    See: book/ch06_numba.md
    """
    return np.uint64(((int(seed) + 1) * int(GOLDEN_GAMMA)) % 2**64)


# =========================================================================== prefetch


def _prefetch_py(arr, i) -> None:
    """What :func:`_prefetch` does without the JIT: nothing (it is only a hint)."""


@intrinsic
def _prefetch_intrinsic(typingctx, arr, i):
    """Ask the CPU to start loading ``arr[i]`` (a row, for 2-D arrays) into the cache.

    LLVM's ``prefetch`` hint, which Numba does not expose: a lookup computes where the
    bucket of an ID several positions ahead lives and requests it, so that by the time the
    loop gets there the cache miss is over. The independent misses then overlap."""
    sig = types.void(arr, i)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = ir.Constant(ir.IntType(64), 0)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]] + [zero] * (aryty.ndim - 1),
                                       wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read (0), keep in all cache levels (3), data cache (1)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


_prefetch = _prefetch_py if numba.config.DISABLE_JIT else _prefetch_intrinsic


# =========================================================================== the index


@njit(cache=True, nogil=True, inline="always")
def _find(index, off0, off1, nb, key) -> np.int64:
    r = _EMPTY
    b = _bucket(key, off0, nb)
    for s in range(SLOTS):
        if index[b, s] == key and index[b, SLOTS + s] != _FREE:
            r = np.int64(index[b, SLOTS + s])
    if r < 0:
        b = _bucket(key, off1, nb)
        for s in range(SLOTS):
            if index[b, s] == key and index[b, SLOTS + s] != _FREE:
                r = np.int64(index[b, SLOTS + s])
    return r


@njit(cache=True, nogil=True)
def _find_many(index, off0, off1, nb, ids, out, ahead=PREFETCH_AHEAD) -> None:
    """Row of each ID (-1 if absent), prefetching the first bucket of the ID ``ahead``
    positions on (0: no prefetching; chapter 6 measures both)."""
    n = ids.shape[0]
    for i in range(n):
        if ahead > 0 and i + ahead < n:
            _prefetch(index, _bucket(ids[i + ahead], off0, nb))
        out[i] = _find(index, off0, off1, nb, ids[i])


@njit(cache=True, nogil=True)
def _index_insert(index, off0, off1, nb, key, row, max_kicks) -> bool:
    """Put ``key -> row`` in a free slot of one of its buckets, kicking residents on if
    both are full. On failure the index is left as it was and False is returned."""
    urow = np.uint64(row)
    for b in (_bucket(key, off0, nb), _bucket(key, off1, nb)):
        for s in range(SLOTS):
            if index[b, SLOTS + s] == _FREE:
                index[b, s] = key
                index[b, SLOTS + s] = urow
                return True
    # Both buckets full: a kick-out chain. Remember it so a failure can be undone.
    trail_b = np.empty(max_kicks, dtype=np.int64)
    trail_s = np.empty(max_kicks, dtype=np.int64)
    b = _bucket(key, off0, nb)
    for step in range(max_kicks):
        s = step % SLOTS
        trail_b[step] = b
        trail_s[step] = s
        old_key, old_row = index[b, s], index[b, SLOTS + s]
        index[b, s] = key
        index[b, SLOTS + s] = urow
        key, urow = old_key, old_row
        b0 = _bucket(key, off0, nb)
        alt = _bucket(key, off1, nb) if b0 == b else b0
        for t in range(SLOTS):
            if index[alt, SLOTS + t] == _FREE:
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
def _index_delete(index, off0, off1, nb, key) -> None:
    for b in (_bucket(key, off0, nb), _bucket(key, off1, nb)):
        for s in range(SLOTS):
            if index[b, SLOTS + s] != _FREE and index[b, s] == key:
                index[b, SLOTS + s] = _FREE
                return


@njit(cache=True, nogil=True)
def _index_clear(index) -> None:
    for b in range(index.shape[0]):
        for s in range(SLOTS):
            index[b, s] = 0
            index[b, SLOTS + s] = _FREE


@njit(cache=True, nogil=True)
def _index_rebuild(index, off0, off1, nb, row_key, live, top, max_kicks) -> bool:
    """Insert every live row into an empty index (in row order); False if one fails."""
    _index_clear(index)
    for r in range(top):
        if live[r]:
            if not _index_insert(index, off0, off1, nb, row_key[r], np.int64(r), max_kicks):
                return False
    return True


# =========================================================================== rows


@njit(cache=True, nogil=True, inline="always")
def _take_row(key, row_key, live, free, state, capacity) -> np.int64:
    """A row for ``key``: the last freed one, else the next never used; -1 if the arena is
    full. ``state`` holds [n_free, top, n_live]."""
    if state[0] > 0:
        state[0] -= 1
        r = np.int64(free[state[0]])
    elif state[1] < capacity:
        r = state[1]
        state[1] += 1
    else:
        return _EMPTY
    row_key[r] = key
    live[r] = True
    state[2] += 1
    return r


@njit(cache=True, nogil=True, inline="always")
def _release_row(r, live, free, state) -> None:
    """Put row ``r`` back on the free list (the next :func:`_take_row` reuses it)."""
    live[r] = False
    free[state[0]] = r
    state[0] += 1
    state[2] -= 1


@njit(cache=True, nogil=True)
def _new_row(key, now, seed_offset, scale, opt_init, emb, opt, seen, row_key, live, touched, free, state):
    """Take a row for ``key`` and give it the key's initial values; -1 if none is left."""
    r = _take_row(key, row_key, live, free, state, emb.shape[0])
    if r < 0:
        return _EMPTY
    _init_row(seed_offset, key, scale, emb[r])
    for j in range(opt_init.shape[0]):
        opt[r, j] = opt_init[j]
    seen[r] = now
    touched[r] = 1
    return r


@njit(cache=True, nogil=True)
def _stamp_gather(start, stop, now, rows, out, emb, seen, touched) -> None:
    dim = emb.shape[1]
    for i in range(start, stop):
        if i + PREFETCH_AHEAD < stop:
            ahead = rows[i + PREFETCH_AHEAD]
            if ahead >= 0:
                _prefetch(emb, ahead)
                _prefetch(seen, ahead)
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
def _lookup_train(ids, now, start, insert, out, rows, index, off0, off1, nb, max_kicks,
                  seed_offset, scale, opt_init, emb, opt, seen, row_key, live, touched, free, state):
    """Training lookups from position ``start``: refresh hits; insert misses if ``insert``
    (else mark them -1 in ``rows`` for the caller's filter). Returns (status, position).

    Three passes: find every row (independent probes, whose cache misses the CPU overlaps),
    then the misses in batch order, then stamp and copy the rows."""
    n = ids.shape[0]
    _find_many(index, off0, off1, nb, ids[start:], rows[start:])
    for i in range(start, n):
        if rows[i] >= 0:
            continue
        key = ids[i]
        r = _find(index, off0, off1, nb, key)  # inserted earlier in this batch?
        if r < 0:
            if not insert:
                continue
            r = _new_row(key, now, seed_offset, scale, opt_init, emb, opt, seen, row_key, live, touched, free, state)
            if r < 0:
                _stamp_gather(start, i, now, rows, out, emb, seen, touched)
                return _ARENA_FULL, i
            if not _index_insert(index, off0, off1, nb, key, r, max_kicks):
                # give the row back; the caller grows the index and calls again from i
                _release_row(r, live, free, state)
                touched[r] = 0
                _stamp_gather(start, i, now, rows, out, emb, seen, touched)
                return _INDEX_FULL, i
        rows[i] = r
    _stamp_gather(start, n, now, rows, out, emb, seen, touched)
    return _OK, n


@njit(cache=True, nogil=True)
def _gather(rows, emb, out) -> None:
    n = rows.shape[0]
    for i in range(n):
        if i + PREFETCH_AHEAD < n and rows[i + PREFETCH_AHEAD] >= 0:
            _prefetch(emb, rows[i + PREFETCH_AHEAD])
        r = rows[i]
        if r >= 0:
            for j in range(emb.shape[1]):
                out[i, j] = emb[r, j]
        else:
            for j in range(emb.shape[1]):
                out[i, j] = 0.0


@njit(cache=True, nogil=True)
def _step(code, params, w, st, g) -> None:
    """One optimizer step on one row, exactly as :mod:`monolith_ref.optim` computes it."""
    dim = w.shape[0]
    if code == _SGD:
        lr = params[0]
        for j in range(dim):
            w[j] = w[j] - lr * g[j]
    elif code == _ADAGRAD:
        lr, eps = params[0], params[1]
        for j in range(dim):
            st[j] = st[j] + g[j] * g[j]
            w[j] = w[j] - lr * (g[j] / (np.sqrt(st[j]) + eps))
    else:
        alpha, beta, l1, l2 = params[0], params[1], params[2], params[3]
        zero = np.float32(0.0)
        for j in range(dim):
            z, n = st[j], st[dim + j]
            n_new = n + g[j] * g[j]
            sigma = (np.sqrt(n_new) - np.sqrt(n)) / alpha
            z = z + (g[j] - sigma * w[j])
            st[j] = z
            st[dim + j] = n_new
            sign = np.float32(1.0) if z > zero else (np.float32(-1.0) if z < zero else zero)
            shrunk = -(z - sign * l1) / ((beta + np.sqrt(n_new)) / alpha + l2)
            w[j] = zero if abs(z) <= l1 else shrunk


@njit(cache=True, nogil=True)
def _apply(rows, grads, code, params, emb, opt, touched) -> None:
    """Sum each present row's gradients in batch order, then one optimizer step per row.

    Repeated rows are found with a small open-addressing map from row number to its
    accumulator, local to the call (so the arena carries no scratch arrays)."""
    n, dim = grads.shape
    acc = np.empty((n, dim), dtype=np.float32)
    order = np.empty(n, dtype=np.int64)
    bits = 1
    while (1 << bits) < 2 * n:
        bits += 1
    size = 1 << bits
    shift = np.uint64(64 - bits)
    seen_row = np.full(size, -1, dtype=np.int64)
    seen_at = np.empty(size, dtype=np.int32)
    u = 0
    for i in range(n):
        r = rows[i]
        if r < 0:
            continue
        h = np.int64((np.uint64(r) * _G) >> shift)
        while seen_row[h] != r and seen_row[h] != -1:
            h = (h + 1) & (size - 1)
        if seen_row[h] == -1:
            seen_row[h] = r
            seen_at[h] = u
            order[u] = r
            for j in range(dim):
                acc[u, j] = grads[i, j]
            u += 1
        else:
            k = seen_at[h]
            for j in range(dim):
                acc[k, j] = acc[k, j] + grads[i, j]
    for k in range(u):
        r = order[k]
        _step(code, params, emb[r], opt[r], acc[k])
        touched[r] = 1


@njit(cache=True, nogil=True)
def _expire(now, ttl, index, off0, off1, nb, seen, row_key, live, touched, free, state):
    """Free every live row unseen for longer than ``ttl``; return the removed keys."""
    removed = np.empty(state[2], dtype=np.uint64)
    k = 0
    for r in range(state[1]):
        if live[r] and now - seen[r] > ttl:
            _index_delete(index, off0, off1, nb, row_key[r])
            _release_row(r, live, free, state)
            touched[r] = 0
            removed[k] = row_key[r]
            k += 1
    return removed[:k]


# =========================================================================== the table


def _optimizer_code(opt) -> tuple[int, np.ndarray]:
    if isinstance(opt, SGD):
        return _SGD, np.array([opt.lr], dtype=np.float32)
    if isinstance(opt, Adagrad):
        return _ADAGRAD, np.array([opt.lr, opt.eps], dtype=np.float32)
    if isinstance(opt, FTRL):
        return _FTRL, np.array([opt.alpha, opt.beta, opt.l1, opt.l2], dtype=np.float32)
    raise ValueError(f"NumbaTable supports SGD, Adagrad and FTRL, got {type(opt).__name__}")


class NumbaTable(TableBase):
    """The collisionless table as flat arrays and ``@njit`` kernels. See: book/ch06_numba.md

    ``capacity``: rows allocated up front (the arena doubles when full). ``max_kicks``:
    the longest kick-out chain in the index before it doubles. Results are bit-identical
    to :class:`DictTable` for any sequence of operations, filters and optimizers included.
    """

    def __init__(self, config: TableConfig, capacity: int = 1024, max_kicks: int = 64) -> None:
        super().__init__(config)
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1, got {capacity!r}")
        if isinstance(max_kicks, bool) or not isinstance(max_kicks, (int, np.integer)) or max_kicks < 1:
            raise ValueError(f"max_kicks must be an integer >= 1, got {max_kicks!r}")
        self._code, self._params = _optimizer_code(config.optimizer)
        self._opt_init = config.optimizer.initial_state(config.dim).astype(np.float32)
        self._seed_offset = np.uint64(((config.seed + 1) * int(GOLDEN_GAMMA)) % 2**64)
        self._scale = float(config.init_scale)
        self.max_kicks = int(max_kicks)
        self._filter = None if config.filter is None else config.filter.build(config.seed)
        self._removed: set[int] = set()
        self._alloc_arena(int(capacity))
        self._alloc_index(self._buckets_for(int(capacity)), generation=0)

    # ---- storage ---------------------------------------------------------------------

    @staticmethod
    def _buckets_for(rows: int) -> int:
        """Buckets for ``rows`` keys at :data:`TARGET_LOAD` of the slots."""
        return max(2, int(np.ceil(rows / (SLOTS * TARGET_LOAD))))

    def _alloc_arena(self, capacity: int) -> None:
        dim, width = self.config.dim, self.config.state_width
        self.embeddings = np.zeros((capacity, dim), dtype=np.float32)
        self.opt_state = np.zeros((capacity, width), dtype=np.float32)
        self.last_seen = np.zeros(capacity, dtype=np.int64)
        self.row_key = np.zeros(capacity, dtype=np.uint64)
        self.live = np.zeros(capacity, dtype=np.bool_)
        self.touched = np.zeros(capacity, dtype=np.uint8)
        self._free = np.zeros(capacity, dtype=np.int32)
        self._state = np.zeros(3, dtype=np.int64)  # n_free, top, n_live

    def _grow_arena(self) -> None:
        """Double the arena, keeping every row where it is."""
        old = (self.embeddings, self.opt_state, self.last_seen, self.row_key, self.live, self.touched,
               self._free, self._state.copy())
        top = int(old[-1][1])
        self._alloc_arena(2 * old[0].shape[0])
        for new, prev in zip((self.embeddings, self.opt_state, self.last_seen, self.row_key, self.live, self.touched),
                             old[:6]):
            new[:top] = prev[:top]
        self._free[: old[6].shape[0]] = old[6]
        self._state[:] = old[7]

    def _alloc_index(self, num_buckets: int, generation: int) -> None:
        self.generation = generation
        seed0 = (self.config.seed + 2 * generation) % 2**64
        self._off0 = np.uint64(((seed0 + 1) * int(GOLDEN_GAMMA)) % 2**64)
        self._off1 = np.uint64(((seed0 + 2) * int(GOLDEN_GAMMA)) % 2**64)
        if num_buckets >= 2**32:
            raise MemoryError(f"an index of {num_buckets} buckets is beyond NumbaTable's 2**32")
        self._index = np.empty((num_buckets, 2 * SLOTS), dtype=np.uint64)  # 4 keys, then 4 rows
        _index_clear(self._index)
        self._nb = np.uint64(num_buckets)

    def _grow_index(self) -> None:
        """New hash seeds and twice the buckets, then reinsert every live row."""
        buckets = self._index.shape[0]
        while True:
            buckets *= 2
            self._alloc_index(buckets, self.generation + 1)
            if _index_rebuild(self._index, self._off0, self._off1, self._nb, self.row_key,
                              self.live, int(self._state[1]), self.max_kicks):
                return

    def _index_args(self) -> tuple:
        return self._index, self._off0, self._off1, self._nb

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        rows = np.empty(ids.shape[0], dtype=np.int64)
        _find_many(*self._index_args(), ids, rows)
        return rows

    # ---- the protocol ------------------------------------------------------------------

    def _lookup(self, ids: np.ndarray, now: int, train: bool) -> np.ndarray:
        out = np.empty((ids.shape[0], self.config.dim), dtype=np.float32)
        if not train:
            _gather(self._rows_of(ids), self.embeddings, out)
            return out
        rows = np.empty(ids.shape[0], dtype=np.int64)
        self._train_pass(ids, now, insert=self._filter is None, out=out, rows=rows)
        if self._filter is not None:
            self._admit_misses(ids, now, out, rows)
        return out

    def _train_pass(self, ids, now, insert, out, rows) -> None:
        start = 0
        while True:
            status, start = _lookup_train(
                ids, np.int64(now), start, insert, out, rows, *self._index_args(), self.max_kicks,
                self._seed_offset, self._scale, self._opt_init, self.embeddings, self.opt_state,
                self.last_seen, self.row_key, self.live, self.touched, self._free, self._state,
            )
            if status == _OK:
                return
            if status == _ARENA_FULL:
                self._grow_arena()
            else:
                self._grow_index()

    def _admit_misses(self, ids: np.ndarray, now: int, out: np.ndarray, rows: np.ndarray) -> None:
        """Misses, in batch order, through the filter (the compiled pass skipped them); then
        one compiled pass inserts (or refreshes) every admitted position, in batch order."""
        assert self._filter is not None
        miss = np.flatnonzero(rows < 0)
        if miss.size == 0:
            return
        admit = self._filter.admit
        admitted: set[int] = set()
        take = []
        for j, key in enumerate(ids[miss].tolist()):
            if key in admitted or admit(key, now):  # admitted earlier in this batch, or now
                admitted.add(key)
                take.append(j)
        if not take:
            return
        pos = miss[np.array(take, dtype=np.int64)]
        sub_out = np.empty((pos.size, self.config.dim), dtype=np.float32)
        sub_rows = np.empty(pos.size, dtype=np.int64)
        self._train_pass(ids[pos], now, True, sub_out, sub_rows)
        out[pos] = sub_out
        rows[pos] = sub_rows
        for key in admitted:
            self._filter.forget(key)

    def _apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
        _apply(self._rows_of(ids), grads, self._code, self._params, self.embeddings, self.opt_state,
               self.touched)

    def _expire(self, now: int) -> int:
        ttl = self.config.ttl
        assert ttl is not None
        removed = _expire(np.int64(now), np.int64(ttl), *self._index_args(), self.last_seen, self.row_key,
                          self.live, self.touched, self._free, self._state)
        self._removed.update(removed.tolist())
        if self._filter is not None:
            self._filter.expire(now, ttl)
        return int(removed.shape[0])

    def _live_rows(self) -> np.ndarray:
        top = int(self._state[1])
        rows = np.flatnonzero(self.live[:top])
        return rows[np.argsort(self.row_key[rows], kind="stable")]

    def _export(self, ids: np.ndarray | None) -> dict[str, np.ndarray]:
        if ids is None:
            rows = self._live_rows()
        else:
            found = self._rows_of(np.unique(ids))
            rows = found[found >= 0]
        state = {
            "ids": self.row_key[rows].copy(),
            "embeddings": self.embeddings[rows].copy(),
            "opt_state": self.opt_state[rows].copy(),
            "last_seen": self.last_seen[rows].copy(),
        }
        if ids is None:
            state.update(filter_state(self._filter))
        return state

    def _load(self, state: dict[str, np.ndarray]) -> None:
        rows = check_row_state(state, self.config)
        new_filter = filter_from_state(self.config, state)  # validated before anything changes
        old_keys = self.row_key[self._live_rows()].tolist()
        n = rows["ids"].shape[0]
        self._alloc_arena(max(n, 1))
        self.embeddings[:n] = rows["embeddings"]
        self.opt_state[:n] = rows["opt_state"]
        self.last_seen[:n] = rows["last_seen"]
        self.row_key[:n] = rows["ids"]
        self.live[:n] = True
        self.touched[:n] = 1
        self._state[:] = (0, n, n)
        self._alloc_index(self._buckets_for(max(n, 1)), self.generation + 1)
        if not _index_rebuild(*self._index_args(), self.row_key, self.live, n, self.max_kicks):
            self._grow_index()
        self._removed.update(old_keys)
        self._filter = new_filter

    def _has(self, key: int) -> bool:
        return _find(*self._index_args(), np.uint64(key)) >= 0

    def contains(self, ids) -> np.ndarray:
        return self._rows_of(check_ids(ids)) >= 0

    def __len__(self) -> int:
        return int(self._state[2])

    # ---- touched keys (flags per row, plus the keys removed since the last pop) ----------

    def touched_ids(self) -> np.ndarray:
        top = int(self._state[1])
        flagged = self.row_key[:top][(self.touched[:top] != 0) & self.live[:top]]
        keys = set(flagged.tolist()) | self._removed
        return np.array(sorted(keys), dtype=np.uint64)

    def pop_touched(self) -> np.ndarray:
        out = self.touched_ids()
        self.touched[:] = 0
        self._removed.clear()
        return out

    # ---- sizes -------------------------------------------------------------------------

    def memory_bytes(self) -> int:
        """Bytes of every array the table holds (index, arena, scratch) and its filter."""
        arrays = (self._index, self.embeddings, self.opt_state, self.last_seen, self.row_key, self.live,
                  self.touched, self._free)
        total = sum(int(a.nbytes) for a in arrays)
        return total + (self._filter.memory_bytes() if self._filter is not None else 0)

    def stats(self) -> dict[str, float]:
        """Rows, arena capacity, index slots, index load factor, and the index generation."""
        slots = self._index.shape[0] * SLOTS
        return {
            "size": len(self),
            "capacity": int(self.embeddings.shape[0]),
            "index_slots": int(slots),
            "load_factor": len(self) / slots,
            "generation": self.generation,
        }


def jit_enabled() -> bool:
    """False when ``NUMBA_DISABLE_JIT=1`` (the kernels then run as Python)."""
    return not numba.config.DISABLE_JIT
