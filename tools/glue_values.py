#!/usr/bin/env python3
"""List, or compare, the values each executed notebook glues into the book.

The book's numbers come from ``glue`` calls in the notebooks; a change that should not change
a result (a refactor) must leave every glued value as it was. Save the values before the
change, re-execute, and compare:

    python tools/glue_values.py --save before.json          # from notebooks/*.ipynb as committed
    make notebooks                                           # re-execute
    python tools/glue_values.py --compare before.json        # list every glued value that moved

Values are compared as the text the book shows (``text/plain``). Timings, and anything else a
notebook measures from the clock, move from run to run: the report lists them like any other
change, so read it rather than expecting it to be empty.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def glued(path: Path) -> dict[str, str]:
    """Every ``glue`` name in one executed notebook, with the text it shows."""
    values: dict[str, str] = {}
    for cell in json.loads(path.read_text())["cells"]:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            data = out.get("data", {})
            text = data.get(meta["mime_prefix"] + "text/plain", data.get("text/plain", ""))
            values[meta["name"]] = "".join(text) if isinstance(text, list) else str(text)
    return values


def collect(folder: Path) -> dict[str, dict[str, str]]:
    return {p.stem: glued(p) for p in sorted(folder.glob("*.ipynb"))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=ROOT / "notebooks")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="write the glued values to this JSON file")
    group.add_argument("--compare", type=Path, help="compare with values saved earlier")
    args = ap.parse_args(argv)
    now = collect(args.dir)
    if args.save:
        args.save.write_text(json.dumps(now, indent=1, sort_keys=True))
        print(f"saved {sum(map(len, now.values()))} glued values from {len(now)} notebooks to {args.save}")
        return 0
    before = json.loads(args.compare.read_text())
    changed = 0
    for nb in sorted(set(before) | set(now)):
        old, new = before.get(nb, {}), now.get(nb, {})
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                changed += 1
                print(f"{nb}: {name}: {old.get(name, '<missing>')!s:.60} -> {new.get(name, '<missing>')!s:.60}")
    total = sum(map(len, before.values()))
    print(f"{changed} of {total} glued values differ")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
