"""The ``monolith-ref`` command: grade exercises (and, in later chapters, run experiments).

See: book/preface.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__

__all__ = ["main"]


def _grade(args: argparse.Namespace) -> int:
    from .grading import format_table, grade

    try:
        scores = grade(args.exercise, impl=args.impl, root=args.root, show_output=not args.brief)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"monolith-ref grade: {exc}", file=sys.stderr)
        return 2
    print()
    print(format_table(scores, impl=args.impl))
    complete = all(s.earned == s.possible for s in scores)
    return 0 if complete else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(prog="monolith-ref", description="monolith-ref: the Monolith paper, built and measured.")
    parser.add_argument("--version", action="version", version=f"monolith-ref {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade the exercises and print a score table")
    g.add_argument("exercise", nargs="?", help="a chapter ('3') or one exercise ('3.1'); default: all")
    g.add_argument("--impl", choices=("exercises", "solutions"), default="exercises",
                   help="grade your files in exercises/ (default) or the reference solutions/")
    g.add_argument("--root", type=Path, default=None, help="the repository root (default: found from the working directory)")
    g.add_argument("--brief", action="store_true", help="print only the score table, not the failures")
    g.set_defaults(func=_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``monolith-ref`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
