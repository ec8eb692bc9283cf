"""Grading the exercises: run the graders in ``tests/exercises`` and add up the points.

Each grader test carries two markers: ``exercise("3.1", title=...)`` (usually module-wide)
and ``points(n)``. A passed test earns its points; the table lists, per exercise, the points
earned out of the points possible. ``monolith-ref grade`` is the command-line front end: by
default it prints the table and, for each exercise with failures, its first failure
(:func:`format_failures`); ``--full`` shows pytest's whole report.

The graders are test files of a checkout, not part of the installed package, so grading
needs a clone of the repository (found first, by :func:`find_root`) and the test extras
(``pip install -e ".[test]"`` inside it). A grader file that cannot be imported (a missing
optional package, a syntax error) costs only its own exercise: that exercise gets 0 with the
reason, and every other exercise is graded as usual.

See: book/preface.md
"""

from __future__ import annotations

import ast
import io
import re
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["OUTPUTS", "ExerciseScore", "find_root", "grade", "format_table", "format_failures"]

#: What :func:`grade` lets pytest print: ``"full"`` its whole report, ``"short"`` and
#: ``"none"`` nothing (the caller prints :func:`format_failures` for ``"short"``).
OUTPUTS = ("short", "full", "none")

_MAX_LINES = 4  # lines of a failure message kept by format_failures
_MAX_WIDTH = 160  # characters kept per line


@dataclass
class ExerciseScore:
    """Points for one exercise, its failed tests, and why the first one failed.

    ``failed`` lists the failed tests' pytest node ids, in run order; ``first_failure`` is
    the short reason of the first (the exception and its message); ``error`` is set when
    the exercise's grader file could not be loaded at all (then ``possible`` is unknown, 0).
    See: book/preface.md
    """

    exercise: str
    title: str
    earned: int = 0
    possible: int = 0
    failed: list[str] = field(default_factory=list)
    tests: int = 0
    first_failure: str = ""
    error: str | None = None


def find_root(start: Path | None = None) -> Path:
    """The monolith-ref checkout that holds ``start`` (default: the working directory). See: book/preface.md"""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "tests" / "exercises").is_dir() and (folder / "exercises").is_dir():
            return folder
    raise FileNotFoundError(
        f"no monolith-ref checkout (with exercises/ and tests/exercises/) at or above {here}. "
        "The exercises and their graders live in a clone of the repository, not in the installed "
        "package: clone the monolith-ref repository, cd into it, and run `monolith-ref grade` there"
    )


def _exercise_key(exercise: str) -> tuple[int, ...]:
    parts = exercise.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (10**9,)


def _selected(exercise: str, selection: str | None) -> bool:
    if selection is None:
        return True
    return exercise == selection or exercise.startswith(selection + ".")


def _clip(text: str) -> str:
    """At most a few lines of ``text``, each at most a line wide."""
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    kept = [line if len(line) <= _MAX_WIDTH else line[: _MAX_WIDTH - 3] + "..." for line in lines[:_MAX_LINES]]
    if len(lines) > _MAX_LINES:
        kept.append("...")
    return "\n".join(kept)


def _reason(report: Any) -> str:
    """The short reason a test (or a collection) did not pass: the exception line(s), or the skip reason."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        return "skipped: " + str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", ""):
        return _clip(crash.message)
    text = str(longrepr)
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    return _clip("\n".join(errors) if errors else text)


def _grader_identity(path: Path) -> tuple[str, str]:
    """The exercise id and title a grader file declares (``pytestmark = pytest.mark.exercise(...)``), read
    without importing it; failing that, the chapter number in its name (``test_ex13_*.py``: ``"13"``)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        tree = None
    for node in tree.body if tree is not None else []:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            calls = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            for call in calls:
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "exercise"
                        and call.args and isinstance(call.args[0], ast.Constant)):
                    title = next((k.value.value for k in call.keywords
                                  if k.arg == "title" and isinstance(k.value, ast.Constant)), path.stem)
                    return str(call.args[0].value), str(title)
    match = re.match(r"test_ex0*(\d+)_", path.name)
    return (match.group(1) if match else path.stem), path.stem


class _Collector:
    """A pytest plugin that keeps only the selected exercises and records their outcomes."""

    def __init__(self, selection: str | None) -> None:
        self.selection = selection
        self.meta: dict[str, tuple[str, str, int]] = {}
        self.passed: dict[str, bool] = {}
        self.reasons: dict[str, str] = {}  # nodeid -> why it did not pass (the first report that says so)
        self.broken: dict[str, str] = {}  # grader files that could not be collected: nodeid -> why

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.broken[report.nodeid] = _reason(report)

    def pytest_collection_modifyitems(self, session: Any, config: Any, items: list[Any]) -> None:
        keep, drop = [], []
        for item in items:
            mark = item.get_closest_marker("exercise")
            if mark is None:
                drop.append(item)
                continue
            exercise = str(mark.args[0])
            if not _selected(exercise, self.selection):
                drop.append(item)
                continue
            points_mark = item.get_closest_marker("points")
            points = int(points_mark.args[0]) if points_mark else 1
            self.meta[item.nodeid] = (exercise, str(mark.kwargs.get("title", "")), points)
            self.passed[item.nodeid] = True
            keep.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.nodeid in self.passed and report.outcome != "passed":
            self.passed[report.nodeid] = False
            self.reasons.setdefault(report.nodeid, _reason(report))


def _check_extras(base: Path) -> None:
    missing = []
    for name in ("pytest", "hypothesis"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise RuntimeError(f"grading needs the test extras ({', '.join(missing)} missing); "
                           f"in {base} run: pip install -e \".[test]\"")


def grade(selection: str | None = None, impl: str = "exercises", root: Path | None = None,
          output: str = "short") -> list[ExerciseScore]:
    """Run the graders for ``selection`` (``None``: all; ``"3"``: chapter 3; ``"3.1"``: one).

    ``impl`` is ``"exercises"`` (your work), ``"solutions"`` (the reference answers), or any
    importable package with files of the same names (the cheat test grades such packages).
    ``output`` is one of :data:`OUTPUTS`: ``"full"`` lets pytest print its whole report;
    otherwise pytest prints nothing, and each score keeps its first failure. The checkout
    is found first (``root``, else the working directory; :func:`find_root`), then the test
    extras are checked. See: book/preface.md
    """
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", impl):
        raise ValueError(f"impl must be 'exercises', 'solutions' or a package name, got {impl!r}")
    if selection is not None and not all(p.isdigit() for p in selection.split(".")):
        raise ValueError(f"select an exercise like '3' or '3.1', got {selection!r}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    base = find_root(root)
    _check_extras(base)
    import pytest

    collector = _Collector(selection)
    args = [
        str(base / "tests" / "exercises"),
        f"--impl={impl}",
        f"--rootdir={base}",
        "-c", str(base / "pyproject.toml"),
        "-p", "no:cacheprovider",
        "--continue-on-collection-errors",  # a grader that cannot be imported costs only its exercise
        "-q", "--tb=short",
    ]
    buffer = io.StringIO()
    if output == "full":
        code = pytest.main(args, plugins=[collector])
    else:
        with redirect_stdout(buffer):
            code = pytest.main(args, plugins=[collector])
    scores: dict[str, ExerciseScore] = {}
    for nodeid, why in collector.broken.items():
        exercise, title = _grader_identity(base / nodeid.split("::", 1)[0])
        if _selected(exercise, selection):
            missing = "ModuleNotFound" in why
            hint = " (install what is missing; the test extras: pip install -e \".[test]\")" if missing else ""
            scores[exercise] = ExerciseScore(exercise, title,
                                             error=f"its grader {nodeid} could not be loaded: {why}{hint}")
    ran = int(code) in (0, 1) or (int(code) == 5 and scores)
    if not ran or not (collector.meta or scores):
        raise RuntimeError(f"the graders did not run (pytest exit code {int(code)})\n{buffer.getvalue()}")
    for nodeid, (exercise, title, points) in collector.meta.items():
        score = scores.setdefault(exercise, ExerciseScore(exercise, title))
        score.title = score.title or title
        score.possible += points
        score.tests += 1
        if collector.passed[nodeid]:
            score.earned += points
        else:
            score.failed.append(nodeid)
            score.first_failure = score.first_failure or collector.reasons.get(nodeid, "")
    return [scores[k] for k in sorted(scores, key=_exercise_key)]


def format_table(scores: list[ExerciseScore], impl: str = "exercises") -> str:
    """The score table ``monolith-ref grade`` prints. See: book/preface.md

    An exercise whose grader could not be loaded shows ``0/?`` and the reason below the table;
    the total counts the exercises that were graded.
    """
    width = max([len(s.title) for s in scores] + [len("Title")])
    lines = [f"Grades for {impl}/", "", f"{'Exercise':<9} {'Title':<{width}} {'Points':>9}"]
    lines.append("-" * len(lines[-1]))
    for s in scores:
        points = f"{s.earned}/?" if s.error else f"{s.earned}/{s.possible}"
        lines.append(f"{s.exercise:<9} {s.title:<{width}} {points:>9}")
    lines.append("-" * len(lines[2]))
    earned, possible = sum(s.earned for s in scores), sum(s.possible for s in scores)
    lines.append(f"{'Total':<9} {'':<{width}} {f'{earned}/{possible}':>9}")
    for s in scores:
        if s.error:
            lines.append(f"{s.exercise}: 0 points, {s.error}")
    return "\n".join(lines)


def format_failures(scores: list[ExerciseScore], command: str = "monolith-ref grade") -> str:
    """For each exercise with failures, its first failed test and why; then how to see every failure.

    Empty when nothing failed. ``command`` is the grading command the last line names.
    See: book/preface.md
    """
    failing = [s for s in scores if s.failed]
    if not failing:
        return ""
    lines = ["First failure of each exercise:"]
    for s in failing:
        lines.append("")
        lines.append(f"{s.exercise}  {s.failed[0]}  ({len(s.failed)} of {s.tests} tests failed)")
        lines += ["    " + line for line in (_clip(s.first_failure) or "(no message)").splitlines()]
    example = failing[0].exercise
    lines += ["", f"Every failure in full: {command} --full  (one exercise: {command} {example} --full)"]
    return "\n".join(lines)
