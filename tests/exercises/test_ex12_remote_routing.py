"""Grader for Exercise 12.1: routing a batch to remote shards and reassembling the rows in order.

No RPC here: the "remote" shards are DictTables (answered from a thread pool, or at once) and
the futures are stand-ins that record when they were made and waited for.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conformance.explain import array_diff, raises

from monolith_ref.data import zipf_ids
from monolith_ref.tables import DictTable, ShardedTable, TableConfig
from monolith_ref.tables.routing import route

pytestmark = pytest.mark.exercise("12.1", title="Remote shard routing and reassembly")

CFG = TableConfig(dim=4, seed=6)


@pytest.fixture
def gather_rows(mod):
    return mod.gather_rows


class Recorded:
    """A future that is already done, and writes down when it is waited for."""

    def __init__(self, shard: int, rows: np.ndarray | None, log: list, error: Exception | None = None) -> None:
        self.shard, self.rows, self.log, self.error = shard, rows, log, error

    def wait(self) -> np.ndarray:
        self.log.append(("wait", self.shard))
        if self.error is not None:
            raise self.error
        return self.rows


class PoolFuture:
    """A thread pool's future with the ``wait()`` of torch's futures."""

    def __init__(self, future) -> None:
        self.future = future

    def wait(self) -> np.ndarray:
        return self.future.result()


def recording_call(shards: list, log: list, fail: int | None = None):
    def call(s: int, ids: np.ndarray):
        log.append(("call", s, np.array(ids, copy=True)))
        rows = shards[s].lookup(ids, now=0)
        return Recorded(s, rows, log, ConnectionError(f"ps{s} died") if s == fail else None)

    return call


@pytest.mark.points(1)  # per shard count: 3 points
@pytest.mark.parametrize("num_shards", [1, 3, 5])
def test_rows_equal_the_single_table_and_the_sharded_table(gather_rows, num_shards) -> None:
    sharded = ShardedTable(CFG, num_shards=num_shards, shard_factory=DictTable, threads=1)
    ids = zipf_ids(3000, 400, seed=num_shards)  # many repeats
    with ThreadPoolExecutor(num_shards) as pool:
        out = gather_rows(ids, num_shards, lambda s, part: PoolFuture(pool.submit(sharded.shards[s].lookup, part, 0)),
                          CFG.dim, seed=CFG.seed)
    assert out.dtype == np.float32 and out.shape == (ids.size, CFG.dim), (
        f"gather_rows of {ids.size} IDs must return float32 rows of shape ({ids.size}, {CFG.dim}), got "
        f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
    single = DictTable(CFG).lookup(ids, now=0)
    assert np.array_equal(out, single), (
        f"{num_shards} shards, 3000 Zipf IDs with repeats: rows must equal one table's, in batch order: "
        f"{array_diff(single, out)}")
    sharded = ShardedTable(CFG, num_shards=num_shards, threads=1).lookup(ids, now=0)
    assert np.array_equal(out, sharded), f"rows must equal ShardedTable's: {array_diff(sharded, out)}"


@pytest.mark.points(2)
def test_one_call_per_non_empty_shard_with_its_ids_in_batch_order(gather_rows) -> None:
    shards = [DictTable(CFG) for _ in range(4)]
    ids = np.array([9, 4, 9, 2**64 - 1, 17, 4, 4, 123456789], dtype=np.uint64)
    log: list = []
    gather_rows(ids, 4, recording_call(shards, log), CFG.dim, seed=CFG.seed)
    calls = [entry for entry in log if entry[0] == "call"]
    where = route(ids, 4, CFG.seed)
    owners = sorted(set(where.tolist()))
    assert [c[1] for c in calls] == owners, "one call per shard that owns IDs, in shard order"
    for _, s, sent in calls:
        assert sent.dtype == np.uint64 and np.array_equal(sent, ids[where == s]), (
            f"shard {s} must be sent its IDs in batch order, repeats kept, as uint64: expected "
            f"{ids[where == s].tolist()}, sent {sent.tolist()} ({sent.dtype})")


@pytest.mark.points(2)
def test_every_call_is_made_before_any_wait(gather_rows) -> None:
    shards = [DictTable(CFG) for _ in range(3)]
    log: list = []
    ids = np.arange(60, dtype=np.uint64)
    gather_rows(ids, 3, recording_call(shards, log), CFG.dim, seed=CFG.seed)
    kinds = [entry[0] for entry in log]
    assert kinds == ["call"] * 3 + ["wait"] * 3, "send everything first, then wait: the shards work in parallel"


@pytest.mark.points(1)
def test_empty_batch_empty_shards_and_bad_shard_count(gather_rows) -> None:
    shards = [DictTable(CFG) for _ in range(8)]
    log: list = []
    out = gather_rows(np.empty(0, dtype=np.uint64), 8, recording_call(shards, log), CFG.dim, seed=CFG.seed)
    assert out.shape == (0, CFG.dim) and out.dtype == np.float32 and log == [], (
        f"an empty batch must return float32 rows of shape (0, {CFG.dim}) and call no shard: got "
        f"{out.dtype} {out.shape}, {len(log)} calls/waits")
    ids = np.array([5, 5, 5], dtype=np.uint64)  # one shard owns the whole batch, seven own nothing
    out = gather_rows(ids, 8, recording_call(shards, log), CFG.dim, seed=CFG.seed)
    calls = len([e for e in log if e[0] == "call"])
    assert calls == 1, f"IDs [5, 5, 5] on 8 shards: only the owner is called (once), {calls} calls were made"
    want = DictTable(CFG).lookup(ids, now=0)
    assert np.array_equal(out, want), f"IDs [5, 5, 5]: every position reads 5's row: {array_diff(want, out)}"
    with raises(ValueError, "gather_rows(..., num_shards=0, ...) must refuse a shard count below 1"):
        gather_rows(ids, 0, recording_call(shards, log), CFG.dim)


@pytest.mark.points(2)
def test_a_failed_shard_is_raised_after_waiting_for_all(gather_rows) -> None:
    shards = [DictTable(CFG) for _ in range(3)]
    ids = np.arange(90, dtype=np.uint64)
    owners = sorted(set(route(ids, 3, CFG.seed).tolist()))
    assert owners == [0, 1, 2], "set-up: 90 IDs should reach all 3 shards"
    log: list = []
    with raises(ConnectionError, "when shard 0's future fails, gather_rows must raise its error", match="ps0 died"):
        gather_rows(ids, 3, recording_call(shards, log, fail=0), CFG.dim, seed=CFG.seed)
    assert sorted(e[1] for e in log if e[0] == "wait") == [0, 1, 2], "no call may be left running"
