"""The ``monolith-ref`` command: grade exercises, run benchmarks (and, later, experiments).

See: book/preface.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__

__all__ = ["main"]


def _grade(args: argparse.Namespace) -> int:
    from .grading import format_failures, format_table, grade

    output = "full" if args.full else "none" if args.brief else "short"
    try:
        scores = grade(args.exercise, impl=args.impl, root=args.root, output=output)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"monolith-ref grade: {exc}", file=sys.stderr)
        return 2
    if output == "full":
        print()
    print(format_table(scores, impl=args.impl))
    failures = format_failures(scores) if output == "short" else ""
    if failures:
        print()
        print(failures)
    complete = all(s.earned == s.possible and s.error is None for s in scores)
    return 0 if complete else 1


def _bench(args: argparse.Namespace) -> int:
    if args.training:
        from .bench.training import run_training_benchmark

        tresult = run_training_benchmark(size=args.size, repeats=args.repeats, progress=not args.quiet)
        print(tresult.table())
        args.out.mkdir(parents=True, exist_ok=True)
        tresult.to_json(args.out / f"training-{args.size}.json")
        print(f"\nsaved {args.out / f'training-{args.size}.json'}")
        return 0
    try:
        from .bench import run_benchmarks
    except ImportError as exc:  # pragma: no cover - depends on the install
        print(f"monolith-ref bench: {exc}; install the bench extra: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    result = run_benchmarks(size=args.size, repeats=args.repeats, progress=not args.quiet, seed=args.seed)
    print(result.table())
    args.out.mkdir(parents=True, exist_ok=True)
    result.to_json(args.out / f"tables-{args.size}.json")
    result.plot(args.out / f"tables-{args.size}.png")
    print(f"\nsaved {args.out / f'tables-{args.size}.json'} and {args.out / f'tables-{args.size}.png'}")
    return 0


def _experiment(args: argparse.Namespace) -> int:
    if args.name == "collisions":
        from .experiments.collisions import main_collisions

        if args.which not in ("e1", "e2", "both"):
            print(f"monolith-ref experiment collisions: --which must be e1, e2 or both, got {args.which}",
                  file=sys.stderr)
            return 2

        if args.movielens is not None and not args.movielens.exists():
            print(f"monolith-ref experiment: no file at {args.movielens}", file=sys.stderr)
            return 2
        print(main_collisions(which=args.which, size=args.size, movielens=args.movielens, out=args.out,
                              seeds=args.seeds, progress=not args.quiet))
        return 0
    if args.name == "online":
        from .experiments.online import main_online

        if args.movielens is not None:
            print("monolith-ref experiment online: runs on the synthetic stream only (no --movielens)", file=sys.stderr)
            return 2
        which = {"both": "both", "e3": "e3", "e5": "e5"}.get(args.which)
        if which is None:
            print(f"monolith-ref experiment online: --which must be e3, e5 or both, got {args.which}", file=sys.stderr)
            return 2
        print(main_online(which=which, size=args.size, out=args.out, seeds=args.seeds, progress=not args.quiet))
        return 0
    if args.name == "faults":
        from .experiments.faults import main_faults

        if args.movielens is not None or args.which != "both":
            print("monolith-ref experiment faults: takes neither --movielens nor --which", file=sys.stderr)
            return 2
        print(main_faults(size=args.size, out=args.out, seeds=args.seeds, progress=not args.quiet))
        return 0
    print(f"monolith-ref experiment: unknown experiment {args.name!r}", file=sys.stderr)  # pragma: no cover
    return 2


def _ps(args: argparse.Namespace) -> int:
    from .distributed import main_ps

    return int(main_ps(args.ps_args))


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
    shown = g.add_mutually_exclusive_group()
    shown.add_argument("--full", "--verbose", action="store_true",
                       help="print pytest's whole report (every failure, in full) before the table")
    shown.add_argument("--brief", action="store_true", help="print only the score table, not the failures")
    g.set_defaults(func=_grade)
    b = sub.add_parser("bench", help="benchmark the tables against their peers (chapter 6)")
    b.add_argument("--size", choices=("full", "small", "smoke"), default="full",
                   help="full: 1M resident IDs (minutes); small: the notebook's run; smoke: seconds")
    b.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement (the median is reported)")
    b.add_argument("--seed", type=int, default=0, help="seed of every generated key and batch")
    b.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                   help="folder for the JSON and the plot (default: benchmarks/results)")
    b.add_argument("--training", action="store_true",
                   help="benchmark DeepFM training steps on NumbaTable vs nn.Embedding (chapter 8) instead")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_bench)
    e = sub.add_parser("experiment", help="run one of the paper's experiments at full size (Part IV)")
    e.add_argument("name", choices=("collisions", "online", "faults"),
                   help="collisions: E1 and E2 of chapter 13; online: E3 and E5 of chapter 14; "
                        "faults: E6 of chapter 11")
    e.add_argument("--which", choices=("e1", "e2", "e3", "e5", "both"), default="both",
                   help="which experiment of the pair (e1/e2 for collisions, e3/e5 for online)")
    e.add_argument("--size", choices=("full", "small", "smoke"), default="full",
                   help="full: the chapter's settings (minutes); small: the notebook's; smoke: seconds")
    e.add_argument("--seeds", type=int, default=3, help="seeds per variant (mean and spread are reported)")
    e.add_argument("--movielens", type=Path, default=None,
                   help="a MovieLens ratings.csv or u.data file; default: the synthetic stream")
    e.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder for JSON and plots")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=_experiment)
    p = sub.add_parser("ps", help="run one parameter-server process (chapter 12); --help lists its options",
                       add_help=False)
    p.add_argument("ps_args", nargs=argparse.REMAINDER, help="the options of the parameter server")
    p.set_defaults(func=_ps)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``monolith-ref`` console script. See: book/preface.md"""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["ps"]:  # every option after "ps" belongs to the parameter server's own parser
        from .distributed import main_ps

        return int(main_ps(argv[1:]))
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
