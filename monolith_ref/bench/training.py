"""The training-step benchmark: DeepFM on our tables against DeepFM on ``nn.Embedding``.

One question: what does training on a collisionless table cost, per example, against the
usual PyTorch way of training the same model, a fixed-size ``torch.nn.Embedding`` indexed by
hashed IDs? Three contestants train the same :class:`~monolith_ref.models.DeepFMHead` (same
seed, same width, same dense features) on the same batches of the synthetic stream:

* ``numba``: :func:`~monolith_ref.training.build_deepfm` over two :class:`NumbaTable`\\ s
  (vectors and first-order weights), rows inserted on first sight;
* ``sharded``: the same over two :class:`ShardedTable`\\ s of two ``NumbaTable`` shards each,
  one worker thread per shard (up to the CPU count);
* ``hashed``: two ``nn.Embedding(m, ., sparse=True)`` tables of ``m`` rows (``m`` = the
  number of distinct IDs in the run's stream), IDs mapped to rows with
  ``bucket_of(ids, m, "mix")`` at every step, so some IDs share a row.

The work per step is the same as far as the two designs allow: the loss summed over the batch
(as :func:`~monolith_ref.training.train_step` does), ``torch.optim.Adam`` on the head,
Adagrad (learning rate 0.1, initial accumulator 1.0) on both embedding tables, in the table
for ours and ``torch.optim.Adagrad`` on sparse gradients for ``hashed``. (Our default for the
first-order weights is FTRL; ``torch.optim`` has no FTRL, so the benchmark uses Adagrad for
both tables on both sides.) PyTorch runs on **one intra-op thread** for every contestant, as
:class:`~monolith_ref.training.TrainConfig` sets it by default.

Each step is split into four phases timed with ``time.perf_counter``: ``lookup`` (IDs to
embedding tensors: for ``hashed`` the hashing and the ``nn.Embedding`` gather),
``forward_backward`` (the head, the loss, ``backward``), ``dense_update`` (Adam) and
``sparse_update`` (the tables' optimizers; ``apply_gradients`` for ours, the sparse Adagrad
step for ``hashed``). The stream is cut into ``repeats + 1`` chunks of ``steps`` batches:
chunk 0 warms up (JIT compilation, first table growth), the others are timed, the contestants
taking turns in a rotating order. Throughput is examples per second over the timed steps
(median over repeats); batches are sliced before timing.

From the shell: ``python benchmarks/run_training.py`` or ``monolith-ref bench --training``.
See: book/ch08_deepfm.md
"""

from __future__ import annotations

import abc

import gc
import json
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checks import check_int
from ..data.synthetic import StreamConfig, synthetic_stream
from ..hashing import bucket_of, collision_rate
from ..models import DeepFMHead
from ..optim import Adagrad
from ..tables import NumbaTable, ShardedTable
from ..training import ModelConfig, build_deepfm

__all__ = [
    "PHASES",
    "CONTESTANTS",
    "SPARSE_LR",
    "SPARSE_INIT_ACC",
    "DENSE_LR",
    "TARGET",
    "TrainingBenchConfig",
    "TRAINING_BENCH_CONFIGS",
    "HashedDeepFM",
    "TrainingBenchResult",
    "run_training_benchmark",
]

#: The phases of one training step, in the order they run.
PHASES = ("lookup", "forward_backward", "dense_update", "sparse_update")
#: The contestants, in the order the table prints them; ``hashed`` is the reference.
CONTESTANTS = ("numba", "sharded", "hashed")
REFERENCE = "hashed"
TARGET = 0.8

_LABELS = {
    "numba": "NumbaTable (ours)",
    "sharded": "ShardedTable, 2 shards (ours)",
    "hashed": "nn.Embedding, hashed IDs",
}
_PHASE_LABELS = {
    "lookup": "lookup",
    "forward_backward": "forward + backward",
    "dense_update": "dense update (Adam)",
    "sparse_update": "sparse update (Adagrad)",
}

SPARSE_LR = 0.1
SPARSE_INIT_ACC = 1.0
DENSE_LR = 1e-3


@dataclass(frozen=True)
class TrainingBenchConfig:
    """The size of a run: the stream's population, the batch size, timed steps per repeat.

    See: book/ch08_deepfm.md
    """

    name: str
    num_users: int
    num_items: int
    new_items_per_day: int
    batch_size: int
    steps: int
    dim: int = 16
    hidden: tuple[int, ...] = (64, 32)
    days: int = 2


TRAINING_BENCH_CONFIGS: dict[str, TrainingBenchConfig] = {
    # about 0.8M examples, 1024 per batch: a minute or two in all on a laptop core
    "full": TrainingBenchConfig("full", num_users=200_000, num_items=50_000, new_items_per_day=10_000,
                                batch_size=1024, steps=200),
    # the lab notebook's run: a few seconds
    "small": TrainingBenchConfig("small", num_users=20_000, num_items=5_000, new_items_per_day=1_000,
                                 batch_size=1024, steps=48),
    # the smoke test: structure only
    "smoke": TrainingBenchConfig("smoke", num_users=300, num_items=100, new_items_per_day=20,
                                 batch_size=64, steps=3, dim=4, hidden=(8,)),
}


# =========================================================================== the baseline


class HashedDeepFM(nn.Module):
    """DeepFM on two fixed ``nn.Embedding`` tables indexed by hashed IDs (the baseline).

    ``num_rows`` rows per table; an ID's row is ``bucket_of(id, num_rows, "mix")``. The
    embeddings give sparse gradients (``sparse=True``), for ``torch.optim.Adagrad``.
    Initial vectors are uniform in ``[-init_scale, init_scale)``, weights zero, as in
    :func:`~monolith_ref.training.build_deepfm`. See: book/ch08_deepfm.md
    """

    def __init__(self, num_rows: int, num_fields: int, dim: int, num_dense: int = 0,
                 hidden: Sequence[int] = (64, 32), init_scale: float = 0.01, seed: int = 0) -> None:
        super().__init__()
        self.num_rows = check_int(num_rows, "HashedDeepFM num_rows", low=1)
        self.vectors = nn.Embedding(num_rows, dim, sparse=True)
        self.weights = nn.Embedding(num_rows, 1, sparse=True)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.vectors.weight.uniform_(-init_scale, init_scale, generator=gen)
            self.weights.weight.zero_()
        self.head = DeepFMHead(num_fields, dim, num_dense, hidden, seed)

    def rows(self, fields: np.ndarray) -> torch.Tensor:
        """The table row of every ID: int64 tensor of the same shape as ``fields``."""
        return torch.from_numpy(bucket_of(fields.reshape(-1), self.num_rows, "mix").reshape(fields.shape))

    def forward(self, fields: np.ndarray, dense: torch.Tensor | None = None) -> torch.Tensor:
        idx = self.rows(np.asarray(fields))
        return self.head(self.vectors(idx), self.weights(idx), dense)


# =========================================================================== contestants


@dataclass
class _Batch:
    fields: np.ndarray
    now: int
    dense: torch.Tensor | None
    label: torch.Tensor

    def __len__(self) -> int:
        return int(self.fields.shape[0])


class _Contestant(abc.ABC):
    """A model, its optimizers, and one instrumented training step."""

    name = ""

    @abc.abstractmethod
    def step(self, b: _Batch, loss_fn: nn.Module, clock: np.ndarray) -> float:
        """One training step on ``b``, adding each phase's seconds to ``clock``; the loss."""

    def close(self) -> None:
        pass


class _Ours(_Contestant):
    def __init__(self, name: str, table: Any, config: TrainingBenchConfig, num_fields: int, num_dense: int) -> None:
        self.name = name
        opt = Adagrad(lr=SPARSE_LR, initial_accumulator=SPARSE_INIT_ACC)
        cfg = ModelConfig(dim=config.dim, hidden=config.hidden, vector_optimizer=opt, weight_optimizer=opt)
        self.model = build_deepfm(num_fields, num_dense, cfg, table=table)
        self.model.train()
        self.dense_opt = torch.optim.Adam(self.model.head.parameters(), lr=DENSE_LR)

    def step(self, b: _Batch, loss_fn: nn.Module, clock: np.ndarray) -> float:
        # train_step, phase by phase (DeepFM.forward is these two lookups and the head)
        m = self.model
        t0 = time.perf_counter()
        emb = m.vectors(b.fields, b.now)
        w = m.weights(b.fields, b.now)
        t1 = time.perf_counter()
        loss = loss_fn(m.head(emb, w, b.dense), b.label)
        self.dense_opt.zero_grad()
        loss.backward()
        t2 = time.perf_counter()
        self.dense_opt.step()
        t3 = time.perf_counter()
        m.apply_sparse_gradients()
        t4 = time.perf_counter()
        clock += (t1 - t0, t2 - t1, t3 - t2, t4 - t3)
        return float(loss.detach())

    def rows(self) -> int:
        return len(self.model.vectors.table)

    def close(self) -> None:
        for emb in (self.model.vectors, self.model.weights):
            closer = getattr(emb.table, "close", None)
            if closer is not None:
                closer()


class _Hashed(_Contestant):
    name = "hashed"

    def __init__(self, num_rows: int, config: TrainingBenchConfig, num_fields: int, num_dense: int) -> None:
        self.model = HashedDeepFM(num_rows, num_fields, config.dim, num_dense, config.hidden, seed=0)
        self.model.train()
        self.dense_opt = torch.optim.Adam(self.model.head.parameters(), lr=DENSE_LR)
        self.sparse_opt = torch.optim.Adagrad([self.model.vectors.weight, self.model.weights.weight], lr=SPARSE_LR,
                                              initial_accumulator_value=SPARSE_INIT_ACC, eps=1e-10)

    def step(self, b: _Batch, loss_fn: nn.Module, clock: np.ndarray) -> float:
        m = self.model
        t0 = time.perf_counter()
        idx = m.rows(b.fields)
        emb = m.vectors(idx)
        w = m.weights(idx)
        t1 = time.perf_counter()
        loss = loss_fn(m.head(emb, w, b.dense), b.label)
        self.dense_opt.zero_grad()
        self.sparse_opt.zero_grad()
        loss.backward()
        t2 = time.perf_counter()
        self.dense_opt.step()
        t3 = time.perf_counter()
        self.sparse_opt.step()
        t4 = time.perf_counter()
        clock += (t1 - t0, t2 - t1, t3 - t2, t4 - t3)
        return float(loss.detach())

    def rows(self) -> int:
        return self.model.num_rows


# =========================================================================== the result


def _load_average() -> float:
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):  # pragma: no cover - not on every platform
        return float("nan")


@dataclass
class TrainingBenchResult:
    """Every timed repeat of a training-step benchmark, and its report.

    ``runs[contestant]`` is a list of repeats; each repeat is ``{"examples": n, "steps": k,
    "seconds": {phase: s}, "loss": mean loss}``. ``meta`` describes the run (sizes, threads,
    machine, load). See: book/ch08_deepfm.md
    """

    meta: dict[str, Any]
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    # ---- numbers -------------------------------------------------------------------

    def contestants(self) -> list[str]:
        return [c for c in CONTESTANTS if c in self.runs] + sorted(set(self.runs) - set(CONTESTANTS))

    def rates(self, contestant: str) -> list[float]:
        """Examples per second of each repeat."""
        return [r["examples"] / sum(r["seconds"].values()) for r in self.runs[contestant]]

    def rate(self, contestant: str) -> float:
        """Median examples per second over the repeats."""
        return float(median(self.rates(contestant)))

    def ratio(self, contestant: str = "numba", reference: str = REFERENCE) -> float:
        """``rate(contestant) / rate(reference)``: above 1, ours trains faster."""
        return self.rate(contestant) / self.rate(reference)

    def step_ms(self, contestant: str) -> float:
        """Median milliseconds per training step."""
        return float(median(1e3 * sum(r["seconds"].values()) / r["steps"] for r in self.runs[contestant]))

    def phases(self, contestant: str) -> dict[str, float]:
        """Median milliseconds per step spent in each phase."""
        return {p: float(median(1e3 * r["seconds"][p] / r["steps"] for r in self.runs[contestant])) for p in PHASES}

    def phase_shares(self, contestant: str) -> dict[str, float]:
        """Each phase's share of the (median) step time."""
        ph = self.phases(contestant)
        total = sum(ph.values())
        return {p: v / total for p, v in ph.items()}

    def target_met(self) -> bool:
        """Is ``NumbaTable`` at least :data:`TARGET` (0.8) times the hashed baseline?"""
        return self.ratio("numba") >= TARGET

    # ---- report --------------------------------------------------------------------

    def table(self) -> str:
        """The printed report: throughput, ratio, and the per-phase time of each contestant."""
        m = self.meta
        lines = [
            f"DeepFM training steps: {m['size']} size, batch {m['batch_size']}, {m['steps']} timed steps x "
            f"{m['repeats']} repeats (median), dim {m['dim']}, {m['num_fields']} fields, "
            f"{m['num_dense']} dense features",
            f"torch intra-op threads: {m['torch_threads']} for every contestant; {m['cpus']} CPUs; "
            f"load average {m['load_before']:.1f} -> {m['load_after']:.1f}",
            f"stream: {m['events']:,} events, {m['distinct_ids']:,} distinct IDs; hashed tables: "
            f"{m['hashed_rows']:,} rows each, collision rate {m['hashed_collision_rate']:.1%} (1 - rows used / IDs)",
            "",
            f"{'contestant':32s} {'examples/s':>12s} {'vs hashed':>10s} {'ms/step':>9s}   "
            + " ".join(f"{_PHASE_LABELS[p]:>24s}" for p in PHASES),
        ]
        for c in self.contestants():
            ph = self.phases(c)
            total = sum(ph.values())
            cells = " ".join(f"{ph[p]:>8.2f} ms ({ph[p] / total:>5.1%})    " for p in PHASES)
            lines.append(f"{_LABELS.get(c, c):32s} {self.rate(c):>12,.0f} {self.ratio(c):>9.2f}x "
                         f"{self.step_ms(c):>9.2f}   {cells}")
        lines.append("")
        r = self.ratio("numba")
        lines.append(f"target: NumbaTable >= {TARGET}x the hashed nn.Embedding model: {r:.2f}x, "
                     f"{'met' if r >= TARGET else 'NOT met'}")
        if "sharded" in self.runs:
            same = m.get("sharded_matches_numba")
            if same is not None:
                lines.append(f"check: ShardedTable's losses equal NumbaTable's, step for step: {'yes' if same else 'NO'}")
        if m.get("runs", 1) > 1:
            lines.append(f"({m['runs']} runs combined: per-repeat numbers of every run, medians of all)")
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        """The headline numbers as plain Python values (for JSON and for glue)."""
        return {
            "rates": {c: self.rate(c) for c in self.contestants()},
            "ratios": {c: self.ratio(c) for c in self.contestants()},
            "step_ms": {c: self.step_ms(c) for c in self.contestants()},
            "phases_ms": {c: self.phases(c) for c in self.contestants()},
            "target": TARGET,
            "target_met": self.target_met(),
        }

    def to_json(self, path: str | Path) -> None:
        """Save meta, every repeat and the summary."""
        data = {"meta": self.meta, "runs": self.runs, "summary": self.summary()}
        Path(path).write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> TrainingBenchResult:
        data = json.loads(Path(path).read_text())
        return cls(meta=data["meta"], runs=data["runs"])

    @classmethod
    def combine(cls, results: Sequence[TrainingBenchResult]) -> TrainingBenchResult:
        """Pool the repeats of several runs (same settings); medians are then over all."""
        if not results:
            raise ValueError("combine needs at least one result")
        meta = dict(results[0].meta)
        meta["runs"] = sum(r.meta.get("runs", 1) for r in results)
        meta["load_before"] = max(r.meta["load_before"] for r in results)
        meta["load_after"] = max(r.meta["load_after"] for r in results)
        meta["run_ratios"] = [r.ratio("numba") for r in results]
        if any("sharded_matches_numba" in r.meta for r in results):
            meta["sharded_matches_numba"] = all(r.meta.get("sharded_matches_numba", True) for r in results)
        runs: dict[str, list[dict[str, Any]]] = {}
        for r in results:
            for c, reps in r.runs.items():
                runs.setdefault(c, []).extend(reps)
        return cls(meta=meta, runs=runs)

    def plot(self, path: str | Path | None = None, ax: Any = None) -> Any:
        """A horizontal stacked bar per contestant: milliseconds per step by phase."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(7.0, 2.6))
        else:
            fig = ax.figure
        names = self.contestants()[::-1]
        left = np.zeros(len(names))
        for p in PHASES:
            vals = np.array([self.phases(c)[p] for c in names])
            ax.barh([_LABELS.get(c, c) for c in names], vals, left=left, label=_PHASE_LABELS[p])
            left += vals
        for i, c in enumerate(names):
            ax.text(left[i], i, f"  {self.rate(c) / 1e3:,.0f}k ex/s", va="center", fontsize=8)
        ax.set_xlim(0, left.max() * 1.3)
        ax.set_xlabel(f"milliseconds per training step (batch {self.meta['batch_size']})")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


# =========================================================================== running


def _batches(events: Any, batch_size: int) -> list[_Batch]:
    out = []
    for start in range(0, len(events) - batch_size + 1, batch_size):
        part = events[start : start + batch_size]
        dense = torch.from_numpy(np.ascontiguousarray(part.dense)) if part.dense.shape[1] else None
        out.append(_Batch(np.ascontiguousarray(part.fields), int(part.time[-1]), dense,
                          torch.from_numpy(np.ascontiguousarray(part.label))))
    return out


def run_training_benchmark(size: str = "full", batch_size: int | None = None, steps: int | None = None,
                           repeats: int = 3, progress: bool = True, seed: int = 0,
                           contestants: Sequence[str] = CONTESTANTS, torch_threads: int = 1,
                           stream: StreamConfig | None = None) -> TrainingBenchResult:
    """Time DeepFM training steps on our tables and on hashed ``nn.Embedding`` tables.

    ``size``: a key of :data:`TRAINING_BENCH_CONFIGS` (``"full"``, ``"small"``, ``"smoke"``);
    ``batch_size`` and ``steps`` (timed steps per repeat) override the config's.
    ``repeats`` timed chunks follow one warm-up chunk. PyTorch's intra-op threads are set to
    ``torch_threads`` (1) for the run and restored afterwards. ``stream`` replaces the
    config's synthetic stream settings (its ``events_per_day`` is then raised if too few).
    See: book/ch08_deepfm.md
    """
    if size not in TRAINING_BENCH_CONFIGS:
        raise ValueError(f"size must be one of {sorted(TRAINING_BENCH_CONFIGS)}, got {size!r}")
    config = TRAINING_BENCH_CONFIGS[size]
    bs = config.batch_size if batch_size is None else batch_size
    n_steps = config.steps if steps is None else steps
    for name, value in (("batch_size", bs), ("steps", n_steps), ("repeats", repeats), ("torch_threads", torch_threads)):
        check_int(value, name, low=1)
    unknown = set(contestants) - set(CONTESTANTS)
    if unknown or REFERENCE not in contestants or "numba" not in contestants:
        raise ValueError(f"contestants must include 'numba' and 'hashed', from {CONTESTANTS}; got {tuple(contestants)}")

    chunks = repeats + 1
    needed = bs * n_steps * chunks
    if stream is None:
        stream = StreamConfig(num_users=config.num_users, num_items=config.num_items,
                              new_items_per_day=config.new_items_per_day, days=config.days,
                              events_per_day=1, seed=seed)
    per_day = max(stream.events_per_day, math.ceil(needed / stream.days))
    events = synthetic_stream(replace(stream, events_per_day=per_day))[:needed]
    batches = _batches(events, bs)
    num_fields, num_dense = events.fields.shape[1], events.dense.shape[1]
    distinct = np.unique(events.fields)
    hashed_rows = int(distinct.size)
    colliding = float(collision_rate(distinct, hashed_rows, "mix"))

    threads_before = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    cpus = os.cpu_count() or 1
    makers = {
        "numba": lambda: _Ours("numba", NumbaTable, config, num_fields, num_dense),
        "sharded": lambda: _Ours("sharded", lambda c: ShardedTable(c, num_shards=2), config, num_fields, num_dense),
        "hashed": lambda: _Hashed(hashed_rows, config, num_fields, num_dense),
    }
    order = [c for c in CONTESTANTS if c in contestants]
    players = {c: makers[c]() for c in order}
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in order}
    losses: dict[str, list[float]] = {c: [] for c in order}
    meta: dict[str, Any] = {
        "size": size, "batch_size": bs, "steps": n_steps, "repeats": repeats, "warmup_steps": n_steps,
        "dim": config.dim, "hidden": list(config.hidden), "num_fields": int(num_fields), "num_dense": int(num_dense),
        "events": int(len(events)), "distinct_ids": int(distinct.size), "hashed_rows": hashed_rows,
        "hashed_collision_rate": colliding, "torch_threads": torch_threads, "cpus": cpus,
        "sharded_threads": min(2, cpus), "sparse_optimizer": f"Adagrad(lr={SPARSE_LR}, initial_accumulator={SPARSE_INIT_ACC})",
        "dense_optimizer": f"Adam(lr={DENSE_LR})", "loss": "BCEWithLogitsLoss(reduction='sum')", "seed": seed,
        "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
        "platform": platform.platform(), "machine": platform.machine(), "runs": 1,
        "load_before": _load_average(),
    }
    try:
        import numba

        meta["numba"] = numba.__version__
    except ImportError:  # pragma: no cover
        pass

    bar: Any = None
    if progress:
        from tqdm.std import tqdm

        bar = tqdm(total=chunks * len(order), desc="training-step benchmark", leave=False, file=sys.stderr)
    try:
        with warnings.catch_warnings():
            # torch's sparse Adagrad warns once that sparse invariant checks are off
            warnings.filterwarnings("ignore", message=".*[Ss]parse invariant checks.*")
            gc_was = gc.isenabled()
            gc.collect()
            gc.disable()
            try:
                for chunk in range(chunks):
                    part = batches[chunk * n_steps : (chunk + 1) * n_steps]
                    k = chunk % len(order)
                    for c in order[k:] + order[:k]:  # rotate who goes first
                        clock = np.zeros(len(PHASES))
                        chunk_losses = [players[c].step(b, loss_fn, clock) for b in part]
                        losses[c].extend(chunk_losses)
                        if chunk > 0:
                            runs[c].append({
                                "examples": int(sum(len(b) for b in part)), "steps": len(part),
                                "seconds": {p: float(s) for p, s in zip(PHASES, clock)},
                                "loss": float(np.sum(chunk_losses) / sum(len(b) for b in part)),
                            })
                        if bar is not None:
                            bar.update(1)
                    if chunk == 0:
                        gc.collect()  # once, after the warm-up; the collector stays off while timing
            finally:
                if gc_was:
                    gc.enable()
    finally:
        if bar is not None:
            bar.close()
        torch.set_num_threads(threads_before)
        for p in players.values():
            p.close()
    meta["load_after"] = _load_average()
    meta["rows_after"] = {c: int(p.rows()) for c, p in players.items()}  # type: ignore[attr-defined]
    meta["final_loss"] = {c: runs[c][-1]["loss"] for c in order}
    if "sharded" in order:
        meta["sharded_matches_numba"] = bool(losses["sharded"] == losses["numba"])
    return TrainingBenchResult(meta=meta, runs=runs)

