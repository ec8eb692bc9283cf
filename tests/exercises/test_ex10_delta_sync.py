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
    sent = sync_and_check(delta_sync, table, replica)
    assert sent == 0 and replica == {}, f"syncing an empty, fresh table must send 0 rows and add none, sent {sent}"
    table.lookup(UNIVERSE[[0, 5, 5, -1, -2]], now=0)
    sent = sync_and_check(delta_sync, table, replica)
    assert sent == 4, f"the first sync after inserting 4 IDs (one twice) must send 4 rows, sent {sent}"
    before = dict(replica)
    table.lookup(UNIVERSE[:10], now=1, train=False)  # serving reads change nothing
    sent = sync_and_check(delta_sync, table, replica)
    assert sent == 0, f"after serving reads only, nothing is touched: the sync must send 0 rows, sent {sent}"
    assert all(replica[k] is before[k] for k in before), "a sync with nothing touched rewrote rows"


@pytest.mark.points(1)
def test_removed_ids_leave_the_replica(delta_sync, make) -> None:
    table = make(ttl=10)
    replica: dict[int, np.ndarray] = {}
    table.lookup(UNIVERSE[:6], now=0)
    sent = sync_and_check(delta_sync, table, replica)
    assert sent == 6, f"the first sync after inserting 6 IDs must send 6 rows, sent {sent}"
    table.lookup(UNIVERSE[:2], now=8)  # refresh two
    table.lookup(UNIVERSE[[20]], now=0)  # an ID that comes and goes between two syncs
    assert table.expire(15) == 5, "set-up: expire(15) removes the four not refreshed and the newcomer"
    sent = sync_and_check(delta_sync, table, replica)
    assert sent == 2, f"after 2 refreshes and 5 removals, the sync sends the 2 rows that still exist, sent {sent}"
    assert sorted(replica) == UNIVERSE[:2].tolist(), (
        f"IDs removed from the table must leave the replica: expected {UNIVERSE[:2].tolist()}, holds {sorted(replica)}")
    table.expire(100)  # everything goes
    sent = sync_and_check(delta_sync, table, replica)
    assert sent == 0 and replica == {}, (
        f"after every row expired, the sync sends 0 rows and empties the replica: sent {sent}, replica holds "
        f"{sorted(replica)}")


@pytest.mark.points(2)
def test_random_training_and_expiry(delta_sync, make) -> None:
    """Training lookups, gradients, serving reads and expiry in random order, with a sync
    every few steps; four seeded sequences per table. On purpose, some batches are empty and
    some time steps are exactly the TTL (or one second less or more)."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        table = make(dim=3, ttl=20, seed=seed)
        replica: dict[int, np.ndarray] = {}
        weights = 1.0 / np.arange(1, UNIVERSE.size + 1)
        weights /= weights.sum()
        now, sent_total, removed_total = 0, 0, 0
        next_sync = int(rng.integers(1, 5))
        for step in range(1, 151):
            edge = rng.random()
            now += int(rng.choice([19, 20, 21])) if edge < 0.05 else int(rng.integers(0, 6))  # ttl is 20
            op = rng.random()
            ids = rng.choice(UNIVERSE, size=0 if edge > 0.93 else int(rng.integers(1, 9)), p=weights)
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
        assert sent_total > 0 and removed_total > 0, "set-up: the sequence must exercise both sends and removals"


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
    sent = sync_and_check(delta_sync, table, replica)
    assert sent == 4, f"after gradients on 4 IDs, the sync must send exactly those 4 rows, sent {sent}"
    untouched = UNIVERSE[4:12].tolist()
    assert all(replica[k] is objects[k] for k in untouched), "untouched IDs were rewritten (a full copy?)"
