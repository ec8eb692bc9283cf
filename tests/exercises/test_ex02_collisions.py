"""Grader for Exercise 2.1: ``expected_collision_rate(n, m)``."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

pytestmark = pytest.mark.exercise("2.1", title="Expected collision rate (birthday problem)")


@pytest.fixture
def rate(mod):
    return mod.expected_collision_rate


def exact_rate(n: int, m: int) -> Fraction:
    """The same expectation in exact rational arithmetic, for small n and m."""
    empty = Fraction(m - 1, m) ** n
    return 1 - m * (1 - empty) / n


@pytest.mark.points(2)
def test_exact_small_cases(rate) -> None:
    for n, m in itertools.product([1, 2, 3, 5, 10, 40], [1, 2, 3, 7, 16, 100]):
        assert rate(n, m) == pytest.approx(float(exact_rate(n, m)), rel=1e-9, abs=1e-12), (n, m)


@pytest.mark.points(1)
def test_edge_cases(rate) -> None:
    assert rate(0, 5) == 0.0
    assert rate(1, 5) == pytest.approx(0.0, abs=1e-15)
    assert rate(4, 1) == pytest.approx(0.75)
    for n, m in [(-1, 5), (3, 0), (3, -2)]:
        with pytest.raises(ValueError):
            rate(n, m)


@pytest.mark.points(1)
def test_huge_tables_keep_precision(rate) -> None:
    n, m = 10_000, 10**12
    expected = (n - 1) / (2 * m)  # leading term; the next is O(n^2 / m^2)
    assert rate(n, m) == pytest.approx(expected, rel=1e-4)


@pytest.mark.points(1)
def test_paper_table_1_scale(rate) -> None:
    # 162,541 users into about 6.13 buckets per user gives the paper's 7.73%.
    assert rate(162_541, 996_451) == pytest.approx(0.0773, abs=5e-5)
    assert 0 < rate(162_541, 10**6) < rate(162_541, 10**5) < rate(162_541, 10**4) < 1


@pytest.mark.points(1)
def test_matches_simulation(rate) -> None:
    """Mean of 400 seeded simulations lies within 5 standard errors of the formula."""
    rng = np.random.default_rng(2024)
    n, m, trials = 300, 500, 400
    sims = np.array([1 - np.unique(rng.integers(0, m, size=n)).size / n for _ in range(trials)])
    stderr = sims.std(ddof=1) / np.sqrt(trials)
    assert abs(sims.mean() - rate(n, m)) < 5 * stderr
