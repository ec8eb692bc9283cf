"""CuckooMap and CuckooTable: kick-outs, rehashes, adversarial keys, instrumentation."""

from __future__ import annotations

import random
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monolith_ref.tables import CuckooInsertError, CuckooMap, CuckooTable, DictTable, TableConfig
from monolith_ref.tables.cuckoo_table import colliding_keys


def test_basic_mapping_behaviour() -> None:
    m: CuckooMap[str] = CuckooMap(capacity=2, seed=5)
    for k in range(100):
        m[k] = str(k)
    m[7] = "seven"
    assert len(m) == 100 and m[7] == "seven" and m[99] == "99"
    assert sorted(m) == list(range(100))
    del m[7]
    assert 7 not in m and len(m) == 99
    with pytest.raises(KeyError):
        m[7]
    with pytest.raises(KeyError):
        del m[7]
    assert "7" not in m and None not in m


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 2**64 - 1)), max_size=200), st.integers(0, 2**64 - 1))
def test_behaves_like_a_dict(ops, seed) -> None:
    m: CuckooMap[int] = CuckooMap(capacity=1, seed=seed, max_kicks=8)
    ref: dict[int, int] = {}
    for i, (insert, key) in enumerate(ops):
        if insert or key not in ref:
            m[key] = i
            ref[key] = i
        else:
            del m[key]
            del ref[key]
        assert len(m) == len(ref)
    assert dict(m.items()) == ref
    assert m.load_factor() <= m.max_load + 1e-9


def test_adversarial_keys_force_a_rehash_and_nothing_is_lost() -> None:
    m: CuckooMap[int] = CuckooMap(capacity=8, seed=1, max_load=1.0)
    keys = colliding_keys(m, 3)  # three keys, two possible slots: no placement exists
    seeds_before = m.seeds()
    for k in keys:
        m[k] = k * 10
    assert m.rehashes >= 1 and m.seeds() != seeds_before
    assert all(m[k] == k * 10 for k in keys) and len(m) == 3


def test_many_adversarial_groups_trigger_growth() -> None:
    m: CuckooMap[int] = CuckooMap(capacity=4, seed=9, max_kicks=6, max_load=1.0)
    keys: list[int] = []
    for start in range(0, 50_000, 10_000):
        keys += colliding_keys(m, 3, start)
    for k in keys:
        m[k] = k
    assert m.capacity > 4 or m.rehashes > 0
    assert sorted(m) == sorted(set(keys)) and all(m[k] == k for k in keys)


def test_failed_chain_without_rehash_changes_nothing() -> None:
    m: CuckooMap[int] = CuckooMap(capacity=8, seed=1, auto_rehash=False, max_load=1.0)
    a, b, c = colliding_keys(m, 3)
    m[a], m[b] = 1, 2
    before = m.slots()
    with pytest.raises(CuckooInsertError, match="kick-out chain"):
        m[c] = 3
    assert m.slots() == before and len(m) == 2 and m[a] == 1 and m[b] == 2 and c not in m


def test_two_table_cuckoo_fails_near_half_load() -> None:
    """Plain two-table cuckoo hashing (one slot per bucket) stops fitting around 50% load."""
    rng = random.Random(0)
    loads = []
    for seed in range(8):
        m: CuckooMap[int] = CuckooMap(capacity=2000, seed=seed, auto_rehash=False, max_load=1.0, max_kicks=200)
        try:
            while True:
                m[rng.getrandbits(64)] = 0
        except CuckooInsertError:
            loads.append(m.load_factor())
    assert 0.35 < float(np.median(loads)) < 0.55


def test_recorded_moves_replay_to_the_same_slots() -> None:
    m: CuckooMap[int] = CuckooMap(capacity=4, seed=3, max_load=1.0)
    m.record = []
    rng = random.Random(1)
    keys = [rng.getrandbits(20) for _ in range(6)]
    for k in keys:
        m[k] = 0
    slots: list[list[int | None]] = [[None] * 4, [None] * 4]
    for move in m.record:
        if move.kind == "rehash":
            # a rehash restarts placement from scratch in the new tables
            slots = [[None] * move.capacity, [None] * move.capacity]
        elif move.kind in ("place", "kick"):
            slots[move.table][move.slot] = move.key
    assert slots == m.slots()
    assert any(mv.kind == "kick" for mv in m.record) or m.stats()["longest_chain"] == 0


def test_stats_and_validation() -> None:
    m: CuckooMap[int] = CuckooMap(capacity=8)
    for k in range(5):
        m[k] = k
    stats = m.stats()
    assert stats["size"] == 5 and stats["capacity"] == 16 and stats["load_factor"] == 5 / 16
    for bad in ({"capacity": 0}, {"max_kicks": 0}, {"max_load": 0.0}, {"max_load": 1.5}):
        with pytest.raises(ValueError):
            CuckooMap(**bad)


def test_cuckoo_table_reports_and_matches_dict_table() -> None:
    cfg = TableConfig(dim=4, seed=2, ttl=50)
    ct, dt = CuckooTable(cfg, capacity=2), DictTable(cfg)
    ids = np.arange(0, 3000, 7, dtype=np.uint64)
    assert np.array_equal(ct.lookup(ids, now=1), dt.lookup(ids, now=1))
    stats = ct.stats()
    assert stats["size"] == len(ids) and stats["rehashes"] > 0 and 0 < ct.load_factor() <= 0.45
    assert ct.memory_bytes() > len(ids) * 4 * 4
    with pytest.raises(ValueError):
        CuckooTable(cfg, capacity=0)
