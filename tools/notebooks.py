#!/usr/bin/env python3
"""Regenerate notebooks/NAME.ipynb from its percent-format source notebooks/src/NAME.py.

The .py file is what people edit and review; jupytext (the standard tool) turns it
into a notebook. What is ours is small: executing it (nbclient), normalising what
changes from run to run (metadata, cell ids, how prints are split into messages),
and checking that every committed notebook still matches its source.

Source format: jupytext's "percent" format.

    # %%                          a code cell follows
    # %% [markdown]               a markdown cell follows; every line is "# text"
    # %% tags=["hide-input"]      cell tags (both kinds)

Usage:
    python tools/notebooks.py                 convert and execute every source
    python tools/notebooks.py ch03_dict_table convert and execute one
    python tools/notebooks.py --no-exec       convert only (outputs are dropped)
    python tools/notebooks.py --check         exit 1 if a notebook's cells differ
                                              from its source (or one is missing)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SRC = ROOT / "notebooks" / "src"
DEFAULT_OUT = ROOT / "notebooks"
FORMAT = "py:percent"

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
LANGUAGE_INFO = {"name": "python", "file_extension": ".py", "mimetype": "text/x-python"}
# Cell metadata that means something to the book (myst-nb reads the tags); the
# rest (jupytext's round-trip hints such as lines_to_next_cell, execution times,
# editor state) is dropped.
KEPT_CELL_METADATA = ("tags",)


class Cell(NamedTuple):
    """What the sync check compares: the cell's kind, its source and its tags."""

    kind: str
    source: str
    tags: tuple[str, ...] = ()


def from_source(text: str, stem: str) -> Any:
    """The notebook (nbformat node, no outputs) that jupytext makes of a percent-format text."""
    import jupytext

    nb = jupytext.reads(text, fmt=FORMAT)
    normalise(nb, stem)
    return nb


def normalise(nb: Any, stem: str) -> None:
    """Remove what changes from run to run but carries no information (in place)."""
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)}
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", stem)[:48]
    for index, cell in enumerate(nb.cells):
        cell.id = f"{safe}-{index:03d}"  # deterministic, so regenerating does not churn
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEPT_CELL_METADATA and v}
        if cell.cell_type != "code":
            continue
        merged = []
        for output in cell.outputs:
            output.pop("transient", None)  # kernel-specific display ids
            # How prints are split into stream messages depends on timing; join
            # consecutive chunks of the same stream so the file does not churn.
            if (
                output.output_type == "stream"
                and merged
                and merged[-1].output_type == "stream"
                and merged[-1].name == output.name
            ):
                merged[-1].text += output.text
            else:
                merged.append(output)
        cell.outputs = merged


def execute(nb: Any, workdir: Path, timeout: int) -> None:
    """Run every cell in a fresh python3 kernel started in ``workdir``; raise on any error."""
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        record_timing=False,
        allow_errors=False,
    )
    client.execute()


def write_notebook(nb: Any, path: Path) -> None:
    """Validate and save as nbformat 4 JSON with a final newline."""
    import nbformat

    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text, encoding="utf-8")


def cells_of(nb: Any) -> list[Cell]:
    """The cells of a notebook node, as the sync check compares them."""
    return [Cell(c.cell_type, c.source, tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def describe_difference(expected: list[Cell], actual: list[Cell]) -> str:
    """The first difference between source cells and notebook cells; '' when none."""
    if len(expected) != len(actual):
        return f"{len(actual)} cells in the notebook, {len(expected)} in the source"
    for index, (want, got) in enumerate(zip(expected, actual)):
        if want.kind != got.kind:
            return f"cell {index}: {got.kind} in the notebook, {want.kind} in the source"
        if want.source != got.source:
            want_lines, got_lines = want.source.splitlines(), got.source.splitlines()
            for lineno, (a, b) in enumerate(zip(want_lines, got_lines), start=1):
                if a != b:
                    return f"cell {index}, line {lineno}: notebook {b!r} != source {a!r}"
            lineno = min(len(want_lines), len(got_lines)) + 1
            if len(got_lines) > len(want_lines):
                return f"cell {index}, line {lineno} only in the notebook: {got_lines[lineno - 1]!r}"
            if len(want_lines) > len(got_lines):
                return f"cell {index}, line {lineno} only in the source: {want_lines[lineno - 1]!r}"
            return f"cell {index}: the sources differ in blank lines or line endings"
        if want.tags != got.tags:
            return f"cell {index}: tags {list(got.tags)} in the notebook, {list(want.tags)} in the source"
    return ""


def check(src_dir: Path, out_dir: Path, names: list[str] | None = None) -> list[str]:
    """One problem per line; empty when every notebook matches its source."""
    import nbformat

    problems = []
    sources = {p.stem: p for p in sorted(src_dir.glob("*.py"))} if src_dir.is_dir() else {}
    notebooks = {p.stem: p for p in sorted(out_dir.glob("*.ipynb"))} if out_dir.is_dir() else {}
    for stem in names or sorted(set(sources) | set(notebooks)):
        src, nbpath = sources.get(stem), notebooks.get(stem)
        if src is None:
            problems.append(f"{stem}: notebook {out_dir.name}/{stem}.ipynb has no source {src_dir.name}/{stem}.py")
            continue
        if nbpath is None:
            problems.append(f"{stem}: source has no notebook; run `make notebooks NB={stem}`")
            continue
        expected = cells_of(from_source(src.read_text(encoding="utf-8"), stem))
        diff = describe_difference(expected, cells_of(nbformat.read(nbpath, as_version=4)))
        if diff:
            problems.append(f"{stem}: out of sync ({diff}); run `make notebooks NB={stem}`")
    return problems


def sync(src_dir: Path, out_dir: Path, names: list[str] | None, run: bool, timeout: int) -> int:
    """Convert (and execute) the named sources, or all; 0 when every one was written."""
    sources = sorted(src_dir.glob("*.py")) if src_dir.is_dir() else []
    if names:
        by_stem = {p.stem: p for p in sources}
        missing = [n for n in names if n not in by_stem]
        if missing:
            print(f"notebooks: no source for {', '.join(missing)} in {src_dir}", file=sys.stderr)
            return 2
        sources = [by_stem[n] for n in names]
    if not sources:
        print(f"notebooks: no sources in {src_dir}", file=sys.stderr)
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for src in sources:
        target = out_dir / f"{src.stem}.ipynb"
        nb = from_source(src.read_text(encoding="utf-8"), src.stem)
        if run:
            print(f"notebooks: executing {src.stem} ...", flush=True)
            try:
                execute(nb, out_dir, timeout)
            except Exception as exc:  # CellExecutionError, timeouts, dead kernels
                print(f"notebooks: {src.stem} failed; {target} left unchanged\n{exc}", file=sys.stderr)
                failed += 1
                continue
        normalise(nb, src.stem)
        write_notebook(nb, target)
        print(f"notebooks: wrote {target}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: all sources)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only compare; exit 1 on drift")
    mode.add_argument("--no-exec", action="store_true", help="convert without executing")
    parser.add_argument("--src-dir", type=Path, default=DEFAULT_SRC)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.src_dir, args.out_dir, args.names or None)
        for line in problems:
            print(f"notebooks --check: {line}", file=sys.stderr)
        if not problems:
            print("notebooks --check: all notebooks match their sources")
        return 1 if problems else 0
    return sync(args.src_dir, args.out_dir, args.names or None, not args.no_exec, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
