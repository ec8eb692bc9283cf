"""Fixtures for the book pipeline tests (build, browser, notebook sync).

The tools under tools/ are scripts, not a package; they are loaded by path.
Helpers are offered as fixtures (not imported from this file), so the tests
work whatever import mode pytest uses and whatever tests/conftest.py holds.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skip on a developer machine; fail under CI=true, where nothing may be missing."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def _load(name: str) -> ModuleType:
    path = ROOT / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"monolith_ref_tools_{name}", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session", name="skip_or_fail")
def skip_or_fail_fixture():
    return skip_or_fail


@pytest.fixture(scope="session")
def browser_tool() -> ModuleType:
    return _load("check_book_browser")


@pytest.fixture(scope="session")
def notebooks_tool() -> ModuleType:
    return _load("notebooks")


@pytest.fixture(scope="session")
def chromium(browser_tool: ModuleType) -> str:
    """Path of the Chromium binary; skip locally / fail under CI=true if missing."""
    path = browser_tool.find_chromium()
    if path is None:
        skip_or_fail("chromium is not installed (as root: apt-get install -y chromium; `make test` does it)")
    return path
