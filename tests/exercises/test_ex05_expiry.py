"""Grader for Exercise 5.2: TTL expiry with exact boundary behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from monolith_ref.tables import DictTable, Entry, TableConfig

pytestmark = pytest.mark.exercise("5.2", title="TTL expiry at exact boundaries")


@pytest.fixture
def expire(mod):
    return mod.expire_entries


def entries(seen: dict[int, int]) -> dict[int, Entry]:
    return {k: Entry(np.zeros(2, dtype=np.float32), np.zeros(0, dtype=np.float32), t) for k, t in seen.items()}


@pytest.mark.points(3)
def test_boundaries(expire) -> None:
    table = entries({1: 100, 2: 99, 3: 101, 4: 98})
    assert expire(table, now=110, ttl=10) == [2, 4]  # 11 and 12 seconds unseen go; exactly 10 stays
    assert sorted(table) == [1, 3]
    assert expire(table, now=111, ttl=10) == [1]
    assert expire(table, now=111, ttl=10) == []


@pytest.mark.points(1)
def test_zero_ttl_and_future_rows(expire) -> None:
    table = entries({1: 5, 2: 6, 3: 9})
    assert expire(table, now=6, ttl=0) == [1]
    assert sorted(table) == [2, 3], "a row seen 'in the future' is not stale"


@pytest.mark.points(1)
def test_bad_ttl(expire) -> None:
    for bad in (-1, 1.5, None):
        with pytest.raises(ValueError):
            expire(entries({1: 0}), now=5, ttl=bad)


@pytest.mark.points(2)
def test_agrees_with_the_table(expire) -> None:
    rng = np.random.default_rng(4)
    table = DictTable(TableConfig(dim=2, ttl=30))
    for now in range(0, 200, 5):
        table.lookup(rng.integers(0, 40, size=5).astype(np.uint64), now=now)
    mine = dict(table._entries)  # a copy of the map, same Entry objects
    removed = expire(mine, now=200, ttl=30)
    before = set(table._entries)
    assert table.expire(200) == len(removed)
    assert sorted(before - set(table._entries)) == removed
