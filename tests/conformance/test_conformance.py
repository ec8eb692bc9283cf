"""Every table implementation against the conformance suite (one line per table in IMPLS)."""

from __future__ import annotations

import pytest

from dataclasses import replace

from .checks import IMPLS, checks_for
from .stateful import FILTERS, OPTIMIZERS, STATEFUL_CONFIG, run_against_dict

CASES = [pytest.param(impl, check, id=f"{impl.name}-{check.__name__[6:]}") for impl in IMPLS for check in checks_for(impl)]


@pytest.mark.parametrize(("impl", "check"), CASES)
def test_conformance(impl, check) -> None:
    check(impl)


@pytest.mark.parametrize("impl", [i for i in IMPLS if i.collisionless], ids=str)
def test_stateful_against_dict_table(impl) -> None:
    """At least 200 random operation programs, bit-identical to DictTable."""
    programs = run_against_dict(impl, max_examples=200)
    print(f"{impl.name}: {programs} Hypothesis programs compared with DictTable")
    assert programs >= 200, f"Hypothesis ran only {programs} programs against DictTable; 200 are required"


FILTERED = [
    (impl, name)
    for impl in IMPLS
    if impl.name.startswith(("Cuckoo", "Numba", "Sharded"))
    for name in FILTERS
    # per-shard sketches and draw counters see only their shard's traffic: exact filters only
    if FILTERS[name] and (impl.shared_filter or name.startswith("occurrence"))
]


@pytest.mark.parametrize(("impl", "filter_name"), FILTERED, ids=[f"{i.name}-{f}" for i, f in FILTERED])
def test_stateful_with_filters_against_dict_table(impl, filter_name) -> None:
    """With an admission filter, the table still matches DictTable with the same filter."""
    config = replace(STATEFUL_CONFIG, filter=FILTERS[filter_name])
    programs = run_against_dict(impl, max_examples=100, config=config)
    assert programs >= 100, f"Hypothesis ran only {programs} programs with {filter_name}; 100 are required"


OPTIMIZED = [(impl, name) for impl in IMPLS if impl.collisionless and impl.name != "DictTable" for name in OPTIMIZERS]


@pytest.mark.parametrize(("impl", "opt_name"), OPTIMIZED, ids=[f"{i.name}-{o}" for i, o in OPTIMIZED])
def test_stateful_with_optimizers_against_dict_table(impl, opt_name) -> None:
    """Optimizer state lives with the row: it must match DictTable's bit for bit too."""
    config = replace(STATEFUL_CONFIG, optimizer=OPTIMIZERS[opt_name])
    programs = run_against_dict(impl, max_examples=60, config=config)
    assert programs >= 60, f"Hypothesis ran only {programs} programs with {opt_name}; 60 are required"
