"""Grader for Exercise 10.1: a touched-key delta sync into a plain dict."""

from __future__ import annotations

import numpy as np
import pytest

from monolith_ref.optim import Adagrad
from monolith_ref.tables import DictTable, NumbaTable, TableConfig

pytestmark = pytest.mark.exercise("10.1", title="Touched-key delta sync")

TABLES = {"DictTable": DictTable, "NumbaTable": NumbaTable}
# small IDs, and two near the top of the uint64 range (they must survive as Python ints)
UNIVERSE = np.array(list(range(1, 59)) + [2**63, 2**64 - 1], dtype=np.uint64)


@pytest.fixture
def delta_sync(mod):
    return mod.delta_sync


@pytest.fixture(params=sorted(TABLES))
def make(request):
    cls = TABLES[request.param]

    def _make(dim: int = 3, ttl: int | None = 20, seed: int = 0):
        return cls(TableConfig(dim=dim, seed=seed, ttl=ttl, optimizer=Adagrad(lr=0.1)))

    return _make


def assert_matches(replica: dict, table) -> None:
    """The replica holds exactly the table's rows: same IDs (Python ints), same float32 rows."""
    state = table.export()
    ids = state["ids"].tolist()
    assert all(type(k) is int for k in replica), "replica keys must be Python ints"
    assert sorted(replica) == ids, "the replica's IDs differ from the table's"
    for key, row in zip(ids, state["embeddings"]):
        got = replica[key]
        assert isinstance(got, np.ndarray) and got.dtype == np.float32, f"row of {key} is not a float32 array"
        assert got.shape == (table.config.dim,), f"row of {key} has shape {got.shape}"
        assert np.array_equal(got, row), f"row of {key} differs from the table's"


def sync_and_check(delta_sync, table, replica: dict) -> int:
    """One sync, checked: rows sent = touched IDs that still exist; the hand-off is consumed."""
    touched = table.touched_ids()
    expected = int(table.contains(touched).sum()) if touched.size else 0
    sent = delta_sync(table, replica)
    assert isinstance(sent, (int, np.integer)) and not isinstance(sent, bool), "return an int"
    assert sent == expected, f"sent {sent} rows; {expected} touched IDs still exist"
    assert table.touched_ids().size == 0, "call table.pop_touched() to take the touched keys"
    assert_matches(replica, table)
    return int(sent)


@pytest.mark.points(1)
def test_a_fresh_table_then_nothing_touched(delta_sync, make) -> None:
    table = make()
    replica: dict[int, np.ndarray] = {}
    assert sync_and_check(delta_sync, table, replica) == 0 and replica == {}  # an empty, fresh table
    table.lookup(UNIVERSE[[0, 5, 5, -1, -2]], now=0)
    assert sync_and_check(delta_sync, table, replica) == 4  # the first sync sends every row
    before = dict(replica)
    table.lookup(UNIVERSE[:10], now=1, train=False)  # serving reads change nothing
    assert sync_and_check(delta_sync, table, replica) == 0
    assert all(replica[k] is before[k] for k in before), "a sync with nothing touched rewrote rows"


@pytest.mark.points(1)
def test_removed_ids_leave_the_replica(delta_sync, make) -> None:
    table = make(ttl=10)
    replica: dict[int, np.ndarray] = {}
    table.lookup(UNIVERSE[:6], now=0)
    assert sync_and_check(delta_sync, table, replica) == 6
    table.lookup(UNIVERSE[:2], now=8)  # refresh two
    table.lookup(UNIVERSE[[20]], now=0)  # an ID that comes and goes between two syncs
    assert table.expire(15) == 5  # the four not refreshed, and the newcomer
    assert sync_and_check(delta_sync, table, replica) == 2
    assert sorted(replica) == UNIVERSE[:2].tolist()
    table.expire(100)  # everything goes
    assert sync_and_check(delta_sync, table, replica) == 0 and replica == {}


@pytest.mark.points(2)
def test_random_training_and_expiry(delta_sync, make) -> None:
    """Training lookups, gradients, serving reads and expiry in random order, with a sync
    every few steps; four seeded sequences per table."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        table = make(dim=3, ttl=20, seed=seed)
        replica: dict[int, np.ndarray] = {}
        weights = 1.0 / np.arange(1, UNIVERSE.size + 1)
        weights /= weights.sum()
        now, sent_total, removed_total = 0, 0, 0
        next_sync = int(rng.integers(1, 5))
        for step in range(1, 151):
            now += int(rng.integers(0, 6))
            op = rng.random()
            ids = rng.choice(UNIVERSE, size=int(rng.integers(1, 9)), p=weights)
            if op < 0.55:
                table.lookup(ids, now=now)
            elif op < 0.8:
                grads = rng.standard_normal((ids.size, 3)).astype(np.float32)
                table.apply_gradients(ids, grads)  # absent IDs are ignored by the table
            elif op < 0.9:
                table.lookup(ids, now=now, train=False)
            else:
                removed_total += table.expire(now)
            if step == next_sync:
                sent_total += sync_and_check(delta_sync, table, replica)
                next_sync += int(rng.integers(1, 5))
        assert sent_total > 0 and removed_total > 0  # the sequence really exercised both paths


@pytest.mark.points(1)
def test_rows_are_copies_and_untouched_entries_stay(delta_sync, make) -> None:
    table = make(ttl=None)
    replica: dict[int, np.ndarray] = {}
    table.lookup(UNIVERSE[:12], now=0)
    sync_and_check(delta_sync, table, replica)
    snapshot = {k: v.copy() for k, v in replica.items()}
    objects = dict(replica)
    for _ in range(3):  # train on without a sync: the replica must not move
        table.apply_gradients(UNIVERSE[:4], np.ones((4, 3), dtype=np.float32))
    assert all(np.array_equal(replica[k], snapshot[k]) for k in snapshot), (
        "the replica changed without a sync: store copies of the rows, not views of the table")
    assert sync_and_check(delta_sync, table, replica) == 4
    untouched = UNIVERSE[4:12].tolist()
    assert all(replica[k] is objects[k] for k in untouched), "untouched IDs were rewritten (a full copy?)"
