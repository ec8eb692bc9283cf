"""E6 (chapter 11): PS failures restored from snapshots, and the paper's arithmetic."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from monolith_ref.data.synthetic import StreamConfig, synthetic_stream
from monolith_ref.experiments.faults import (
    FAULT_CONFIGS,
    Failure,
    FaultExperimentConfig,
    failure_arithmetic,
    failure_schedule,
    main_faults,
    run_with_failures,
    sharded_copy,
)
from monolith_ref.experiments.online import time_shards
from monolith_ref.tables import ShardedTable
from monolith_ref.training import ModelConfig, TrainConfig, batch_stage, predict, train_step

SMOKE = FAULT_CONFIGS["smoke"]


def test_the_papers_arithmetic() -> None:
    a = failure_arithmetic()  # 1,000 PS, 0.01% per PS per day, daily snapshots, 15M daily users
    assert a.failures_per_day == pytest.approx(0.1) and a.days_between_failures == pytest.approx(10)
    assert a.share_per_failure == pytest.approx(0.001) and a.worst_lost_hours == 24
    assert a.users_per_failure == pytest.approx(15_000)
    assert a.mean_lost_hours == pytest.approx(12, rel=1e-3)
    assert a.lost_update_share == pytest.approx(1e-4 / 2, rel=1e-3)  # rate x half a day
    assert "one every 10 days" in a.text()
    # the long-run loss does not depend on the number of PS; it saturates below 100%
    assert failure_arithmetic(10).lost_update_share == pytest.approx(a.lost_update_share)
    heavy = failure_arithmetic(2, 50.0, 24)
    assert 0.9 < heavy.lost_update_share < 1.0 and heavy.mean_lost_hours < 12
    for bad in ({"num_ps": 0}, {"failure_rate_per_day": 0}, {"snapshot_interval_h": -1}):
        with pytest.raises(ValueError):
            failure_arithmetic(**bad)


def test_failure_schedule_is_seeded_sorted_and_in_range() -> None:
    day = 86_400
    a = failure_schedule(4, 3.0, 1000, 1000 + 2 * day, seed=1)
    assert a == failure_schedule(4, 3.0, 1000, 1000 + 2 * day, seed=1)
    assert a != failure_schedule(4, 3.0, 1000, 1000 + 2 * day, seed=2)
    assert [f.time for f in a] == sorted(f.time for f in a)
    assert all(1000 <= f.time < 1000 + 2 * day and 0 <= f.ps < 4 for f in a)
    counts = [len(failure_schedule(4, 3.0, 0, 2 * day, seed=s)) for s in range(40)]
    assert np.mean(counts) == pytest.approx(4 * 3.0 * 2, rel=0.15)
    assert failure_schedule(4, 0.0, 0, day, seed=0) == []


def test_fault_config_refuses_bad_values() -> None:
    for bad in ({"num_ps": (0,)}, {"intervals_h": (0,)}, {"failure_rate": -1.0}, {"seeds": ()}):
        with pytest.raises(ValueError):
            FaultExperimentConfig(SMOKE.online, **bad)
        with pytest.raises(ValueError):
            replace(SMOKE, **bad)


@pytest.fixture(scope="module")
def small():
    """A batch-trained model and four hours of stream after it."""
    ev = synthetic_stream(StreamConfig(num_users=150, num_items=80, new_items_per_day=10, days=1,
                                       events_per_day=1200, seed=4))
    t0 = int(ev.time[0])
    batch, rest = ev.split_by_time(t0 + 12 * 3600)
    torch.set_num_threads(1)
    model, opt = batch_stage(batch, ModelConfig(dim=4, hidden=(8,), seed=1),
                             TrainConfig(batch_size=100, lr=1e-2, progress=False))
    start = t0 + 12 * 3600
    hours = time_shards(rest, start, start + 4 * 3600, 4)
    return model, opt, hours, start


def test_a_sharded_copy_trains_bit_identically(small) -> None:
    model, opt, hours, _ = small
    a, a_opt = sharded_copy(model, opt, 3)
    b, b_opt = sharded_copy(model, opt, 5)
    assert isinstance(a.vectors.table, ShardedTable) and a.vectors.table.num_shards == 3
    for m, o in ((a, a_opt), (b, b_opt)):
        train_step(m, o, hours[0])
    assert np.array_equal(predict(a, hours[1]), predict(b, hours[1]))
    assert not np.array_equal(predict(a, hours[1]), predict(model, hours[1]))  # the original is untouched


def test_a_failed_ps_goes_back_to_its_snapshot_and_only_it(small) -> None:
    model, opt, hours, start = small
    setup = SMOKE.online
    m, o = sharded_copy(model, opt, 3)
    before = [m.vectors.table.shards[i].export() for i in range(3)]
    fail = Failure(start + 3 * 3600 + 10, ps=1)  # in the last hour; the only snapshot is the start
    run = run_with_failures(m, o, hours, start, 24, [fail], setup, seed=0)
    assert len(run.failures) == 1 and run.failures[0].lost_hours == 4.0 and run.failures[0].rows > 0
    after = [m.vectors.table.shards[i].export() for i in range(3)]
    assert all(np.array_equal(before[1][k], after[1][k]) for k in before[1])  # PS 1 lost all 4 hours
    assert not np.array_equal(before[0]["embeddings"], after[0]["embeddings"])  # the others kept theirs
    base = run_with_failures(*sharded_copy(model, opt, 3), hours, start, None, [], setup, seed=0)
    assert np.array_equal(base.probs, run.probs)  # the failure came after the last prediction
    assert len(base.hour_auc) == 4 and 0.0 < base.auc < 1.0


def test_a_second_failure_before_the_next_snapshot_loses_only_what_came_after(small) -> None:
    model, opt, hours, start = small
    fails = [Failure(start + 100, 0), Failure(start + 2 * 3600 + 5, 0), Failure(start + 2 * 3600 + 9, 1)]
    run = run_with_failures(*sharded_copy(model, opt, 2), hours, start, 24, fails, SMOKE.online, seed=0)
    assert [f.lost_hours for f in run.failures] == [1.0, 2.0, 3.0]


def test_run_with_failures_refuses_bad_input(small) -> None:
    model, opt, hours, start = small
    with pytest.raises(TypeError, match="ShardedTable"):
        run_with_failures(model, opt, hours, start, 1, [], SMOKE.online, seed=0)
    m, o = sharded_copy(model, opt, 2)
    with pytest.raises(ValueError, match="snapshot interval"):
        run_with_failures(m, o, hours, start, None, [Failure(start, 0)], SMOKE.online, seed=0)
    with pytest.raises(ValueError, match="outside"):
        run_with_failures(m, o, hours, start, 1, [Failure(start, 2)], SMOKE.online, seed=0)


def test_e6_smoke_end_to_end(tmp_path) -> None:
    text = main_faults("smoke", tmp_path, progress=False)
    data = json.loads((tmp_path / "faults_e6.json").read_text())
    assert (tmp_path / "faults_e6.png").stat().st_size > 0
    assert text.startswith("E6") and "paper (1000 PS" in text
    assert data["baseline_check"] == [True]  # no failures: the same predictions for every S
    keys = [f"{s}/{t}" for s in SMOKE.num_ps for t in SMOKE.intervals_h]
    assert sorted(data["delta"]) == sorted(keys)
    assert all(np.isfinite(data["delta"][k]).all() for k in keys)
    assert all(sum(data["failures"][k]) > 0 for k in keys)  # the raised rate makes failures happen
    for s in SMOKE.num_ps:  # the same failures for every interval; a longer interval loses more
        assert len({tuple(data["failures"][f"{s}/{t}"]) for t in SMOKE.intervals_h}) == 1
        assert data["lost_hours"][f"{s}/{SMOKE.intervals_h[0]}"] <= data["lost_hours"][f"{s}/{SMOKE.intervals_h[-1]}"]
    with pytest.raises(ValueError, match="size"):
        main_faults("huge", tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        main_faults("smoke", tmp_path, seeds=0)
