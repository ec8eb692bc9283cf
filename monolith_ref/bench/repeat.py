"""Several whole benchmark runs, saved one by one and then combined.

Both benchmark scripts in ``benchmarks/`` (tables, chapter 6; training steps, chapter 8)
repeat whole runs to quote medians across runs. This is that loop, once.
See: book/ch06_numba.md
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_run_options", "repeat_runs"]


def add_run_options(parser: argparse.ArgumentParser, out: Path, saves: str, repeats: int, repeats_help: str,
                    runs_help: str) -> None:
    """Add the options both benchmark scripts take: ``--repeats`` (default ``repeats``),
    ``--runs``, ``--seed``, ``--out`` (default ``out``, the folder for ``saves``) and ``--quiet``.
    See: book/ch06_numba.md
    """
    parser.add_argument("--repeats", type=int, default=repeats, help=repeats_help)
    parser.add_argument("--runs", type=int, default=1, help=runs_help)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=out, help=f"folder for {saves}")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def repeat_runs(run: Callable[[], Any], runs: int, out: Path, stem: str,
                combine: Callable[[Sequence[Any]], Any], note: Callable[[Any], str] = lambda r: "") -> Any:
    """Call ``run`` ``runs`` times; with more than one run, save each as
    ``<stem>-run<i>.json`` in ``out`` and print a line per run (load average before and
    after, then ``note(result)``); return the single result or ``combine(results)``.
    The caller saves the returned result. See: book/ch06_numba.md
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for i in range(runs):
        result = run()
        if runs > 1:
            result.to_json(out / f"{stem}-run{i + 1}.json")
            extra = note(result)
            print(f"run {i + 1} of {runs} done{': ' + extra if extra else ''} (load average "
                  f"{result.meta['load_before']:.1f} -> {result.meta['load_after']:.1f})")
        results.append(result)
    return results[0] if len(results) == 1 else combine(results)
