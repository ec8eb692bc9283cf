"""The resumable online trainer (chapter 11): batches cut by log offsets, snapshot first, commit after."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from monolith_ref.checkpoint import MANIFEST, BrokenSnapshotWarning, SnapshotMismatchError, list_snapshots
from monolith_ref.data.synthetic import StreamConfig, synthetic_stream
from monolith_ref.resume import EMPTY_DIGEST, OnlineTrainer, request_digest
from monolith_ref.streaming.codec import decode_examples
from monolith_ref.streaming.joiner import JoinerConfig, OnlineJoiner
from monolith_ref.streaming.log import Log
from monolith_ref.streaming.pipeline import EXAMPLES, run_pipeline
from monolith_ref.streaming.simulate import ArrivalConfig, arrivals
from monolith_ref.training import ModelConfig, TrainConfig

B = 40


@pytest.fixture(scope="module")
def source():
    """The examples topic of a small pipeline run, as records to copy into fresh logs."""
    events = synthetic_stream(StreamConfig(num_users=200, num_items=120, new_items_per_day=10, days=1,
                                           events_per_day=900, seed=2))
    log = Log()
    with OnlineJoiner(JoinerConfig(window=1800)) as joiner:
        run_pipeline(events, arrivals(events, ArrivalConfig(seed=2)), joiner, log)
    records = log.read(EXAMPLES, 0, 0, 10**6)
    return events.field_names, events.dense_names, records


def _log(source, upto: int | None = None) -> Log:
    log = Log()
    log.create_topic(EXAMPLES, 1)
    _append(log, source[2][:upto])
    return log


def _append(log: Log, records) -> None:
    log.append_many(EXAMPLES, [r.value for r in records], keys=[r.key for r in records],
                    timestamps=[r.timestamp for r in records])


def _trainer(source, log: Log, snaps: Path, **kw) -> OnlineTrainer:
    fields, dense, _ = source
    return OnlineTrainer(log, snaps, ModelConfig(dim=8, hidden=(16,), seed=4), TrainConfig(progress=False),
                         fields, dense, batch_size=B, **kw)


def _state(t: OnlineTrainer) -> dict:
    out = {f"v/{k}": v for k, v in t.model.vectors.table.export().items()}
    out.update({f"w/{k}": v for k, v in t.model.weights.table.export().items()})
    out.update({f"h/{k}": v for k, v in t.model.head.state_dict().items()})
    for i, s in t.optimizer.state_dict()["state"].items():
        out.update({f"o/{i}/{k}": v for k, v in s.items()})
    return out


def _assert_same(a: OnlineTrainer, b: OnlineTrainer) -> None:
    x, y = _state(a), _state(b)
    assert x.keys() == y.keys()
    for k in x:
        ok = torch.equal(x[k], y[k]) if isinstance(x[k], torch.Tensor) else np.array_equal(x[k], y[k])
        assert ok, k
    assert (a.progress.step, a.progress.offset, a.progress.examples, a.progress.digest) == \
           (b.progress.step, b.progress.offset, b.progress.examples, b.progress.digest)


@pytest.fixture(scope="module")
def reference(source, tmp_path_factory):
    t = _trainer(source, _log(source), tmp_path_factory.mktemp("ref"), snapshot_every=10**6)
    t.run()
    return t


def test_an_uninterrupted_run_trains_every_example_once(source, reference) -> None:
    records = source[2]
    p = reference.progress
    assert p.offset == p.examples == len(records) and p.step == -(-len(records) // B)
    digest = EMPTY_DIGEST
    for start in range(0, len(records), B):
        ev = decode_examples([r.value for r in records[start : start + B]], source[0], source[1]).events
        digest = request_digest(digest, ev.request_id)
    assert p.digest == digest


@pytest.mark.parametrize("every, pieces", [(1, 7), (3, 5)])
def test_stopped_and_resumed_runs_end_bit_identical(source, reference, tmp_path, every, pieces) -> None:
    log, runs = _log(source), 0
    while True:
        t = _trainer(source, log, tmp_path, snapshot_every=every)
        runs += 1
        if t.run(max_batches=pieces).offset == log.end_offset(EXAMPLES, 0):
            break
    assert runs > 2 and t.progress.resumed_from is not None
    _assert_same(t, reference)


def test_work_since_the_last_snapshot_is_redone_not_lost(source, reference, tmp_path) -> None:
    """A crash between snapshots (train_batch without run's final snapshot) loses work, not
    data: the next trainer restores the last snapshot and replays the log from its offset."""
    log = _log(source)
    t = _trainer(source, log, tmp_path, snapshot_every=4)
    for _ in range(6):
        t.train_batch()
    assert t.progress.step == 6 and log.committed("trainer", EXAMPLES, 0) == 4 * B  # commit follows snapshots
    assert [p.name for p in list_snapshots(tmp_path)] == ["step-000000000004"]
    resumed = _trainer(source, log, tmp_path, snapshot_every=4)  # "the process died"
    assert resumed.progress.step == 4 and resumed.consumer.position(EXAMPLES, 0) == 4 * B
    resumed.run()
    _assert_same(resumed, reference)


def test_the_snapshot_not_the_group_commit_decides_where_to_start(source, reference, tmp_path) -> None:
    log = _log(source)
    log.commit("trainer", {(EXAMPLES, 0): log.end_offset(EXAMPLES, 0)})  # e.g. read_examples committed it all
    t = _trainer(source, log, tmp_path)
    assert t.progress.step == 0 and t.consumer.position(EXAMPLES, 0) == 0
    t.run()
    _assert_same(t, reference)


def test_commits_follow_each_snapshot(source, tmp_path) -> None:
    log = _log(source)
    t = _trainer(source, log, tmp_path, keep=2)
    for _ in range(3):
        t.train_batch()
        meta = json.loads((list_snapshots(tmp_path)[-1] / MANIFEST).read_text())["meta"]
        assert meta["offsets"] == [[EXAMPLES, 0, t.progress.offset]]
        assert log.committed("trainer", EXAMPLES, 0) == t.progress.offset
        assert meta["extra"]["examples"] == t.progress.examples and meta["extra"]["digest"] == t.progress.digest
    assert len(list_snapshots(tmp_path)) == 2


def test_a_corrupt_newest_snapshot_is_skipped_and_set_aside(source, reference, tmp_path) -> None:
    log = _log(source)
    _trainer(source, log, tmp_path).run(max_batches=5)
    newest = list_snapshots(tmp_path)[-1]
    victim = next(p for p in newest.iterdir() if p.name.endswith(".npy"))
    victim.write_bytes(victim.read_bytes()[:-1])
    (tmp_path / ".tmp-step-000000000006-dead").mkdir()  # a writer killed mid-snapshot
    with pytest.warns(BrokenSnapshotWarning, match=newest.name):
        t = _trainer(source, log, tmp_path)
    assert t.progress.step == 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [f".corrupt-{newest.name}"]
    t.run()
    _assert_same(t, reference)


def test_the_log_may_grow_between_runs(source, tmp_path) -> None:
    records = source[2]
    cut = 5 * B + 7  # the first run ends on a short batch
    log = _log(source, cut)
    first = _trainer(source, log, tmp_path).run()
    assert first.offset == first.examples == cut
    _append(log, records[cut:])
    second = _trainer(source, log, tmp_path).run()
    assert second.offset == second.examples == len(records) and second.resumed_from == "step-000000000006"


def test_partial_false_trains_only_full_batches_and_run_twice_is_harmless(source, tmp_path) -> None:
    log = _log(source, 3 * B + 5)
    t = _trainer(source, log, tmp_path, snapshot_every=2)
    p = t.run(partial=False)
    assert p.step == 3 and p.offset == 3 * B and [s.name for s in list_snapshots(tmp_path)][-1] == "step-000000000003"
    assert t.run(partial=False).snapshots_written == 2  # nothing new: no second snapshot of step 3
    assert t.run().offset == 3 * B + 5  # the short tail, when asked for


def test_a_snapshot_of_another_model_is_refused(source, tmp_path) -> None:
    log = _log(source)
    _trainer(source, log, tmp_path).run(max_batches=1)
    fields, dense, _ = source
    with pytest.raises(SnapshotMismatchError, match="vectors.dim"):
        OnlineTrainer(log, tmp_path, ModelConfig(dim=4, hidden=(16,), seed=4), TrainConfig(), fields, dense)


def test_request_digest_is_order_sensitive() -> None:
    a, b = np.array([1, 2], dtype=np.uint64), np.array([2, 1], dtype=np.uint64)
    assert request_digest(EMPTY_DIGEST, a) != request_digest(EMPTY_DIGEST, b)
    assert request_digest(request_digest(EMPTY_DIGEST, a[:1]), a[1:]) != request_digest(EMPTY_DIGEST, a)
    assert len(request_digest(EMPTY_DIGEST, a)) == 32


@pytest.mark.parametrize("kw, match", [({"snapshot_every": 0}, "snapshot_every"), ({"keep": 0}, "keep"),
                                       ({"batch_size": 0}, "batch_size")])
def test_bad_settings_are_refused(source, tmp_path, kw, match) -> None:
    fields, dense, _ = source
    args = {"batch_size": B, **kw}
    with pytest.raises(ValueError, match=match):
        OnlineTrainer(_log(source), tmp_path, ModelConfig(dim=8), TrainConfig(), fields, dense, **args)


def test_a_topic_with_two_partitions_is_refused(source, tmp_path) -> None:
    log = Log()
    log.create_topic("wide", 2)
    with pytest.raises(ValueError, match="one-partition"):
        OnlineTrainer(log, tmp_path, ModelConfig(dim=8), TrainConfig(), source[0], source[1], topic="wide")
