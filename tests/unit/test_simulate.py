"""When features and actions arrive (monolith_ref.streaming.simulate)."""

from __future__ import annotations

import numpy as np
import pytest

from monolith_ref.data import Events, StreamConfig, synthetic_stream
from monolith_ref.streaming.simulate import ACTION, FEATURE, ArrivalConfig, Arrivals, arrivals


@pytest.fixture(scope="module")
def events() -> Events:
    return synthetic_stream(StreamConfig(num_users=1000, num_items=500, days=2, events_per_day=20_000, seed=4))


@pytest.fixture(scope="module")
def stream(events) -> Arrivals:
    return arrivals(events, ArrivalConfig(late_fraction=0.1, duplicate_fraction=0.1, seed=5))


def test_counts(events, stream) -> None:
    clicks = int((events.label == 1).sum())
    assert stream.num_features == len(events)
    assert stream.num_actions == clicks + stream.num_duplicates
    assert len(stream) == len(events) + clicks + stream.num_duplicates
    # one feature record per event, one original action per click
    feat = stream.kind == FEATURE
    assert np.array_equal(np.sort(stream.row[feat]), np.arange(len(events)))
    originals = (stream.kind == ACTION) & ~stream.duplicate
    assert np.array_equal(np.sort(stream.row[originals]), np.flatnonzero(events.label == 1))
    assert np.array_equal(stream.request_id, events.request_id[stream.row])
    assert stream.kind.dtype == np.uint8 and stream.request_id.dtype == np.uint64
    assert stream.event_time.dtype == stream.arrival.dtype == stream.row.dtype == np.int64


def test_sorted_by_arrival_features_first_then_request_id(stream) -> None:
    key = list(zip(stream.arrival.tolist(), stream.kind.tolist(), stream.request_id.tolist(),
                   stream.duplicate.tolist()))
    assert key == sorted(key)


def test_times(events, stream) -> None:
    feat = stream.kind == FEATURE
    delay = stream.arrival[feat] - events.time[stream.row[feat]]
    assert np.array_equal(stream.event_time[feat], events.time[stream.row[feat]])
    assert delay.min() >= 0 and delay.max() <= 5
    act = (stream.kind == ACTION) & ~stream.duplicate
    click_delay = stream.event_time[act] - events.time[stream.row[act]]
    assert np.array_equal(stream.arrival[act], stream.event_time[act])  # a click arrives when it happens
    late = stream.late[act]
    assert click_delay[late].min() >= 3600 and click_delay[late].max() <= 2 * 86400
    assert 90 < click_delay[~late].mean() < 150  # exponential, mean 120
    dup = stream.duplicate
    assert (stream.kind[dup] == ACTION).all()
    # each copy comes after its original, with the same click time
    originals = {int(r): (int(t), int(a)) for r, t, a in
                 zip(stream.request_id[act], stream.event_time[act], stream.arrival[act])}
    for r, t, a in zip(stream.request_id[dup], stream.event_time[dup], stream.arrival[dup]):
        assert originals[int(r)][0] == t and a >= originals[int(r)][1]


def test_late_and_duplicate_fractions_roughly_as_configured(events, stream) -> None:
    clicks = int((events.label == 1).sum())
    assert clicks > 5000
    assert 0.08 < stream.num_late / clicks < 0.12
    assert 0.08 < stream.num_duplicates / clicks < 0.12
    quiet = arrivals(events, ArrivalConfig(late_fraction=0.0, duplicate_fraction=0.0))
    assert quiet.num_late == quiet.num_duplicates == 0 and quiet.num_actions == clicks


def test_deterministic_given_the_seed(events, stream) -> None:
    cfg = ArrivalConfig(late_fraction=0.1, duplicate_fraction=0.1, seed=5)
    again = arrivals(events, cfg)
    other = arrivals(events, ArrivalConfig(late_fraction=0.1, duplicate_fraction=0.1, seed=6))
    for name in ("kind", "request_id", "event_time", "arrival", "row", "late", "duplicate"):
        assert np.array_equal(getattr(again, name), getattr(stream, name)), name
    assert not np.array_equal(other.arrival, stream.arrival)


def test_subsets_and_no_events(events, stream) -> None:
    head = stream[:10]
    assert len(head) == 10 and np.array_equal(head.arrival, stream.arrival[:10])
    empty = arrivals(events[:0])
    assert len(empty) == 0 and empty.num_late == 0


@pytest.mark.parametrize("bad", [
    {"feature_jitter": -1}, {"feature_jitter": 1.5}, {"action_delay": -1.0}, {"action_delay": float("nan")},
    {"late_fraction": 1.5}, {"late_fraction": -0.1}, {"late_min": 10, "late_max": 5}, {"duplicate_fraction": 2},
    {"duplicate_delay": float("inf")}, {"seed": -1}, {"seed": 2**64}, {"late_min": True},
])
def test_bad_configs_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="ArrivalConfig"):
        ArrivalConfig(**bad)


def test_arrivals_needs_events() -> None:
    with pytest.raises(TypeError, match="Events"):
        arrivals([1, 2, 3])
