"""Grader for Exercise 7.1: routing a batch to shards and reassembling results in order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monolith_ref.data import zipf_ids
from monolith_ref.tables import NumbaTable, TableConfig

pytestmark = pytest.mark.exercise("7.1", title="Shard routing, splitting and reassembly")


@pytest.mark.points(2)
def test_route_is_deterministic_in_range_and_balanced(mod) -> None:
    ids = np.arange(20_000, dtype=np.uint64) * np.uint64(1024)  # a common stride defeats plain modulo
    for n in (1, 3, 8):
        shards = mod.route(ids, n, seed=7)
        assert shards.dtype == np.int64 and shards.min() >= 0 and shards.max() < n
        assert np.array_equal(shards, mod.route(ids.copy(), n, seed=7))
        counts = np.bincount(shards, minlength=n)
        assert counts.min() >= 0.85 * counts.mean()
    with pytest.raises(ValueError):
        mod.route(ids, 0)


@pytest.mark.points(2)
def test_split_covers_each_position_once_in_order(mod) -> None:
    @settings(max_examples=100)
    @given(st.lists(st.integers(0, 4), max_size=60))
    def run(values):
        shards = np.array(values, dtype=np.int64)
        parts = mod.split(shards, 5)
        assert len(parts) == 5
        allpos = np.concatenate(parts) if parts else np.array([], dtype=np.int64)
        assert sorted(allpos.tolist()) == list(range(len(values)))
        for s, pos in enumerate(parts):
            assert (shards[pos] == s).all() and (np.diff(pos) > 0).all()

    run()


@pytest.mark.points(3)
def test_sharded_lookups_reassemble_to_the_single_table_answer(mod) -> None:
    cfg = TableConfig(dim=4, seed=2)
    shards = [NumbaTable(cfg) for _ in range(3)]
    single = NumbaTable(cfg)
    ids = zipf_ids(5_000, 1_000, seed=8)
    where = mod.route(ids, 3, seed=1)
    positions = mod.split(where, 3)
    parts = [shards[s].lookup(ids[pos], now=0) for s, pos in enumerate(positions)]
    out = mod.reassemble(parts, positions, ids.size)
    assert out.dtype == np.float32 and np.array_equal(out, single.lookup(ids, now=0))
