"""What RPC costs: RemoteTable on 1 and 2 PS processes beside the in-process ShardedTable.

:func:`run_remote_benchmark` times batched training lookups and gradient pushes, per batch
size, through four tables holding the same resident IDs: ``ShardedTable`` with 1 shard and
with 2 (threads in this process), and ``RemoteTable`` on 1 PS and on 2 (processes on this
machine, over ``torch.distributed.rpc``). :func:`rpc_overhead` measures the fixed price of a
call: an empty RPC round trip, and a 1-ID lookup through each kind of table. Every repeat
is timed with ``time.perf_counter``; the contestants take turns, and the tables report the
median of the repeats. Before timing, the remote tables' answers are checked to be
bit-identical to the in-process ones.

From the shell: ``python benchmarks/run_remote.py``. See: book/ch12_distributed.md
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from .. import labs
from ..data import zipf_ids
from ..hashing import mix64
from ..tables import ShardedTable, TableConfig

__all__ = ["RemoteMeasurement", "RemoteBenchResult", "rpc_overhead", "run_remote_benchmark", "CONTESTANTS"]

#: Row labels of the printed table, in order.
CONTESTANTS = {
    "sharded_1": "ShardedTable, 1 shard (in-process)",
    "sharded_2": "ShardedTable, 2 shards (in-process)",
    "remote_1": "RemoteTable, 1 PS (RPC)",
    "remote_2": "RemoteTable, 2 PS (RPC)",
}
OPS = ("lookup", "push")


@dataclass
class RemoteMeasurement:
    """One contestant, one operation, one batch size: seconds per batch, per repeat. See: book/ch12_distributed.md"""

    contestant: str
    op: str
    batch: int
    seconds_per_batch: list[float]

    @property
    def ms_per_batch(self) -> float:
        """Median milliseconds per batch."""
        return 1e3 * median(self.seconds_per_batch)

    @property
    def ids_per_s(self) -> float:
        """IDs per second at the median."""
        return self.batch / median(self.seconds_per_batch)


@dataclass
class RemoteBenchResult:
    """The measurements, the per-call overheads (milliseconds) and how it was run. See: book/ch12_distributed.md"""

    measurements: list[RemoteMeasurement]
    overhead: dict[str, float]
    meta: dict[str, Any] = field(default_factory=dict)

    def get(self, contestant: str, op: str, batch: int) -> RemoteMeasurement | None:
        """The measurement of one cell, if it was taken."""
        for m in self.measurements:
            if (m.contestant, m.op, m.batch) == (contestant, op, batch):
                return m
        return None

    def table(self) -> str:
        """The printed report: IDs/s (and ms per batch) per contestant, operation and batch size."""
        sizes = sorted({m.batch for m in self.measurements})
        lines = [f"RemoteTable throughput, dim {self.meta.get('dim')}, {self.meta.get('resident')} resident IDs "
                 f"(median of {self.meta.get('repeats')} repeats; M IDs/s, ms per batch)", ""]
        head = f"{'table':<38}{'op':<8}" + "".join(f"{f'batch {b}':>22}" for b in sizes)
        lines += [head, "-" * len(head)]
        for op in OPS:
            for key, label in CONTESTANTS.items():
                cells = []
                for b in sizes:
                    m = self.get(key, op, b)
                    cells.append(f"{'-':>22}" if m is None else f"{m.ids_per_s / 1e6:>10.2f} {m.ms_per_batch:>8.2f} ms")
                lines.append(f"{label:<38}{op:<8}" + "".join(cells))
        lines += ["", "Slowdown of RPC against in-process, same number of shards (time per batch):"]
        for op in OPS:
            for n in (1, 2):
                ratios = []
                for b in sizes:
                    r, s = self.get(f"remote_{n}", op, b), self.get(f"sharded_{n}", op, b)
                    ratios.append(f"{'-':>12}" if r is None or s is None else f"{r.ms_per_batch / s.ms_per_batch:>11.1f}x")
                lines.append(f"  {op:<7}{n} {'PS ' if n == 1 else 'PS'}  " + "".join(ratios))
        lines += ["", "Per-call overhead (median milliseconds):"]
        labels = {"empty_rpc_ms": "empty RPC round trip (rpc_sync, no work)",
                  "remote_lookup_1_ms": "1-ID lookup, RemoteTable 1 PS",
                  "remote2_lookup_1_ms": "1-ID lookup, RemoteTable 2 PS",
                  "local_lookup_1_ms": "1-ID lookup, ShardedTable 1 shard"}
        for k, label in labels.items():
            if k in self.overhead:
                lines.append(f"  {label:<44}{self.overhead[k]:>9.3f} ms")
        return "\n".join(lines)

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Save everything (every repeat) as JSON."""
        data = {"measurements": [asdict(m) for m in self.measurements], "overhead": self.overhead, "meta": self.meta}
        Path(path).write_text(json.dumps(data, indent=1))


def _timed(fn, repeats: int) -> list[float]:
    return [labs.seconds(fn) for _ in range(repeats)]


def rpc_overhead(ps_names: list[str], calls: int = 200, seed: int = 0) -> dict[str, float]:
    """Median milliseconds of an empty RPC round trip and of a 1-ID lookup (remote and local).

    Needs this process in an RPC group with ``ps_names`` (at least one). See: book/ch12_distributed.md
    """
    import torch.distributed.rpc as rpc

    from ..distributed import RemoteTable
    from ..distributed.ps import ping

    cfg = TableConfig(dim=16, seed=seed)
    one = np.array([12345], dtype=np.uint64)
    out = {"empty_rpc_ms": 1e3 * median(_timed(lambda: rpc.rpc_sync(ps_names[0], ping), calls))}
    tables = {"remote_lookup_1_ms": RemoteTable(cfg, ps_names[:1])}
    if len(ps_names) > 1:
        tables["remote2_lookup_1_ms"] = RemoteTable(cfg, ps_names[:2])
    try:
        for key, table in tables.items():
            table.lookup(one, now=0)
            out[key] = 1e3 * median(_timed(lambda: table.lookup(one, now=0), calls))
    finally:
        for table in tables.values():
            table.drop()
    local = ShardedTable(cfg, num_shards=1, threads=1)
    local.lookup(one, now=0)
    out["local_lookup_1_ms"] = 1e3 * median(_timed(lambda: local.lookup(one, now=0), calls))
    local.close()
    return out


def _batches_for(size: int, min_ids: int) -> int:
    return max(2, min(200, -(-min_ids // size)))


def run_remote_benchmark(batch_sizes: tuple[int, ...] = (256, 4096, 65536), dim: int = 16, resident: int = 200_000,
                         repeats: int = 5, min_ids: int = 131_072, cluster: Any = None, seed: int = 0,
                         overhead_calls: int = 200, progress: bool = False) -> RemoteBenchResult:
    """Time lookups and gradient pushes through the four contestants; see the module doc.

    ``resident`` IDs are inserted first (one Zipf vocabulary); each timed repeat runs enough
    batches of each size to cover ``min_ids`` IDs (at least 2, at most 200 batches). With
    ``cluster=None`` a 2-PS :class:`~monolith_ref.distributed.Cluster` is started and shut
    down here; a given cluster (at least 2 PS) is used and left running. See: book/ch12_distributed.md
    """
    from ..distributed import Cluster, RemoteTable

    own = cluster is None
    if own:
        cluster = Cluster(num_ps=2)
    names = list(getattr(cluster, "ps_names", cluster))
    if len(names) < 2:
        raise ValueError(f"the benchmark needs a cluster of at least 2 PS, got {names}")
    cfg = TableConfig(dim=dim, seed=seed)
    tables: dict[str, Any] = {
        "sharded_1": ShardedTable(cfg, num_shards=1, threads=1),
        "sharded_2": ShardedTable(cfg, num_shards=2, threads=2),
        "remote_1": RemoteTable(cfg, names[:1]),
        "remote_2": RemoteTable(cfg, names[:2]),
    }
    try:
        keys = mix64(np.arange(resident, dtype=np.uint64), seed + 1)  # zipf_ids' vocabulary
        for start in range(0, resident, 65536):
            for table in tables.values():
                table.lookup(keys[start:start + 65536], now=0)
        rng = np.random.default_rng(seed)
        work = {}
        for size in batch_sizes:
            n = _batches_for(size, min_ids)
            ids = zipf_ids(n * size, resident, seed=seed + 1).reshape(n, size)
            grads = (rng.standard_normal((n, size, dim)) * 1e-3).astype(np.float32)
            work[size] = (ids, grads)
            first = [t.lookup(ids[0], now=1) for t in tables.values()]  # warm-up, and the same answers
            if not all(np.array_equal(first[0], f) for f in first[1:]):
                raise AssertionError(f"the contestants disagree on a batch of {size}")
        found: dict[tuple[str, str, int], list[float]] = {}
        for r in range(repeats):
            order = list(tables)[r % len(tables):] + list(tables)[:r % len(tables)]  # take turns
            for size, (ids, grads) in work.items():
                for key in order:
                    table = tables[key]

                    def lookups(table=table, ids=ids) -> None:
                        for i in range(ids.shape[0]):
                            table.lookup(ids[i], now=2)

                    def pushes(table=table, ids=ids, grads=grads) -> None:
                        for i in range(ids.shape[0]):
                            table.apply_gradients(ids[i], grads[i])

                    for op, fn in (("lookup", lookups), ("push", pushes)):
                        seconds = _timed(fn, 1)[0] / ids.shape[0]
                        found.setdefault((key, op, size), []).append(seconds)
            if progress:
                print(f"repeat {r + 1}/{repeats} done", flush=True)
        measurements = [RemoteMeasurement(k, op, size, secs) for (k, op, size), secs in found.items()]
        overhead = rpc_overhead(names, calls=overhead_calls, seed=seed)
    finally:
        for key in ("remote_1", "remote_2"):
            try:
                tables[key].drop()
            except Exception:  # noqa: BLE001 - a dead cluster: nothing to drop
                pass
        for key in ("sharded_1", "sharded_2"):
            tables[key].close()
        if own:
            cluster.shutdown()
    meta = {"dim": dim, "resident": resident, "repeats": repeats, "batch_sizes": list(batch_sizes),
            "min_ids": min_ids, "seed": seed, "cpus": os.cpu_count(), "python": platform.python_version(),
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    return RemoteBenchResult(measurements, overhead, meta)
