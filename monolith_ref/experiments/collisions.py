"""Collisions, measured: the paper's experiments E1 and E2 (paper §3.1.1, §3.2.1, Table 1,
Figures 7 and 8), at laptop scale.

**E1** (:func:`run_hashed_vs_collisionless`) trains DeepFM with a collisionless table and with MD5-hashed IDs, and records the test
AUC after every epoch. The hashed variants are built by *rewriting the IDs before the
table*: each hashed field's IDs go through ``bucket_of(ids, m_f, "md5")`` and the bucket
numbers are salted per field again with :func:`~monolith_ref.events.field_ids`.
Both variants then train the same collisionless table type with the same optimizers; the
only difference is that several IDs now arrive as one key, i.e. the collisions. ``m_f`` is
``buckets_for_collision_rate(n_f, rate)`` for the ``n_f`` distinct IDs of the field in the
whole data set, and the collision rate actually reached is measured with
:func:`~monolith_ref.hashing.collision_rate` (the way the paper's Table 1 counts).

**E2** (:func:`run_qr_vs_collisionless`) trains day by day on a drifting stream, progressively: the model trained on days
``0..d-1`` is scored on day ``d`` before it trains on day ``d`` (paper Algorithm 1's
predict-then-train). It compares the collisionless table with the quotient-remainder trick,
the paper's production baseline: a :class:`~monolith_ref.tables.QRHashedTable` whose rows
are a chosen fraction of the distinct IDs.

Both run on the synthetic stream by default and on MovieLens ratings when given the events
(:func:`~monolith_ref.data.movielens.load_movielens`). :func:`main_collisions` is what the
``monolith-ref experiment collisions`` command calls.

See: book/ch13_collisions_measured.md
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from tqdm.std import tqdm

from ..data.synthetic import StreamConfig, synthetic_stream
from ..events import Events, field_ids
from ..hashing import bucket_of, buckets_for_collision_rate, collision_rate, mix64, qr_split, traffic_collision_rate
from ..optim import FTRL, Adagrad
from ..tables.hashed_table import QRHashedTable
from ..tables.numba_table import NumbaTable
from ..training import ModelConfig, TrainConfig, build_deepfm_for, evaluate, train

__all__ = [
    "COLLISIONLESS",
    "PAPER_USER_RATE",
    "PAPER_ITEM_RATE",
    "COLLISIONLESS",
    "CollisionExperimentConfig",
    "COLLISION_CONFIGS",
    "collision_config",
    "id_fields",
    "hash_field_ids",
    "split_train_test",
    "qr_sizing",
    "qr_sharing",
    "HashedVsCollisionlessResult",
    "QRVsCollisionlessResult",
    "run_hashed_vs_collisionless",
    "run_qr_vs_collisionless",
    "main_collisions",
]

#: Table 1 of the paper: 162,541 user IDs in 149,970 buckets, 59,047 movies in 57,361.
PAPER_USER_RATE = 0.0773
PAPER_ITEM_RATE = 0.0286
#: The name of the baseline variant in every result.
COLLISIONLESS = "collisionless"

RateSpec = Union[str, float, Mapping[str, float]]


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class CollisionExperimentConfig:
    """The settings of a run of E1 and E2, by size (``name``: ``"full"``, ``"small"`` or
    ``"smoke"``: ``COLLISION_CONFIGS``). ``e1_stream``/``e2_stream``: the synthetic streams of E1 and E2;
    ``epochs``, ``seeds``, ``batch_size``: E1's training; ``e2_chunks``: how many time chunks
    ("days") E2 cuts MovieLens into; ``movielens_max_events``: keep about this many ratings
    (all ratings of a random subset of users) when running on MovieLens (``None``: all).

    See: book/ch13_collisions_measured.md
    """

    name: str
    e1_stream: StreamConfig
    e2_stream: StreamConfig
    epochs: int
    seeds: tuple[int, ...]
    batch_size: int
    e2_chunks: int
    movielens_max_events: int | None


# E1's stream: no drift, no new items, no bursts (E1 is about capacity, not freshness), and
# few enough users and items that each has many events, so its own row can be learned.
_E1_BASE = StreamConfig(
    num_users=2_000, num_items=1_000, new_items_per_day=0, item_lifetime_days=math.inf, days=4,
    events_per_day=100_000, drift=0.0, num_bursts=0, cluster_strength=0.3, seed=0,
)  # fmt: skip
# E2's stream: drifting interests, new items every day (each living about 5 days), viral
# bursts; 13 days, so that 12 days are scored, as in the paper's Figure 8.
_E2_BASE = StreamConfig(
    num_users=2_000, num_items=1_000, new_items_per_day=300, item_lifetime_days=5.0, days=13,
    events_per_day=100_000, drift=0.3, num_bursts=4, cluster_strength=0.3, seed=0,
)  # fmt: skip

COLLISION_CONFIGS: dict[str, CollisionExperimentConfig] = {
    "full": CollisionExperimentConfig("full", _E1_BASE, _E2_BASE, epochs=10, seeds=(0, 1, 2), batch_size=1024,
                                      e2_chunks=12, movielens_max_events=None),
    "small": CollisionExperimentConfig(
        "small",
        replace(_E1_BASE, num_users=600, num_items=300, days=2, events_per_day=30_000),
        replace(_E2_BASE, num_users=600, num_items=300, new_items_per_day=90, days=7, events_per_day=15_000),
        epochs=4, seeds=(0, 1, 2), batch_size=1024, e2_chunks=6, movielens_max_events=1_000_000,
    ),
    "smoke": CollisionExperimentConfig(
        "smoke",
        replace(_E1_BASE, num_users=300, num_items=120, days=1, events_per_day=4_000),
        replace(_E2_BASE, num_users=300, num_items=120, new_items_per_day=30, days=3, events_per_day=2_000),
        epochs=2, seeds=(0, 1, 2), batch_size=512, e2_chunks=3, movielens_max_events=50_000,
    ),
}


def collision_config(size: str | CollisionExperimentConfig) -> CollisionExperimentConfig:
    """The :class:`CollisionExperimentConfig` called ``size`` (``"full"``, ``"small"`` or
    ``"smoke"``); a config passed in is returned as it is.

    See: book/ch13_collisions_measured.md
    """
    if isinstance(size, CollisionExperimentConfig):
        return size
    if size not in COLLISION_CONFIGS:
        raise ValueError(f"unknown size {size!r}; use one of {sorted(COLLISION_CONFIGS)}")
    return COLLISION_CONFIGS[size]


def _model_config(dim: int, seed: int) -> ModelConfig:
    """The model of both experiments: DeepFM with Monolith's sparse optimizers.

    The embedding learning rate is lower than the package default (0.1), so that ten epochs
    over the same data do not overfit the per-ID rows (the paper's Figure 7 shows no
    overfitting either).
    """
    return ModelConfig(
        dim=dim,
        vector_optimizer=Adagrad(lr=0.05, initial_accumulator=1.0),
        weight_optimizer=FTRL(alpha=0.05, beta=1.0, initial_accumulator=1e-6),
        seed=seed,
    )


@contextmanager
def _one_thread() -> Iterator[None]:
    """Pin PyTorch to one thread for the whole experiment (evaluation included)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- E1 pieces


def id_fields(events: Events) -> tuple[str, str]:
    """The user field and the item field of ``events``: ``("user", "item")`` for the
    synthetic stream, ``("user", "movie")`` for MovieLens. See: book/ch13_collisions_measured.md
    """
    names = events.field_names
    item = next((n for n in ("item", "movie") if n in names), None)
    if "user" not in names or item is None:
        raise ValueError(f"the collision experiments need a 'user' and an 'item' or 'movie' field, got {names}")
    return "user", item


def _distinct(column: np.ndarray) -> np.ndarray:
    return np.unique(column)


def hash_field_ids(events: Events, rates: Mapping[str, float], method: str = "md5"
                   ) -> tuple[Events, dict[str, dict[str, Any]]]:
    """Events whose fields in ``rates`` are hashed into fewer buckets, and what that did.

    For each field ``f`` with target ``rate``: ``n_f`` is its number of distinct IDs in
    ``events``, ``m_f = buckets_for_collision_rate(n_f, rate)``, and every ID becomes
    ``field_ids(f, bucket_of(id, m_f, method))``: its bucket, salted per field so that bucket
    5 of users and bucket 5 of items stay different keys. IDs that share a bucket now *are*
    one key, so any collisionless table downstream gives them one row. Returns the new events
    and, per hashed field, ``target``, ``distinct`` (``n_f``), ``rows`` (``m_f``), ``used``
    (buckets that received an ID: the rows the table ends up holding), ``measured``
    (:func:`collision_rate`: IDs without a row of their own, ``1 - used / distinct``) and
    ``traffic`` (share of events whose ID shares its row). See: book/ch13_collisions_measured.md
    """
    cols = events.fields.copy()
    info: dict[str, dict[str, Any]] = {}
    for name, rate in rates.items():
        if name not in events.field_names:
            raise ValueError(f"no field {name!r} to hash; the fields are {events.field_names}")
        f = events.field_names.index(name)
        uniq, inverse = np.unique(events.fields[:, f], return_inverse=True)
        m = buckets_for_collision_rate(int(uniq.size), float(rate))
        buckets = bucket_of(uniq, m, method).astype(np.uint64)
        cols[:, f] = field_ids(name, buckets)[inverse.reshape(-1)]
        info[name] = {
            "target": float(rate),
            "distinct": int(uniq.size),
            "rows": int(m),
            "used": int(np.unique(buckets).size),
            "measured": float(collision_rate(uniq, m, method)),
            "traffic": float(traffic_collision_rate(events.fields[:, f], m, method)),
        }
    return replace(events, fields=cols), info


def _field_report(raw: Events, used: Events, hashed: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per field: the hashing stats, or, for a field left alone, its measured (zero) rate."""
    out: dict[str, dict[str, Any]] = {}
    for f, name in enumerate(raw.field_names):
        if name in hashed:
            out[name] = dict(hashed[name])
            continue
        n = int(_distinct(raw.fields[:, f]).size)
        keys = int(_distinct(used.fields[:, f]).size)
        out[name] = {"target": 0.0, "distinct": n, "rows": keys, "used": keys,
                     "measured": 1.0 - keys / n if n else 0.0, "traffic": 0.0}
    return out


def split_train_test(events: Events, test_fraction: float = 0.2, how: str = "random", seed: int = 0
             ) -> tuple[Events, Events]:
    """E1's train/test split. ``how="random"``: a seeded random ``test_fraction`` of the events
    (each part kept in time order); ``how="time"``: the last ``test_fraction`` of the events
    in time. The paper does not say which it used. See: book/ch13_collisions_measured.md
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if how == "time":
        return events.split_at_fraction(1.0 - float(test_fraction))
    if how != "random":
        raise ValueError(f"unknown split {how!r}; use 'random' or 'time'")
    n = len(events)
    is_test = np.zeros(n, dtype=bool)
    is_test[np.random.default_rng([int(seed), 13]).permutation(n)[: int(round(test_fraction * n))]] = True
    return events[~is_test], events[is_test]


def _resolve_rate(spec: RateSpec, user: str, item: str) -> tuple[str, str, dict[str, float]]:
    """A variant's (name, label, {field: target rate}) from a rate spec."""
    if isinstance(spec, str):
        if spec != "paper":
            raise ValueError(f"a rate is 'paper', a number in (0, 1) or a {{field: rate}} mapping, got {spec!r}")
        return ("md5-paper", f"MD5, paper rates ({PAPER_USER_RATE:.2%} users, {PAPER_ITEM_RATE:.2%} items)",
                {user: PAPER_USER_RATE, item: PAPER_ITEM_RATE})
    if isinstance(spec, Mapping):
        rates = {str(k): float(v) for k, v in spec.items()}
        tag = "-".join(f"{k}{100 * v:g}%" for k, v in rates.items())
        return f"md5-{tag}", "MD5, " + ", ".join(f"{k} {v:.2%}" for k, v in rates.items()), rates
    r = float(spec)
    if not 0.0 < r < 1.0:
        raise ValueError(f"a collision rate must be in (0, 1), got {spec!r}")
    return f"md5-{100 * r:g}%", f"MD5, {100 * r:g}% per ID field", {user: r, item: r}


# --------------------------------------------------------------------------- results


def _safe_metrics(model: Any, events: Events) -> dict[str, float]:
    """AUC and log loss, NaN where undefined (no events, or one label only)."""
    if len(events) == 0 or events.label.min() == events.label.max():
        return {"auc": math.nan, "logloss": math.nan}
    return evaluate(model, events)


def _stats(x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "se": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    return {"mean": float(x.mean()), "std": std, "se": std / math.sqrt(n), "min": float(x.min()),
            "max": float(x.max()), "n": n}


class _Series:
    """What E1 and E2 results share: per variant, per seed, a series of metrics.

    See: book/ch13_collisions_measured.md
    """

    variants: list[str]
    labels: dict[str, str]
    seeds: list[int]
    runs: dict[str, list[dict[str, list[float]]]]
    _metric: str = "auc"
    _step: str = "step"

    def values(self, variant: str, metric: str | None = None) -> np.ndarray:
        """``(seeds, steps)`` array of one metric of one variant. See: book/ch13_collisions_measured.md"""
        if variant not in self.runs:
            raise KeyError(f"no variant {variant!r}; the variants are {self.variants}")
        key = metric or self._metric
        return np.array([run[key] for run in self.runs[variant]], dtype=np.float64)

    def summary(self, metric: str | None = None) -> dict[str, dict[str, list[float]]]:
        """Per variant: the mean and the sample standard deviation over seeds at each step.

        See: book/ch13_collisions_measured.md
        """
        out = {}
        for v in self.variants:
            x = self.values(v, metric)
            std = x.std(axis=0, ddof=1) if x.shape[0] > 1 else np.zeros(x.shape[1])
            out[v] = {"mean": [float(a) for a in x.mean(axis=0)], "std": [float(a) for a in std]}
        return out

    def gap(self, variant: str, metric: str | None = None, baseline: str = COLLISIONLESS) -> np.ndarray:
        """``baseline - variant`` per seed and step (paired by seed): positive means the
        collisionless table is ahead. See: book/ch13_collisions_measured.md"""
        return self.values(baseline, metric) - self.values(variant, metric)

    def gap_stats(self, variant: str, at: str | int = "last", metric: str | None = None,
                  baseline: str = COLLISIONLESS) -> dict[str, float]:
        """The paired gap over seeds: ``mean``, ``std`` (sample), ``se``, ``min``, ``max``, ``n``.

        ``at``: ``"last"`` step; ``"best"``: each run's best value (its own best step) minus
        the other's; ``"mean"``: the gap averaged over steps; or a 0-based step index.
        See: book/ch13_collisions_measured.md
        """
        if at == "best":
            best = [np.nanmax(self.values(v, metric), axis=1) for v in (baseline, variant)]
            per_seed = best[0] - best[1]
        elif at == "mean":
            per_seed = np.nanmean(self.gap(variant, metric, baseline), axis=1)
        elif at == "last":
            per_seed = self.gap(variant, metric, baseline)[:, -1]
        elif isinstance(at, (int, np.integer)):
            per_seed = self.gap(variant, metric, baseline)[:, int(at)]
        else:
            raise ValueError(f"at must be 'last', 'best', 'mean' or a step index, got {at!r}")
        return _stats(per_seed)

    # ---- JSON ----------------------------------------------------------------------------

    def to_json(self, path: str | Path) -> Path:
        """Write the result as JSON; :meth:`from_json` reads it back. See: book/ch13_collisions_measured.md"""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        payload = {"kind": type(self).__name__, **asdict(self)}  # type: ignore[call-overload]
        p.write_text(json.dumps(payload, indent=1))
        return p

    @classmethod
    def from_json(cls, path: str | Path) -> Any:
        """Read a result written by :meth:`to_json`. See: book/ch13_collisions_measured.md"""
        data = json.loads(Path(path).read_text())
        kind = data.pop("kind", cls.__name__)
        if kind != cls.__name__:
            raise ValueError(f"{path} holds a {kind}, not a {cls.__name__}")
        return cls(**data)

    # ---- plotting ------------------------------------------------------------------------

    def _plot(self, target: Any, xs: Sequence[int], xlabel: str, ylabel: str, title: str,
              metric: str | None = None) -> Any:
        from matplotlib.axes import Axes
        from matplotlib.figure import Figure

        if isinstance(target, Axes):
            ax, fig = target, target.figure
        else:
            fig = Figure(figsize=(7.0, 4.2), layout="constrained")
            ax = fig.add_subplot()
        summary = self.summary(metric)
        x = np.asarray(xs)
        for v in self.variants:
            mean, std = np.asarray(summary[v]["mean"]), np.asarray(summary[v]["std"])
            style = {"lw": 2.4, "color": "black"} if v == COLLISIONLESS else {"lw": 1.6}
            (line,) = ax.plot(x, mean, marker="o", ms=3.5, label=self.labels.get(v, v), **style)
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.18, lw=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        if target is not None and not isinstance(target, Axes):
            fig.savefig(Path(target), dpi=120)
        return fig


@dataclass(eq=True)
class HashedVsCollisionlessResult(_Series):
    """E1's outcome: per variant and seed, test AUC and log loss after every epoch.

    ``runs[variant][i]`` belongs to ``seeds[i]`` and has ``auc``, ``logloss`` and
    ``train_loss`` lists (one value per epoch). ``collisions[variant][field]`` holds the
    field's ``target`` rate, ``distinct`` IDs, ``rows`` (buckets), ``measured`` collision rate
    and ``traffic`` share of colliding lookups. ``config`` records the data and settings.
    See: book/ch13_collisions_measured.md
    """

    variants: list[str]
    labels: dict[str, str]
    seeds: list[int]
    epochs: int
    runs: dict[str, list[dict[str, list[float]]]]
    collisions: dict[str, dict[str, dict[str, Any]]]
    config: dict[str, Any] = field(default_factory=dict)
    _step = "epoch"

    def table(self, metric: str | None = None) -> str:
        """A text table: the collision rates reached (like the paper's Table 1), then the test
        AUC per variant (mean ± sample std over seeds) at epoch 1, the last epoch and the best
        epoch, and the paired gap to the collisionless table. See: book/ch13_collisions_measured.md"""
        fields = list(next(iter(self.collisions.values())).keys())
        hashed = [f for f in fields if any(self.collisions[v][f]["target"] > 0 for v in self.variants)]
        lines = [f"E1 on {self.config.get('data', '?')}: {len(self.seeds)} seeds, {self.epochs} epochs, "
                 f"test AUC mean ± sd over seeds"]
        lines.append("")
        lines.append(f"{'variant':<16}" + "".join(f"{f + ' IDs':>12}{'buckets':>11}{'used':>9}{'rate':>8}"
                                                  for f in hashed))
        for v in self.variants:
            row = f"{v:<16}"
            for f in hashed:
                c = self.collisions[v][f]
                row += f"{c['distinct']:>12,}{c['rows']:>11,}{c['used']:>9,}{c['measured']:>8.2%}"
            lines.append(row)
        lines.append("")
        last = self.epochs
        lines.append(f"{'variant':<16}{'epoch 1':>18}{f'epoch {last}':>18}{'best epoch':>18}"
                     f"{f'gap @ {last}':>20}{'gap @ best':>20}")
        for v in self.variants:
            x = self.values(v, metric)
            cells = [_stats(x[:, 0]), _stats(x[:, -1]), _stats(np.nanmax(x, axis=1))]
            row = f"{v:<16}" + "".join(f"{c['mean']:>10.4f} ± {c['std']:.4f}" for c in cells)
            if v != COLLISIONLESS:
                for at in ("last", "best"):
                    g = self.gap_stats(v, at, metric)
                    row += f"{g['mean']:>+12.4f} ± {g['std']:.4f}"
            lines.append(row)
        return "\n".join(lines)

    def plot(self, target: Any = None, metric: str | None = None) -> Any:
        """Test AUC against epoch, one line per variant with a band of ± one sample standard
        deviation over seeds: our Figure 7. ``target``: an Axes to draw on, a path to save a
        PNG to, or ``None``. Returns the figure. See: book/ch13_collisions_measured.md"""
        return self._plot(target, range(1, self.epochs + 1), "epoch", "test AUC",
                          f"E1: collisionless vs MD5-hashed IDs ({self.config.get('data', '')})", metric)


@dataclass(eq=True)
class QRVsCollisionlessResult(_Series):
    """E2's outcome: per variant and seed, the AUC of each day scored before training on it.

    ``days[j]`` is the day (0-based; day 0 is only trained on) of ``runs[variant][i]["auc"][j]``.
    ``qr`` holds the quotient-remainder sizing (``remainder_bits``, ``remainder_rows``,
    ``quotient_rows``, ``rows``, ``distinct``, ``fraction``) and sharing (``share_both``,
    ``share_one``, ``collision_rate``). See: book/ch13_collisions_measured.md
    """

    variants: list[str]
    labels: dict[str, str]
    seeds: list[int]
    days: list[int]
    runs: dict[str, list[dict[str, list[float]]]]
    qr: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    _step = "day"

    def table(self, metric: str | None = None) -> str:
        """A text table: the QR sizing and sharing, then the per-day AUC (mean ± sd).

        See: book/ch13_collisions_measured.md
        """
        q = self.qr
        lines = [f"E2 on {self.config.get('data', '?')}: {len(self.seeds)} seeds, progressive AUC per day "
                 f"(mean ± sd over seeds)", "",
                 f"QR table: 2^{q['remainder_bits']} remainder + {q['quotient_rows']:,} quotient rows = "
                 f"{q['rows']:,} rows for {q['distinct']:,} distinct IDs ({q['rows'] / q['distinct']:.1%}); "
                 f"IDs sharing both parts {q['share_both']:.2%}, at least one part {q['share_one']:.2%}", ""]
        s = self.summary(metric)
        lines.append(f"{'day':>5}" + "".join(f"{v:>20}" for v in self.variants) + f"{'gap':>20}")
        other = [v for v in self.variants if v != COLLISIONLESS]
        for j, d in enumerate(self.days):
            row = f"{d:>5}" + "".join(f"{s[v]['mean'][j]:>11.4f} ± {s[v]['std'][j]:.4f}" for v in self.variants)
            if other:
                g = self.gap_stats(other[0], j, metric)
                row += f"{g['mean']:>+11.4f} ± {g['std']:.4f}"
            lines.append(row)
        if other:
            g = self.gap_stats(other[0], "mean", metric)
            lines.append(f"{'mean':>5}{'':>{20 * len(self.variants)}}{g['mean']:>+11.4f} ± {g['std']:.4f}")
        return "\n".join(lines)

    def plot(self, target: Any = None, metric: str | None = None) -> Any:
        """AUC of each day (scored before training on it) against the day, one line per
        variant with a ± one-sd band over seeds: our Figure 8. ``target`` as in
        :meth:`HashedVsCollisionlessResult.plot`. Returns the figure.
        See: book/ch13_collisions_measured.md"""
        return self._plot(target, self.days, "day", "progressive AUC (day scored before training on it)",
                          f"E2: collisionless vs quotient-remainder ({self.config.get('data', '')})", metric)


# --------------------------------------------------------------------------- E1


def _seeds(seeds: Sequence[int] | int | None, default: tuple[int, ...]) -> list[int]:
    if seeds is None:
        return list(default)
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"the number of seeds must be >= 1, got {seeds}")
        return list(range(int(seeds)))
    out = [int(s) for s in seeds]
    if not out:
        raise ValueError("at least one seed is needed")
    return out


def _data(events: Events | None, stream: StreamConfig, data_name: str | None) -> tuple[Events, str, dict[str, Any]]:
    """The events to run on (generated from ``stream`` when none are given), their name, and
    what to record about where they came from."""
    if events is None:
        return synthetic_stream(stream), data_name or "synthetic", {"stream": asdict(stream)}
    return events, data_name or "events", {}


def run_hashed_vs_collisionless(events: Events | None = None, stream: StreamConfig | None = None,
                                rates: Sequence[RateSpec] = ("paper", 0.30, 0.50), epochs: int | None = None,
                                seeds: Sequence[int] | int | None = None, dim: int = 16,
                                batch_size: int | None = None, size: str | CollisionExperimentConfig = "full",
                                split: str = "random", test_fraction: float = 0.2, split_seed: int = 0,
                                lr: float = 1e-3, progress: bool = True,
                                data_name: str | None = None) -> HashedVsCollisionlessResult:
    """E1: DeepFM on a collisionless table vs MD5-hashed IDs, test AUC after every epoch.

    ``events``: the data (default: the synthetic stream ``stream``, or the ``size`` config's). ``rates``:
    one hashed variant per entry: ``"paper"`` (7.73% on the user field, 2.86% on the item
    field, Table 1), a number (that rate on both), or a ``{field: rate}`` mapping. Fields not
    named stay collisionless in every variant (the synthetic stream's small context fields:
    category, segment, hour). ``epochs``, ``seeds``, ``batch_size`` default to the ``size``
    config's. Each seed fixes the model's initial weights and the shuffling of the training data;
    the split is fixed by ``split_seed`` (see :func:`split_train_test`). Variants with the same
    seed share everything but the IDs, so their gap is a paired comparison.
    See: book/ch13_collisions_measured.md
    """
    p = collision_config(size)
    epochs = p.epochs if epochs is None else int(epochs)
    batch_size = p.batch_size if batch_size is None else int(batch_size)
    seed_list = _seeds(seeds, p.seeds)
    events, data_name, source = _data(events, stream or p.e1_stream, data_name)
    user, item = id_fields(events)
    specs = [(COLLISIONLESS, "collisionless table", {})] + [_resolve_rate(s, user, item) for s in rates]
    names = [s[0] for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"two rate specs give the same variant: {names}")

    runs: dict[str, list[dict[str, list[float]]]] = {}
    collisions: dict[str, dict[str, dict[str, Any]]] = {}
    started = time.perf_counter()
    total = len(specs) * len(seed_list)
    outer = tqdm(total=total, desc="E1 runs", disable=not progress)
    with _one_thread():
        for name, _label, field_rates in specs:
            used, info = hash_field_ids(events, field_rates) if field_rates else (events, {})
            collisions[name] = _field_report(events, used, info)
            train_ev, test_ev = split_train_test(used, test_fraction, split, split_seed)
            scorable = len(test_ev) > 0 and test_ev.label.min() != test_ev.label.max()  # else AUC is NaN
            runs[name] = []
            for seed in seed_list:
                model = build_deepfm_for(used, _model_config(dim, seed))
                cfg_t = TrainConfig(batch_size=batch_size, epochs=epochs, lr=lr, shuffle=True, seed=seed,
                                    progress=progress)
                hist = train(model, train_ev, cfg_t, test=test_ev if scorable else None,
                             desc=f"E1 {name} seed {seed}")
                runs[name].append({
                    "auc": [float(e.get("test_auc", math.nan)) for e in hist.epochs],
                    "logloss": [float(e.get("test_logloss", math.nan)) for e in hist.epochs],
                    "train_loss": [float(e["train_loss"]) for e in hist.epochs],
                })
                outer.update(1)
    outer.close()
    config = {
        "data": data_name, **source, "events": len(events), "train_events": len(train_ev),
        "test_events": len(test_ev), "split": split, "test_fraction": float(test_fraction),
        "split_seed": int(split_seed), "dim": int(dim), "batch_size": batch_size, "lr": float(lr),
        "size": p.name, "fields": list(events.field_names), "elapsed_s": round(time.perf_counter() - started, 1),
    }
    return HashedVsCollisionlessResult(variants=names, labels={s[0]: s[1] for s in specs}, seeds=seed_list,
                                       epochs=epochs, runs=runs, collisions=collisions, config=config)


# --------------------------------------------------------------------------- E2


def qr_sizing(distinct: int, fraction: float = 1 / 8) -> tuple[int, int]:
    """``(remainder_bits, quotient_rows)`` of a quotient-remainder table with about
    ``fraction * distinct`` rows in all, split as evenly as a power of two allows (the paper's
    production baseline splits its 2**25 rows into two halves of 2**24).
    See: book/ch13_collisions_measured.md
    """
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if int(distinct) < 1:
        raise ValueError(f"distinct must be >= 1, got {distinct}")
    total = max(2, int(round(float(fraction) * int(distinct))))
    bits = min(32, max(1, int(round(math.log2(total / 2)))))
    return bits, max(1, total - 2**bits)


def qr_sharing(ids: np.ndarray, remainder_bits: int, quotient_rows: int) -> dict[str, float]:
    """How the distinct ``ids`` share a quotient-remainder table's rows (the same parts as
    :meth:`QRHashedTable.parts_of`): ``share_both``: the fraction of IDs whose (remainder,
    quotient) pair another ID also has, so their embeddings are identical; ``share_one``: the
    fraction sharing at least one of the two rows; ``collision_rate``: ``1 - pairs / IDs``,
    Table 1's way of counting. See: book/ch13_collisions_measured.md
    """
    uniq = np.unique(np.asarray(ids, dtype=np.uint64))
    if uniq.size == 0:
        return {"share_both": 0.0, "share_one": 0.0, "collision_rate": 0.0}
    rem, quo = qr_split(uniq, remainder_bits)
    rem = rem.astype(np.int64)
    quo = (quo % np.uint64(quotient_rows)).astype(np.int64)
    _, pair_inv, pair_counts = np.unique(rem * int(quotient_rows) + quo, return_inverse=True, return_counts=True)
    _, rem_inv, rem_counts = np.unique(rem, return_inverse=True, return_counts=True)
    _, quo_inv, quo_counts = np.unique(quo, return_inverse=True, return_counts=True)
    both = pair_counts[pair_inv.reshape(-1)] > 1
    one = (rem_counts[rem_inv.reshape(-1)] > 1) | (quo_counts[quo_inv.reshape(-1)] > 1)
    return {"share_both": float(both.mean()), "share_one": float(one.mean()),
            "collision_rate": 1.0 - pair_counts.size / uniq.size}


def run_qr_vs_collisionless(events: Events | None = None, stream: StreamConfig | None = None,
                            fraction: float = 1 / 8, seeds: Sequence[int] | int | None = None, dim: int = 16,
                            batch_size: int | None = None, days: int | None = None,
                            size: str | CollisionExperimentConfig = "full", lr: float = 1e-3, progress: bool = True,
                            data_name: str | None = None) -> QRVsCollisionlessResult:
    """E2: collisionless vs the quotient-remainder trick, trained day by day, progressively.

    The data is cut into days: calendar days for the synthetic stream (``stream`` or the
    ``size`` config's), or ``days`` consecutive equal chunks of the events when ``days`` is given
    (the way MovieLens is used; ``main_collisions`` passes the config's ``e2_chunks``). Each variant
    trains one pass on day 0; then for each next day it is scored on that day (serving lookups)
    and then trains on it. The QR variant's one table serves all fields (their IDs are salted
    apart) with ``fraction`` of the distinct IDs' rows (:func:`qr_sizing`). Each seed fixes
    the initial weights. See: book/ch13_collisions_measured.md
    """
    p = collision_config(size)
    batch_size = p.batch_size if batch_size is None else int(batch_size)
    seed_list = _seeds(seeds, p.seeds)
    events, data_name, source = _data(events, stream or p.e2_stream, data_name)
    id_fields(events)
    parts = events.chunks(int(days)) if days is not None else events.days()
    if len(parts) < 2:
        raise ValueError("E2 needs at least two days of events")
    distinct = int(np.unique(events.fields).size)
    bits, quotient_rows = qr_sizing(distinct, fraction)
    qr = {"remainder_bits": bits, "remainder_rows": 2**bits, "quotient_rows": quotient_rows,
          "rows": 2**bits + quotient_rows, "distinct": distinct, "fraction": float(fraction),
          **qr_sharing(events.fields.reshape(-1), bits, quotient_rows)}
    specs = [
        (COLLISIONLESS, "collisionless table", NumbaTable),
        ("qr", f"quotient-remainder, {qr['rows'] / distinct:.1%} of the rows",
         lambda c: QRHashedTable(c, remainder_bits=bits, quotient_rows=quotient_rows)),
    ]
    runs: dict[str, list[dict[str, list[float]]]] = {name: [] for name, _, _ in specs}
    started = time.perf_counter()
    outer = tqdm(total=len(specs) * len(seed_list), desc="E2 runs", disable=not progress)
    with _one_thread():
        for name, _label, factory in specs:
            for seed in seed_list:
                model = build_deepfm_for(events, _model_config(dim, seed), table=factory)
                opt = torch.optim.Adam(model.head.parameters(), lr=lr)
                cfg_t = TrainConfig(batch_size=batch_size, epochs=1, lr=lr, shuffle=False, seed=seed,
                                    progress=False, torch_threads=None)
                aucs, losses = [], []
                for d, day in enumerate(parts):
                    if d > 0:
                        m = _safe_metrics(model, day)
                        aucs.append(float(m["auc"]))
                        losses.append(float(m["logloss"]))
                    if len(day):
                        train(model, day, cfg_t, optimizer=opt)
                runs[name].append({"auc": aucs, "logloss": losses})
                outer.update(1)
    outer.close()
    config = {"data": data_name, **source, "events": len(events), "days": len(parts),
              "day_sizes": [len(x) for x in parts], "dim": int(dim), "batch_size": batch_size, "lr": float(lr),
              "size": p.name, "fields": list(events.field_names),
              "elapsed_s": round(time.perf_counter() - started, 1)}
    return QRVsCollisionlessResult(variants=[s[0] for s in specs], labels={s[0]: s[1] for s in specs},
                                   seeds=seed_list, days=list(range(1, len(parts))), runs=runs, qr=qr, config=config)


# --------------------------------------------------------------------------- CLI


def _subsample_users(events: Events, max_events: int | None, seed: int = 0) -> Events:
    """All events of a seeded random subset of users, about ``max_events`` of them."""
    if max_events is None or len(events) <= max_events:
        return events
    users = events.fields[:, events.field_names.index("user")]
    keep_share = max_events / len(events)
    u = (mix64(users, seed) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return events[u < keep_share]


def main_collisions(which: str = "both", size: str = "full", movielens: Path | str | None = None,
                    out: Path | str = Path("results/collisions"), seeds: int | None = None,
                    progress: bool = True) -> str:
    """Run E1 and/or E2 (``which``: ``"e1"``, ``"e2"`` or ``"both"``) at ``size``, on
    the synthetic stream or on the MovieLens ratings at ``movielens``; save each result as
    JSON and PNG into ``out`` (``collisions_e1_<data>.json`` / ``.png`` and ``_e2_``); return
    the text tables. ``seeds``: how many seeds (0, 1, ...), default the size's.
    This is ``monolith-ref experiment collisions``. See: book/ch13_collisions_measured.md
    """
    if which not in ("e1", "e2", "both"):
        raise ValueError(f"which must be 'e1', 'e2' or 'both', got {which!r}")
    p = collision_config(size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    events: Events | None = None
    data = "synthetic"
    if movielens is not None:
        from ..data.movielens import load_movielens

        events = _subsample_users(load_movielens(movielens), p.movielens_max_events)
        data = "movielens"
    texts = []
    if which in ("e1", "both"):
        r1 = run_hashed_vs_collisionless(events, size=p, seeds=seeds, progress=progress, data_name=data)
        r1.to_json(out / f"collisions_e1_{data}.json")
        r1.plot(out / f"collisions_e1_{data}.png")
        texts.append(r1.table())
    if which in ("e2", "both"):
        r2 = run_qr_vs_collisionless(events, size=p, seeds=seeds, progress=progress, data_name=data,
                    days=p.e2_chunks if events is not None else None)
        r2.to_json(out / f"collisions_e2_{data}.json")
        r2.plot(out / f"collisions_e2_{data}.png")
        texts.append(r2.table())
    return "\n\n".join(texts)
