"""The exercise files stay exercises, and the grader command scores them.

CI grades the solutions (tests/exercises, default --impl solutions); these tests check the
other half: every stub in exercises/ still raises NotImplementedError, the stubs and the
solutions have the same public API, and `monolith-ref grade` prints 0 for the untouched stubs
and full marks for the solutions.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monolith_ref.tables import TableConfig

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (ROOT / "exercises").glob("ex*.py"))


def test_there_are_exercises() -> None:
    assert MODULES, "no exercises found"
    assert sorted(p.stem for p in (ROOT / "solutions").glob("ex*.py")) == MODULES


@pytest.mark.parametrize("name", MODULES)
def test_every_stub_body_raises_not_implemented(name: str) -> None:
    """Each function in the stub file is only a docstring and a raise naming the exercise."""
    tree = ast.parse((ROOT / "exercises" / f"{name}.py").read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert functions
    for fn in functions:
        body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        assert len(body) == 1 and isinstance(body[0], ast.Raise), f"{name}.{fn.name} has a body"
        text = ast.unparse(body[0])
        assert "NotImplementedError" in text and re.search(r"Exercise \d+\.\d+", text), text


@pytest.mark.parametrize("name", MODULES)
def test_stubs_and_solutions_share_their_api(name: str) -> None:
    stub = importlib.import_module(f"exercises.{name}")
    solution = importlib.import_module(f"solutions.{name}")

    def api(module) -> dict[str, str]:
        out = {}
        for attr, obj in vars(module).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            out[attr] = str(inspect.signature(obj))
            if inspect.isclass(obj):
                for meth, fn in vars(obj).items():
                    if isinstance(fn, (staticmethod, classmethod)):
                        fn = fn.__func__
                    if inspect.isfunction(fn):
                        out[f"{attr}.{meth}"] = str(inspect.signature(fn))
        return out

    assert api(stub) == api(solution)
    assert api(stub), f"exercises.{name} defines nothing public"


@pytest.mark.parametrize("name", MODULES)
def test_every_exercise_has_a_grader(name: str) -> None:
    grader = ROOT / "tests" / "exercises" / f"test_{name}.py"
    assert grader.exists(), f"missing grader {grader}"
    assert "pytest.mark.exercise(" in grader.read_text()


def test_calling_the_stubs_raises() -> None:
    ex02 = importlib.import_module("exercises.ex02_collisions")
    with pytest.raises(NotImplementedError, match="Exercise 2.1"):
        ex02.expected_collision_rate(10, 20)
    ex03 = importlib.import_module("exercises.ex03_ttl_table")
    table = ex03.TTLDictTable(TableConfig(dim=2, ttl=5))
    with pytest.raises(NotImplementedError, match="Exercise 3.1"):
        table.lookup([1], now=0)
    with pytest.raises(NotImplementedError, match="Exercise 3.1"):
        table.apply_gradients([1], np.zeros((1, 2), dtype=np.float32))
    with pytest.raises(NotImplementedError, match="Exercise 3.1"):
        table.expire(10)


def _grade(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monolith_ref.cli", "grade", "--brief", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )


def _total(output: str) -> tuple[int, int]:
    match = re.search(r"^Total\s+(\d+)/(\d+)\s*$", output, re.MULTILINE)
    assert match, output
    return int(match.group(1)), int(match.group(2))


def test_grade_gives_zero_to_the_untouched_stubs() -> None:
    run = _grade("--impl", "exercises")
    earned, possible = _total(run.stdout)
    assert earned == 0 and possible > 0, run.stdout
    assert run.returncode == 1
    for exercise in ("2.1", "3.1"):
        assert re.search(rf"^{re.escape(exercise)}\s.*\s0/\d+\s*$", run.stdout, re.MULTILINE), run.stdout


def test_grade_gives_full_marks_to_the_solutions() -> None:
    run = _grade("--impl", "solutions")
    earned, possible = _total(run.stdout)
    assert earned == possible > 0 and run.returncode == 0, run.stdout + run.stderr


def test_grade_selects_one_chapter_and_rejects_nonsense() -> None:
    run = _grade("2", "--impl", "solutions")
    assert "2.1" in run.stdout and "3.1" not in run.stdout
    bad = _grade("three")
    assert bad.returncode == 2 and "select an exercise" in bad.stderr
