"""Run every contestant on every workload in one process, and report throughputs and ratios.

:func:`run_benchmarks` builds the peers of :mod:`monolith_ref.bench.peers` for each embedding
width, loads the same resident keys into all of them, and times the workloads of
:mod:`monolith_ref.bench.workloads` chunk by chunk: chunk 0 warms up (JIT compilation,
caches) and the next ``repeats`` are timed with ``time.perf_counter``, the contestants taking
turns in a rotating order. The :class:`BenchResult` keeps every repeat and prints the table
(throughputs, ratios, memory, first-call times, the targets), and saves JSON and a plot.

While timing it also checks that the contestants computed the same thing: the peers that
share our initial rows must return bit-identical lookups, and remove the same rows.
See: book/ch06_numba.md
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from .peers import (
    DictArena,
    GatherCeiling,
    OursAdapter,
    PandasTable,
    PeerConfig,
    SeedMockAdapter,
    TorchHashed,
    TypedDictTable,
)
from .workloads import EXPIRE_TTL, TABLE_BENCH_CONFIGS, Workloads, make_workloads

__all__ = ["Measurement", "BenchResult", "run_benchmarks", "kernel_times", "PEER_ORDER", "CEILING"]

#: Rows of the printed table, in order (``ceiling`` is the faster of the two gathers).
PEER_ORDER = ["seed_mock", "dict_table", "dict_arena", "typed_dict", "pandas", "torch_hashed", "ceiling",
              "numba", "sharded_1t", "sharded_2t"]
CEILING = "ceiling"
_CEILINGS = ("ceiling_numpy", "ceiling_njit")
OURS = "numba"

_LABELS = {
    "seed_mock": "seed's mock (blog post)",
    "dict_table": "DictTable (ours, Python)",
    "dict_arena": "dict + NumPy arena",
    "typed_dict": "numba typed.Dict",
    "pandas": "pandas hashtable + take",
    "torch_hashed": "torch Embedding, hashed",
    "ceiling": "ceiling (rows known)",
    "ceiling_numpy": "ceiling: np.take",
    "ceiling_njit": "ceiling: @njit gather",
    "numba": "NumbaTable (ours)",
    "sharded_1t": "ShardedTable 1 thread",
    "sharded_2t": "ShardedTable 2 threads",
}


def _workload_label(w: str) -> str:
    if w == "hits":
        return "hits"
    if w == "apply":
        return "apply"
    if w == "expire":
        return "expire"
    kind, size = w.rsplit("_", 1)
    b = int(size)
    short = f"{b // 1024}k" if b % 1024 == 0 else str(b)
    return f"train {short}" + ("+F" if kind == "train_filter" else "")


@dataclass
class Measurement:
    """One contestant on one workload at one width: a rate (items per second) per repeat. See: book/ch06_numba.md"""

    dim: int
    workload: str
    peer: str
    rates: list[float]
    items: int

    @property
    def rate(self) -> float:
        return float(median(self.rates))


@dataclass
class BenchResult:
    """Every number of one benchmark run (or the median of several, :meth:`combine`).

    See: book/ch06_numba.md
    """

    meta: dict[str, Any]
    measurements: list[Measurement]
    memory: list[dict[str, Any]] = field(default_factory=list)
    kernel_times: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)

    # ---- reading numbers ---------------------------------------------------------------

    @property
    def dims(self) -> list[int]:
        return list(self.meta["dims"])

    @property
    def workloads(self) -> list[str]:
        return list(self.meta["workloads"])

    def rate(self, dim: int, workload: str, peer: str) -> float | None:
        """Median items per second (IDs, or rows scanned for ``expire``); None if not run."""
        if peer == CEILING:
            rates = [r for r in (self.rate(dim, workload, c) for c in _CEILINGS) if r is not None]
            return max(rates) if rates else None
        for m in self.measurements:
            if m.dim == dim and m.workload == workload and m.peer == peer:
                return m.rate
        return None

    def ratio(self, dim: int, workload: str, a: str, b: str) -> float | None:
        """How many times faster ``a`` is than ``b`` (None if either is missing)."""
        ra, rb = self.rate(dim, workload, a), self.rate(dim, workload, b)
        if ra is None or rb is None or rb == 0:
            return None
        return ra / rb

    def memory_per_id(self, dim: int, peer: str) -> float | None:
        for m in self.memory:
            if m["dim"] == dim and m["peer"] == peer and m["bytes"] is not None:
                return m["bytes"] / m["ids"]
        return None

    def peers(self) -> list[str]:
        present = {m.peer for m in self.measurements}
        if present & set(_CEILINGS):
            present.add(CEILING)
        return [p for p in PEER_ORDER if p in present]

    # ---- targets -----------------------------------------------------------------------

    def targets(self) -> list[tuple[str, float, float, bool]]:
        """``(name, ratio, goal, met)`` for each target of issue 4 (memory: at most the goal)."""
        out: list[tuple[str, float, float, bool]] = []
        dims = self.dims
        small = 16 if 16 in dims else min(dims)
        big = 64 if 64 in dims else max(dims)
        trains = [w for w in self.workloads if w.startswith("train_") and not w.startswith("train_filter")]

        def add(name: str, value: float | None, goal: float, at_most: bool = False) -> None:
            if value is not None:
                out.append((name, float(value), goal, bool(value <= goal if at_most else value >= goal)))

        for w in trains:
            size = int(w.rsplit("_", 1)[1])
            add(f"training lookups, batch {size:,}, dim {small}, no filter: NumbaTable / seed's mock",
                self.ratio(small, w, OURS, "seed_mock"), 30.0)
            add(f"training lookups, batch {size:,}, dim {small}, OccurrenceFilter(2): NumbaTable / mock + counter",
                self.ratio(small, f"train_filter_{size}", OURS, "seed_mock"), 30.0)
        for d in dims:
            add(f"hit lookups, dim {d}: NumbaTable / pandas hashtable + take", self.ratio(d, "hits", OURS, "pandas"), 1.5)
        add(f"hit lookups, dim {big}: NumbaTable / gather ceiling", self.ratio(big, "hits", OURS, CEILING), 0.5)
        for d in dims:
            add(f"hit lookups, dim {d}: ShardedTable 2 threads / 1 thread",
                self.ratio(d, "hits", "sharded_2t", "sharded_1t"), 1.7)
        if trains:
            w = trains[-1]
            add(f"training lookups, batch {int(w.rsplit('_', 1)[1]):,}, dim {small}: ShardedTable 2 threads / 1 thread",
                self.ratio(small, w, "sharded_2t", "sharded_1t"), 1.7)
        for d in dims:
            per_id = self.memory_per_id(d, "numba")
            ideal = next((m["ideal_bytes_per_id"] for m in self.memory if m["dim"] == d), None)
            if per_id is not None and ideal:
                add(f"memory per resident ID, dim {d}: NumbaTable / (embedding + Adagrad state)", per_id / ideal, 1.5,
                    at_most=True)
        return out

    # ---- the printed table -------------------------------------------------------------

    def table(self) -> str:
        """The benchmark as text: throughputs, ratios, memory, first-call times, targets."""
        meta = self.meta
        lines = []
        runs = meta.get("runs", 1)
        how = f"median of {meta['repeats']} repeats" + (f", then the median of {runs} runs" if runs > 1 else "")
        lines.append(f"monolith-ref benchmark: size={meta['size']}, seed {meta['seed']}, {how}")
        lines.append(f"  {meta['n_resident']:,} resident IDs; hits: {meta['n_hits']:,} lookups of random resident IDs"
                     f" in one call; training batches: "
                     + ", ".join(f"{n} x {int(b):,}" for b, n in sorted(meta["stream"].items(), key=lambda x: int(x[0]))))
        st = meta["stream_stats"]
        lines.append(f"  stream: Zipf({meta['zipf_alpha']}) over the resident IDs, {st['new_fraction']:.1%} new IDs per"
                     f" batch (the misses without a filter), {st['repeat_fraction']:.1%} second sightings of the previous"
                     f" batch's new IDs (admitted by OccurrenceFilter(2): +F)")
        lines.append(f"  machine: {meta['cpus']} CPUs, load average {meta['load_before']:.1f} before,"
                     f" {meta['load_after']:.1f} after; {meta['versions']}")
        lines.append("  one thread everywhere (torch too) except 'ShardedTable 2 threads';"
                     " 'ceiling' = faster of np.take and an @njit gather of rows known in advance")
        lines.append("  the seed's mock applies its own SGD (it has no Adagrad); +F for the mock adds our occurrence"
                     " counter to it")
        peers = self.peers()
        cols = self.workloads
        width = max(len(_LABELS[p]) for p in peers) + 2
        head = f"{'':<{width}}" + "".join(f"{_workload_label(w):>12}" for w in cols)
        for d in self.dims:
            lines.append("")
            lines.append(f"dim {d}: throughput, million IDs per second (expire: million rows swept per second)")
            lines.append(head)
            for p in peers:
                cells = []
                for w in cols:
                    r = self.rate(d, w, p)
                    cells.append(f"{'-':>12}" if r is None else f"{r / 1e6:>12.3g}")
                lines.append(f"{_LABELS[p]:<{width}}" + "".join(cells))
            lines.append(f"dim {d}: NumbaTable's speed / each peer's (x faster)")
            lines.append(head)
            for p in peers:
                if p == OURS:
                    continue
                cells = []
                for w in cols:
                    r = self.ratio(d, w, OURS, p)
                    cells.append(f"{'-':>12}" if r is None else f"{r:>11.3g}x")
                lines.append(f"{_LABELS[p]:<{width}}" + "".join(cells))
        if self.memory:
            lines.append("")
            lines.append("memory per resident ID, bytes (x = / the bytes of embedding + Adagrad state)")
            mem_peers = []
            for m in self.memory:
                if m["peer"] not in mem_peers:
                    mem_peers.append(m["peer"])
            mw = max(len(m["label"]) for m in self.memory) + 2
            lines.append(f"{'':<{mw}}" + "".join(f"{f'dim {d}':>18}" for d in self.dims))
            for p in mem_peers:
                label = next(m["label"] for m in self.memory if m["peer"] == p)
                cells = []
                for d in self.dims:
                    m = next((x for x in self.memory if x["peer"] == p and x["dim"] == d), None)
                    if m is None or m["bytes"] is None:
                        cells.append(f"{'n/a':>18}")
                    else:
                        per = m["bytes"] / m["ids"]
                        cells.append(f"{per:>10,.0f} ({per / m['ideal_bytes_per_id']:.2f}x)")
                lines.append(f"{label:<{mw}}" + "".join(cells))
        kt = self.kernel_times
        if kt:
            lines.append("")
            lines.append(f"NumbaTable first call vs warm call, ms (fresh processes; dim {kt.get('dim', 16)},"
                         f" {kt.get('batch', 0):,} IDs)")
            lines.append(f"{'operation':<28}{'compile (empty cache)':>24}{'first call, cached':>20}{'warm call':>12}")
            for op in kt["ops"]:
                c, h = kt["compile"].get(op), kt["cached"].get(op)
                lines.append(f"{op:<28}{c['first'] * 1e3:>24.1f}{h['first'] * 1e3:>20.1f}{h['warm'] * 1e3:>12.3f}")
            lines.append(f"{'import monolith_ref':<28}{kt['compile']['import'] * 1e3:>24.1f}"
                         f"{kt['cached']['import'] * 1e3:>20.1f}{'':>12}")
        if self.checks:
            bad = [c for c in self.checks if not c["agree"]]
            lines.append("")
            if bad:
                lines.append("CHECKS FAILED: " + "; ".join(f"dim {c['dim']} {c['what']}: {c['detail']}" for c in bad))
            else:
                lines.append(f"checks: {len(self.checks)} comparisons, every exact peer returned NumbaTable's rows bit for"
                             " bit and removed the same rows")
        lines.append("")
        lines.append("targets")
        for name, value, goal, met in self.targets():
            rel = "<=" if name.startswith("memory") else ">="
            lines.append(f"  [{'met' if met else 'MISSED'}] {name} = {value:.2f}x (goal {rel} {goal:g}x)")
        return "\n".join(lines)

    # ---- saving ------------------------------------------------------------------------

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Save every number (and the targets) as JSON."""
        data = {
            "meta": self.meta,
            "measurements": [asdict(m) | {"rate": m.rate} for m in self.measurements],
            "memory": self.memory,
            "kernel_times": self.kernel_times,
            "checks": self.checks,
            "targets": [{"name": n, "ratio": r, "goal": g, "met": met} for n, r, g, met in self.targets()],
        }
        Path(path).write_text(json.dumps(data, indent=1))

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> BenchResult:
        data = json.loads(Path(path).read_text())
        ms = [Measurement(m["dim"], m["workload"], m["peer"], m["rates"], m["items"]) for m in data["measurements"]]
        return cls(data["meta"], ms, data["memory"], data["kernel_times"], data["checks"])

    @classmethod
    def combine(cls, results: list[BenchResult]) -> BenchResult:
        """The median of several runs: each rate becomes the median of the runs' medians."""
        if not results:
            raise ValueError("nothing to combine")
        first = results[0]
        keyed: dict[tuple[int, str, str], list[float]] = {}
        items: dict[tuple[int, str, str], int] = {}
        for res in results:
            for m in res.measurements:
                keyed.setdefault((m.dim, m.workload, m.peer), []).append(m.rate)
                items[(m.dim, m.workload, m.peer)] = m.items
        ms = [Measurement(d, w, p, rates, items[(d, w, p)]) for (d, w, p), rates in keyed.items()]
        meta = dict(first.meta)
        meta["runs"] = len(results)
        meta["load_before"] = float(median(r.meta["load_before"] for r in results))
        meta["load_after"] = float(median(r.meta["load_after"] for r in results))
        kt = first.kernel_times
        if kt and all(r.kernel_times for r in results):
            kt = json.loads(json.dumps(kt))
            for phase in ("compile", "cached"):
                for op in list(kt[phase]):
                    if op == "import":
                        kt[phase][op] = median(r.kernel_times[phase][op] for r in results)
                    else:
                        for k in ("first", "warm"):
                            kt[phase][op][k] = median(r.kernel_times[phase][op][k] for r in results)
        checks = [c for r in results for c in r.checks]
        return cls(meta, ms, first.memory, kt, checks)

    def plot(self, target: Any = None) -> Any:
        """Grouped bars of throughput (log scale), one panel per width.

        ``target``: a file path (the figure is saved there), a Matplotlib Axes or a sequence
        of Axes (one per width), or None. Returns the figure.
        """
        import matplotlib.pyplot as plt

        dims = self.dims
        if target is None or isinstance(target, (str, os.PathLike)):
            fig, axes = plt.subplots(len(dims), 1, figsize=(11, 3.6 * len(dims)), squeeze=False)
            axes = list(axes[:, 0])
        else:
            axes = list(np.atleast_1d(target))
            fig = axes[0].figure
        peers = self.peers()
        cols = self.workloads
        colors = plt.get_cmap("tab10")
        for ax, d in zip(axes, dims):
            width = 0.8 / len(peers)
            for j, p in enumerate(peers):
                xs, ys = [], []
                for i, w in enumerate(cols):
                    r = self.rate(d, w, p)
                    if r is not None:
                        xs.append(i - 0.4 + width * (j + 0.5))
                        ys.append(r / 1e6)
                ax.bar(xs, ys, width=width, color=colors(j % 10), label=_LABELS[p],
                       edgecolor="black" if p == OURS else "none", linewidth=0.8)
            ax.set_yscale("log")
            ax.set_xticks(range(len(cols)), [_workload_label(w) for w in cols])
            ax.set_ylabel("million IDs / s")
            runs = self.meta.get("runs", 1)
            how = f"median of {self.meta['repeats']} repeats" + (f", {runs} runs" if runs > 1 else "")
            ax.set_title(f"dim {d}: throughput (higher is better; {how})", fontsize=10)
            ax.grid(axis="y", alpha=0.3, which="both")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, fontsize=7, ncol=5, loc="lower center", frameon=False)
        fig.tight_layout(rect=(0, 0.07 if len(axes) > 1 else 0.12, 1, 1))
        if isinstance(target, (str, os.PathLike)):
            fig.savefig(target, dpi=120)
        return fig


# =========================================================================== first calls

_KERNEL_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from monolith_ref.optim import Adagrad
from monolith_ref.tables import NumbaTable, TableConfig
t_import = time.perf_counter() - t0
dim, n = int(sys.argv[1]), int(sys.argv[2])
table = NumbaTable(TableConfig(dim=dim, seed=0, ttl=10, optimizer=Adagrad()), capacity=4 * n)
ids = (np.arange(n, dtype=np.uint64) * np.uint64(7919)) ^ np.uint64(0x5DEECE66D)
more = ids + np.uint64(1)
grads = np.ones((n, dim), dtype=np.float32)
ops = {
    "training lookup (insert)": lambda k: table.lookup(ids if k == 0 else more + np.uint64(2 * k * n), now=1),
    "serving lookup": lambda k: table.lookup(ids, now=1, train=False),
    "apply_gradients (Adagrad)": lambda k: table.apply_gradients(ids, grads),
    "expire sweep": lambda k: table.expire(now=5),
}
out = {"import": t_import}
for name, op in ops.items():
    t = time.perf_counter(); op(0); first = time.perf_counter() - t
    warm = []
    for k in range(1, 4):
        t = time.perf_counter(); op(k); warm.append(time.perf_counter() - t)
    out[name] = {"first": first, "warm": sorted(warm)[1]}
print("KERNEL_TIMES " + json.dumps(out))
"""


def kernel_times(dim: int = 16, batch: int = 4096) -> dict[str, Any]:
    """First-call vs warm-call times of NumbaTable's operations, in fresh processes.

    Two processes share a new, empty Numba cache folder: in the first every kernel is
    compiled (and written to the cache, ``cache=True``); the second loads them from it.
    Each reports its first call and the median of three warm calls. See: book/ch06_numba.md
    """
    out: dict[str, Any] = {"dim": dim, "batch": batch}
    with tempfile.TemporaryDirectory(prefix="monolith-ref-numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        env.pop("NUMBA_DISABLE_JIT", None)
        for phase in ("compile", "cached"):
            proc = subprocess.run([sys.executable, "-c", _KERNEL_SCRIPT, str(dim), str(batch)], env=env,
                                  capture_output=True, text=True, check=True)
            line = next(x for x in proc.stdout.splitlines() if x.startswith("KERNEL_TIMES "))
            out[phase] = json.loads(line[len("KERNEL_TIMES "):])
    out["ops"] = [k for k in out["compile"] if k != "import"]
    return out


# =========================================================================== the run


def _digest(a: np.ndarray) -> str:
    """A fingerprint of an output: every row of a small one, about 4,096 spread rows of a big one."""
    step = max(1, a.shape[0] // 4096)
    return hashlib.blake2b(np.ascontiguousarray(a[::step]).tobytes(), digest_size=8).hexdigest()


def _build_peers(wl: Workloads, dim: int, filtered: bool, seed: int) -> list[Any]:
    spec = PeerConfig(dim, capacity=wl.capacity, seed=seed, ttl=EXPIRE_TTL, threshold=2 if filtered else 1)
    peers: list[Any] = [SeedMockAdapter(spec)]
    if wl.config.dict_table:
        peers.append(OursAdapter(spec, "dict"))
    peers += [DictArena(spec), TypedDictTable(spec), PandasTable(spec)]
    if not filtered:
        peers.append(TorchHashed(spec, num_rows=wl.resident.shape[0]))
    peers += [GatherCeiling(spec, "numpy"), GatherCeiling(spec, "njit"), OursAdapter(spec, "numba"),
              OursAdapter(spec, "sharded", threads=1), OursAdapter(spec, "sharded", threads=2)]
    return peers


def _compares(peer: Any, workload: str) -> bool:
    """Does ``peer`` compute exactly what NumbaTable computes on ``workload``?"""
    if not peer.exact:
        return False
    if isinstance(peer, GatherCeiling):
        return workload in ("hits", "apply") or (workload.startswith("train_") and "filter" not in workload)
    return True


def _memory_phase(wl: Workloads, dim: int, seed: int, mock_bytes: int, torch_bytes: int,
                  dict_table_bytes: int | None) -> list[dict[str, Any]]:
    """Bytes per resident ID, every table holding exactly the resident keys."""
    n = int(wl.resident.shape[0])
    spec = PeerConfig(dim, capacity=n, seed=seed, ttl=EXPIRE_TTL)
    ideal = 2 * dim * 4  # float32 embedding + float32 Adagrad accumulator
    rows: list[tuple[str, str, int | None]] = [("seed_mock", "seed's mock (blog post)", mock_bytes)]
    if dict_table_bytes is not None:
        rows.append(("dict_table", "DictTable (ours, Python)", dict_table_bytes))
    for cls, label in ((DictArena, "dict + NumPy arena"), (PandasTable, "pandas hashtable + arena")):
        peer = cls(spec)
        peer.load(wl.resident, wl.load_time)
        rows.append((peer.name, label, peer.memory_bytes()))
        del peer
    rows.append(("typed_dict", "numba typed.Dict + arena", None))
    rows.append(("torch_hashed", "torch Embedding + Adagrad state", torch_bytes))
    ours = OursAdapter(spec, "numba", capacity=n)
    ours.load(wl.resident, wl.load_time)
    rows.append(("numba", "NumbaTable, capacity given", ours.memory_bytes()))
    del ours
    grown = OursAdapter(spec, "numba", capacity=1024)
    grown.load(wl.resident, wl.load_time)
    rows.append(("numba_grown", "NumbaTable, grown from 1,024", grown.memory_bytes()))
    del grown
    sharded = OursAdapter(spec, "sharded", threads=1, capacity=n)
    sharded.load(wl.resident, wl.load_time)
    rows.append(("sharded", "ShardedTable, 2 shards", sharded.memory_bytes()))
    sharded.close()
    del sharded
    gc.collect()
    return [{"dim": dim, "peer": p, "label": label, "bytes": b, "ids": n, "ideal_bytes_per_id": ideal}
            for p, label, b in rows]


def run_benchmarks(size: str = "full", dims: tuple[int, ...] = (16, 64), repeats: int = 3, progress: bool = True,
                   seed: int = 0, kernel_timings: bool | None = None) -> BenchResult:
    """Time every contestant on every workload, side by side, on the same keys.

    ``size``: ``"full"`` (1M resident IDs; minutes), ``"small"`` (the lab notebook's run),
    ``"smoke"`` (seconds, for the tests). ``kernel_timings``: measure NumbaTable's first-call
    vs warm-call times in fresh processes (default: on for full and small).
    See: book/ch06_numba.md
    """
    if size not in TABLE_BENCH_CONFIGS:
        raise ValueError(f"size must be one of {sorted(TABLE_BENCH_CONFIGS)}, got {size!r}")
    from tqdm.auto import tqdm

    config = TABLE_BENCH_CONFIGS[size]
    wl = make_workloads(config, repeats, seed)
    sizes = sorted(config.stream)
    workloads = (["hits"] + [f"train_{b}" for b in sizes] + [f"train_filter_{b}" for b in sizes]
                 + ["apply", "expire"])
    meta: dict[str, Any] = {
        "size": size, "dims": list(dims), "repeats": repeats, "seed": seed, "workloads": workloads,
        "n_resident": config.n_resident, "n_hits": config.n_hits,
        "stream": {str(b): n for b, n in config.stream.items()}, "apply_batches": config.apply_batches,
        "apply_size": wl.apply_size,
        "zipf_alpha": config.zipf_alpha, "stream_stats": wl.stats, "ttl": EXPIRE_TTL,
        "cpus": os.cpu_count(), "load_before": os.getloadavg()[0], "python": platform.python_version(),
        "versions": _versions(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    chunks = repeats + 1
    n_steps = len(dims) * (2 + chunks * len(workloads))
    bar = tqdm(total=n_steps, disable=not progress, desc="benchmark", leave=False)
    measurements: list[Measurement] = []
    memory: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    try:
        import torch

        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        torch, torch_threads = None, 1
    try:
        for dim in dims:
            for filtered in (False, True):
                bar.set_description(f"dim {dim}: loading {'filtered' if filtered else 'unfiltered'} tables")
                peers = _build_peers(wl, dim, filtered, seed)
                for p in peers:
                    p.load(wl.resident, wl.load_time)
                    if isinstance(p, GatherCeiling):
                        p.prepare(wl.fresh)
                gc.collect()
                gc.freeze()  # the loaded tables' objects: never scanned again by the collector
                bar.update(1)
                group = [w for w in workloads if w.startswith("train_filter")] if filtered else \
                    [w for w in workloads if not w.startswith("train_filter")]
                if not filtered:
                    mock_bytes = next(p for p in peers if p.name == "seed_mock").memory_bytes()
                    torch_bytes = next(p for p in peers if p.name == "torch_hashed").memory_bytes()
                    dt = next((p for p in peers if p.name == "dict_table"), None)
                    dict_table_bytes = dt.memory_bytes() if dt is not None else None
                for w in group:
                    bar.set_description(f"dim {dim}: {_workload_label(w)}")
                    _run_workload(wl, dim, w, peers, measurements, checks, bar)
                for p in peers:
                    if hasattr(p, "close"):
                        p.close()
                del peers
                gc.unfreeze()
                gc.collect()
            bar.set_description(f"dim {dim}: memory")
            memory += _memory_phase(wl, dim, seed, mock_bytes, torch_bytes, dict_table_bytes)
            bar.update(1)
    finally:
        bar.close()
        if torch is not None:
            torch.set_num_threads(torch_threads)
    kt: dict[str, Any] = {}
    if config.kernel_times if kernel_timings is None else kernel_timings:
        kt = kernel_times(dim=min(dims), batch=4096)
    meta["load_after"] = os.getloadavg()[0]
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return BenchResult(meta, measurements, memory, kt, checks)


def _run_workload(wl: Workloads, dim: int, w: str, peers: list[Any], measurements: list[Measurement],
                  checks: list[dict[str, Any]], bar: Any) -> None:
    kind = "train" if w.startswith("train_") else w
    active = [p for p in peers if (("train_filter" if w.startswith("train_filter") else kind) in p.supports)]
    rates: dict[str, list[float]] = {p.name: [] for p in active}
    items_of: dict[str, int] = {}
    grads = wl.grads(dim) if w == "apply" else None
    size = int(w.rsplit("_", 1)[1]) if kind == "train" else 0
    for c in range(wl.repeats + 1):
        shift = c % len(active)
        digests: dict[str, str] = {}
        for p in active[shift:] + active[:shift]:
            rows_in = getattr(p, "takes_rows", False)
            gc.disable()  # no collector pauses inside a timed region
            try:
                if kind == "hits":
                    arg = wl.hit_rows[c] if rows_in else wl.hits[c]
                    items = arg.shape[0]
                    t0 = time.perf_counter()
                    out = p.lookup(arg)
                    dt = time.perf_counter() - t0
                elif kind == "train":
                    chunk = wl.stream[size][c]
                    args = [(b.rows if rows_in else b.ids, b.now) for b in chunk]
                    items = sum(b.ids.shape[0] for b in chunk)
                    t0 = time.perf_counter()
                    for ids, now in args:
                        out = p.train(ids, now)
                    dt = time.perf_counter() - t0
                elif kind == "apply":
                    assert grads is not None
                    chunk = wl.apply_chunks()[c]
                    args = [(b.rows if rows_in else b.ids, g[: b.ids.shape[0]]) for b, g in zip(chunk, grads)]
                    items = sum(b.ids.shape[0] for b in chunk)
                    t0 = time.perf_counter()
                    for ids, g in args:
                        p.apply_gradients(ids, g)
                    dt = time.perf_counter() - t0
                    last = chunk[-1]
                    out = p.lookup(last.rows if rows_in else last.ids)  # for the check, not timed
                else:  # expire
                    items = len(p)
                    t0 = time.perf_counter()
                    out = np.array([p.expire(wl.expire_now[c])])
                    dt = time.perf_counter() - t0
            finally:
                gc.enable()
            if c > 0:
                rates[p.name].append(items / max(dt, 1e-9))
                items_of[p.name] = items
            if _compares(p, w) and not (kind == "expire" and isinstance(p, GatherCeiling)):
                digests[p.name] = _digest(out)
        ref = digests.get(OURS)
        if ref is not None and len(digests) > 1:
            bad = sorted(name for name, d in digests.items() if d != ref)
            checks.append({"dim": dim, "what": f"{w} chunk {c}", "agree": not bad, "peers": sorted(digests),
                           "detail": "differs: " + ", ".join(bad) if bad else ""})
        bar.update(1)
    for name, rs in rates.items():
        if rs:
            measurements.append(Measurement(dim, w, name, rs, items_of[name]))


def _versions() -> str:
    import numba

    parts = [f"numpy {np.__version__}", f"numba {numba.__version__}"]
    for mod in ("pandas", "torch"):
        try:
            parts.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:  # pragma: no cover
            pass
    return ", ".join(parts)
