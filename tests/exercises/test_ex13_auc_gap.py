"""Grader for Exercise 13.1: paired statistics of an AUC gap across seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conformance.explain import raises

pytestmark = pytest.mark.exercise("13.1", title="Is the AUC gap real?")


@pytest.fixture
def st():
    """scipy.stats, from the test extras; imported here so that without it only this exercise's tests fail."""
    return pytest.importorskip("scipy.stats", reason="exercise 13.1 is graded with scipy: pip install -e \".[test]\"")


@pytest.mark.points(3)
def test_statistics(mod, st) -> None:
    a = [0.812, 0.815, 0.810, 0.818, 0.814]
    b = [0.806, 0.811, 0.807, 0.809, 0.808]
    s = mod.auc_gap_stats(a, b)
    d = np.subtract(a, b)
    call = f"auc_gap_stats({a}, {b})"
    expected = {"n": 5, "mean_gap": d.mean(), "sd_gap": d.std(ddof=1), "stderr": d.std(ddof=1) / math.sqrt(5),
                "t": st.ttest_rel(a, b).statistic}
    for key, want in expected.items():
        assert s[key] == pytest.approx(want), f"{call}[{key!r}] = {s[key]!r}, expected {want!r} (paired gaps a - b)"
    half = st.t.ppf(0.975, 4) * s["stderr"]
    got = (s["ci_low"], s["ci_high"])
    assert got == (pytest.approx(d.mean() - half), pytest.approx(d.mean() + half)), (
        f"{call}: the 95% interval must be mean_gap -+ t(0.975, n - 1) * stderr = "
        f"({d.mean() - half!r}, {d.mean() + half!r}), got {got!r}")
    assert s["significant"] is True, (
        f"{call}: the interval excludes 0, so 'significant' must be True, got {s['significant']!r}")


@pytest.mark.points(2)
def test_few_seeds_need_a_wide_interval(mod, st) -> None:
    """With 3 seeds Student's t (4.30) is much wider than the normal 1.96."""
    s = mod.auc_gap_stats([0.80, 0.81, 0.79], [0.795, 0.80, 0.788], confidence=0.95)
    half, want = s["ci_high"] - s["mean_gap"], st.t.ppf(0.975, 2) * s["stderr"]
    assert half == pytest.approx(want), (
        f"3 seeds: the interval's half-width must use Student's t with 2 degrees of freedom (4.30), not 1.96: "
        f"expected {want!r}, got {half!r}")
    assert s["significant"] is False, (
        f"3 seeds, gaps [0.005, 0.01, 0.002]: the wide interval contains 0, 'significant' must be False, "
        f"got {s['significant']!r}")
    z = mod.auc_gap_stats([0.8, 0.8], [0.8, 0.8])
    assert z["t"] == 0.0 and z["significant"] is False, (
        f"identical AUCs (every gap 0): t must be 0.0 and 'significant' False, got t={z['t']!r}, "
        f"significant={z['significant']!r}")
    inf = mod.auc_gap_stats([0.81, 0.81], [0.80, 0.80])
    assert inf["t"] == math.inf, f"equal non-zero gaps (sd 0, mean 0.01 > 0): t must be inf, got {inf['t']!r}"


@pytest.mark.points(1)
def test_errors(mod) -> None:
    with raises(ValueError, "auc_gap_stats([0.8], [0.7]) must refuse fewer than 2 seeds"):
        mod.auc_gap_stats([0.8], [0.7])
    with raises(ValueError, "auc_gap_stats([0.8, 0.7], [0.7]) must refuse lists of different lengths"):
        mod.auc_gap_stats([0.8, 0.7], [0.7])


@pytest.mark.points(2)
def test_interpretation(mod) -> None:
    cases = [
        ("a clearly ahead (gap about +0.006, significant)",
         ([0.812, 0.815, 0.810, 0.818, 0.814], [0.806, 0.811, 0.807, 0.809, 0.808]), "a better"),
        ("b clearly ahead (the same, swapped)",
         ([0.806, 0.811, 0.807, 0.809, 0.808], [0.812, 0.815, 0.810, 0.818, 0.814]), "b better"),
        ("a gap of 0.0001: significant, but below the threshold 0.001",
         ([0.8001, 0.8002, 0.8001], [0.8000, 0.8001, 0.8000]), "no clear difference"),
        ("3 noisy seeds: not significant", ([0.80, 0.81, 0.79], [0.795, 0.80, 0.788]), "no clear difference"),
    ]
    for what, (a, b), want in cases:
        stats = mod.auc_gap_stats(a, b)
        if "significant, but" in what:
            assert stats["significant"], (
                f"auc_gap_stats({a}, {b}): three equal gaps of 0.0001 are significant, got {stats['significant']!r}")
        got = mod.interpret(stats)
        assert got == want, f"interpret(auc_gap_stats({a}, {b})) for {what}: expected {want!r}, got {got!r}"
