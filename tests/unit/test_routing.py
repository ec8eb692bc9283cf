"""Routing by shard: one ID's shard, and a table state split by shard and merged back, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from monolith_ref.data import zipf_ids
from monolith_ref.filters import CountMinFilter, OccurrenceFilter
from monolith_ref.optim import Adagrad
from monolith_ref.tables import NumbaTable, ShardedTable, TableConfig
from monolith_ref.tables.base import ROW_STATE_KEYS
from monolith_ref.tables.routing import merge_states, route, route_key, shard_prefix, split_state

CFG = TableConfig(dim=4, seed=5, optimizer=Adagrad(lr=0.1), filter=OccurrenceFilter(2))
SHARD_COUNTS = [1, 2, 3, 8]


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def trained(table, steps: int = 6):
    rng = np.random.default_rng(3)
    for now in range(steps):
        ids = zipf_ids(500, 2_000, seed=now)
        table.lookup(ids, now=now)
        table.apply_gradients(ids, rng.normal(size=(ids.size, CFG.dim)).astype(np.float32))
    return table


def test_route_key_is_route_of_one() -> None:
    ids = zipf_ids(200, 10_000, seed=1)
    for n in SHARD_COUNTS:
        assert [route_key(int(k), n, 7) for k in ids] == route(ids, n, 7).tolist()
    assert route_key(2**64 - 1, 3) == int(route(np.array([2**64 - 1], dtype=np.uint64), 3)[0])


@pytest.mark.parametrize("num_shards", SHARD_COUNTS)
def test_one_table_state_splits_by_route_and_merges_back(num_shards: int) -> None:
    state = trained(NumbaTable(CFG)).export()
    assert any(k.startswith("filter/") for k in state), "a single table's own filter state is present"
    parts = split_state(state, num_shards, CFG.seed)
    assert len(parts) == num_shards
    for s, part in enumerate(parts):
        assert set(part) == set(ROW_STATE_KEYS), "a single table's filter state belongs to no shard"
        assert (route(part["ids"], num_shards, CFG.seed) == s).all()
        assert (np.diff(part["ids"].astype(np.float64)) > 0).all(), "sorted IDs stay sorted"
    assert sum(p["ids"].size for p in parts) == state["ids"].size
    assert same(merge_states(parts), {k: state[k] for k in ROW_STATE_KEYS})


@pytest.mark.parametrize("num_shards", SHARD_COUNTS)
def test_sharded_state_splits_into_the_shards_exports_and_merges_back(num_shards: int) -> None:
    cfg = TableConfig(dim=4, seed=5, filter=CountMinFilter(threshold=2, width=32, depth=2))
    table = trained(ShardedTable(cfg, num_shards=num_shards, threads=1))
    state = table.export()
    parts = split_state(state, num_shards, cfg.seed)
    for part, shard in zip(parts, table.shards):
        assert same(part, shard.export()), "rows and the shard's own filter arrays"
    assert same(merge_states(parts), state)
    assert same(merge_states([shard.export() for shard in table.shards]), state)
    assert all(k.startswith(tuple(shard_prefix(s) for s in range(num_shards))) or k in ROW_STATE_KEYS for k in state)


@pytest.mark.parametrize("num_shards", SHARD_COUNTS)
def test_empty_states_round_trip(num_shards: int) -> None:
    empty = NumbaTable(CFG).export()
    assert empty["ids"].size == 0
    parts = split_state(empty, num_shards, CFG.seed)
    assert len(parts) == num_shards
    for part in parts:
        assert part["ids"].size == 0 and part["embeddings"].shape == (0, CFG.dim)
        assert all(part[k].dtype == empty[k].dtype for k in ROW_STATE_KEYS)
    assert same(merge_states(parts), {k: empty[k] for k in ROW_STATE_KEYS})
    sharded = ShardedTable(CFG, num_shards=num_shards, threads=1)
    state = sharded.export()
    assert state["ids"].size == 0 and same(merge_states(split_state(state, num_shards, CFG.seed)), state)


def test_some_shards_empty() -> None:
    ids = np.array([11], dtype=np.uint64)
    table = NumbaTable(TableConfig(dim=2))
    table.lookup(ids, now=0)
    state = table.export()
    parts = split_state(state, 4, 0)
    assert [p["ids"].size for p in parts].count(0) == 3
    assert same(merge_states(parts), {k: state[k] for k in ROW_STATE_KEYS})


def test_merge_needs_a_shard() -> None:
    with pytest.raises(ValueError, match="at least one shard"):
        merge_states([])
