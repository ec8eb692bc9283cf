"""Grader for Exercise 7.1: routing a batch to shards and reassembling results in order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.explain import array_diff, raises, short
from monolith_ref.data import zipf_ids
from monolith_ref.tables import NumbaTable, TableConfig

pytestmark = pytest.mark.exercise("7.1", title="Shard routing, splitting and reassembly")


@pytest.mark.points(2)
def test_route_is_deterministic_in_range_and_balanced(mod) -> None:
    ids = np.arange(20_000, dtype=np.uint64) * np.uint64(1024)  # a common stride defeats plain modulo
    for n in (1, 3, 8):
        shards = mod.route(ids, n, seed=7)
        assert shards.dtype == np.int64, (
            f"route(ids, {n}, seed=7) must return an int64 array, got {type(shards).__name__} "
            f"{getattr(shards, 'dtype', '')}")
        assert shards.min() >= 0 and shards.max() < n, (
            f"route(ids, {n}) must give shards in [0, {n}), got the range [{shards.min()}, {shards.max()}]")
        again = mod.route(ids.copy(), n, seed=7)
        assert np.array_equal(shards, again), (
            f"route must be deterministic: two calls with the same IDs and seed differ ({array_diff(shards, again)})")
        counts = np.bincount(shards, minlength=n)
        assert counts.min() >= 0.85 * counts.mean(), (
            f"20,000 IDs with stride 1024 on {n} shards: counts {counts.tolist()}; each shard needs at least 85% "
            "of the mean (hash the ID; a plain ID % n fails on strided IDs)")
    with raises(ValueError, "route(ids, 0) must refuse a shard count below 1"):
        mod.route(ids, 0)


@pytest.mark.points(2)
def test_split_covers_each_position_once_in_order(mod) -> None:
    @settings(max_examples=100)
    @given(st.lists(st.integers(0, 4), max_size=60))
    def run(values):
        shards = np.array(values, dtype=np.int64)
        parts = mod.split(shards, 5)
        assert len(parts) == 5, (
            f"split(shards={values}, 5) must return 5 position arrays (empty ones too), got {len(parts)}")
        allpos = np.concatenate(parts) if parts else np.array([], dtype=np.int64)
        assert sorted(allpos.tolist()) == list(range(len(values))), (
            f"split(shards={values}, 5): every position 0..{len(values) - 1} must appear exactly once, "
            f"got {[short(p) for p in parts]}")
        for s, pos in enumerate(parts):
            assert (shards[pos] == s).all() and (np.diff(pos) > 0).all(), (
                f"split(shards={values}, 5)[{s}] = {short(pos)}: it must hold the positions of shard {s}, "
                "in increasing order")

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
    want = single.lookup(ids, now=0)
    assert out.dtype == np.float32 and np.array_equal(out, want), (
        f"routing 5,000 Zipf IDs (with repeats) to 3 shards and reassembling must give the single table's rows in "
        f"batch order: {array_diff(want, out)}")
