"""Graders' set-up: import the learner's files (``exercises``) or the reference (``solutions``).

Run through ``monolith-ref grade`` for a score table, or directly:
``pytest tests/exercises --impl exercises``. ``--impl`` may also name any importable package
with files of the same names (the cheat test in tests/unit grades such packages).

Before a grader sees a module, the ``mod`` fixture checks that the functions and methods the
exercise asks for (``graded.GRADED``) are the learner's own code: a re-export, an alias, an
inherited answer or a thin wrapper around the package's twin fails every test of its exercise.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest
from graded import GRADED, TWINS, ownership_problems

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def mod(request) -> ModuleType:
    """The exercise this grader grades, from the chosen implementation: the module named after the
    grader's file (``test_ex07_routing.py`` grades ``exercises/ex07_routing.py``, or the solution),
    once its graded names are found to be its own code."""
    impl = request.config.getoption("--impl")
    name = request.path.stem.removeprefix("test_")
    module = importlib.import_module(f"{impl}.{name}")
    problems = ownership_problems(module, GRADED.get(name, ()), str(ROOT), TWINS.get(name))
    if problems:
        pytest.fail("Not your own code, so 0 points: a re-export, an alias, an inherited method or a call to the "
                    "package's version does not count (an unfinished stub does).\n" + "\n".join(problems),
                    pytrace=False)
    return module
