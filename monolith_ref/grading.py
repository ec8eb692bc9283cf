"""Grading the exercises: run the graders in ``tests/exercises`` and add up the points.

Each grader test carries two markers: ``exercise("3.1", title=...)`` (usually module-wide)
and ``points(n)``. A passed test earns its points; the table lists, per exercise, the points
earned out of the points possible. ``monolith-ref grade`` is the command-line front end.

See: book/preface.md
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ExerciseScore", "find_root", "grade", "format_table"]


@dataclass
class ExerciseScore:
    """Points for one exercise. See: book/preface.md"""

    exercise: str
    title: str
    earned: int = 0
    possible: int = 0
    failed: list[str] = field(default_factory=list)


def find_root(start: Path | None = None) -> Path:
    """The monolith-ref checkout that holds ``start`` (default: the working directory). See: book/preface.md"""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "tests" / "exercises").is_dir() and (folder / "exercises").is_dir():
            return folder
    raise FileNotFoundError(
        f"no monolith-ref checkout (with exercises/ and tests/exercises/) at or above {here}; "
        "run the grader from inside the repository"
    )


def _exercise_key(exercise: str) -> tuple[int, ...]:
    return tuple(int(part) for part in exercise.split("."))


def _selected(exercise: str, selection: str | None) -> bool:
    if selection is None:
        return True
    return exercise == selection or exercise.startswith(selection + ".")


class _Collector:
    """A pytest plugin that keeps only the selected exercises and records their outcomes."""

    def __init__(self, selection: str | None) -> None:
        self.selection = selection
        self.meta: dict[str, tuple[str, str, int]] = {}
        self.passed: dict[str, bool] = {}

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


def grade(selection: str | None = None, impl: str = "exercises", root: Path | None = None,
          show_output: bool = True) -> list[ExerciseScore]:
    """Run the graders for ``selection`` (``None``: all; ``"3"``: chapter 3; ``"3.1"``: one).

    ``impl`` is ``"exercises"`` (your work) or ``"solutions"`` (the reference answers).
    See: book/preface.md
    """
    if impl not in ("exercises", "solutions"):
        raise ValueError(f"impl must be 'exercises' or 'solutions', got {impl!r}")
    if selection is not None and not all(p.isdigit() for p in selection.split(".")):
        raise ValueError(f"select an exercise like '3' or '3.1', got {selection!r}")
    try:
        import pytest
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("grading needs the test extras: pip install -e '.[test]'") from exc
    base = root or find_root()
    collector = _Collector(selection)
    args = [
        str(base / "tests" / "exercises"),
        f"--impl={impl}",
        f"--rootdir={base}",
        "-c", str(base / "pyproject.toml"),
        "-p", "no:cacheprovider",
        "-q", "--tb=short" if show_output else "--tb=no",
    ]
    buffer = io.StringIO()
    if show_output:
        code = pytest.main(args, plugins=[collector])
    else:
        with redirect_stdout(buffer):
            code = pytest.main(args, plugins=[collector])
    if code not in (0, 1) or not collector.meta:
        raise RuntimeError(f"the graders did not run (pytest exit code {int(code)})\n{buffer.getvalue()}")
    scores: dict[str, ExerciseScore] = {}
    for nodeid, (exercise, title, points) in collector.meta.items():
        score = scores.setdefault(exercise, ExerciseScore(exercise, title))
        score.title = score.title or title
        score.possible += points
        if collector.passed[nodeid]:
            score.earned += points
        else:
            score.failed.append(nodeid.split("::", 1)[-1])
    return [scores[k] for k in sorted(scores, key=_exercise_key)]


def format_table(scores: list[ExerciseScore], impl: str = "exercises") -> str:
    """The score table ``monolith-ref grade`` prints. See: book/preface.md"""
    width = max([len(s.title) for s in scores] + [len("Title")])
    lines = [f"Grades for {impl}/", "", f"{'Exercise':<9} {'Title':<{width}} {'Points':>9}"]
    lines.append("-" * len(lines[-1]))
    for s in scores:
        lines.append(f"{s.exercise:<9} {s.title:<{width}} {f'{s.earned}/{s.possible}':>9}")
    lines.append("-" * len(lines[2]))
    earned, possible = sum(s.earned for s in scores), sum(s.possible for s in scores)
    lines.append(f"{'Total':<9} {'':<{width}} {f'{earned}/{possible}':>9}")
    return "\n".join(lines)
