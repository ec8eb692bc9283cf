"""The pipeline: events -> log -> joiner -> log -> trainer (chapter 9)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from monolith_ref.data.synthetic import StreamConfig, synthetic_stream
from monolith_ref.streaming.codec import encode_features
from monolith_ref.streaming.joiner import JoinerConfig, OnlineJoiner
from monolith_ref.streaming.log import Consumer, Log
from monolith_ref.streaming.pipeline import (
    ACTIONS,
    EXAMPLES,
    FEATURES,
    decode_action,
    encode_actions,
    publish,
    read_examples,
    run_joiner,
    run_pipeline,
    time_ordered,
)
from monolith_ref.streaming.simulate import ArrivalConfig, arrivals


@pytest.fixture(scope="module")
def events():
    return synthetic_stream(StreamConfig(num_users=300, num_items=150, new_items_per_day=10, days=2,
                                         events_per_day=2500, seed=5))


def test_actions_round_trip() -> None:
    values = encode_actions(np.array([1, 2**64 - 1], dtype=np.uint64), np.array([10, 20]), np.array([1.0, 0.5]))
    assert [decode_action(v) for v in values] == [(1, 10, 1.0), (2**64 - 1, 20, 0.5)]
    with pytest.raises(ValueError, match="bytes"):
        decode_action(b"short")


def test_time_ordered_merges_partitions_and_topics() -> None:
    log = Log()
    log.create_topic("a", 3)
    log.create_topic("b", 2)
    rng = np.random.default_rng(0)
    ta, tb = np.sort(rng.integers(0, 1000, 700)), np.sort(rng.integers(0, 1000, 400))
    log.append_many("a", [b"a"] * 700, keys=[bytes([i % 9]) for i in range(700)], timestamps=ta.tolist())
    log.append_many("b", [b"b"] * 400, keys=[bytes([i % 4]) for i in range(400)], timestamps=tb.tolist())
    out = list(time_ordered(Consumer(log, "g", ["a", "b"]), log, batch=50))
    assert len(out) == 1100 and len({(r.topic, r.partition, r.offset) for r in out}) == 1100
    stamps = [r.timestamp for r in out]
    assert stamps == sorted(stamps)


def test_pipeline_joins_every_request_once(events) -> None:
    arr = arrivals(events, ArrivalConfig(seed=1))
    with OnlineJoiner(JoinerConfig(window=1800, memory_seconds=300, memory_capacity=500)) as joiner:
        result = run_pipeline(events, arr, joiner, Log())
    ex = result.examples
    assert result.published == {FEATURES: len(events), ACTIONS: int((arr.kind == 1).sum())}
    ids = ex.events.request_id
    assert np.unique(ids).size == ids.size == len(events)  # negative_rate 1: every request, once
    assert np.all(np.diff(ex.join_time) >= 0)  # the trainer reads in join order
    # a request is positive iff one of its clicks reached the joiner before the window closed
    first_click = {}
    for rid, t in zip(arr.request_id[arr.kind == 1], arr.arrival[arr.kind == 1]):
        first_click[int(rid)] = min(first_click.get(int(rid), 2**62), int(t))
    event_time = dict(zip(events.request_id.tolist(), events.time.tolist()))
    expected = np.array([1.0 if first_click.get(int(r), 2**62) <= event_time[int(r)] + 1800 else 0.0
                         for r in ids.tolist()], dtype=np.float32)
    agree = np.mean(expected == ex.events.label)
    assert agree > 0.995, agree  # the joiner's clock advances in steps of a minute
    assert result.stats.positives == int(ex.events.label.sum())
    assert result.stats.spilled > 0  # SQLite was used


def test_pipeline_is_restartable_from_committed_offsets(events, tmp_path) -> None:
    arr = arrivals(events, ArrivalConfig(seed=2))
    log = Log(tmp_path / "log")
    publish(log, events, arr)
    with OnlineJoiner(JoinerConfig(window=1800)) as joiner:
        run_joiner(log, joiner)
    log.close()
    log = Log(tmp_path / "log")  # reopen: the trainer's group starts at the beginning
    first = read_examples(log, events.field_names, events.dense_names, max_records=1000)
    rest = read_examples(log, events.field_names, events.dense_names)
    assert len(first) == 1000 and len(first) + len(rest) == log.end_offset(EXAMPLES, 0)
    again = read_examples(log, events.field_names, events.dense_names)
    assert len(again) == 0  # committed: nothing is delivered twice to the same group
    other = read_examples(log, events.field_names, events.dense_names, group="another")
    assert len(other) == len(first) + len(rest)  # another group reads everything
    np.testing.assert_array_equal(other.events.fields[:1000], first.events.fields)


def test_features_carry_the_served_payload(events) -> None:
    arr = arrivals(events[:200], ArrivalConfig(seed=0, late_fraction=0.0, duplicate_fraction=0.0))
    with OnlineJoiner(JoinerConfig(window=600)) as joiner:
        result = run_pipeline(events[:200], arr, joiner, Log())
    ex = result.examples.events
    order = np.argsort(ex.request_id)
    src = np.argsort(events[:200].request_id)
    np.testing.assert_array_equal(ex.fields[order], events[:200].fields[src])
    np.testing.assert_array_equal(ex.dense[order], events[:200].dense[src])
    assert len(encode_features(events[:3])) == 3


def test_release_times_hold_examples_until_their_label_is_final(events) -> None:
    from monolith_ref.streaming.pipeline import release_times

    arr = arrivals(events[:3000], ArrivalConfig(seed=4))
    with OnlineJoiner(JoinerConfig(window=1200)) as joiner:
        ex = run_pipeline(events[:3000], arr, joiner, Log()).examples
    order, release = release_times(ex, 1200)
    assert np.array_equal(np.sort(order), np.arange(len(ex)))
    assert np.all(np.diff(release) >= 0)
    assert np.all(release >= ex.join_time[order]) and np.all(release >= ex.events.time[order] + 1200)
    same, join = release_times(ex, 1200, hold=False)
    assert np.array_equal(same, np.arange(len(ex))) and np.array_equal(join, ex.join_time)


def test_join_arrivals_without_the_log_matches_the_pipeline(events) -> None:
    from monolith_ref.streaming.pipeline import join_arrivals

    part = events[:2000]
    arr = arrivals(part, ArrivalConfig(seed=6))
    with OnlineJoiner(JoinerConfig(window=900)) as joiner:
        direct = join_arrivals(part, arr, joiner)
        stats = joiner.stats.as_dict()
    with OnlineJoiner(JoinerConfig(window=900)) as joiner:
        piped = run_pipeline(part, arr, joiner, Log())
    assert len(direct) == len(part) == len(piped.examples)
    assert sorted(e.request_id for e in direct) == sorted(piped.examples.events.request_id.tolist())
    assert stats["positives"] == int(sum(e.label for e in direct))
    assert abs(stats["positives"] - piped.stats.positives) <= 0.01 * len(part)  # the pipeline advances per minute
