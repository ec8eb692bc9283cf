"""ShardedTable: routing, splitting, per-shard filters, thread-parallel equals serial."""

from __future__ import annotations

import numpy as np
import pytest

from monolith_ref.data import zipf_ids
from monolith_ref.filters import CountMinFilter, ProbabilisticFilter
from monolith_ref.optim import Adagrad
from monolith_ref.tables import DictTable, NumbaTable, ShardedTable, TableConfig
from monolith_ref.tables.routing import route, split_by_shard


def test_route_and_split_reassemble_in_order() -> None:
    ids = zipf_ids(10_000, 3_000, seed=2)
    shards = route(ids, 4)
    assert shards.min() >= 0 and shards.max() < 4
    assert np.array_equal(route(ids, 4), shards)
    parts = split_by_shard(shards, 4)
    assert sorted(np.concatenate(parts).tolist()) == list(range(ids.size))
    for s, pos in enumerate(parts):
        assert (shards[pos] == s).all() and (np.diff(pos) > 0).all(), "batch order kept within a shard"
    counts = np.bincount(route(np.unique(ids), 4), minlength=4)
    assert counts.min() > 0.8 * counts.mean(), "distinct IDs spread evenly"
    with pytest.raises(ValueError):
        route(ids, 0)


@pytest.mark.parametrize("filt", [CountMinFilter(threshold=2, width=16, depth=2), ProbabilisticFilter(threshold=3)])
def test_per_shard_filters_match_a_sharded_dict_oracle(filt) -> None:
    cfg = TableConfig(dim=4, seed=9, ttl=30, optimizer=Adagrad(lr=0.1), filter=filt)
    fast = ShardedTable(cfg, num_shards=3)
    slow = ShardedTable(cfg, num_shards=3, shard_factory=DictTable, threads=1)
    rng = np.random.default_rng(1)
    for now in range(0, 200, 4):
        ids = rng.integers(0, 60, size=16).astype(np.uint64)
        assert np.array_equal(fast.lookup(ids, now), slow.lookup(ids, now))
        g = rng.normal(size=(16, 4)).astype(np.float32)
        fast.apply_gradients(ids, g)
        slow.apply_gradients(ids, g)
        assert fast.expire(now) == slow.expire(now)
    a, b = fast.export(), slow.export()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    restored = ShardedTable(cfg, num_shards=3)
    restored.load(a)
    c = restored.export()
    assert all(np.array_equal(a[k], c[k]) for k in a)
    fast.close()


def test_threads_give_the_same_answers_as_one_thread() -> None:
    cfg = TableConfig(dim=8, seed=3)
    ids = zipf_ids(50_000, 20_000, seed=4)
    par, ser = ShardedTable(cfg, num_shards=4, threads=2), ShardedTable(cfg, num_shards=4, threads=1)
    assert np.array_equal(par.lookup(ids, 0), ser.lookup(ids, 0))
    g = np.random.default_rng(0).normal(size=(ids.size, 8)).astype(np.float32)
    par.apply_gradients(ids, g)
    ser.apply_gradients(ids, g)
    assert np.array_equal(par.lookup(ids, 1), ser.lookup(ids, 1))
    assert par.shard_sizes().sum() == len(par) == len(NumbaTable(cfg)) + len(np.unique(ids))
    par.close()


def test_defaults_and_validation() -> None:
    table = ShardedTable(TableConfig(dim=2))
    assert table.num_shards >= 2 and all(isinstance(s, NumbaTable) for s in table.shards)
    for bad in ({"num_shards": 0}, {"threads": 0}, {"num_shards": 1.5}):
        with pytest.raises(ValueError):
            ShardedTable(TableConfig(dim=2), **bad)


def test_sharded_table_can_be_deep_copied_with_its_threads() -> None:
    import copy

    from monolith_ref.tables import ShardedTable, TableConfig

    table = ShardedTable(TableConfig(dim=2, seed=1), num_shards=2, threads=2)
    ids = np.arange(100, dtype=np.uint64)
    rows = table.lookup(ids, now=0)
    twin = copy.deepcopy(table)
    assert twin._pool is not None and twin._pool is not table._pool
    np.testing.assert_array_equal(twin.lookup(ids, now=1, train=False), rows)
    twin.apply_gradients(ids, np.ones((100, 2), dtype=np.float32))
    np.testing.assert_array_equal(table.lookup(ids, now=1, train=False), rows)  # the original is untouched
