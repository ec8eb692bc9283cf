"""Benchmark the embedding tables against their peers and save the results.

A thin script over :func:`monolith_ref.bench.run_benchmarks` (chapter 6, book/ch06_numba.md):
it prints the table of throughputs, ratios, memory, first-call times and targets, and writes
``benchmarks/results/tables.json`` and ``benchmarks/results/tables.png``.

    .venv/bin/python benchmarks/run_tables.py                 # full size: 1M resident IDs
    .venv/bin/python benchmarks/run_tables.py --size small    # the lab notebook's size
    .venv/bin/python benchmarks/run_tables.py --runs 3        # three runs, medians of them

With ``--runs N`` (N > 1) every run is saved as ``tables-run<i>.json`` too, and
``tables.json`` holds the median of the runs' medians.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from monolith_ref.bench import BenchResult, run_benchmarks
from monolith_ref.bench.repeat import add_run_options, repeat_runs

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("full", "small", "smoke"), default="full")
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64])
    add_run_options(parser, RESULTS, "tables.json and tables.png", repeats=3,
                    repeats_help="timed repeats per measurement (median)",
                    runs_help="whole runs; their medians are combined")
    args = parser.parse_args(argv)

    final = repeat_runs(lambda: run_benchmarks(size=args.size, dims=tuple(args.dims), repeats=args.repeats,
                                                progress=not args.quiet, seed=args.seed),
                        args.runs, args.out, "tables", BenchResult.combine)
    print(final.table())
    final.to_json(args.out / "tables.json")
    final.plot(args.out / "tables.png")
    print(f"\nsaved {args.out / 'tables.json'} and {args.out / 'tables.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
