"""Benchmarks: our tables against the tables a user would otherwise reach for, in one run.

``run_benchmarks(size="full")`` times, side by side and on the same keys, hit lookups, a
training-style stream (with and without an admission filter), Adagrad updates and an
expire sweep, for the seed blog post's mock, a Python dict with a NumPy arena,
``numba.typed.Dict``, pandas' C hash table, ``torch.nn.Embedding`` over hashed IDs, the
gather ceiling, and ``NumbaTable`` / ``ShardedTable`` / ``DictTable``. The result prints
a table of throughputs and ratios (:meth:`BenchResult.table`), lists which targets are
met (:meth:`BenchResult.targets`), and saves JSON and a plot. pandas is a benchmark-only
dependency (the ``bench`` extra). From the shell: ``monolith-ref bench``.

Modules: :mod:`~monolith_ref.bench.peers` (the contestants), :mod:`~monolith_ref.bench.workloads`
(the keys and batches), :mod:`~monolith_ref.bench.runner` (timing and reporting); the PyTorch
benchmarks :mod:`~monolith_ref.bench.training` (chapter 8) and :mod:`~monolith_ref.bench.remote`
(chapter 12) load on first use (``mr.bench.training``), so the table benchmark needs no PyTorch.
See: book/ch06_numba.md
"""

from __future__ import annotations

import importlib
from typing import Any

from .runner import BenchResult, Measurement, kernel_times, run_benchmarks
from .workloads import TABLE_BENCH_CONFIGS, TableBenchConfig, make_workloads

__all__ = ["BenchResult", "Measurement", "TABLE_BENCH_CONFIGS", "TableBenchConfig", "kernel_times", "make_workloads",
           "run_benchmarks"]

_LAZY_MODULES = ("peers", "remote", "repeat", "training")


def __getattr__(name: str) -> Any:
    """Load a benchmark module on first use (PEP 562): ``mr.bench.training``, ``mr.bench.remote``."""
    if name in _LAZY_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
