"""Serving replicas and parameter sync (chapter 10)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from monolith_ref.data.synthetic import StreamConfig, synthetic_stream
from monolith_ref.models import DeepFMHead
from monolith_ref.serving import (
    ParameterSync,
    ServingReplica,
    ServingTable,
    SparseDelta,
    SyncUpdate,
    replica_for,
)
from monolith_ref.training import ModelConfig, TrainConfig, batch_stage, build_deepfm_for, online_stage, predict, train

QUIET = TrainConfig(progress=False, batch_size=256)


@pytest.fixture(scope="module")
def events():
    return synthetic_stream(StreamConfig(num_users=400, num_items=200, new_items_per_day=20, days=2,
                                         events_per_day=3000, seed=3))


def _delta(ids, rows, removed=()):
    return SparseDelta(np.asarray(ids, dtype=np.uint64), np.asarray(rows, dtype=np.float32),
                       np.asarray(removed, dtype=np.uint64))


# --------------------------------------------------------------------------- ServingTable


def test_serving_table_upserts_reads_and_removes() -> None:
    t = ServingTable(dim=2, capacity=2)
    t.apply(_delta([5, 7, 2**64 - 1], [[1, 2], [3, 4], [5, 6]]))
    assert len(t) == 3
    np.testing.assert_array_equal(t.lookup([7, 5, 9, 2**64 - 1]), [[3, 4], [1, 2], [0, 0], [5, 6]])
    t.apply(_delta([5], [[9, 9]], removed=[7, 123]))
    assert len(t) == 2
    np.testing.assert_array_equal(t.lookup([5, 7]), [[9, 9], [0, 0]])
    state = t.export()
    np.testing.assert_array_equal(state["ids"], np.array([5, 2**64 - 1], dtype=np.uint64))


def test_serving_table_grows_and_reuses_rows() -> None:
    t = ServingTable(dim=1, capacity=1, max_kicks=1)
    ids = np.arange(1, 20_001, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    t.apply(_delta(ids, ids.astype(np.float64)[:, None] % 1000))
    assert len(t) == ids.size
    np.testing.assert_array_equal(t.lookup(ids)[:, 0], (ids.astype(np.float64) % 1000).astype(np.float32))
    capacity = t.embeddings.shape[0]
    t.apply(_delta([], np.zeros((0, 1)), removed=ids[:500]))
    t.apply(_delta(ids[:500] + np.uint64(1), np.ones((500, 1))))
    assert t.embeddings.shape[0] == capacity  # freed rows were reused


@pytest.mark.parametrize("bad", [
    dict(ids=[1, 2], rows=[[1.0, 2.0]]),           # one row for two IDs
    dict(ids=[1], rows=[[1.0, 2.0, 3.0]]),         # wrong width
    dict(ids=[-1], rows=[[1.0, 2.0]]),             # negative ID
])
def test_serving_table_rejects_bad_deltas_and_keeps_state(bad) -> None:
    t = ServingTable(dim=2)
    t.apply(_delta([3], [[1, 1]]))
    with pytest.raises(ValueError):
        t.apply(SparseDelta(np.asarray(bad["ids"]), np.asarray(bad["rows"], dtype=np.float32),
                            np.zeros(0, dtype=np.uint64)))
    assert len(t) == 1 and t.lookup([3])[0, 0] == 1


def test_serving_table_rejects_bad_settings() -> None:
    for kwargs in (dict(dim=0), dict(dim=2, capacity=0), dict(dim=True)):
        with pytest.raises(ValueError):
            ServingTable(**kwargs)


# --------------------------------------------------------------------------- sync


def test_replica_matches_the_trainer_bit_for_bit_after_each_sync(events) -> None:
    model = build_deepfm_for(events, ModelConfig(ttl=3 * 3600))
    replica = replica_for(model)
    sync = ParameterSync(model, replica)
    for i, part in enumerate(events.chunks(6)):
        train(model, part, QUIET)
        model.vectors.table.expire(int(part.time[-1]))
        model.weights.table.expire(int(part.time[-1]))
        sync.sync(int(part.time[-1]))
        for name, table in (("vectors", model.vectors.table), ("weights", model.weights.table)):
            ours, theirs = table.export(), replica.tables[name].export()
            np.testing.assert_array_equal(ours["ids"], theirs["ids"])
            np.testing.assert_array_equal(ours["embeddings"], theirs["embeddings"])
        np.testing.assert_array_equal(predict(model, events[:500]), replica.predict(events[:500]))
    assert any(sum(r.removed.values()) for r in sync.reports)  # expiry reached serving


def test_sync_sends_only_touched_rows_and_counts_bytes(events) -> None:
    model = build_deepfm_for(events)
    sync = ParameterSync(model, replica_for(model), dense_every=3)
    first, second = events[:2000], events[2000:2300]
    train(model, first, QUIET)
    full = sync.sync(int(first.time[-1]))
    assert full.rows["vectors"] == len(model.vectors.table)  # the first sync is a full copy
    assert full.dense_bytes > 0
    train(model, second, QUIET)
    report = sync.sync(int(second.time[-1]))
    touched = np.unique(second.fields).size
    assert report.rows == {"vectors": touched, "weights": touched}
    dim = model.head.dim
    assert report.sparse_bytes == touched * (8 + 4 * dim) + touched * (8 + 4)
    assert report.dense_bytes == 0  # dense every 3 syncs: versions 1, 4, 7, ...
    assert report.full_bytes == sum(len(t) * (8 + 4 * t.config.dim) for t in
                                    (model.vectors.table, model.weights.table)) + full.dense_bytes
    assert 0 < report.fraction < 1
    assert [sync.sync(0).dense_bytes > 0 for _ in range(4)] == [False, True, False, False]


def test_dense_lags_until_its_sync(events) -> None:
    model = build_deepfm_for(events)
    replica = replica_for(model)
    sync = ParameterSync(model, replica, dense_every=2)
    sync.sync(0)
    train(model, events[:1000], QUIET)
    sync.sync(1)  # sparse only
    before = {k: v.clone() for k, v in replica._copies[replica._active].head.state_dict().items()}
    assert all(torch.equal(before[k], v) for k, v in build_deepfm_for(events).head.state_dict().items())
    sync.sync(2)  # dense too
    np.testing.assert_array_equal(predict(model, events[:300]), replica.predict(events[:300]))


def test_parameter_sync_validates_dense_every(events) -> None:
    model = build_deepfm_for(events)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            ParameterSync(model, replica_for(model), dense_every=bad)


def test_replica_refuses_old_versions() -> None:
    head = DeepFMHead(num_fields=2, dim=2)
    replica = ServingReplica(head)
    empty = {"vectors": _delta([], np.zeros((0, 2))), "weights": _delta([], np.zeros((0, 1)))}
    replica.apply(SyncUpdate(version=1, time=0, sparse=empty))
    with pytest.raises(ValueError, match="not newer"):
        replica.apply(SyncUpdate(version=1, time=0, sparse=empty))


def test_no_request_sees_a_half_applied_sync() -> None:
    """Readers hammer the replica while syncs rewrite every row; each request must see one
    version: every row it reads carries that version's value."""
    dim, n = 4, 2000
    ids = np.arange(1, n + 1, dtype=np.uint64)
    replica = ServingReplica(DeepFMHead(num_fields=1, dim=dim), capacity=n)

    def update(v: int) -> SyncUpdate:
        rows = np.full((n, dim), float(v), dtype=np.float32)
        return SyncUpdate(version=v, time=v, sparse={"vectors": _delta(ids, rows), "weights": _delta([], np.zeros((0, 1)))})

    replica.apply(update(1))
    stop = threading.Event()
    seen: list[int] = []
    mixed: list[tuple[int, set]] = []

    def reader() -> None:
        while not stop.is_set():
            rows, version = replica.lookup("vectors", ids)
            values = set(np.unique(rows).tolist())
            if values != {float(version)}:
                mixed.append((version, values))
            seen.append(version)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for v in range(2, 60):
        replica.apply(update(v))
        if v % 5 == 0:  # on a busy machine, let the readers catch up now and then
            deadline = time.monotonic() + 5.0
            while v not in seen and time.monotonic() < deadline:
                time.sleep(0.001)
    stop.set()
    for t in threads:
        t.join()
    assert not mixed
    assert len(set(seen)) > 5  # readers really ran across many syncs
    assert replica.applied == list(range(1, 60))


# --------------------------------------------------------------------------- the online stage


def test_online_stage_runs_algorithm_1(events) -> None:
    batch, rest = events[:3000], events[3000:]
    model, opt = batch_stage(batch, train_config=QUIET)
    frozen = predict(model, rest)
    shards = rest.chunks(4)
    sync = ParameterSync(model, replica_for(model))
    still = online_stage(model, shards, sync, opt, QUIET, learn=False)
    # batch-only: serving never changes (equal up to float rounding: the batches differ in size)
    np.testing.assert_allclose(still.probs, frozen, rtol=1e-5, atol=1e-6)
    assert [r.rows["vectors"] for r in still.syncs[1:]] == [0, 0, 0]
    live = online_stage(model, shards, sync, opt, QUIET, learn=True)
    first = len(shards[0])  # shard 0 is scored before any online training
    np.testing.assert_array_equal(live.probs[:first], still.probs[:first])
    assert np.abs(live.probs[first:] - still.probs[first:]).max() > 1e-3
    assert len(live.shard_auc) == 4 and sum(live.shard_size) == len(rest)
    assert 0.4 < live.mean_auc < 1.0 and 0.4 < live.auc < 1.0
    with pytest.raises(ValueError):
        online_stage(model, [], sync)


def test_fork_trainer_copies_do_not_share_state(events) -> None:
    from monolith_ref.training import fork_trainer, train_step

    model, opt = batch_stage(events[:1000], train_config=QUIET)
    twin, twin_opt = fork_trainer(model, opt)
    before = {k: v.clone() for k, v in model.head.state_dict().items()}
    moments = [s["exp_avg"].clone() for s in opt.state.values()]
    rows = model.vectors.table.export()
    train_step(twin, twin_opt, events[1000:1500])  # trains the twin only
    assert all(torch.equal(before[k], v) for k, v in model.head.state_dict().items())
    assert all(torch.equal(m, s["exp_avg"]) for m, s in zip(moments, opt.state.values()))
    np.testing.assert_array_equal(rows["embeddings"], model.vectors.table.export()["embeddings"])
    assert len(twin.vectors.table) >= len(model.vectors.table)
