"""Grader for Exercise 2.1: ``expected_collision_rate(n, m)``."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from conformance.explain import raises

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
        want = float(exact_rate(n, m))
        got = rate(n, m)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (
            f"expected_collision_rate({n}, {m}) = {got!r}; the exact expectation is {want!r}")


@pytest.mark.points(1)
def test_edge_cases(rate) -> None:
    got = rate(0, 5)
    assert got == 0.0, f"expected_collision_rate(0, 5): no IDs, no collisions: expected 0.0, got {got!r}"
    got = rate(1, 5)
    assert got == pytest.approx(0.0, abs=1e-15), f"expected_collision_rate(1, 5): one ID never collides, got {got!r}"
    got = rate(4, 1)
    assert got == pytest.approx(0.75), f"expected_collision_rate(4, 1): 4 IDs in 1 bucket, 3 of 4 lose, got {got!r}"
    for n, m in [(-1, 5), (3, 0), (3, -2)]:
        with raises(ValueError, f"expected_collision_rate({n}, {m}) must refuse n < 0 or m < 1"):
            rate(n, m)


@pytest.mark.points(1)
def test_huge_tables_keep_precision(rate) -> None:
    n, m = 10_000, 10**12
    expected = (n - 1) / (2 * m)  # leading term; the next is O(n^2 / m^2)
    got = rate(n, m)
    assert got == pytest.approx(expected, rel=1e-4), (
        f"expected_collision_rate({n}, {m}) = {got!r}, expected about {expected!r} = (n - 1) / (2 m): "
        "when m >> n, a naive (1 - 1/m) ** n loses every digit")


@pytest.mark.points(1)
def test_paper_table_1_scale(rate) -> None:
    # 162,541 users into about 6.13 buckets per user gives the paper's 7.73%.
    got = rate(162_541, 996_451)
    assert got == pytest.approx(0.0773, abs=5e-5), f"expected_collision_rate(162541, 996451) = {got!r}, paper: 0.0773"
    rates = [rate(162_541, m) for m in (10**6, 10**5, 10**4)]
    assert 0 < rates[0] < rates[1] < rates[2] < 1, (
        f"with n = 162541, the rate must grow as m shrinks (10^6, 10^5, 10^4) and stay in (0, 1): got {rates}")


@pytest.mark.points(1)
def test_matches_simulation(rate) -> None:
    """Mean of 400 seeded simulations lies within 5 standard errors of the formula."""
    rng = np.random.default_rng(2024)
    n, m, trials = 300, 500, 400
    sims = np.array([1 - np.unique(rng.integers(0, m, size=n)).size / n for _ in range(trials)])
    stderr = sims.std(ddof=1) / np.sqrt(trials)
    got = rate(n, m)
    assert abs(sims.mean() - got) < 5 * stderr, (
        f"expected_collision_rate({n}, {m}) = {got!r}, but {trials} simulations average {sims.mean():.5f} "
        f"(standard error {stderr:.5f})")
