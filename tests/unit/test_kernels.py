"""The public compiled kernels of monolith_ref.kernels, called directly (no table around them)."""

from __future__ import annotations

import numpy as np
import pytest

from monolith_ref import kernels
from monolith_ref.hashing import GOLDEN_GAMMA, mix64, seed_offset
from monolith_ref.optim import SGD
from monolith_ref.tables import initial_rows


def test_seed_offset_is_the_formula() -> None:
    for seed, k in [(0, 1), (7, 1), (7, 2), (2**64 - 1, 1), (2**64 - 1, 2), (123456789, 5)]:
        assert seed_offset(seed, k) == np.uint64(((seed + k) * 0x9E3779B97F4A7C15) % 2**64)
        assert isinstance(seed_offset(seed, k), np.uint64)
    assert seed_offset(3) == seed_offset(3, 1) == np.uint64(4 * int(GOLDEN_GAMMA) % 2**64)
    ids = np.arange(50, dtype=np.uint64)
    assert np.array_equal(mix64(ids, 9), np.array([kernels.splitmix(i + seed_offset(9)) for i in ids]))
    with pytest.raises(TypeError, match="seed"):
        seed_offset(1.5)
    with pytest.raises(TypeError, match="k"):
        seed_offset(1, True)


def test_index_insert_find_delete_round_trip() -> None:
    nb = 8
    index = kernels.new_index(nb)
    off0, off1 = kernels.index_offsets(42)
    keys = mix64(np.arange(20, dtype=np.uint64), 3)
    for r, key in enumerate(keys):
        assert kernels.index_insert(index, off0, off1, np.uint64(nb), key, np.int64(r), 16)
    rows = np.empty(keys.size + 1, dtype=np.int64)
    query = np.append(keys, np.uint64(12345))
    kernels.find_many(index, off0, off1, np.uint64(nb), query, rows)
    assert rows.tolist() == list(range(keys.size)) + [-1]
    kernels.index_delete(index, off0, off1, np.uint64(nb), keys[4])
    assert kernels.find(index, off0, off1, np.uint64(nb), keys[4]) == -1
    assert kernels.find(index, off0, off1, np.uint64(nb), keys[5]) == 5
    # the slot is free again; a rebuild from the rows restores what is live
    live = np.ones(keys.size, dtype=np.bool_)
    live[4] = False
    assert kernels.index_rebuild(index, off0, off1, np.uint64(nb), keys, live, keys.size, 16)
    kernels.find_many(index, off0, off1, np.uint64(nb), keys, rows[: keys.size])
    assert rows[4] == -1 and np.array_equal(np.delete(rows[: keys.size], 4), np.delete(np.arange(keys.size), 4))


def test_a_failed_insert_leaves_the_index_unchanged() -> None:
    index = kernels.new_index(2)
    off0, off1 = kernels.index_offsets(0)
    keys = mix64(np.arange(64, dtype=np.uint64), 1)
    placed = 0
    while kernels.index_insert(index, off0, off1, np.uint64(2), keys[placed], np.int64(placed), 4):
        placed += 1
    assert 0 < placed <= 2 * kernels.SLOTS
    before = index.copy()
    assert not kernels.index_insert(index, off0, off1, np.uint64(2), keys[placed], np.int64(placed), 4)
    assert np.array_equal(index, before)


def test_take_and_release_rows_reuse_the_newest_freed_first() -> None:
    arena = kernels.RowArena(3, dim=2, opt_init=np.full(2, 0.5, np.float32), seed=4, scale=0.1)
    _emb, _opt, _seen, row_key, live, _touched, free, state = arena.arrays()
    rows = [kernels.take_row(np.uint64(k), row_key, live, free, state, 3) for k in (10, 11, 12)]
    assert rows == [0, 1, 2] and len(arena) == 3
    assert kernels.take_row(np.uint64(13), row_key, live, free, state, 3) == -1  # full
    kernels.release_row(0, live, free, state)
    kernels.release_row(2, live, free, state)
    assert len(arena) == 1 and not live[0] and not live[2]
    assert kernels.take_row(np.uint64(14), row_key, live, free, state, 3) == 2
    assert kernels.take_row(np.uint64(15), row_key, live, free, state, 3) == 0
    assert row_key.tolist() == [15, 11, 14] and arena.top == 3


def test_arena_rows_start_from_the_tables_recipe_and_survive_growth() -> None:
    arena = kernels.RowArena(2, dim=3, opt_init=np.full(3, 1.0, np.float32), seed=6, scale=0.05)
    keys = np.array([5, 9, 2**64 - 1, 77], dtype=np.uint64)
    rows = arena.add(keys, now=np.array([1, 2, 3, 4]))
    assert rows.tolist() == [0, 1, 2, 3] and arena.capacity == 4  # doubled once
    assert np.array_equal(arena.embeddings[rows], initial_rows(6, keys, 3, 0.05))
    assert np.array_equal(arena.opt_state[rows], np.ones((4, 3), np.float32))
    assert arena.last_seen[rows].tolist() == [1, 2, 3, 4]
    arena.release(arena.stale_rows(now=4, ttl=1))  # rows last seen at 1 and 2
    assert len(arena) == 2 and arena.add(keys[:1], now=9).tolist() == [1]
    with pytest.raises(ValueError, match="capacity"):
        kernels.RowArena(0, dim=3, opt_init=np.zeros(0, np.float32))


def test_apply_gradients_sums_repeated_rows_in_batch_order() -> None:
    emb = np.zeros((2, 1), dtype=np.float32)
    opt = np.zeros((2, 0), dtype=np.float32)
    touched = np.zeros(2, dtype=np.uint8)
    grads = np.array([[1e8], [1.0], [-1e8], [3.0]], dtype=np.float32)
    code, params = kernels.optimizer_code(SGD(lr=1.0))
    kernels.apply_gradients(np.array([0, 0, 0, -1]), grads, code, params, emb, opt, touched)
    assert emb[0, 0] == 0.0 and emb[1, 0] == 0.0  # (1e8 + 1) - 1e8 == 0 in float32; row -1 dropped
    assert touched.tolist() == [1, 0]
    with pytest.raises(ValueError, match="supports SGD, Adagrad and FTRL"):
        kernels.optimizer_code(object())
