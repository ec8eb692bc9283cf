"""The online joiner (monolith_ref.streaming.joiner): every rule, then a long unreliable stream."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from monolith_ref.data import Events, StreamConfig, synthetic_stream
from monolith_ref.streaming.codec import encode_features
from monolith_ref.streaming.joiner import (
    Example,
    JoinerConfig,
    JoinerStats,
    OnlineJoiner,
    corrected_probability,
    keep_negative,
    log_odds_correction,
)
from monolith_ref.streaming.simulate import ACTION, FEATURE, ArrivalConfig, Arrivals, arrivals


@pytest.fixture
def make():
    """``make(**config)``: a joiner with those settings, closed after the test."""
    made: list[OnlineJoiner] = []

    def _make(db_path=None, **kw) -> OnlineJoiner:
        made.append(OnlineJoiner(JoinerConfig(**kw), db_path=db_path))
        return made[-1]

    yield _make
    for j in made:
        j.close()


def ids(examples: list[Example]) -> list[tuple[int, float]]:
    return [(e.request_id, e.label) for e in examples]


# --------------------------------------------------------------------------- the rules


def test_an_action_for_waiting_features_joins_at_once(make) -> None:
    j = make(window=60)
    assert j.add_features(1, 100, b"p1", now=101) == []
    assert j.memory_entries() == 1 and j.disk_entries() == 0
    out = j.add_action(1, 130, now=131, label=0.5)
    assert out == [Example(1, 100, 131, 0.5, 1.0, b"p1")]  # label from the action, joined now
    assert j.memory_entries() == 0 and j.stats.positives == 1 and j.stats.disk_hits == 0


def test_an_early_action_waits_for_its_features(make) -> None:
    j = make(window=60)
    assert j.add_action(2, 100, now=100) == []
    assert j.memory_entries() == 1  # the early action counts in memory
    out = j.add_features(2, 98, b"p2", now=103)
    assert out == [Example(2, 98, 103, 1.0, 1.0, b"p2")]
    assert j.stats.early_actions == 1 and j.stats.positives == 1 and j.memory_entries() == 0


def test_duplicate_actions_emit_nothing(make) -> None:
    j = make(window=60)
    j.add_features(3, 0, b"p3", now=0)
    assert len(j.add_action(3, 10, now=10)) == 1
    assert j.add_action(3, 10, now=20) == [] and j.add_action(3, 10, now=500) == []
    assert j.stats.duplicate_actions == 2 and j.stats.late_actions == 0
    # two actions before the features: the second is a duplicate, one positive comes out
    j.add_action(4, 600, now=600)
    assert j.add_action(4, 600, now=601) == []
    assert ids(j.add_features(4, 599, b"p4", now=602)) == [(4, 1.0)]
    assert j.stats.duplicate_actions == 3 and j.stats.positives == 2


def test_the_window_boundary_and_late_actions(make) -> None:
    j = make(window=60)
    j.add_features(5, 0, b"p5", now=0)
    j.add_features(6, 0, b"p6", now=0)
    assert j.advance(60) == []  # time + window < now is false: still waiting
    assert ids(j.add_action(5, 60, now=60)) == [(5, 1.0)]  # just in time
    out = j.advance(61)
    assert out == [Example(6, 0, 61, 0.0, 1.0, b"p6")]
    assert j.add_action(6, 61, now=62) == []
    assert j.stats.late_actions == 1 and j.stats.negatives == 1


def test_an_action_after_the_deadline_finalizes_first(make) -> None:
    j = make(window=60)
    j.add_features(7, 0, b"p7", now=0)
    out = j.add_action(7, 61, now=61)  # the clock passes the deadline before the action is handled
    assert ids(out) == [(7, 0.0)] and j.stats.late_actions == 1 and j.stats.positives == 0


def test_an_orphan_action_is_dropped_after_the_window(make) -> None:
    j = make(window=60)
    j.add_action(8, 100, now=100)
    j.advance(160)
    assert j.memory_entries() == 1
    j.advance(161)
    assert j.memory_entries() == 0 and j.stats.orphan_actions == 1
    assert j.add_features(8, 150, b"p8", now=170) == []  # waits like any request
    assert ids(j.advance(211)) == [(8, 0.0)]


def test_features_spill_to_disk_in_batches_and_join_from_there(make) -> None:
    j = make(window=1000, memory_seconds=10)
    for rid, t in ((10, 0), (11, 3), (12, 6), (13, 8)):
        j.add_features(rid, t, f"p{rid}".encode(), now=t)
    assert j.advance(10).__len__() == 0 and j.disk_entries() == 0  # 0 < 10 - 10 is false
    j.advance(11)  # the oldest (0) is past 10 s: everything older than 11 - 5 = 6 goes
    assert j.disk_entries() == 2 and j.memory_entries() == 2 and j.stats.spilled == 2
    out = j.add_action(11, 14, now=14)  # 6 < 14 - 10 is false: nothing else spills
    assert out == [Example(11, 3, 14, 1.0, 1.0, b"p11")]
    assert j.stats.disk_hits == 1 and j.disk_entries() == 1 and j.memory_entries() == 2
    out = j.advance(1001)  # 0 + 1000 < 1001: request 10 expires on disk; 12 and 13 have spilled too
    assert out == [Example(10, 0, 1001, 0.0, 1.0, b"p10")]
    assert ids(j.advance(1009)) == [(12, 0.0), (13, 0.0)] and j.disk_entries() == 0


def test_the_memory_capacity_is_never_exceeded(make) -> None:
    j = make(window=10_000, memory_seconds=10_000, memory_capacity=8)
    for rid in range(8):
        j.add_features(rid, rid, b"x", now=rid)
    assert j.memory_entries() == 8 and j.disk_entries() == 0
    j.add_features(8, 8, b"x", now=8)  # over: the oldest spill until 8 - 8 // 8 = 7 remain
    assert j.memory_entries() == 7 and j.disk_entries() == 2 and j.stats.max_memory_entries == 8
    assert ids(j.add_action(0, 9, now=9)) == [(0, 1.0)] and j.stats.disk_hits == 1
    # early actions count too; with no features left to spill, the oldest is dropped
    k = make(window=10_000, memory_capacity=2)
    for rid in range(3):
        k.add_action(rid, rid, now=rid)
    assert k.memory_entries() == 2 and k.stats.orphan_actions == 1 and k.stats.max_memory_entries == 2
    assert k.add_features(0, 0, b"x", now=5) == []  # its action was dropped
    assert ids(k.add_features(2, 0, b"x", now=5)) == [(2, 1.0)]


def test_negative_sampling_rate_and_determinism(make) -> None:
    def emitted(seed: int) -> set[int]:
        j = make(window=10, negative_rate=0.3, seed=seed)
        for rid in range(2000):
            j.add_features(rid * 7919, 0, b"x", now=0)
        out = j.advance(11)
        assert all(e.label == 0.0 and e.sample_rate == pytest.approx(0.3) for e in out)
        assert j.stats.negatives == len(out) and j.stats.negatives + j.stats.negatives_sampled_out == 2000
        return {e.request_id for e in out}

    kept = emitted(seed=1)
    assert 0.26 < len(kept) / 2000 < 0.34
    assert kept == {rid * 7919 for rid in range(2000) if keep_negative(rid * 7919, 0.3, 1)}
    assert emitted(seed=1) == kept and emitted(seed=2) != kept


def test_a_sampled_out_negative_makes_its_late_action_late(make) -> None:
    j = make(window=10, negative_rate=0.5, seed=3)
    dropped = next(r for r in range(100) if not keep_negative(r, 0.5, 3))
    j.add_features(dropped, 0, b"x", now=0)
    assert j.advance(11) == [] and j.stats.negatives_sampled_out == 1
    assert j.add_action(dropped, 12, now=12) == [] and j.stats.late_actions == 1


def test_finish_finalizes_everything_waiting(make) -> None:
    j = make(window=1000, memory_seconds=5)
    j.add_features(30, 0, b"a", now=0)
    j.add_features(31, 10, b"b", now=10)  # request 30 has spilled by now
    j.add_features(32, 10, b"c", now=10)
    j.add_action(33, 10, now=10)  # early, never matched
    assert j.disk_entries() == 1 and j.memory_entries() == 3
    out = j.finish()
    assert out == [Example(30, 0, 10, 0.0, 1.0, b"a"), Example(31, 10, 10, 0.0, 1.0, b"b"),
                   Example(32, 10, 10, 0.0, 1.0, b"c")]
    assert j.memory_entries() == j.disk_entries() == 0 and j.stats.orphan_actions == 1
    assert j.add_action(31, 20, now=20) == [] and j.stats.late_actions == 1
    assert j.finish() == [] and j.finish(now=50) == []


def test_finish_on_a_fresh_joiner(make) -> None:
    assert make().finish() == []


def test_the_clock_never_goes_back(make) -> None:
    j = make(window=60)
    j.advance(100)
    out = j.add_features(40, 0, b"x", now=50)  # handled at the clock (100): already overdue
    assert out == [Example(40, 0, 100, 0.0, 1.0, b"x")] and j.clock == 100
    j.add_features(41, 90, b"y", now=10)
    assert ids(j.add_action(41, 95, now=20)) == [(41, 1.0)] and j.clock == 100


def test_duplicate_features_are_ignored(make) -> None:
    j = make(window=60, memory_seconds=5)
    j.add_features(50, 0, b"first", now=0)
    assert j.add_features(50, 0, b"again", now=1) == []
    j.advance(10)  # now on disk
    assert j.add_features(50, 0, b"again", now=10) == []
    assert j.add_action(50, 11, now=11) == [Example(50, 0, 11, 1.0, 1.0, b"first")]
    assert j.add_features(50, 0, b"after", now=12) == []  # finished: still a duplicate
    assert j.stats.duplicate_features == 3 and j.finish() == []


def test_tombstones_are_forgotten_after_tombstone_seconds(make) -> None:
    j = make(window=10, tombstone_seconds=100)
    j.add_features(60, 0, b"x", now=0)
    j.add_action(60, 1, now=1)
    assert j.add_action(60, 50, now=100) == [] and j.stats.duplicate_actions == 1
    assert j.add_action(60, 101, now=101) == []  # 0 < 101 - 100: forgotten, so it waits as early
    assert j.memory_entries() == 1 and j.stats.duplicate_actions == 1
    j.advance(112)
    assert j.stats.orphan_actions == 1


def test_bad_input_is_refused_and_changes_nothing(make) -> None:
    j = make(window=60)
    j.add_features(1, 0, b"x", now=5)
    before = j.stats.as_dict()
    for call, exc in (
        (lambda: j.add_features(-1, 0, b"x", now=6), ValueError),
        (lambda: j.add_features(2**64, 0, b"x", now=6), ValueError),
        (lambda: j.add_features(2, 0.5, b"x", now=6), TypeError),
        (lambda: j.add_features(2, 0, "x", now=6), TypeError),
        (lambda: j.add_features(True, 0, b"x", now=6), TypeError),
        (lambda: j.add_action(1, 0, now=None), TypeError),
        (lambda: j.add_action(1, 0, now=6, label=float("nan")), ValueError),
        (lambda: j.advance(2**63), ValueError),
    ):
        with pytest.raises(exc):
            call()
    assert j.stats.as_dict() == before and j.clock == 5 and j.memory_entries() == 1


@pytest.mark.parametrize("bad", [
    {"window": -1}, {"window": 1.5}, {"memory_seconds": -1}, {"memory_capacity": 0}, {"negative_rate": 0.0},
    {"negative_rate": 1.5}, {"negative_rate": "1"}, {"seed": -1}, {"seed": 2**64}, {"tombstone_seconds": 10},
])
def test_bad_configs_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="JoinerConfig"):
        JoinerConfig(**bad)
    with pytest.raises(TypeError, match="JoinerConfig"):
        OnlineJoiner({"window": 5})


def test_temporary_file_is_removed_and_a_given_file_is_resumed(tmp_path) -> None:
    j = OnlineJoiner(JoinerConfig(window=100, memory_seconds=5))
    path = j.db_path
    assert os.path.exists(path)
    j.close()
    j.close()
    assert not os.path.exists(os.path.dirname(path))
    with pytest.raises(RuntimeError, match="closed"):
        j.add_action(1, 0, now=0)

    db = tmp_path / "joiner.sqlite"
    with OnlineJoiner(JoinerConfig(window=100, memory_seconds=5), db_path=db) as a:
        a.add_features(70, 0, b"on disk", now=0)
        a.add_features(71, 0, b"gone", now=0)
        a.advance(10)
        a.add_action(71, 10, now=10)
        assert a.disk_entries() == 1
    assert db.exists()
    with OnlineJoiner(JoinerConfig(window=100, memory_seconds=5), db_path=db) as b:
        assert b.disk_entries() == 1
        assert b.add_action(70, 11, now=11) == [Example(70, 0, 11, 1.0, 1.0, b"on disk")]
        assert b.add_action(71, 12, now=12) == [] and b.stats.duplicate_actions == 1  # its tombstone was kept


def test_stats_as_dict() -> None:
    stats = JoinerStats(positives=3)
    d = stats.as_dict()
    assert d["positives"] == 3 and set(d) >= {"features_in", "actions_in", "negatives", "negatives_sampled_out",
                                              "duplicate_actions", "late_actions", "orphan_actions",
                                              "early_actions", "spilled", "disk_hits", "max_memory_entries"}


def test_keep_negative_and_the_log_odds_correction() -> None:
    assert all(keep_negative(r, 1.0, 0) for r in range(1000))
    share = np.mean([keep_negative(r, 0.1, 5) for r in range(20_000)])
    assert 0.09 < share < 0.11
    assert log_odds_correction(1.0) == 0.0 and log_odds_correction(0.25) == pytest.approx(math.log(0.25))
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    logit = np.log(p[1:4] / (1 - p[1:4])) + math.log(0.2)
    assert np.allclose(corrected_probability(p, 0.2)[1:4], 1 / (1 + np.exp(-logit)))
    assert corrected_probability(p, 0.2)[[0, 4]].tolist() == [0.0, 1.0]
    assert np.array_equal(corrected_probability(p, 1.0), p)
    for bad in (0.0, -0.5, 1.01, float("nan")):
        with pytest.raises(ValueError, match="sample rate"):
            log_odds_correction(bad)
        with pytest.raises(ValueError, match="sample rate"):
            keep_negative(1, bad, 0)


# --------------------------------------------------------------------------- reliability

WINDOW = 1800
CAPACITY = 128


@pytest.fixture(scope="module")
def world() -> tuple[Events, list[bytes], Arrivals]:
    events = synthetic_stream(StreamConfig(num_users=3000, num_items=1500, days=2, events_per_day=25_000, seed=11))
    cfg = ArrivalConfig(late_fraction=0.05, late_min=600, late_max=4 * 3600, duplicate_fraction=0.05, seed=12)
    return events, encode_features(events), arrivals(events, cfg)


def _shuffled(arr: Arrivals, spread: int, seed: int) -> Arrivals:
    """Records moved by up to ``spread`` seconds of arrival: delivery out of order."""
    rng = np.random.default_rng(seed)
    return arr[np.argsort(arr.arrival + rng.integers(0, spread + 1, len(arr)), kind="stable")]


@pytest.mark.parametrize("spread, rate", [(0, 0.5), (30, 1.0)], ids=["in-order", "shuffled"])
def test_a_long_unreliable_stream_loses_nothing_and_labels_right(world, spread, rate) -> None:
    events, payloads, arr = world
    arr = _shuffled(arr, spread, seed=13) if spread else arr
    n = len(events)
    clock = np.maximum.accumulate(arr.arrival)  # the joiner's clock after each record
    # the oracle, from the arrivals alone: a request is a positive iff one of its actions is
    # handled while the clock has not passed time + window (features always come in time here)
    feat = np.flatnonzero(arr.kind == FEATURE)
    feat_pos = np.empty(n, dtype=np.int64)
    feat_pos[arr.row[feat]] = feat
    assert (clock[feat_pos] <= events.time + WINDOW).all()
    act = np.flatnonzero(arr.kind == ACTION)
    in_time = clock[act] <= events.time[arr.row[act]] + WINDOW
    first = np.full(n, len(arr), dtype=np.int64)
    np.minimum.at(first, arr.row[act][in_time], act[in_time])
    positive = first < len(arr)
    actions_per_row = np.bincount(arr.row[act], minlength=n)
    rids = events.request_id.tolist()
    kept = np.array([positive[i] or keep_negative(rids[i], rate, 7) for i in range(n)])

    cfg = JoinerConfig(window=WINDOW, memory_seconds=600, memory_capacity=CAPACITY, negative_rate=rate, seed=7)
    out: list[Example] = []
    with OnlineJoiner(cfg) as j:
        kind, rid, etime, arrival, row = (a.tolist() for a in (arr.kind, arr.request_id, arr.event_time,
                                                                 arr.arrival, arr.row))
        for k, r, t, a, w in zip(kind, rid, etime, arrival, row):
            if k == FEATURE:
                out += j.add_features(r, t, payloads[w], now=a)
            else:
                out += j.add_action(r, t, now=a)
            assert j.memory_entries() <= CAPACITY
        out += j.finish()
        s = j.stats

    got = [e.request_id for e in out]
    assert len(got) == len(set(got)), "a request was emitted twice"
    index = {r: i for i, r in enumerate(rids)}
    rows = np.array([index[r] for r in got])
    assert np.array_equal(np.sort(rows), np.flatnonzero(kept)), "lost or unexpected examples"
    labels = np.array([e.label for e in out])
    assert np.array_equal(labels == 1.0, positive[rows])
    assert all(e.payload == payloads[i] and e.time == events.time[i] for e, i in zip(out, rows))
    assert all(e.sample_rate == (1.0 if e.label else rate) for e in out)
    # join times: a positive joins when its first in-time action (or, if that came early, its
    # features) is handled; a negative at the first record after its deadline, else at the end
    join = np.array([e.join_time for e in out])
    pos = positive[rows]
    assert np.array_equal(join[pos], clock[np.maximum(first, feat_pos)[rows[pos]]])
    after = np.searchsorted(clock, events.time[rows[~pos]] + WINDOW, side="right")
    assert np.array_equal(join[~pos], clock[np.minimum(after, len(arr) - 1)])

    # the ledger
    assert s.features_in == n and s.actions_in == len(act) and s.duplicate_features == 0
    assert s.positives == positive.sum()
    assert s.negatives + s.negatives_sampled_out == n - positive.sum()
    assert s.negatives == (~positive & kept).sum()
    assert s.duplicate_actions == (actions_per_row[positive] - 1).sum()
    assert s.late_actions == actions_per_row[~positive].sum() > 0
    assert s.orphan_actions == 0
    assert s.early_actions == (positive & (first < feat_pos)).sum() > 0
    assert s.max_memory_entries <= CAPACITY
    assert s.spilled > n / 2 and s.disk_hits > 0  # SQLite did most of the waiting
