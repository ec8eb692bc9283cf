"""Graders' set-up: import the learner's files (``exercises``) or the reference (``solutions``).

Run through ``monolith-ref grade`` for a score table, or directly:
``pytest tests/exercises --impl exercises``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest


@pytest.fixture
def load(request):
    """``load("ex03_ttl_table")`` imports that exercise from the chosen implementation."""
    impl = request.config.getoption("--impl")

    def _load(name: str) -> ModuleType:
        return importlib.import_module(f"{impl}.{name}")

    return _load
