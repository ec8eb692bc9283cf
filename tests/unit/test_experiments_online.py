"""E3 and E5 (chapter 14) at smoke size: they run, and their numbers hang together."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from monolith_ref.cli import main
from monolith_ref.data.synthetic import StreamConfig, synthetic_stream
from monolith_ref.experiments.online import (
    ONLINE_CONFIGS,
    distinct_ids_per_shard,
    main_online,
    prepare,
    run_online_vs_batch,
    run_sync_cost,
    time_shards,
)

SMOKE = ONLINE_CONFIGS["smoke"]


def test_time_shards_cut_by_equal_durations() -> None:
    ev = synthetic_stream(StreamConfig(num_users=50, num_items=40, days=1, events_per_day=500, seed=0))
    start, end = int(ev.time[0]), int(ev.time[0]) + 86400
    parts = time_shards(ev, start, end, 4)
    assert sum(len(p) for p in parts) == len(ev)
    for i, p in enumerate(parts):
        if len(p):
            assert start + i * 21600 <= p.time[0] and p.time[-1] < start + (i + 1) * 21600
    with pytest.raises(ValueError, match="time order"):
        time_shards(ev[::-1], start, end, 2)


def test_prepare_splits_examples_by_availability() -> None:
    p = prepare(SMOKE, 0)
    assert len(p.batch) > 0 and len(p.online) > 0
    assert np.all(np.diff(p.available) >= 0) and p.available[0] >= p.start and p.available[-1] < p.end
    assert p.joiner["positives"] > 0 and p.joiner["negatives"] > 0
    direct = prepare(replace(SMOKE, pipeline=False), 0)
    assert len(direct.batch) + len(direct.online) == SMOKE.stream.days * SMOKE.stream.events_per_day


def test_e3_and_e5_smoke() -> None:
    cache: dict = {}
    r3 = run_online_vs_batch(SMOKE, progress=False, cache=cache)
    assert set(r3.batch_auc) == {str(n) for n in SMOKE.shards}
    for n in SMOKE.shards:
        assert all(0.3 < a < 1.0 for a in r3.batch_auc[str(n)] + r3.online_auc[str(n)])
        assert len(r3.curves[str(n)]["online"]) == n
    assert "online" in r3.table()
    r5 = run_sync_cost(SMOKE, progress=False, cache=cache)
    counted, synced = r5.checked[str(SMOKE.e5_n)]
    assert counted == synced  # the rows a sync sends are the distinct IDs trained since the last one
    assert r5.intervals_h == sorted(r5.intervals_h, reverse=True)
    assert r5.bytes_per_sync == sorted(r5.bytes_per_sync, reverse=True)  # shorter interval, smaller push
    assert 0 < r5.bytes_per_sync[-1] < r5.full_bytes
    assert r5.dense_bytes[str(1)] > r5.dense_bytes[str(SMOKE.e5_dense_every[-1])]
    assert "K =" in r5.table()


def test_distinct_ids_per_shard() -> None:
    ev = synthetic_stream(StreamConfig(num_users=30, num_items=20, days=1, events_per_day=200, seed=1))
    assert distinct_ids_per_shard([ev]) == [int(np.unique(ev.fields).size)]


def test_cli_runs_the_online_experiment(tmp_path, capsys) -> None:
    assert main(["experiment", "online", "--size", "smoke", "--which", "e3", "--seeds", "1",
                 "--out", str(tmp_path), "--quiet"]) == 0
    assert "E3" in capsys.readouterr().out
    data = json.loads((tmp_path / "online_e3.json").read_text())
    assert data["seeds"] == [0]
    assert (tmp_path / "online_e3.png").exists()
    assert main(["experiment", "online", "--which", "e1", "--size", "smoke"]) == 2
    with pytest.raises(ValueError):
        main_online(which="e9")
