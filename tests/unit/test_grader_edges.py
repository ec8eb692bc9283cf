"""The graders' random programs hit the edges on purpose.

Exercise 3.1's random-program test (5 points) compares a learner's ``TTLDictTable`` with
``DictTable`` over Hypothesis programs. Those programs step the clock by exactly ``ttl`` (and
``ttl +- 1``), move it to exactly ``ttl`` seconds after a stored row was last seen, and send
empty batches and batches that repeat their IDs. So two plausible mistakes, each a one-token
change of the reference solution, lose those points too, not only the conformance check
aimed at them: expiring a row unseen for exactly ``ttl`` seconds (``>=`` instead of ``>``),
and keeping only the last gradient of an ID repeated in a batch.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import Phase, find, settings

from conformance.checks import TableImpl
from conformance.stateful import STATEFUL_CONFIG, ids_strategy, time_steps

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "solutions" / "ex03_ttl_table.py"
GRADER = ROOT / "tests" / "exercises" / "test_ex03_ttl_table.py"

#: name -> (text of the solution, its replacement, what the grader's message must name)
VARIANTS = {
    "expiry-at-exactly-ttl": ("now - entry.last_seen > ttl", "now - entry.last_seen >= ttl",
                              "now - last_seen > ttl"),
    "last-repeated-gradient-wins": ("totals[key] = totals[key] + grad", "totals[key] = grad.copy()",
                                    "differs from DictTable"),
}


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"cannot import {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def grader() -> ModuleType:
    """The 3.1 grader module itself (its test functions are called directly below)."""
    return _load(GRADER, "grader_ex03_ttl_table")


@pytest.fixture
def fresh_search():
    """The current Hypothesis settings without the example database (no replay of an old failure:
    the search must find the edge afresh) and without shrinking (a failure is all we need)."""
    before = settings.default
    phases = [p for p in Phase if p not in (Phase.shrink, Phase.explain)]
    settings.register_profile("grader-edges-fresh", settings(before, database=None, phases=phases))
    settings.load_profile("grader-edges-fresh")
    yield
    settings.register_profile("grader-edges-restore", before)
    settings.load_profile("grader-edges-restore")


def _variant(tmp_path: Path, name: str) -> type:
    old, new, _ = VARIANTS[name]
    text = SOLUTION.read_text()
    assert text.count(old) == 1, f"solutions/ex03_ttl_table.py no longer holds {old!r}: update VARIANTS"
    path = tmp_path / f"variant_{name.replace('-', '_')}.py"
    path.write_text(text.replace(old, new))
    return _load(path, path.stem).TTLDictTable


def _points(test) -> int:
    return sum(m.args[0] for m in getattr(test, "pytestmark", []) if m.name == "points")


def test_the_solution_passes_the_random_program_test(grader) -> None:
    grader.test_random_programs_match_dict_table(TableImpl("TTLDictTable", _load(SOLUTION, "sol_ex03").TTLDictTable))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_wrong_variant_loses_the_random_program_points(grader, fresh_search, tmp_path: Path, name: str) -> None:
    test = grader.test_random_programs_match_dict_table
    assert _points(test) == 5, "the random-program test of 3.1 is worth 5 points"
    impl = TableImpl("TTLDictTable", _variant(tmp_path, name))
    with pytest.raises(AssertionError, match=re.escape(VARIANTS[name][2])):
        test(impl)


def test_the_strategies_draw_the_edges() -> None:
    """Each edge is something the programs' strategies produce (``find`` fails if it never comes)."""
    assert find(ids_strategy, lambda batch: batch == []) == []
    repeated = find(ids_strategy, lambda batch: len(batch) > len(set(batch)))
    assert len(repeated) > len(set(repeated)), f"a batch with a repeated ID was expected, got {repeated}"
    ttl = STATEFUL_CONFIG.ttl
    assert ttl is not None, "the programs' config needs a ttl"
    for step in (0, ttl - 1, ttl, ttl + 1):
        assert find(time_steps(ttl), lambda dt, step=step: dt == step) == step, f"no time step of {step} drawn"
