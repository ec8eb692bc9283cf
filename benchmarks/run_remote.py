"""Benchmark RemoteTable (1 and 2 PS processes) against the in-process ShardedTable.

A thin script over :func:`monolith_ref.bench.remote.run_remote_benchmark` (chapter 12,
book/ch12_distributed.md): it starts a 2-PS cluster on 127.0.0.1, prints the table of
throughputs (batched training lookups and gradient pushes) and per-call RPC overheads, and
writes ``benchmarks/results/remote.json``.

    .venv/bin/python benchmarks/run_remote.py                      # batches 256, 4096, 65536 at dim 16
    .venv/bin/python benchmarks/run_remote.py --batch-sizes 1024 --repeats 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

from monolith_ref.bench.remote import run_remote_benchmark

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 4096, 65536])
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--resident", type=int, default=200_000, help="IDs inserted before timing")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per cell (median)")
    parser.add_argument("--min-ids", type=int, default=131_072, help="IDs per timed repeat (at most 200 batches)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for remote.json")
    args = parser.parse_args(argv)

    result = run_remote_benchmark(tuple(args.batch_sizes), dim=args.dim, resident=args.resident,
                                  repeats=args.repeats, min_ids=args.min_ids, seed=args.seed, progress=True)
    print(result.table())
    args.out.mkdir(parents=True, exist_ok=True)
    result.to_json(args.out / "remote.json")
    print(f"\nsaved {args.out / 'remote.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
