"""Several whole benchmark runs, saved one by one and then combined.

Both benchmark scripts in ``benchmarks/`` (tables, chapter 6; training steps, chapter 8)
repeat whole runs to quote medians across runs. This is that loop, once.
See: book/ch06_numba.md
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["repeat_runs"]


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
