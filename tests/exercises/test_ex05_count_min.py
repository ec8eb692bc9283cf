"""Grader for Exercise 5.1: a count-min sketch (never under-counts; error bound)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.explain import raises

pytestmark = pytest.mark.exercise("5.1", title="A count-min sketch filter")


@pytest.fixture
def CountMin(mod):
    return mod.CountMin


@pytest.mark.points(1)
def test_shape_and_validation(CountMin) -> None:
    cm = CountMin(width=32, depth=3, seed=1)
    assert cm.counters.shape == (3, 32) and not cm.counters.any(), (
        f"CountMin(width=32, depth=3).counters must be zeros of shape (depth, width) = (3, 32), "
        f"got shape {cm.counters.shape} with {int(np.count_nonzero(cm.counters))} non-zero")
    cols = cm.columns(12345)
    assert len(cols) == 3 and all(0 <= c < 32 for c in cols), (
        f"columns(12345) must give one column per row (3), each in [0, 32), got {cols}")
    again = cm.columns(12345)
    assert again == cols, f"columns(12345) must be deterministic: {cols}, then {again}"
    for w, d in [(0, 2), (4, 0)]:
        with raises(ValueError, f"CountMin(width={w}, depth={d}) must refuse a width or depth below 1"):
            CountMin(width=w, depth=d)


@pytest.mark.points(1)
def test_exact_when_alone(CountMin) -> None:
    cm = CountMin(width=64, depth=2)
    for _ in range(5):
        cm.add(7)
    cm.add(7, count=3)
    got = cm.estimate(7)
    assert got == 8, f"7 added 5 times, then with count=3, alone in the sketch: estimate(7) must be 8, got {got}"
    assert cm.admits(7, 8) and not cm.admits(7, 9), (
        f"with estimate 8, admits(7, 8) must be True and admits(7, 9) False; got {cm.admits(7, 8)}, {cm.admits(7, 9)}")


@pytest.mark.points(3)
def test_never_under_counts(CountMin) -> None:
    @settings(max_examples=100)
    @given(st.lists(st.integers(0, 200), max_size=400), st.integers(1, 20), st.integers(1, 4))
    def run(stream, width, depth):
        cm = CountMin(width=width, depth=depth, seed=5)
        true: dict[int, int] = {}
        for key in stream:
            cm.add(key)
            true[key] = true.get(key, 0) + 1
        under = {k: (cm.estimate(k), c) for k, c in true.items() if cm.estimate(k) < c}
        assert not under, (
            f"width={width}, depth={depth}: a count-min never under-counts, but (estimate, true count) of "
            f"{dict(list(under.items())[:3])} (stream of {len(stream)}; counters {cm.counters.dtype}: do they wrap?)")

    run()


@pytest.mark.points(2)
def test_error_bound(CountMin) -> None:
    """Overcount above e*N/width happens for at most about exp(-depth) of the keys."""
    rng = np.random.default_rng(11)
    stream = (rng.zipf(1.3, size=20_000) % 4_000).tolist()
    cm = CountMin(width=400, depth=4, seed=2)
    for key in stream:
        cm.add(key)
    keys, counts = np.unique(stream, return_counts=True)
    over = np.array([cm.estimate(int(k)) for k in keys]) - counts
    assert (over >= 0).all(), (
        f"{int((over < 0).sum())} keys under-counted in 20,000 adds (counters {cm.counters.dtype}: do they wrap?)")
    bound, share = math.e * len(stream) / 400, (over > math.e * len(stream) / 400).mean()
    assert share <= math.exp(-4) + 0.01, (
        f"width=400, depth=4, {len(stream)} adds: {share:.1%} of the keys over-count by more than e*N/width = "
        f"{bound:.0f}; the bound allows exp(-depth) + 1% = {math.exp(-4) + 0.01:.1%}")


@pytest.mark.points(1)
def test_rows_hash_independently(CountMin) -> None:
    cm = CountMin(width=1024, depth=4, seed=0)
    cols = np.array([cm.columns(k) for k in range(2000)])
    for d in range(1, 4):
        same = (cols[:, 0] == cols[:, d]).mean()
        assert same < 0.02, (
            f"rows 0 and {d} put {same:.0%} of 2000 keys in the same column: each row needs its own hash function")
