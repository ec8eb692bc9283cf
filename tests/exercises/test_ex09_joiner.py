"""Grader for Exercise 9.1: a small in-memory online joiner, checked against OnlineJoiner."""

from __future__ import annotations

import numpy as np
import pytest

from monolith_ref.streaming.joiner import JoinerConfig, OnlineJoiner

pytestmark = pytest.mark.exercise("9.1", title="A small online joiner")


@pytest.mark.points(1)
def test_features_then_action_is_a_positive(mod) -> None:
    j = mod.MiniJoiner(window=60)
    assert j.add_features(1, 100, now=101) == []
    assert j.add_action(1, now=130) == [(1, 1.0)]
    assert j.advance(10_000) == []  # emitted once, ever
    with pytest.raises(ValueError):
        mod.MiniJoiner(window=-1)


@pytest.mark.points(2)
def test_negatives_after_the_window_in_order(mod) -> None:
    j = mod.MiniJoiner(window=60)
    j.add_features(7, 10, now=11)
    j.add_features(5, 10, now=12)
    j.add_features(9, 5, now=13)
    j.add_features(8, 40, now=41)
    assert j.advance(65) == []  # 5 + 60 < 65 is false: a request may still join at its deadline
    assert j.advance(71) == [(9, 0.0), (5, 0.0), (7, 0.0)]  # by time, then request ID
    assert j.add_action(5, now=72) == []  # late: finalized already
    assert j.add_action(8, now=101) == [(8, 0.0)]  # the clock passes 8's deadline first
    assert j.advance(200) == []


@pytest.mark.points(2)
def test_early_actions_wait_for_their_features_then_expire(mod) -> None:
    j = mod.MiniJoiner(window=60)
    assert j.add_action(3, now=100) == []
    assert j.add_features(3, 99, now=102) == [(3, 1.0)]
    assert j.add_action(4, now=200) == []
    assert j.advance(260) == []
    assert j.add_features(4, 255, now=261) == []  # 200 + 60 < 261: the action was dropped
    assert j.advance(315) == [] and j.advance(316) == [(4, 0.0)]
    j.add_features(6, 400, now=400)  # features already overdue become a negative at once
    assert j.add_features(10, 300, now=400) == [(10, 0.0)]


@pytest.mark.points(2)
def test_duplicates_are_ignored(mod) -> None:
    j = mod.MiniJoiner(window=60)
    j.add_features(1, 0, now=0)
    assert j.add_features(1, 0, now=1) == []  # duplicate features
    assert j.add_action(1, now=2) == [(1, 1.0)]
    assert j.add_action(1, now=3) == [] and j.add_action(1, now=50) == []  # duplicate actions
    assert j.add_features(1, 0, now=51) == []  # features of a finished request
    assert j.add_action(2, now=52) == [] and j.add_action(2, now=53) == []  # two early actions
    assert j.add_features(2, 50, now=54) == [(2, 1.0)]
    assert j.advance(1000) == []


def _random_sequence(seed: int, n: int = 300) -> list[tuple]:
    """Features, clicks (some late, some twice), stray actions, duplicate features, and
    advances, in arrival order."""
    rng = np.random.default_rng(seed)
    records = []
    times = np.sort(rng.integers(0, 3000, n))
    for rid, t in enumerate(times.tolist()):
        records.append((t + int(rng.integers(0, 4)), 0, "features", rid, t))
        if rng.random() < 0.3:
            records.append((t + int(rng.integers(0, 200)), 1, "features", rid, t))
        for _ in range(int(rng.choice([0, 0, 1, 1, 2]))):
            records.append((t + int(rng.exponential(40)), 2, "action", rid, None))
    for _ in range(n // 5):
        records.append((int(rng.integers(0, 3200)), 3, "action", 10_000 + int(rng.integers(0, 50)), None))
        records.append((int(rng.integers(0, 3200)), 4, "advance", None, None))
    records.sort(key=lambda r: (r[0], r[1], -1 if r[3] is None else r[3]))
    return records


@pytest.mark.points(1)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_random_sequence_matches_the_online_joiner(mod, seed) -> None:
    window = 100
    mine = mod.MiniJoiner(window=window)
    with OnlineJoiner(JoinerConfig(window=window, memory_seconds=30, memory_capacity=50, negative_rate=1.0)) as ref:
        for step, (now, _, kind, rid, t) in enumerate(_random_sequence(seed)):
            if kind == "features":
                got, want = mine.add_features(rid, t, now), ref.add_features(rid, t, b"", now=now)
            elif kind == "action":
                got, want = mine.add_action(rid, now), ref.add_action(rid, now, now=now)
            else:
                got, want = mine.advance(now), ref.advance(now)
            want = [(e.request_id, e.label) for e in want]
            assert sorted(got) == sorted(want), f"step {step}: {kind} {rid} at {now}"
        end = 10**6
        assert sorted(mine.advance(end)) == sorted((e.request_id, e.label) for e in ref.advance(end))
