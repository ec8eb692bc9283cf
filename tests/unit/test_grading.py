"""``monolith-ref grade`` as a learner meets it: a short default report, clear messages outside a
checkout or without the test extras, and a grader that cannot be imported costing only its exercise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from monolith_ref.grading import ExerciseScore, format_failures, format_table, grade

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path = ROOT, block: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """``monolith-ref <args>`` in a fresh interpreter; ``block`` makes those modules fail to import."""
    code = ("import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in block)
            + "from monolith_ref.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def _total(output: str) -> tuple[int, int]:
    match = re.search(r"^Total\s+(\d+)/(\d+)\s*$", output, re.MULTILINE)
    assert match, output
    return int(match.group(1)), int(match.group(2))


def test_the_default_output_is_the_table_and_each_first_failure() -> None:
    run = _run("grade", "5", "--impl", "exercises")
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert _total(out) == (0, 15)
    assert "FAILED" not in out and "short test summary" not in out  # none of pytest's own report
    first = out.index("First failure of each exercise:")
    assert first > out.index("Total")  # the table comes first
    for exercise, why in (("5.1", "NotImplementedError: Exercise 5.1"), ("5.2", "NotImplementedError: Exercise 5.2")):
        assert re.search(rf"^{re.escape(exercise)}  tests/exercises/test_ex05_\w+\.py::test_\w+  "
                         rf"\(\d+ of \d+ tests failed\)$", out, re.MULTILINE), out
        assert why in out
    assert "monolith-ref grade --full" in out
    assert len(out.splitlines()) < 30, out


def test_full_shows_pytest_report_and_brief_only_the_table() -> None:
    full = _run("grade", "2", "--full")
    assert "FAILED tests/exercises/test_ex02_collisions.py::" in full.stdout and "Total" in full.stdout
    brief = _run("grade", "2", "--brief")
    assert _total(brief.stdout) == (0, 6) and "First failure" not in brief.stdout
    both = _run("grade", "--full", "--brief")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_outside_a_checkout_it_says_to_clone_even_without_the_test_extras(tmp_path: Path) -> None:
    for block in ((), ("pytest", "hypothesis")):
        run = _run("grade", cwd=tmp_path, block=block)
        assert run.returncode == 2
        assert "no monolith-ref checkout" in run.stderr and "clone" in run.stderr, run.stderr
        assert "pip install" not in run.stderr and "test extras" not in run.stderr


def test_inside_a_checkout_without_the_test_extras_it_names_them() -> None:
    run = _run("grade", "2", block=("hypothesis",))
    assert run.returncode == 2
    assert "test extras (hypothesis missing)" in run.stderr and 'pip install -e ".[test]"' in run.stderr


def _fake_checkout(root: Path) -> Path:
    """A checkout with two graders: 1.1 loads (one test passes, one fails), 2.1 imports a missing module."""
    (root / "exercises").mkdir(parents=True)
    (root / "exercises" / "__init__.py").write_text("")
    graders = root / "tests" / "exercises"
    graders.mkdir(parents=True)
    (root / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.pytest.ini_options]
        markers = ["points(n): points", "exercise(id): exercise"]
        """))
    (root / "tests" / "conftest.py").write_text(textwrap.dedent("""\
        def pytest_addoption(parser):
            parser.addoption("--impl", default="solutions")
        """))
    (graders / "test_ex01_fine.py").write_text(textwrap.dedent("""\
        import pytest

        pytestmark = pytest.mark.exercise("1.1", title="Loads fine")


        @pytest.mark.points(2)
        def test_passes():
            assert 1 + 1 == 2, "one and one make two"


        @pytest.mark.points(1)
        def test_fails():
            assert 1 + 1 == 3, "one and one make two"
        """))
    (graders / "test_ex02_broken.py").write_text(textwrap.dedent("""\
        import pytest
        import no_such_package_for_the_grading_test

        pytestmark = pytest.mark.exercise("2.1", title="Needs a missing package")


        @pytest.mark.points(5)
        def test_never_runs():
            assert no_such_package_for_the_grading_test.ANSWER == 42
        """))
    return root


def test_a_grader_that_cannot_be_imported_costs_only_its_exercise(tmp_path: Path) -> None:
    root = _fake_checkout(tmp_path / "checkout")
    run = _run("grade", "--root", str(root))
    out = run.stdout
    assert run.returncode == 1, out + run.stderr
    assert re.search(r"^1\.1\s+Loads fine\s+2/3$", out, re.MULTILINE), out
    assert re.search(r"^2\.1\s+Needs a missing package\s+0/\?$", out, re.MULTILINE), out
    assert _total(out) == (2, 3)
    assert "2.1: 0 points, its grader tests/exercises/test_ex02_broken.py could not be loaded" in out
    assert "No module named 'no_such_package_for_the_grading_test'" in out
    assert "one and one make two" in out  # 1.1's first failure, with its message
    only_broken = _run("grade", "2", "--root", str(root))
    assert only_broken.returncode == 1 and "0/?" in only_broken.stdout and "1.1" not in only_broken.stdout
    only_fine = _run("grade", "1", "--root", str(root))
    assert "2.1" not in only_fine.stdout and _total(only_fine.stdout) == (2, 3)


def test_grade_checks_its_arguments_before_running_anything(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="output must be one of"):
        grade(output="loud", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="clone"):
        grade(root=tmp_path)


def test_format_failures_is_empty_without_failures_and_clips_long_messages() -> None:
    fine = ExerciseScore("1.1", "t", earned=2, possible=2, tests=2)
    assert format_failures([fine]) == ""
    long = "\n".join(f"line {i} " + "x" * 300 for i in range(10))
    bad = ExerciseScore("1.2", "u", possible=1, tests=1, failed=["tests/exercises/test_x.py::test_y"],
                        first_failure=long)
    text = format_failures([fine, bad])
    assert "1.1" not in text and "1.2  tests/exercises/test_x.py::test_y  (1 of 1 tests failed)" in text
    assert "line 3" in text and "line 4" not in text and max(map(len, text.splitlines())) < 170
    broken = ExerciseScore("2.1", "v", error="its grader could not be loaded: boom")
    table = format_table([fine, broken])
    assert "0/?" in table and "2.1: 0 points, its grader could not be loaded: boom" in table
