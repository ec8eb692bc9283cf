"""Graders' set-up: import the learner's files (``exercises``) or the reference (``solutions``).

Run through ``monolith-ref grade`` for a score table, or directly:
``pytest tests/exercises --impl exercises``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest


@pytest.fixture
def mod(request) -> ModuleType:
    """The exercise this grader grades, from the chosen implementation: the module named after the
    grader's file (``test_ex07_routing.py`` grades ``exercises/ex07_routing.py``, or the solution)."""
    impl = request.config.getoption("--impl")
    return importlib.import_module(f"{impl}.{request.path.stem.removeprefix('test_')}")
