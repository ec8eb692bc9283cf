#!/usr/bin/env python3
"""Keep notebooks/NAME.ipynb in step with its percent-format source notebooks/src/NAME.py.

The .py file is what people edit and review; the .ipynb is generated from it,
executed, and committed with its outputs (nbval compares them, GitHub shows them).

Source format (a subset of the "percent" format that Jupytext and editors know):

    # %%                          a code cell follows
    # %% [markdown]               a markdown cell follows; every line is "# text"
    # %% tags=["hide-input"]      optional JSON list of cell tags (both kinds)

Blank lines around a cell are dropped. In a markdown cell a bare "#" or an empty
line is an empty line of Markdown. Anything else is an error, so that mistakes
are not silently turned into the wrong cell.

Usage:
    python tools/nbsync.py                 convert and execute every source
    python tools/nbsync.py ch03_dict_table convert and execute one
    python tools/nbsync.py --no-exec       convert only (outputs are dropped)
    python tools/nbsync.py --check         exit 1 if a notebook's cells differ
                                           from its source (or one is missing)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SRC = ROOT / "notebooks" / "src"
DEFAULT_OUT = ROOT / "notebooks"

MARKER = re.compile(r"^# %%(?P<rest>.*)$")
KIND = re.compile(r"^\s*\[(?P<kind>markdown|md)\]")
TAGS = re.compile(r"^\s*tags\s*=\s*(?P<json>\[.*\])\s*$")

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
LANGUAGE_INFO = {"name": "python", "file_extension": ".py", "mimetype": "text/x-python"}


class SourceError(ValueError):
    """A percent-format source that this tool refuses to guess about."""


@dataclass
class Cell:
    kind: str  # "code" or "markdown"
    source: str
    tags: list[str] = field(default_factory=list)


def _parse_marker(rest: str, where: str) -> tuple[str, list[str]]:
    kind = "code"
    match = KIND.match(rest)
    if match:
        kind = "markdown"
        rest = rest[match.end():]
    tags: list[str] = []
    if rest.strip():
        match = TAGS.match(rest)
        if not match:
            raise SourceError(f"{where}: cannot read cell marker text {rest.strip()!r}")
        try:
            tags = json.loads(match["json"])
        except json.JSONDecodeError as exc:
            raise SourceError(f"{where}: tags are not a JSON list: {exc}") from None
        if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            raise SourceError(f"{where}: tags must be a JSON list of strings")
    return kind, tags


def _strip_blank(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _markdown_text(lines: list[str], first_lineno: int, name: str) -> str:
    out = []
    for offset, line in enumerate(lines):
        if line.strip() == "" or line.rstrip() == "#":
            out.append("")
        elif line.startswith("# "):
            out.append(line[2:])
        else:
            raise SourceError(
                f"{name}:{first_lineno + offset}: markdown cell line must start with '# ': {line!r}"
            )
    return "\n".join(out)


def parse_source(text: str, name: str = "<source>") -> list[Cell]:
    """Split a percent-format file into cells."""
    lines = text.splitlines()
    cells: list[Cell] = []
    current: tuple[str, list[str], int, list[str]] | None = None  # kind, tags, lineno, body

    def flush() -> None:
        if current is None:
            return
        kind, tags, lineno, body = current
        # Only blank lines may separate the body from the marker; count them.
        lead = 0
        while lead < len(body) and not body[lead].strip():
            lead += 1
        body = _strip_blank(body)
        if kind == "markdown":
            source = _markdown_text(body, lineno + 1 + lead, name)
        else:
            source = "\n".join(line.rstrip() for line in body)
        cells.append(Cell(kind, source, tags))

    for lineno, line in enumerate(lines, start=1):
        match = MARKER.match(line)
        if match:
            flush()
            kind, tags = _parse_marker(match["rest"], f"{name}:{lineno}")
            current = (kind, tags, lineno, [])
        elif current is None:
            if line.strip():
                raise SourceError(f"{name}:{lineno}: text before the first '# %%' marker")
        else:
            current[3].append(line)
    flush()
    if not cells:
        raise SourceError(f"{name}: no '# %%' cells found")
    return cells


def build_notebook(cells: list[Cell], stem: str):
    """A fresh, output-free nbformat 4 notebook with deterministic cell ids."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)}
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", stem)[:48]
    for index, cell in enumerate(cells):
        metadata = {"tags": list(cell.tags)} if cell.tags else {}
        cell_id = f"{safe}-{index:03d}"
        if cell.kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(cell.source, id=cell_id, metadata=metadata))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(cell.source, id=cell_id, metadata=metadata))
    return nb


def normalise(nb) -> None:
    """Remove what changes from run to run but carries no information."""
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = dict(LANGUAGE_INFO)
    for key in list(nb.metadata):
        if key not in ("kernelspec", "language_info"):
            del nb.metadata[key]
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
        if cell.cell_type != "code":
            continue
        merged = []
        for output in cell.outputs:
            # Kernel-specific transient display ids and the like.
            output.pop("transient", None)
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


def execute(nb, workdir: Path, timeout: int) -> None:
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


def write_notebook(nb, path: Path) -> None:
    import nbformat

    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text, encoding="utf-8")


def cells_of_notebook(path: Path) -> list[Cell]:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type not in ("code", "markdown"):
            cells.append(Cell(cell.cell_type, cell.source))
            continue
        cells.append(Cell(cell.cell_type, cell.source, list(cell.metadata.get("tags", []))))
    return cells


def describe_difference(expected: list[Cell], actual: list[Cell]) -> str:
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
            return f"cell {index}: {len(got_lines)} lines in the notebook, {len(want_lines)} in the source"
        if want.tags != got.tags:
            return f"cell {index}: tags {got.tags} in the notebook, {want.tags} in the source"
    return ""


def check(src_dir: Path, out_dir: Path, names: list[str] | None) -> list[str]:
    """Return one problem per line; empty when every pair matches."""
    problems = []
    sources = {p.stem: p for p in sorted(src_dir.glob("*.py"))} if src_dir.is_dir() else {}
    notebooks = {p.stem: p for p in sorted(out_dir.glob("*.ipynb"))} if out_dir.is_dir() else {}
    wanted = names or sorted(set(sources) | set(notebooks))
    for stem in wanted:
        src, nbpath = sources.get(stem), notebooks.get(stem)
        if src is None:
            problems.append(f"{stem}: notebook {out_dir.name}/{stem}.ipynb has no source {src_dir.name}/{stem}.py")
            continue
        if nbpath is None:
            problems.append(f"{stem}: source has no notebook; run `make notebooks`")
            continue
        try:
            expected = parse_source(src.read_text(encoding="utf-8"), str(src))
        except SourceError as exc:
            problems.append(str(exc))
            continue
        diff = describe_difference(expected, cells_of_notebook(nbpath))
        if diff:
            problems.append(f"{stem}: out of sync ({diff}); run `make notebooks`")
    return problems


def sync(src_dir: Path, out_dir: Path, names: list[str] | None, run: bool, timeout: int) -> int:
    sources = sorted(src_dir.glob("*.py")) if src_dir.is_dir() else []
    if names:
        by_stem = {p.stem: p for p in sources}
        missing = [n for n in names if n not in by_stem]
        if missing:
            print(f"nbsync: no source for {', '.join(missing)} in {src_dir}", file=sys.stderr)
            return 2
        sources = [by_stem[n] for n in names]
    if not sources:
        print(f"nbsync: no sources in {src_dir}", file=sys.stderr)
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for src in sources:
        target = out_dir / f"{src.stem}.ipynb"
        try:
            nb = build_notebook(parse_source(src.read_text(encoding="utf-8"), str(src)), src.stem)
        except SourceError as exc:
            print(f"nbsync: {exc}", file=sys.stderr)
            failed += 1
            continue
        if run:
            print(f"nbsync: executing {src.stem} ...", flush=True)
            try:
                execute(nb, out_dir, timeout)
            except Exception as exc:  # CellExecutionError, timeouts, dead kernels
                print(f"nbsync: {src.stem} failed; {target} left unchanged\n{exc}", file=sys.stderr)
                failed += 1
                continue
        normalise(nb)
        write_notebook(nb, target)
        print(f"nbsync: wrote {target}")
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
            print(f"nbsync --check: {line}", file=sys.stderr)
        if not problems:
            print("nbsync --check: all notebooks match their sources")
        return 1 if problems else 0
    return sync(args.src_dir, args.out_dir, args.names or None, not args.no_exec, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
