"""Grader for Exercise 13.1: paired statistics of an AUC gap across seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
    assert s["n"] == 5
    assert s["mean_gap"] == pytest.approx(d.mean())
    assert s["sd_gap"] == pytest.approx(d.std(ddof=1))
    assert s["stderr"] == pytest.approx(d.std(ddof=1) / math.sqrt(5))
    assert s["t"] == pytest.approx(st.ttest_rel(a, b).statistic)
    half = st.t.ppf(0.975, 4) * s["stderr"]
    assert (s["ci_low"], s["ci_high"]) == (pytest.approx(d.mean() - half), pytest.approx(d.mean() + half))
    assert s["significant"] is True


@pytest.mark.points(2)
def test_few_seeds_need_a_wide_interval(mod, st) -> None:
    """With 3 seeds Student's t (4.30) is much wider than the normal 1.96."""
    s = mod.auc_gap_stats([0.80, 0.81, 0.79], [0.795, 0.80, 0.788], confidence=0.95)
    assert s["ci_high"] - s["mean_gap"] == pytest.approx(st.t.ppf(0.975, 2) * s["stderr"])
    assert s["significant"] is False
    z = mod.auc_gap_stats([0.8, 0.8], [0.8, 0.8])
    assert z["t"] == 0.0 and z["significant"] is False
    inf = mod.auc_gap_stats([0.81, 0.81], [0.80, 0.80])
    assert inf["t"] == math.inf


@pytest.mark.points(1)
def test_errors(mod) -> None:
    with pytest.raises(ValueError):
        mod.auc_gap_stats([0.8], [0.7])
    with pytest.raises(ValueError):
        mod.auc_gap_stats([0.8, 0.7], [0.7])


@pytest.mark.points(2)
def test_interpretation(mod) -> None:
    big = mod.auc_gap_stats([0.812, 0.815, 0.810, 0.818, 0.814], [0.806, 0.811, 0.807, 0.809, 0.808])
    assert mod.interpret(big) == "a better"
    flipped = mod.auc_gap_stats([0.806, 0.811, 0.807, 0.809, 0.808], [0.812, 0.815, 0.810, 0.818, 0.814])
    assert mod.interpret(flipped) == "b better"
    tiny = mod.auc_gap_stats([0.8001, 0.8002, 0.8001], [0.8000, 0.8001, 0.8000])
    assert tiny["significant"] and mod.interpret(tiny) == "no clear difference"
    noisy = mod.auc_gap_stats([0.80, 0.81, 0.79], [0.795, 0.80, 0.788])
    assert mod.interpret(noisy) == "no clear difference"
