"""Grader for Exercise 5.2: TTL expiry with exact boundary behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.explain import raises
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
    rule = "an entry goes only when now - last_seen > ttl; return the removed keys sorted"
    got = expire(table, now=110, ttl=10)
    assert got == [2, 4], (  # 11 and 12 seconds unseen go; exactly 10 stays
        f"last_seen {{1: 100, 2: 99, 3: 101, 4: 98}}, now=110, ttl=10: expected [2, 4] (unseen 11 and 12 s; "
        f"1 is unseen exactly 10 s and stays), got {got!r}. {rule}")
    assert sorted(table) == [1, 3], f"the removed keys must leave the dict: [1, 3] remain expected, got {sorted(table)}"
    got = expire(table, now=111, ttl=10)
    assert got == [1], f"last_seen {{1: 100, 3: 101}}, now=111, ttl=10: expected [1] (unseen 11 s), got {got!r}. {rule}"
    got = expire(table, now=111, ttl=10)
    assert got == [], f"called again at the same now, nothing is left to remove: expected [], got {got!r}"


@pytest.mark.points(1)
def test_zero_ttl_and_future_rows(expire) -> None:
    table = entries({1: 5, 2: 6, 3: 9})
    got = expire(table, now=6, ttl=0)
    assert got == [1], (
        f"last_seen {{1: 5, 2: 6, 3: 9}}, now=6, ttl=0: only 1 is unseen for more than 0 s; expected [1], got {got!r}")
    assert sorted(table) == [2, 3], f"a row seen 'in the future' is not stale: [2, 3] must remain, got {sorted(table)}"


@pytest.mark.points(1)
def test_bad_ttl(expire) -> None:
    for bad in (-1, 1.5, None):
        with raises(ValueError, f"expire_entries(..., ttl={bad!r}) must refuse a ttl that is not an int >= 0"):
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
    want = table.expire(200)
    gone = sorted(before - set(table._entries))
    assert removed == gone and want == len(removed), (
        f"now=200, ttl=30 on a DictTable's entries: the table removes {gone}, yours returned {removed!r} "
        f"(rows last seen at 170 are unseen exactly 30 s and stay)")
