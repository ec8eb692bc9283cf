"""Grader for Exercise 3.1: ``TTLDictTable``, graded by the table conformance suite."""

from __future__ import annotations

import pytest

from conformance.checks import ALL_CHECKS, COLLISIONLESS_CHECKS, TableImpl
from conformance.stateful import run_against_dict

pytestmark = pytest.mark.exercise("3.1", title="A TTL dict table")

CHECKS = ALL_CHECKS + COLLISIONLESS_CHECKS


@pytest.fixture
def impl(mod) -> TableImpl:
    cls = mod.TTLDictTable
    for name in ("_lookup", "_apply_gradients", "_expire"):
        assert name in vars(cls), f"TTLDictTable must define its own {name}"
    return TableImpl("TTLDictTable", cls)


@pytest.mark.points(1)
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__[6:])
def test_conformance(impl, check) -> None:
    check(impl)


@pytest.mark.points(5)
def test_random_programs_match_dict_table(impl) -> None:
    """100 random programs (lookups, gradients with repeated IDs, empty batches, time steps of exactly
    ttl and ttl +- 1, expiry) must give the same results as DictTable, bit for bit."""
    programs = run_against_dict(impl, max_examples=100)
    assert programs >= 100, f"Hypothesis ran only {programs} random programs; 100 are required"
