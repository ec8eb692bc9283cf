"""Online versus batch, measured: the paper's experiments E3 and E5 (paper §3.1.2, §3.2.2,
Algorithm 1, Table 2, Figures 9 and 10), at laptop scale.

**E3** (:func:`run_online_vs_batch`). A drifting synthetic stream of ``days`` days goes through the whole pipeline (log,
joiner, examples log). The examples that became available in the first ``batch_days`` days
train a DeepFM (the batch stage). The rest is cut into ``N`` shards of equal duration, and
two models are scored on every shard by a serving replica, as in Algorithm 1:

* *batch*: serving keeps the batch model;
* *online*: before each shard, serving receives the training model (a touched-key sync),
  and after being scored on the shard, the training model trains on it.

The paper's Table 2 gives, per sync interval, the AUC of both (mean and spread over runs);
:meth:`OnlineVsBatchResult.table` prints ours in that form.

**E5** (:func:`run_sync_cost`). What the syncs cost: the bytes pushed per sync against a full copy, as a function
of the sync interval (the touched rows of an interval are exactly the distinct IDs trained
in it, which the runs check), and the AUC when the dense parameters travel only every
``K``-th sync instead of every sync.

:func:`main_online` is what ``monolith-ref experiment online`` calls.

See: book/ch14_online_measured.md
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.std import tqdm

from ..data.synthetic import StreamConfig, synthetic_stream
from ..events import SECONDS_PER_DAY, Events
from ..metrics import auc
from ..serving import ParameterSync, replica_for
from ..streaming.joiner import JoinerConfig, OnlineJoiner
from ..streaming.log import Log
from ..streaming.pipeline import release_times, run_pipeline
from ..streaming.simulate import ArrivalConfig, arrivals
from ..training import ModelConfig, OnlineResult, TrainConfig, batch_stage, fork_trainer, online_stage, predict

__all__ = ["OnlineExperimentConfig", "BURSTY", "ONLINE_CONFIGS", "Prepared", "prepare", "time_shards",
           "OnlineVsBatchResult", "run_online_vs_batch", "SyncCostResult", "run_sync_cost", "distinct_ids_per_shard",
           "main_online"]


@dataclass(frozen=True)
class OnlineExperimentConfig:
    """Everything E3 and E5 run with. See: book/ch14_online_measured.md

    ``stream``: the synthetic stream (its seed is replaced by each run's seed);
    ``batch_days``: days of examples for the batch stage; ``shards``: the values of N;
    ``seeds``; ``pipeline``: go through log and joiner (else train on the events directly);
    ``hold``: train each example once its label is final (see
    :func:`~monolith_ref.streaming.pipeline.release_times`; False: in join order);
    ``e5_shards``: N values for E5's bytes curve; ``e5_n`` and ``e5_dense_every``: the N and
    the K values of E5's dense-lag runs.
    """

    stream: StreamConfig
    batch_days: int = 5
    shards: tuple[int, ...] = (10, 50, 100)
    seeds: tuple[int, ...] = (0, 1, 2)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=512, progress=False))
    arrivals: ArrivalConfig = field(default_factory=ArrivalConfig)
    joiner: JoinerConfig = field(default_factory=lambda: JoinerConfig(window=3600, memory_seconds=600))
    pipeline: bool = True
    hold: bool = True
    e5_shards: tuple[int, ...] = (4, 10, 25, 50, 100, 200, 400)
    e5_n: int = 48
    e5_dense_every: tuple[int, ...] = (1, 6, 24, 48)


#: The stream's short-lived patterns: four viral items a day, each for four hours, taking 5%
#: of traffic with +2 logits. With the stream's default of four bursts in a whole run, the
#: online part may hold none, and the gain of syncing more often is lost in the noise
#: (chapter 14 shows both).
BURSTY = dict(num_bursts=28, burst_hours=4, burst_share=0.05, burst_boost=2.0)

#: ``full`` is what the CLI runs (minutes); ``small`` is the lab notebook's (seconds).
ONLINE_CONFIGS: dict[str, OnlineExperimentConfig] = {
    "full": OnlineExperimentConfig(StreamConfig(num_users=40_000, num_items=15_000, new_items_per_day=1_500, days=7,
                                     events_per_day=60_000, **BURSTY)),
    "small": OnlineExperimentConfig(StreamConfig(num_users=12_000, num_items=5_000, new_items_per_day=500, days=7,
                                      events_per_day=15_000, **BURSTY), e5_shards=(4, 10, 25, 50, 100, 200)),
    "smoke": OnlineExperimentConfig(StreamConfig(num_users=600, num_items=300, new_items_per_day=30, days=3,
                                      events_per_day=1_500), batch_days=2, shards=(2, 4), seeds=(0,),
                         e5_shards=(2, 4), e5_n=4, e5_dense_every=(1, 4)),
}


# =========================================================================== data


@dataclass
class Prepared:
    """One seed's data: the batch-stage examples, the online examples (in the order the
    trainer reads them) with the times they became available, when the online part starts
    and ends, and the joiner's counters.

    See: book/ch14_online_measured.md
    """

    seed: int
    batch: Events
    online: Events
    available: np.ndarray  # when each online example reached the trainer (non-decreasing)
    start: int
    end: int
    joiner: dict[str, int]


def prepare(config: OnlineExperimentConfig, seed: int, cache: dict | None = None) -> Prepared:
    """Generate the stream, send it through the pipeline, split it at ``batch_days``.

    Examples are split by the time the trainer may learn from them: their release time
    (:func:`~monolith_ref.streaming.pipeline.release_times`: when the label is final, with
    ``hold``), or their join time. ``cache``: a dict in which the joined examples are kept
    (keyed by the stream, arrival and joiner settings and the seed), so that setups that
    differ only in how they train reuse one pipeline run. See: book/ch14_online_measured.md
    """
    stream = replace(config.stream, seed=seed)
    key = ("joined", repr(stream), repr(config.arrivals), repr(config.joiner), config.pipeline, seed)
    if cache is not None and key in cache:
        t0_events, joined, stats = cache[key]
    else:
        events = synthetic_stream(stream)
        t0_events = int(events.time[0])
        if config.pipeline:
            with OnlineJoiner(replace(config.joiner, seed=seed)) as joiner:
                result = run_pipeline(events, arrivals(events, replace(config.arrivals, seed=seed)), joiner, Log())
            joined, stats = result.examples, result.stats.as_dict()
        else:
            joined, stats = events, {}
        if cache is not None:
            cache[key] = (t0_events, joined, stats)
    split = t0_events + config.batch_days * SECONDS_PER_DAY
    end = t0_events + config.stream.days * SECONDS_PER_DAY
    if config.pipeline:
        order, available = release_times(joined, config.joiner.window, config.hold)
        ex = joined.events[order]
    else:
        ex, available = joined, joined.time
    batch = ex[available < split]
    keep = (available >= split) & (available < end)
    return Prepared(seed, batch, ex[keep], np.asarray(available[keep], dtype=np.int64), split, end, dict(stats))


def time_shards(events: Events, start: int, end: int, n: int, times: np.ndarray | None = None) -> list[Events]:
    """``events`` cut into ``n`` shards of equal duration between ``start`` and ``end``
    (by ``times``, default the events' own times), order kept. See: book/ch14_online_measured.md
    """
    t = events.time if times is None else times
    edges = np.linspace(start, end, n + 1)
    cut = np.searchsorted(t, edges[1:-1], side="left")
    if np.any(np.diff(t) < 0):
        raise ValueError("time_shards needs events in time order")
    bounds = [0, *cut.tolist(), len(events)]
    return [events[bounds[i] : bounds[i + 1]] for i in range(n)]


def _seed_state(config: OnlineExperimentConfig, seed: int, cache: dict | None):
    """The prepared data and batch-stage model of one seed, computed once per ``cache``
    (keyed by every setting that changes them)."""
    key = ("state", repr(replace(config, shards=(), seeds=(), e5_shards=(), e5_n=0, e5_dense_every=())), seed)
    if cache is not None and key in cache:
        return cache[key]
    p = prepare(config, seed, cache)
    model, opt = batch_stage(p.batch, config.model, config.train, seed=p.seed)
    if cache is not None:
        cache[key] = (p, model, opt)
    return p, model, opt


def _shard_aucs(labels: np.ndarray, probs: np.ndarray, bounds: list[int]) -> list[float]:
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        y = labels[a:b]
        out.append(auc(y, probs[a:b]) if 0 < y.sum() < len(y) else float("nan"))
    return out


# =========================================================================== E3


@dataclass
class OnlineVsBatchResult:
    """Per seed and N: the mean of the per-shard AUCs (Algorithm 1's ``AUC_i``) for the batch
    and the online model; the pooled AUC of every online-part prediction together
    (progressive validation: steadier than a mean over small shards); the online run's
    per-shard curve; and the sync sizes.

    See: book/ch14_online_measured.md
    """

    setup: dict[str, Any]
    seeds: list[int]
    shards: list[int]
    batch_auc: dict[str, list[float]] = field(default_factory=dict)  # str(N) -> per seed
    online_auc: dict[str, list[float]] = field(default_factory=dict)
    batch_pooled: list[float] = field(default_factory=list)  # per seed: AUC of all online examples together
    online_pooled: dict[str, list[float]] = field(default_factory=dict)  # str(N) -> per seed
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # seed 0: N -> series
    sync_bytes: dict[str, list[float]] = field(default_factory=dict)  # str(N) -> mean bytes per sync (seed 0)
    full_bytes: dict[str, float] = field(default_factory=dict)
    joiner: list[dict[str, int]] = field(default_factory=list)
    examples: list[dict[str, int]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, n: int) -> dict[str, float]:
        """AUC x 100 mean and spread (standard deviation over seeds) of both, and the gain."""
        b = 100 * np.array(self.batch_auc[str(n)])
        o = 100 * np.array(self.online_auc[str(n)])
        pb = 100 * np.array(self.batch_pooled)
        po = 100 * np.array(self.online_pooled[str(n)])
        sd = lambda x: float(x.std(ddof=1)) if x.size > 1 else 0.0  # noqa: E731
        return {"batch_mean": float(b.mean()), "batch_sd": sd(b), "online_mean": float(o.mean()),
                "online_sd": sd(o), "gain": float((o - b).mean()), "gain_sd": sd(o - b),
                "pooled_batch": float(pb.mean()), "pooled_online": float(po.mean()),
                "pooled_gain": float((po - pb).mean()), "pooled_gain_sd": sd(po - pb)}

    def table(self) -> str:
        """Our Table 2: AUC x 100, mean +- standard deviation over the seeds."""
        hours = {n: self.setup["online_hours"] / n for n in self.shards}
        lines = [f"E3: online vs batch training, AUC x 100 (mean +- sd over seeds {self.seeds})",
                 "mean of per-shard AUCs (Algorithm 1), and the pooled AUC of all online predictions",
                 f"{'shards N':>9s} {'interval':>9s} {'batch':>15s} {'online':>15s} {'gain':>14s}"
                 f" {'pooled batch':>13s} {'online':>7s} {'gain':>14s}"]
        for n in self.shards:
            s = self.summary(n)
            lines.append(f"{n:>9d} {hours[n]:>7.2f} h {s['batch_mean']:>8.2f} +- {s['batch_sd']:.3f}"
                         f" {s['online_mean']:>8.2f} +- {s['online_sd']:.3f} {s['gain']:>+6.2f} +- {s['gain_sd']:.3f}"
                         f" {s['pooled_batch']:>13.2f} {s['pooled_online']:>7.2f}"
                         f" {s['pooled_gain']:>+6.2f} +- {s['pooled_gain_sd']:.3f}")
        return "\n".join(lines)

    def to_json(self, path: Path | str) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    def plot(self, path: Path | str | None = None):
        """AUC per shard over time, batch vs online, one panel per N (the paper's Figure 9)."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(self.shards), figsize=(4 * len(self.shards), 3.2), squeeze=False)
        for ax, n in zip(axes[0], self.shards):
            c = self.curves[str(n)]
            ax.plot(c["hours"], c["batch"], "o-", ms=3, label="batch (serving frozen)")
            ax.plot(c["hours"], c["online"], "o-", ms=3, label="online (sync + train)")
            ax.set_title(f"N = {n} (sync every {self.setup['online_hours'] / n:.1f} h)", fontsize=9)
            ax.set_xlabel("hours into the online part")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("AUC on the shard")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


def run_online_vs_batch(config: OnlineExperimentConfig, progress: bool = True,
                        cache: dict | None = None) -> OnlineVsBatchResult:
    """E3 for every seed and every N of ``config``. ``cache``: a dict shared with
    :func:`run_sync_cost` so both use one pipeline run and one batch stage per seed.
    See: book/ch14_online_measured.md"""
    started = time.perf_counter()
    online_hours = (config.stream.days - config.batch_days) * 24
    res = OnlineVsBatchResult(setup={"stream": asdict(config.stream), "batch_days": config.batch_days,
                                     "online_hours": online_hours, "pipeline": config.pipeline,
                                     "hold": config.hold},
                              seeds=list(config.seeds), shards=list(config.shards))
    for n in config.shards:
        res.batch_auc[str(n)], res.online_auc[str(n)], res.online_pooled[str(n)] = [], [], []
    bar = tqdm(total=len(config.seeds) * (1 + len(config.shards)), desc="E3", disable=not progress, leave=False)
    for seed in config.seeds:
        p, model, opt = _seed_state(config, seed, cache)
        res.joiner.append(p.joiner)
        res.examples.append({"batch": len(p.batch), "online": len(p.online),
                             "online_positives": int(p.online.label.sum())})
        batch_probs = predict(model, p.online)
        res.batch_pooled.append(auc(p.online.label, batch_probs))
        times = p.available
        bar.update()
        for n in config.shards:
            shards = time_shards(p.online, p.start, p.end, n, times)
            bounds = np.cumsum([0] + [len(s) for s in shards]).tolist()
            b_auc = _shard_aucs(p.online.label, batch_probs, bounds)
            m, o = fork_trainer(model, opt)
            sync = ParameterSync(m, replica_for(m))
            r: OnlineResult = online_stage(m, shards, sync, o, replace(config.train, seed=seed))
            res.batch_auc[str(n)].append(float(np.nanmean(b_auc)))
            res.online_auc[str(n)].append(r.mean_auc)
            res.online_pooled[str(n)].append(r.auc)
            if seed == config.seeds[0]:
                hours = [(p.start + i * (p.end - p.start) / n - p.start) / 3600 for i in range(n)]
                res.curves[str(n)] = {"hours": [float(h) for h in hours], "batch": [float(a) for a in b_auc],
                                      "online": [float(a) for a in r.shard_auc]}
                res.sync_bytes[str(n)] = [float(np.mean([x.bytes for x in r.syncs[1:]])) if len(r.syncs) > 1 else 0.0]
                res.full_bytes[str(n)] = float(r.syncs[-1].full_bytes)
            bar.update()
    bar.close()
    res.seconds = time.perf_counter() - started
    return res


# =========================================================================== E5


def distinct_ids_per_shard(shards: Sequence[Events]) -> list[int]:
    """How many distinct feature IDs each shard holds (all fields together).

    Training on a shard touches exactly these rows of the vector table (and of the weight
    table), so this is the row count of the next sync. See: book/ch14_online_measured.md
    """
    return [int(np.unique(s.fields).size) for s in shards]


@dataclass
class SyncCostResult:
    """E5: rows and bytes per sync against a full copy, per sync interval; and the AUC with
    the dense head synced every K syncs. See: book/ch14_online_measured.md
    """

    setup: dict[str, Any]
    intervals_h: list[float] = field(default_factory=list)
    rows_per_sync: list[float] = field(default_factory=list)
    bytes_per_sync: list[float] = field(default_factory=list)
    full_bytes: float = 0.0
    checked: dict[str, list[int]] = field(default_factory=dict)  # N -> [counted, synced] rows (seed 0)
    dense_every: list[int] = field(default_factory=list)
    dense_auc: dict[str, list[float]] = field(default_factory=dict)  # str(K) -> per seed
    dense_bytes: dict[str, float] = field(default_factory=dict)  # str(K) -> total bytes pushed (seed 0)
    seeds: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def table(self) -> str:
        lines = ["E5: what a sync costs (seed 0)",
                 f"{'interval':>9s} {'rows/sync':>10s} {'MB/sync':>9s} {'of a full copy':>15s}"]
        for h, rows, b in zip(self.intervals_h, self.rows_per_sync, self.bytes_per_sync):
            lines.append(f"{h:>7.2f} h {rows:>10,.0f} {b / 2**20:>9.3f} {b / self.full_bytes:>15.2%}")
        lines.append(f"full copy: {self.full_bytes / 2**20:.2f} MB")
        lines.append(f"dense head every K syncs (N = {self.setup['e5_n']}): AUC x 100, mean over seeds {self.seeds}")
        for k in self.dense_every:
            a = 100 * np.array(self.dense_auc[str(k)])
            lines.append(f"  K = {k:>3d}: {a.mean():.3f} (sd {a.std(ddof=1) if a.size > 1 else 0.0:.3f}),"
                         f" {self.dense_bytes[str(k)] / 2**20:.2f} MB pushed in all")
        return "\n".join(lines)

    def to_json(self, path: Path | str) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    def plot(self, path: Path | str | None = None):
        """Bytes per sync (share of a full copy) against the interval (log-log)."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        ax.loglog(self.intervals_h, [b / self.full_bytes for b in self.bytes_per_sync], "o-")
        ax.set_xlabel("sync interval (hours)")
        ax.set_ylabel("bytes per sync / full copy")
        ax.grid(alpha=0.3, which="both")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


def run_sync_cost(config: OnlineExperimentConfig, progress: bool = True, cache: dict | None = None) -> SyncCostResult:
    """E5 on ``config``'s seeds (``cache``: see :func:`run_online_vs_batch`). See: book/ch14_online_measured.md"""
    started = time.perf_counter()
    online_hours = (config.stream.days - config.batch_days) * 24
    res = SyncCostResult(setup={"e5_n": config.e5_n, "online_hours": online_hours},
                         dense_every=list(config.e5_dense_every), seeds=list(config.seeds))
    for k in config.e5_dense_every:
        res.dense_auc[str(k)] = []
    bar = tqdm(total=len(config.seeds) * len(config.e5_dense_every), desc="E5", disable=not progress, leave=False)
    for seed in config.seeds:
        p, model, opt = _seed_state(config, seed, cache)
        times = p.available
        if seed == config.seeds[0]:
            row_bytes = 2 * 8 + 4 * config.model.dim + 4  # the ID twice (two tables), a vector and a weight
            for n in config.e5_shards:
                counts = distinct_ids_per_shard(time_shards(p.online, p.start, p.end, n, times))
                res.intervals_h.append(online_hours / n)
                res.rows_per_sync.append(float(np.mean(counts)))
                res.bytes_per_sync.append(float(np.mean(counts)) * row_bytes)
        shards = time_shards(p.online, p.start, p.end, config.e5_n, times)
        for k in config.e5_dense_every:
            m, o = fork_trainer(model, opt)
            sync = ParameterSync(m, replica_for(m), dense_every=k)
            r = online_stage(m, shards, sync, o, replace(config.train, seed=seed))
            res.dense_auc[str(k)].append(r.mean_auc)
            if seed == config.seeds[0]:
                res.dense_bytes[str(k)] = float(sum(x.bytes for x in r.syncs[1:]))
                if k == config.e5_dense_every[0]:
                    res.full_bytes = float(r.syncs[-1].full_bytes)
                    counted = distinct_ids_per_shard(shards)
                    synced = [x.rows["vectors"] for x in r.syncs[1:]]
                    res.checked[str(config.e5_n)] = [int(sum(counted[:-1])), int(sum(synced))]
            bar.update()
    bar.close()
    res.seconds = time.perf_counter() - started
    return res


def main_online(which: str = "both", size: str = "full", out: Path | str = Path("results/online"),
                seeds: int | None = None, progress: bool = True) -> str:
    """Run E3 and/or E5 at ``size`` and save JSON and PNG files into ``out``; return the
    text tables. This is ``monolith-ref experiment online``. See: book/ch14_online_measured.md
    """
    if which not in ("e3", "e5", "both"):
        raise ValueError(f"which must be 'e3', 'e5' or 'both', got {which!r}")
    if size not in ONLINE_CONFIGS:
        raise ValueError(f"size must be one of {sorted(ONLINE_CONFIGS)}, got {size!r}")
    config = ONLINE_CONFIGS[size]
    if seeds is not None:
        config = replace(config, seeds=tuple(range(int(seeds))))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    texts: list[str] = []
    cache: dict = {}
    if which in ("e3", "both"):
        r3 = run_online_vs_batch(config, progress, cache)
        r3.to_json(out / "online_e3.json")
        r3.plot(out / "online_e3.png")
        texts.append(r3.table())
    if which in ("e5", "both"):
        r5 = run_sync_cost(config, progress, cache)
        r5.to_json(out / "online_e5.json")
        r5.plot(out / "online_e5.png")
        texts.append(r5.table())
    return "\n\n".join(texts)
