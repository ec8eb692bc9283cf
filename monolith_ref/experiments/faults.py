"""Parameter-server failures and daily snapshots, measured: experiment E6 (paper §2.3, §3.2.2).

The paper's failure model: every training parameter server (PS) holds a shard of the
tables and is snapshotted once a day. A PS that fails comes back from its last snapshot;
the updates it received since then are *lost* (nobody replays them), while every other PS
keeps its state. The paper's arithmetic: with 1,000 PS and a failure rate of 0.01% per PS
per day, one PS fails every 10 days and loses one day of updates on 1/1000 of the
parameters, which is why "a model from the previous day works embarrassingly well" and the
snapshot interval can be long. (Contrast chapter 11's trainer, :mod:`monolith_ref.resume`,
which *replays* the log after a crash and so loses only time.)

E6 simulates this in one process. The model's two tables are
:class:`~monolith_ref.tables.ShardedTable` s with ``S`` shards; shard ``i`` of both tables
is "PS ``i``". After a batch stage, the model trains online on hourly shards of the stream
(Algorithm 1 with a sync every hour, :func:`~monolith_ref.training.online_stage`). Every
``T`` hours of event time each PS snapshots its shards. Failures arrive as a Poisson process
per PS, at a failure rate raised far above the paper's (one per PS per day instead of
0.0001) so that they happen within a run of a day or two. A failed PS's shards are
restored from its last snapshot at the end of the hour in which it failed, so each
failure loses the updates from that snapshot (or from its previous failure) to the end of
that hour: on average half an hour more than if it were restored at the very moment it
failed. The dense head lives elsewhere and is untouched. The measure is
the AUC of the online predictions against an identical run without failures. The same
failure times are used for every ``T`` (common random numbers), so differences between
intervals are not noise in the schedule.

Two views of the result: with a fixed failure rate *per PS*, more PS means more failures
that each lose a smaller share, so the expected loss does not depend on ``S`` (it is
``rate x T/2`` of every parameter's updates); per failure, the loss grows with ``T`` and
with ``1/S``. :func:`failure_arithmetic` redoes the paper's numbers and ours.

:func:`run_failure_cost` runs E6; :func:`main_faults` is what ``monolith-ref experiment
faults`` calls.

See: book/ch11_fault_tolerance.md
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.std import tqdm

from ..checks import check_int, check_number
from ..data.synthetic import StreamConfig
from ..events import SECONDS_PER_DAY, Events
from ..metrics import auc
from ..models import DeepFM
from ..serving import ParameterSync, replica_for
from ..tables.sharded_table import ShardedTable
from ..training import batch_stage, online_stage
from .online import ONLINE_CONFIGS, OnlineExperimentConfig, prepare, time_shards

__all__ = ["FaultExperimentConfig", "FAULT_CONFIGS", "Failure", "FailureArithmetic", "failure_arithmetic",
           "failure_schedule", "sharded_copy", "FaultRun", "run_with_failures", "FailureCostResult", "run_failure_cost",
           "main_faults"]

HOUR = 3600


@dataclass(frozen=True)
class FaultExperimentConfig:
    """What E6 runs. See: book/ch11_fault_tolerance.md

    ``online``: the stream, batch stage and training settings (E3's
    :class:`~monolith_ref.experiments.online.OnlineExperimentConfig`; its ``shards`` and E5
    fields are unused, ``pipeline=False`` trains on the events directly, which is all a
    failure model needs). ``num_ps``: the values of S;
    ``intervals_h``: the snapshot intervals T in hours; ``failure_rate``: failures per PS
    per day (the paper's is 0.0001); ``seeds``.
    """

    online: OnlineExperimentConfig
    num_ps: tuple[int, ...] = (2, 4, 8)
    intervals_h: tuple[int, ...] = (1, 6, 24)
    failure_rate: float = 1.0
    seeds: tuple[int, ...] = (0, 1, 2)

    def __post_init__(self) -> None:
        for name in ("num_ps", "intervals_h", "seeds"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")
        for name in ("num_ps", "intervals_h"):
            for i, value in enumerate(getattr(self, name)):
                check_int(value, f"{name}[{i}]", low=1)
        check_number(self.failure_rate, "failure_rate (failures per PS per day)", low=0)


def _online(stream: StreamConfig, batch_days: int) -> OnlineExperimentConfig:
    return replace(ONLINE_CONFIGS["small"], stream=stream, batch_days=batch_days, pipeline=False)


#: ``full`` is the CLI's (minutes), ``small`` the lab notebook's (well under a minute),
#: ``smoke`` the tests' (seconds). Failure rates are raised so that failures happen at all.
FAULT_CONFIGS: dict[str, FaultExperimentConfig] = {
    "full": FaultExperimentConfig(_online(ONLINE_CONFIGS["full"].stream, 5), num_ps=(2, 4, 8, 16),
                                  intervals_h=(1, 6, 24, 48), failure_rate=1.0, seeds=(0, 1, 2)),
    "small": FaultExperimentConfig(_online(replace(ONLINE_CONFIGS["small"].stream, days=4, events_per_day=8_000), 2),
                                   num_ps=(2, 4, 8), intervals_h=(1, 6, 24), failure_rate=1.0, seeds=(0, 1)),
    "smoke": FaultExperimentConfig(_online(ONLINE_CONFIGS["smoke"].stream, 2), num_ps=(2, 4), intervals_h=(1, 24),
                                   failure_rate=2.0, seeds=(0,)),
}


# =========================================================================== arithmetic


@dataclass(frozen=True)
class FailureArithmetic:
    """The paper's back-of-the-envelope reliability numbers for one setting.

    ``failures_per_day``: over all PS; ``days_between_failures``; ``share_per_failure``:
    the share of the parameters one failure rolls back (1/num_ps); ``worst_lost_hours``:
    a whole interval of updates; ``mean_lost_hours``: updates one failure loses on average
    (about half an interval when failures are rare; less when a PS fails several times
    between two snapshots, since the later failure only loses what came after the earlier);
    ``lost_update_share``: the long-run share of every parameter's updates that are lost,
    which does not depend on num_ps; ``users_per_failure``: daily active users whose
    feedback one failure loses (for up to ``worst_lost_hours``). See: book/ch11_fault_tolerance.md
    """

    num_ps: int
    failure_rate_per_day: float
    snapshot_interval_h: float
    failures_per_day: float
    days_between_failures: float
    share_per_failure: float
    worst_lost_hours: float
    mean_lost_hours: float
    lost_update_share: float
    users_per_failure: float

    def text(self) -> str:
        """One line, the way the paper says it."""
        return (f"{self.num_ps} PS x {self.failure_rate_per_day:g} failures/PS/day -> {self.failures_per_day:.3g}/day, "
                f"one every {self.days_between_failures:.3g} days; each loses up to {self.worst_lost_hours:g} h "
                f"(mean {self.mean_lost_hours:.3g} h) of updates on {self.share_per_failure:.3%} of the parameters "
                f"(~{self.users_per_failure:,.0f} users' feedback); long run: {self.lost_update_share:.4%} "
                f"of all updates lost")


def failure_arithmetic(num_ps: int = 1000, failure_rate_per_day: float = 0.0001, snapshot_interval_h: float = 24,
                       daily_active_users: float = 15_000_000) -> FailureArithmetic:
    """The paper's §3.2.2 arithmetic for any setting (defaults: the paper's own numbers:
    one failure every 10 days, one day of updates lost on 0.1% of the parameters, the
    feedback of 15,000 of 15M daily users).

    The long-run loss: a PS fails as a Poisson process of rate ``r`` per hour; within one
    snapshot interval of ``T`` hours it loses the updates from the interval's start to its
    last failure, on average ``T - (1 - exp(-rT)) / r`` hours, so the lost share is
    ``1 - (1 - exp(-rT)) / (rT)``, about ``rT / 2`` when failures are rare.
    See: book/ch11_fault_tolerance.md
    """
    check_int(num_ps, "num_ps", low=1)
    check_number(failure_rate_per_day, "failure_rate_per_day", low=0, low_open=True)
    check_number(snapshot_interval_h, "snapshot_interval_h", low=0, low_open=True)
    rt = failure_rate_per_day / 24 * snapshot_interval_h  # expected failures of one PS per interval
    share = -math.expm1(-rt) / rt  # 1 - share: the updates lost
    lost = 1.0 - share if rt > 1e-6 else rt / 2 - rt * rt / 6
    per_day = num_ps * failure_rate_per_day
    return FailureArithmetic(num_ps, failure_rate_per_day, snapshot_interval_h, per_day, 1.0 / per_day, 1.0 / num_ps,
                             float(snapshot_interval_h), lost * snapshot_interval_h / rt, lost,
                             daily_active_users / num_ps)


# =========================================================================== simulation


@dataclass(frozen=True)
class Failure:
    """One PS failure: event time, which PS, and (once simulated) the hours of updates it
    lost and the rows its shards held. See: book/ch11_fault_tolerance.md
    """

    time: int
    ps: int
    lost_hours: float = 0.0
    rows: int = 0


def failure_schedule(num_ps: int, rate_per_day: float, start: int, end: int, seed: int) -> list[Failure]:
    """Failure times of ``num_ps`` servers, each failing as a Poisson process of
    ``rate_per_day`` between ``start`` and ``end`` (seconds), in time order; seeded.

    See: book/ch11_fault_tolerance.md
    """
    rng = np.random.default_rng([seed, num_ps, 6])
    out = []
    for ps in range(num_ps):
        n = rng.poisson(rate_per_day * (end - start) / SECONDS_PER_DAY)
        out += [Failure(int(t), ps) for t in rng.integers(start, end, size=n)]
    return sorted(out, key=lambda f: (f.time, f.ps))


def sharded_copy(model: DeepFM, optimizer: torch.optim.Optimizer, num_ps: int) -> tuple[DeepFM, torch.optim.Optimizer]:
    """The same model with both tables as ``num_ps``-shard :class:`ShardedTable` s (one
    thread: the simulation is sequential), and a copy of the dense optimizer's state.

    Rows are routed by ID and are a pure function of the operations, so the copy trains
    bit-identically to the original. See: book/ch11_fault_tolerance.md
    """
    vec, wts = model.vectors.table, model.weights.table
    twin = DeepFM(ShardedTable(vec.config, num_ps, threads=1), ShardedTable(wts.config, num_ps, threads=1),
                  model.head.num_fields, model.head.num_dense, hidden=())
    twin.vectors.table.load(vec.export())
    twin.weights.table.load(wts.export())
    twin.head = copy.deepcopy(model.head)  # (the head built above was a placeholder)
    opt = type(optimizer)(twin.head.parameters(), **optimizer.defaults)
    opt.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    return twin, opt


@dataclass
class FaultRun:
    """One online run: the predictions and labels of every hour, the pooled and mean hourly
    AUC, and the failures with what each lost. See: book/ch11_fault_tolerance.md
    """

    hour_auc: list[float]
    probs: np.ndarray
    labels: np.ndarray
    failures: list[Failure]

    @property
    def auc(self) -> float:
        """AUC of every online prediction together (progressive validation)."""
        return auc(self.labels, self.probs)


def _shard_states(model: DeepFM, ps: int) -> tuple[dict, dict]:
    return model.vectors.table.shards[ps].export(), model.weights.table.shards[ps].export()


def run_with_failures(model: DeepFM, optimizer: torch.optim.Optimizer, hours: list[Events], start: int,
                      interval_h: int | None, failures: list[Failure], config: OnlineExperimentConfig,
                      seed: int) -> FaultRun:
    """Online training over ``hours`` (one sync, evaluation and training per hour) with PS
    snapshots every ``interval_h`` hours (the first at ``start``: the batch model) and the
    given failures; ``interval_h=None`` with no failures is the baseline. The model must
    have sharded tables (:func:`sharded_copy`). See: book/ch11_fault_tolerance.md
    """
    vec = model.vectors.table
    if not isinstance(vec, ShardedTable):
        raise TypeError(f"run_with_failures needs ShardedTable tables, got {type(vec).__name__}")
    if failures and interval_h is None:
        raise ValueError("failures need a snapshot interval to restore from")
    num_ps = vec.num_shards
    if any(not 0 <= f.ps < num_ps for f in failures):
        raise ValueError(f"a failure names a PS outside 0..{num_ps - 1}")
    snaps = [_shard_states(model, ps) for ps in range(num_ps)] if failures else []
    since = [start] * num_ps  # per PS: the updates it holds that no snapshot has, start here
    pending = sorted(failures, key=lambda f: f.time)
    done: list[Failure] = []
    sync = ParameterSync(model, replica_for(model))
    cfg = replace(config.train, seed=seed, progress=False)
    aucs, probs, labels = [], [], []
    for h, shard in enumerate(hours):
        if len(shard):
            r = online_stage(model, [shard], sync, optimizer, cfg)
            aucs.append(r.shard_auc[0])
            probs.append(r.probs)
            labels.append(r.labels)
        end_of_hour = start + (h + 1) * HOUR
        while pending and pending[0].time < end_of_hour:  # this PS restarts from its last snapshot
            f = pending.pop(0)
            rows = len(vec.shards[f.ps]) + len(model.weights.table.shards[f.ps])
            vec.shards[f.ps].load(snaps[f.ps][0])
            model.weights.table.shards[f.ps].load(snaps[f.ps][1])
            done.append(replace(f, lost_hours=(end_of_hour - since[f.ps]) / HOUR, rows=rows))
            since[f.ps] = end_of_hour  # (a second failure before the next snapshot loses only what came after)
        if snaps and (h + 1) % interval_h == 0:  # every PS writes its snapshot
            snaps = [_shard_states(model, ps) for ps in range(num_ps)]
            since = [end_of_hour] * num_ps
    return FaultRun(aucs, np.concatenate(probs), np.concatenate(labels), done)


# =========================================================================== E6


@dataclass
class FailureCostResult:
    """E6: per S and T, the AUC change (x100) that failures caused, per seed, with the
    failures behind it; the no-failure AUC per seed; the paper's arithmetic and ours.

    See: book/ch11_fault_tolerance.md
    """

    setup: dict[str, Any]
    seeds: list[int]
    num_ps: list[int]
    intervals_h: list[int]
    baseline_auc: list[float] = field(default_factory=list)  # per seed
    baseline_check: list[bool] = field(default_factory=list)  # first seed: no-failure runs equal for every S
    delta: dict[str, list[float]] = field(default_factory=dict)  # "S/T" -> per seed, (AUC - baseline) x 100
    failures: dict[str, list[int]] = field(default_factory=dict)  # "S/T" -> per seed
    lost_hours: dict[str, list[float]] = field(default_factory=dict)  # "S/T" -> per seed, mean per failure
    lost_share: dict[str, list[float]] = field(default_factory=dict)  # "S/T" -> per seed: share of updates lost
    curve: dict[str, Any] = field(default_factory=dict)  # seed 0, one setting: hourly AUCs and failure hours
    arithmetic: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self, s: int, t: int) -> dict[str, float]:
        """Mean and standard deviation over seeds of the AUC change, failures and losses."""
        d = np.array(self.delta[f"{s}/{t}"])
        n = np.array(self.failures[f"{s}/{t}"])
        per = d[n > 0] / n[n > 0] if (n > 0).any() else np.array([0.0])
        return {"delta": float(d.mean()), "delta_sd": float(d.std(ddof=1)) if d.size > 1 else 0.0,
                "failures": float(n.mean()), "per_failure": float(per.mean()),
                "lost_hours": float(np.mean(self.lost_hours[f"{s}/{t}"])),
                "lost_share": float(np.mean(self.lost_share[f"{s}/{t}"]))}

    def table(self) -> str:
        """AUC x 100 change from failures, per number of PS and snapshot interval."""
        rate = self.setup["failure_rate"]
        lines = [f"E6: PS failures restored from snapshots, AUC x 100 change vs no failures "
                 f"(mean +- sd over seeds {self.seeds})",
                 f"failure rate {rate:g} per PS per day (the paper: 0.0001); online part "
                 f"{self.setup['online_hours']} h; no-failure AUC x 100: "
                 f"{100 * np.mean(self.baseline_auc):.2f}",
                 f"{'PS':>4s} {'T':>5s} {'failures':>9s} {'lost h/fail':>11s} {'updates lost':>13s}"
                 f" {'(formula)':>10s} {'AUC change':>16s} {'per failure':>12s}"]
        for s in self.num_ps:
            for t in self.intervals_h:
                m = self.summary(s, t)
                expected = failure_arithmetic(s, rate, t).lost_update_share if rate > 0 else 0.0
                lines.append(f"{s:>4d} {t:>3d} h {m['failures']:>9.1f} {m['lost_hours']:>11.1f}"
                             f" {m['lost_share']:>13.2%} {expected:>10.2%} {m['delta']:>+8.3f} +- {m['delta_sd']:.3f}"
                             f" {m['per_failure']:>+12.4f}")
        lines.append("")
        lines += [f"{k}: {FailureArithmetic(**v).text()}" for k, v in self.arithmetic.items()]
        return "\n".join(lines)

    def to_json(self, path: Path | str) -> None:
        """Everything, as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    def plot(self, path: Path | str | None = None):
        """Left: AUC change against T, one line per S. Right: the hourly AUC of one run with
        and without failures, failures marked."""
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
        for s in self.num_ps:
            m = [self.summary(s, t) for t in self.intervals_h]
            left.errorbar(self.intervals_h, [x["delta"] for x in m], yerr=[x["delta_sd"] for x in m], marker="o",
                          ms=4, capsize=3, label=f"S = {s} PS")
        left.axhline(0, color="grey", lw=0.8)
        left.set_xscale("log")
        left.set_xticks(self.intervals_h, [str(t) for t in self.intervals_h])
        left.set_xlabel("snapshot interval T (hours)")
        left.set_ylabel("AUC x 100 change from failures")
        left.legend(fontsize=7)
        left.grid(alpha=0.3)
        c = self.curve
        if c:
            right.plot(c["hours"], c["baseline"], "-", lw=1, label="no failures")
            right.plot(c["hours"], c["failures"], "-", lw=1, label=f"S = {c['num_ps']}, T = {c['interval_h']} h")
            for h in c["failure_hours"]:
                right.axvline(h, color="red", alpha=0.3, lw=1)
            right.set_xlabel("hours into the online part (red: a PS failed)")
            right.set_ylabel("AUC of the hour")
            right.legend(fontsize=7)
            right.grid(alpha=0.3)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


def run_failure_cost(config: FaultExperimentConfig, progress: bool = True) -> FailureCostResult:
    """E6 for every seed, S and T of ``config``. See: book/ch11_fault_tolerance.md"""
    started = time.perf_counter()
    on = config.online
    online_hours = (on.stream.days - on.batch_days) * 24
    res = FailureCostResult(setup={"stream": asdict(on.stream), "batch_days": on.batch_days,
                                   "online_hours": online_hours, "failure_rate": config.failure_rate},
                            seeds=list(config.seeds), num_ps=list(config.num_ps), intervals_h=list(config.intervals_h))
    keys = [f"{s}/{t}" for s in config.num_ps for t in config.intervals_h]
    for k in keys:
        res.delta[k], res.failures[k], res.lost_hours[k], res.lost_share[k] = [], [], [], []
    bar = tqdm(total=len(config.seeds) * (2 + len(keys)), desc="E6", disable=not progress, leave=False)
    for seed in config.seeds:
        p = prepare(on, seed)
        model, opt = batch_stage(p.batch, on.model, replace(on.train, progress=False), seed=p.seed)
        hours = time_shards(p.online, p.start, p.end, online_hours, p.available)
        base = run_with_failures(*sharded_copy(model, opt, config.num_ps[0]), hours, p.start, None, [], on, seed)
        res.baseline_auc.append(base.auc)
        if seed == config.seeds[0]:  # the baseline does not depend on S: sharding changes no bit
            other = run_with_failures(*sharded_copy(model, opt, config.num_ps[-1]), hours, p.start, None, [], on, seed)
            res.baseline_check.append(bool(np.array_equal(base.probs, other.probs)))
        bar.update(2)
        for s in config.num_ps:
            schedule = failure_schedule(s, config.failure_rate, p.start, p.end, seed)
            for t in config.intervals_h:
                run = run_with_failures(*sharded_copy(model, opt, s), hours, p.start, t, schedule, on, seed)
                k = f"{s}/{t}"
                res.delta[k].append(100 * (run.auc - base.auc))
                res.failures[k].append(len(run.failures))
                res.lost_hours[k].append(float(np.mean([f.lost_hours for f in run.failures])) if run.failures else 0.0)
                res.lost_share[k].append(sum(f.lost_hours / s for f in run.failures) / online_hours)
                if seed == config.seeds[0] and (s, t) == (config.num_ps[0], config.intervals_h[-1]):
                    res.curve = {"num_ps": s, "interval_h": t, "hours": list(range(len(base.hour_auc))),
                                 "baseline": [float(a) for a in base.hour_auc],
                                 "failures": [float(a) for a in run.hour_auc],
                                 "failure_hours": [(f.time - p.start) / HOUR for f in run.failures]}
                bar.update()
    bar.close()
    res.arithmetic["paper (1000 PS, 0.01%/day, daily snapshots)"] = asdict(failure_arithmetic())
    for s in config.num_ps:
        for t in (config.intervals_h[0], config.intervals_h[-1]):
            res.arithmetic[f"ours (S={s}, T={t} h)"] = asdict(failure_arithmetic(s, config.failure_rate, t,
                                                                                on.stream.num_users))
    res.seconds = time.perf_counter() - started
    return res


def main_faults(size: str = "full", out: Path | str = Path("results/faults"), seeds: int | None = None,
                progress: bool = True) -> str:
    """Run E6 at ``size`` (``full``, ``small`` or ``smoke``), save ``faults_e6.json`` and
    ``faults_e6.png`` into ``out``; return the text table. ``seeds``: use seeds
    ``0..seeds-1`` instead of the size's. This is ``monolith-ref experiment faults``.
    See: book/ch11_fault_tolerance.md
    """
    if size not in FAULT_CONFIGS:
        raise ValueError(f"size must be one of {sorted(FAULT_CONFIGS)}, got {size!r}")
    config = FAULT_CONFIGS[size]
    if seeds is not None:
        config = replace(config, seeds=tuple(range(check_int(seeds, "seeds", low=1))))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = run_failure_cost(config, progress)
    res.to_json(out / "faults_e6.json")
    res.plot(out / "faults_e6.png")
    return res.table()
