"""Grader for Exercise 9.1: a small in-memory online joiner, checked against OnlineJoiner."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.explain import raises
from monolith_ref.streaming.joiner import JoinerConfig, OnlineJoiner

pytestmark = pytest.mark.exercise("9.1", title="A small online joiner")


def expect(got: object, want: list, call: str, why: str = "") -> None:
    """``got`` (what ``call`` returned) must equal ``want``; else say which rule broke."""
    assert got == want, f"{call} returned {got!r}, expected {want!r}" + (f": {why}" if why else "")


@pytest.mark.points(1)
def test_features_then_action_is_a_positive(mod) -> None:
    j = mod.MiniJoiner(window=60)
    expect(j.add_features(1, 100, now=101), [], "add_features(1, time=100, now=101)", "the request waits")
    expect(j.add_action(1, now=130), [(1, 1.0)], "then add_action(1, now=130)", "an action for a waiting request "
           "is a positive at once")
    expect(j.advance(10_000), [], "then advance(10000)", "a request emits once, ever")
    with raises(ValueError, "MiniJoiner(window=-1) must refuse a negative window"):
        mod.MiniJoiner(window=-1)


@pytest.mark.points(2)
def test_negatives_after_the_window_in_order(mod) -> None:
    j = mod.MiniJoiner(window=60)
    j.add_features(7, 10, now=11)
    j.add_features(5, 10, now=12)
    j.add_features(9, 5, now=13)
    j.add_features(8, 40, now=41)
    history = "window 60, features of 7 (time 10), 5 (10), 9 (5), 8 (40)"
    expect(j.advance(65), [], f"{history}; advance(65)",
           "5 + 60 < 65 is false: a request may still join at its deadline")
    expect(j.advance(71), [(9, 0.0), (5, 0.0), (7, 0.0)], f"{history}; advance(65), advance(71)",
           "negatives once time + window < now, sorted by (time, request ID)")
    expect(j.add_action(5, now=72), [], "then add_action(5, now=72)",
           "5 is finalized already: a late action is ignored")
    expect(j.add_action(8, now=101), [(8, 0.0)], "then add_action(8, now=101)",
           "the clock passes 8's deadline (40 + 60 < 101) before the action is handled")
    expect(j.advance(200), [], "then advance(200)", "everything has emitted already")


@pytest.mark.points(2)
def test_early_actions_wait_for_their_features_then_expire(mod) -> None:
    j = mod.MiniJoiner(window=60)
    expect(j.add_action(3, now=100), [], "add_action(3, now=100) before its features", "an early action waits")
    expect(j.add_features(3, 99, now=102), [(3, 1.0)], "then add_features(3, time=99, now=102)",
           "features for a request with an early action make a positive at once")
    expect(j.add_action(4, now=200), [], "add_action(4, now=200) before its features", "an early action waits")
    expect(j.advance(260), [], "then advance(260)", "200 + 60 < 260 is false: the early action still waits")
    expect(j.add_features(4, 255, now=261), [], "then add_features(4, time=255, now=261)",
           "200 + 60 < 261: the early action was dropped, so the request waits")
    expect(j.advance(315), [], "then advance(315)", "255 + 60 < 315 is false: 4 may still join")
    expect(j.advance(316), [(4, 0.0)], "then advance(316)", "255 + 60 < 316: 4 becomes a negative")
    j.add_features(6, 400, now=400)  # features already overdue become a negative at once
    expect(j.add_features(10, 300, now=400), [(10, 0.0)], "add_features(10, time=300, now=400)",
           "features already overdue (300 + 60 < 400) become a negative at once")


@pytest.mark.points(2)
def test_duplicates_are_ignored(mod) -> None:
    j = mod.MiniJoiner(window=60)
    j.add_features(1, 0, now=0)
    expect(j.add_features(1, 0, now=1), [], "add_features(1) twice", "duplicate features are ignored")
    expect(j.add_action(1, now=2), [(1, 1.0)], "then add_action(1, now=2)", "an action for a waiting request "
           "is a positive")
    expect(j.add_action(1, now=3), [], "then add_action(1, now=3)", "a duplicate action is ignored")
    expect(j.add_action(1, now=50), [], "then add_action(1, now=50)", "a duplicate action is ignored")
    expect(j.add_features(1, 0, now=51), [], "then add_features(1, now=51)",
           "features of a finished request are ignored")
    expect(j.add_action(2, now=52), [], "add_action(2, now=52) before its features", "an early action waits")
    expect(j.add_action(2, now=53), [], "then add_action(2, now=53)", "a second early action is ignored")
    expect(j.add_features(2, 50, now=54), [(2, 1.0)], "then add_features(2, time=50, now=54)",
           "features meet their early action: one positive")
    expect(j.advance(1000), [], "then advance(1000)", "every request has emitted already")


def _random_sequence(seed: int, n: int = 300, window: int = 100) -> list[tuple]:
    """Features, clicks (some late, some twice), stray actions, duplicate features, and
    advances, in arrival order; on purpose, some clicks land exactly on a request's deadline
    (``time + window``) or one second after, some early actions meet their features exactly
    ``window`` (or ``window + 1``) seconds later, and some advances land on a deadline."""
    rng = np.random.default_rng(seed)
    records = []
    times = np.sort(rng.integers(0, 3000, n))
    for rid, t in enumerate(times.tolist()):
        edge = rng.random()
        if edge < 0.1:  # a click at the deadline (still joins) or one second after (too late)
            records.append((t + int(rng.integers(0, 4)), 0, "features", rid, t))
            records.append((t + window + int(rng.integers(0, 2)), 2, "action", rid, None))
            continue
        if edge < 0.2:  # an early click; its features arrive window (joins) or window + 1 (dropped) later
            records.append((t, 2, "action", rid, None))
            records.append((t + window + int(rng.integers(0, 2)), 0, "features", rid, t))
            continue
        records.append((t + int(rng.integers(0, 4)), 0, "features", rid, t))
        if rng.random() < 0.3:
            records.append((t + int(rng.integers(0, 200)), 1, "features", rid, t))
        for _ in range(int(rng.choice([0, 0, 1, 1, 2]))):
            records.append((t + int(rng.exponential(40)), 2, "action", rid, None))
    for _ in range(n // 5):
        records.append((int(rng.integers(0, 3200)), 3, "action", 10_000 + int(rng.integers(0, 50)), None))
        records.append((int(rng.integers(0, 3200)), 4, "advance", None, None))
    for t in rng.choice(times, size=n // 10).tolist():  # advances exactly at a deadline, or one second after
        records.append((t + window + int(rng.integers(0, 2)), 4, "advance", None, None))
    records.sort(key=lambda r: (r[0], r[1], -1 if r[3] is None else r[3]))
    return records


@pytest.mark.points(1)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_random_sequence_matches_the_online_joiner(mod, seed) -> None:
    window = 100
    mine = mod.MiniJoiner(window=window)
    with OnlineJoiner(JoinerConfig(window=window, memory_seconds=30, memory_capacity=50, negative_rate=1.0)) as ref:
        for step, (now, _, kind, rid, t) in enumerate(_random_sequence(seed, window=window)):
            if kind == "features":
                call = f"add_features({rid}, time={t}, now={now})"
                got, want = mine.add_features(rid, t, now), ref.add_features(rid, t, b"", now=now)
            elif kind == "action":
                call = f"add_action({rid}, now={now})"
                got, want = mine.add_action(rid, now), ref.add_action(rid, now, now=now)
            else:
                call = f"advance({now})"
                got, want = mine.advance(now), ref.advance(now)
            want = [(e.request_id, e.label) for e in want]
            assert sorted(got) == sorted(want), (
                f"random sequence {seed}, step {step} (window {window}): {call} returned {sorted(got)}; "
                f"OnlineJoiner emits {sorted(want)} (a request or an early action is overdue only when its time + "
                f"window < now)")
        end = 10**6
        got, want = mine.advance(end), ref.advance(end)
        assert sorted(got) == sorted((e.request_id, e.label) for e in want), (
            f"random sequence {seed}, final advance({end}): every request still waiting must become a negative")
