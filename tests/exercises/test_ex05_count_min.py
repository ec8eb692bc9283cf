"""Grader for Exercise 5.1: a count-min sketch (never under-counts; error bound)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.exercise("5.1", title="A count-min sketch filter")


@pytest.fixture
def CountMin(mod):
    return mod.CountMin


@pytest.mark.points(1)
def test_shape_and_validation(CountMin) -> None:
    cm = CountMin(width=32, depth=3, seed=1)
    assert cm.counters.shape == (3, 32) and not cm.counters.any()
    cols = cm.columns(12345)
    assert len(cols) == 3 and all(0 <= c < 32 for c in cols)
    assert cm.columns(12345) == cols
    for w, d in [(0, 2), (4, 0)]:
        with pytest.raises(ValueError):
            CountMin(width=w, depth=d)


@pytest.mark.points(1)
def test_exact_when_alone(CountMin) -> None:
    cm = CountMin(width=64, depth=2)
    for _ in range(5):
        cm.add(7)
    cm.add(7, count=3)
    assert cm.estimate(7) == 8 and cm.admits(7, 8) and not cm.admits(7, 9)


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
        assert all(cm.estimate(k) >= c for k, c in true.items())

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
    assert (over >= 0).all()
    assert (over > math.e * len(stream) / 400).mean() <= math.exp(-4) + 0.01


@pytest.mark.points(1)
def test_rows_hash_independently(CountMin) -> None:
    cm = CountMin(width=1024, depth=4, seed=0)
    cols = np.array([cm.columns(k) for k in range(2000)])
    for d in range(1, 4):
        assert (cols[:, 0] == cols[:, d]).mean() < 0.02, "each row needs its own hash function"
