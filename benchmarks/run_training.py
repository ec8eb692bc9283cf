"""Benchmark DeepFM training steps on our tables against hashed nn.Embedding tables.

A thin script over :func:`monolith_ref.bench.training.run_training_benchmark` (chapter 8,
book/ch08_deepfm.md): it prints throughputs (examples per second), the ratio to the hashed
``nn.Embedding`` model and where each step's time goes (lookup, forward + backward, dense
update, sparse update), and writes ``benchmarks/results/training.json``. PyTorch runs on one
intra-op thread for every contestant.

    .venv/bin/python benchmarks/run_training.py                 # full size (about 30 s a run)
    .venv/bin/python benchmarks/run_training.py --runs 3        # three runs, pooled medians
    .venv/bin/python benchmarks/run_training.py --size small    # the lab notebook's size

With ``--runs N`` (N > 1) every run is saved as ``training-run<i>.json`` too, and
``training.json`` pools the repeats of all runs (its medians are over all of them); the
ratio of each run is printed and kept in ``meta.run_ratios``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from statistics import median

from monolith_ref.bench.repeat import add_run_options, repeat_runs
from monolith_ref.bench.training import TRAINING_BENCH_CONFIGS, TrainingBenchResult, run_training_benchmark

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(TRAINING_BENCH_CONFIGS), default="full")
    parser.add_argument("--batch-size", type=int, default=None, help="examples per step (default: the size's)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per repeat (default: the size's)")
    add_run_options(parser, RESULTS, "training.json and training.png", repeats=3,
                    repeats_help="timed repeats after one warm-up chunk",
                    runs_help="whole runs; their repeats are pooled")
    args = parser.parse_args(argv)

    ratios: list[float] = []

    def one_run() -> TrainingBenchResult:
        result = run_training_benchmark(size=args.size, batch_size=args.batch_size, steps=args.steps,
                                        repeats=args.repeats, progress=not args.quiet, seed=args.seed)
        ratios.append(result.ratio("numba"))
        return result

    final = repeat_runs(one_run, args.runs, args.out, "training", TrainingBenchResult.combine,
                        note=lambda r: f"NumbaTable {r.ratio('numba'):.2f}x the hashed model")
    print(final.table())
    if len(ratios) > 1:
        print(f"per-run ratios: {', '.join(f'{x:.2f}x' for x in ratios)}; median {median(ratios):.2f}x")
    final.to_json(args.out / "training.json")
    import matplotlib

    matplotlib.use("Agg")
    final.plot(args.out / "training.png")
    print(f"\nsaved {args.out / 'training.json'} and {args.out / 'training.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
