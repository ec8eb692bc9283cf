"""A synthetic, drifting recommendation stream with known ground truth.

Real recommender traffic has the properties the Monolith paper is about (sections 1.1, 1.2):
skewed popularity, an ID space that keeps growing as new items arrive and old ones fade,
sudden viral bursts, and user interests that drift. This module simulates all of them from
a small latent model, so that every experiment has a default data set whose truth is known:

* users and items get Zipf popularity; their IDs are sparse 64-bit values (``mix64`` of a
  rank with a seed), like production feature IDs;
* items are born over time and live a finite number of days;
* a few items go viral for a few hours: their share of traffic and their click rate jump;
* each user's interest vector does a slow, mean-reverting random walk over event time;
* a click is a Bernoulli draw with ``logit = base + user bias + item bias + hour bias +
  scale * <u_t, v_item> + freshness + burst boost``, and the true probability is kept.

The events are an :class:`~monolith_ref.events.Events`, the column store every loader in
:mod:`monolith_ref.data` returns (the MovieLens and Criteo loaders too), so experiments run
unchanged on any of them.

See: book/ch08_deepfm.md
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..checks import InvalidIntegerError, InvalidNumberError, check_int, check_number
from ..events import SECONDS_PER_DAY, SECONDS_PER_HOUR, Events, field_ids
from ..hashing import mix64, mix64_int
from ..metrics import auc
from .zipf import zipf_probabilities

__all__ = [
    "StreamConfig",
    "Burst",
    "SyntheticWorld",
    "synthetic_stream",
    "describe",
]


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class StreamConfig:
    """Settings of the synthetic stream. The defaults give 1M events over 10 days.

    * Population: ``num_users`` users with Zipf(``user_alpha``) activity, each in one of
      ``num_segments`` segments; ``num_items`` items at the start plus ``new_items_per_day``
      born each day, each living 0.5x to 1.5x ``item_lifetime_days`` (``math.inf``: never
      dies), with Zipf(``item_alpha``) popularity and one of ``num_categories`` categories.
    * Traffic: ``events_per_day`` events a day for ``days`` days; hourly volume follows a
      daily cycle of relative amplitude ``diurnal``.
    * Clicks: ``logit = base_logit + user bias + item bias + hour bias
      + interaction_scale * <u_t, v> / sqrt(latent_dim) + freshness + burst``. Biases have
      standard deviations ``user_bias_std``, ``item_bias_std``; the hour bias swings by
      ``hour_amplitude``; brand-new items get ``freshness_boost``, decaying over a day. The
      latent vectors share a fraction ``cluster_strength`` of their variance with their
      segment's or category's centroid, so those fields carry signal too.
    * Drift: each day a user's personal interest moves as ``w <- sqrt(1 - drift**2) * w +
      drift * noise``, a mean-reverting random walk: the spread stays, the direction
      wanders, and after ``k`` days ``w`` keeps a correlation of ``(1 - drift**2)**(k/2)``.
    * Bursts: ``num_bursts`` items go viral for ``burst_hours`` hours, taking
      ``burst_share`` of all traffic and ``burst_boost`` extra logit.
    * ``seed`` fixes everything.

    See: book/ch08_deepfm.md
    """

    num_users: int = 50_000
    num_items: int = 20_000
    new_items_per_day: int = 2_000
    item_lifetime_days: float = 10.0
    days: int = 10
    events_per_day: int = 100_000
    latent_dim: int = 16
    drift: float = 0.3
    num_bursts: int = 4
    burst_hours: int = 6
    burst_share: float = 0.03
    burst_boost: float = 1.5
    user_alpha: float = 0.9
    item_alpha: float = 1.0
    base_logit: float = -1.9
    user_bias_std: float = 0.5
    item_bias_std: float = 0.5
    interaction_scale: float = 1.2
    cluster_strength: float = 0.5
    num_categories: int = 32
    num_segments: int = 16
    hour_amplitude: float = 0.2
    diurnal: float = 0.5
    freshness_boost: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        ints = {
            "num_users": 1, "num_items": 1, "new_items_per_day": 0, "days": 1, "events_per_day": 1,
            "latent_dim": 1, "num_bursts": 0, "burst_hours": 1, "num_categories": 1, "num_segments": 1,
        }  # fmt: skip
        for name, low in ints.items():
            check_int(getattr(self, name), f"StreamConfig.{name}", low)
        check_int(self.seed, "StreamConfig.seed", 0, 2**64)
        if self.burst_hours > self.hours:
            raise InvalidIntegerError(
                f"StreamConfig.burst_hours must fit in the stream ({self.hours} hours), got {self.burst_hours}"
            )
        # name: (low, high, high excluded); None: no bound
        ranges = {
            "drift": (0.0, 1.0, False),
            "burst_share": (0.0, 1.0, True),
            "cluster_strength": (0.0, 1.0, False),
            "diurnal": (0.0, 1.0, True),
            "user_alpha": (0.0, None, False),
            "item_alpha": (0.0, None, False),
            "user_bias_std": (0.0, None, False),
            "item_bias_std": (0.0, None, False),
            "interaction_scale": (0.0, None, False),
            "hour_amplitude": (0.0, None, False),
            "burst_boost": (None, None, False),
            "base_logit": (None, None, False),
            "freshness_boost": (None, None, False),
        }
        for name, (low, high, high_open) in ranges.items():
            check_number(getattr(self, name), f"StreamConfig.{name}", low, high, high_open=high_open)
        life = self.item_lifetime_days
        if life != math.inf and check_number(life, "StreamConfig.item_lifetime_days") * 24 < 1:
            raise InvalidNumberError(
                f"StreamConfig.item_lifetime_days must be a number of days >= 1/24 (or math.inf), got {life!r}"
            )

    @property
    def num_events(self) -> int:
        """Events in the stream: ``events_per_day * days``."""
        return self.events_per_day * self.days

    @property
    def hours(self) -> int:
        """Hours in the stream."""
        return 24 * self.days


# --------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class Burst:
    """An item's viral burst: its index in the world, its ID, and ``[start, end)`` in seconds.

    See: book/ch08_deepfm.md
    """

    item_index: int
    item_id: int
    start: int
    end: int


_NEVER = np.iinfo(np.int64).max // 2  # the death time (seconds) of an item that lives forever

FIELD_NAMES = ("user", "item", "category", "segment", "hour")
DENSE_NAMES = ("log_item_age_hours", "log_user_activity")


@dataclass
class SyntheticWorld:
    """The latent model behind a stream: who exists, when, and how likely each click is.

    Built deterministically from a :class:`StreamConfig`; :meth:`sample` draws the events,
    :meth:`click_probability` answers ground-truth questions. Users are indexed by activity
    rank (0 is the most active); items by birth order (the first ``num_items`` exist at the
    start). See: book/ch08_deepfm.md
    """

    config: StreamConfig
    user_ids: np.ndarray = field(init=False, repr=False)
    user_weight: np.ndarray = field(init=False, repr=False)
    user_segment: np.ndarray = field(init=False, repr=False)
    user_bias: np.ndarray = field(init=False, repr=False)
    item_ids: np.ndarray = field(init=False, repr=False)
    item_weight: np.ndarray = field(init=False, repr=False)
    item_birth: np.ndarray = field(init=False, repr=False)
    item_death: np.ndarray = field(init=False, repr=False)
    item_category: np.ndarray = field(init=False, repr=False)
    item_bias: np.ndarray = field(init=False, repr=False)
    item_vectors: np.ndarray = field(init=False, repr=False)
    segment_centroids: np.ndarray = field(init=False, repr=False)
    hour_bias: np.ndarray = field(init=False, repr=False)
    bursts: tuple[Burst, ...] = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.config
        if not isinstance(cfg, StreamConfig):
            raise ValueError(f"SyntheticWorld needs a StreamConfig, got {cfg!r}")
        rng = np.random.default_rng([cfg.seed, 1])
        d, hours = cfg.latent_dim, cfg.hours
        c = math.sqrt(cfg.cluster_strength)
        s = math.sqrt(1.0 - cfg.cluster_strength)

        # Users: activity by rank, a segment, a bias. Their drifting vectors: user_vectors().
        self.user_ids = mix64(np.arange(cfg.num_users, dtype=np.uint64), mix64_int(1, cfg.seed))
        self.user_weight = zipf_probabilities(cfg.num_users, cfg.user_alpha)
        self.user_segment = rng.integers(0, cfg.num_segments, cfg.num_users)
        self.user_bias = rng.normal(0.0, cfg.user_bias_std, cfg.num_users)
        self.segment_centroids = rng.standard_normal((cfg.num_segments, d))

        # Items: initial ones already alive (born up to a lifetime ago), new ones born in
        # whole hours during the stream, in birth order; popularity ranks are shuffled.
        n_new = cfg.new_items_per_day * cfg.days
        n_items = cfg.num_items + n_new
        self.item_ids = mix64(np.arange(n_items, dtype=np.uint64), mix64_int(2, cfg.seed))
        self.item_weight = rng.permutation(zipf_probabilities(n_items, cfg.item_alpha))
        forever = math.isinf(cfg.item_lifetime_days)
        life_days = 365.0 if forever else cfg.item_lifetime_days  # forever: born up to a year ago
        life_h = np.maximum(1, np.rint(life_days * 24 * rng.uniform(0.5, 1.5, n_items))).astype(np.int64)
        birth_h = np.empty(n_items, dtype=np.int64)
        birth_h[: cfg.num_items] = -np.floor(rng.random(cfg.num_items) * life_h[: cfg.num_items]).astype(np.int64)
        birth_h[cfg.num_items :] = np.sort(rng.integers(1, max(hours, 2), n_new))
        self.item_birth = birth_h * SECONDS_PER_HOUR
        self.item_death = np.full(n_items, _NEVER) if forever else (birth_h + life_h) * SECONDS_PER_HOUR
        self.item_category = rng.integers(0, cfg.num_categories, n_items)
        self.item_bias = rng.normal(0.0, cfg.item_bias_std, n_items)
        centroids = rng.standard_normal((cfg.num_categories, d))
        self.item_vectors = c * centroids[self.item_category] + s * rng.standard_normal((n_items, d))

        # Clicks are likelier in the evening; traffic peaks at the same time.
        hod = np.arange(24)
        self.hour_bias = cfg.hour_amplitude * np.sin(2 * np.pi * (hod - 14) / 24)

        # Bursts: a random hour, a random item alive for the whole burst (if one is).
        bursts = []
        for _ in range(cfg.num_bursts):
            start_h = int(rng.integers(0, hours - cfg.burst_hours + 1))
            end_h = start_h + cfg.burst_hours
            alive = (birth_h <= start_h) & (self.item_death > (end_h - 1) * SECONDS_PER_HOUR)
            pool = np.flatnonzero(alive)
            if pool.size == 0:
                pool = np.flatnonzero((birth_h <= start_h) & (self.item_death > start_h * SECONDS_PER_HOUR))
            if pool.size == 0:
                continue
            i = int(rng.choice(pool))
            end = min(end_h * SECONDS_PER_HOUR, int(self.item_death[i]))
            bursts.append(Burst(i, int(self.item_ids[i]), start_h * SECONDS_PER_HOUR, end))
        self.bursts = tuple(bursts)

    # ---- ground truth ------------------------------------------------------------------

    def _walk(self) -> Iterator[np.ndarray]:
        """The users' personal interests at the start of day 0, 1, 2, ... (unit variance).

        Mean-reverting: ``w[k+1] = sqrt(1 - drift**2) * w[k] + drift * noise``.
        """
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 3])
        keep = math.sqrt(1.0 - cfg.drift**2)
        w = rng.standard_normal((cfg.num_users, cfg.latent_dim))
        while True:
            yield w
            w = keep * w + cfg.drift * rng.standard_normal(w.shape)

    def user_vectors(self, time: int, users: np.ndarray | None = None) -> np.ndarray:
        """Users' interest vectors at ``time`` (seconds), linear between daily knots.

        See: book/ch08_deepfm.md
        """
        if time < 0:
            raise ValueError(f"time must be >= 0, got {time}")
        users = np.arange(self.config.num_users) if users is None else np.asarray(users)
        day, frac = divmod(int(time), SECONDS_PER_DAY)
        walk = self._walk()
        for _ in range(day):
            next(walk)
        w0, w1 = next(walk)[users], next(walk)[users]
        return self._blend(users, w0, w1, frac / SECONDS_PER_DAY)

    def _blend(self, users: np.ndarray, w0: np.ndarray, w1: np.ndarray, frac: np.ndarray | float) -> np.ndarray:
        cfg = self.config
        frac = np.asarray(frac, dtype=np.float64)
        personal = w0 + (w1 - w0) * (frac[:, None] if frac.ndim else frac)
        return (
            math.sqrt(cfg.cluster_strength) * self.segment_centroids[self.user_segment[users]]
            + math.sqrt(1.0 - cfg.cluster_strength) * personal
        )

    def _logit(self, users: np.ndarray, items: np.ndarray, time: np.ndarray, u: np.ndarray) -> np.ndarray:
        cfg = self.config
        inter = np.einsum("nd,nd->n", u, self.item_vectors[items]) / math.sqrt(cfg.latent_dim)
        age_days = (time - self.item_birth[items]) / SECONDS_PER_DAY
        logit = (
            cfg.base_logit
            + self.user_bias[users]
            + self.item_bias[items]
            + self.hour_bias[(time // SECONDS_PER_HOUR) % 24]
            + cfg.interaction_scale * inter
            + cfg.freshness_boost * np.exp(-np.maximum(age_days, 0.0))
        )
        for b in self.bursts:
            logit += cfg.burst_boost * ((items == b.item_index) & (time >= b.start) & (time < b.end))
        return logit

    def click_probability(self, users: np.ndarray, items: np.ndarray, time: int) -> np.ndarray:
        """True click probabilities of user/item index pairs at one ``time`` (broadcast).

        Items need not be alive then; the model is defined for any pair.
        See: book/ch08_deepfm.md
        """
        users, items = np.broadcast_arrays(np.asarray(users), np.asarray(items))
        users, items = users.ravel(), items.ravel()
        t = np.full(users.shape, int(time), dtype=np.int64)
        u = self.user_vectors(int(time), users)
        return 1.0 / (1.0 + np.exp(-self._logit(users, items, t, u)))

    def alive(self, hour: int) -> np.ndarray:
        """Boolean mask of the items alive during ``hour`` (hours since the start)."""
        t = int(hour) * SECONDS_PER_HOUR
        return (self.item_birth <= t) & (self.item_death > t)

    # ---- sampling ----------------------------------------------------------------------

    def sample(self) -> Events:
        """Draw the stream: ``config.num_events`` events sorted by time. See: book/ch08_deepfm.md"""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 2])
        n, hours = cfg.num_events, cfg.hours

        # When: a multinomial over hours with a daily cycle, uniform seconds within an hour.
        hod = np.arange(hours) % 24
        traffic = 1.0 + cfg.diurnal * np.sin(2 * np.pi * (hod - 14) / 24 + np.pi / 4)
        per_hour = rng.multinomial(n, traffic / traffic.sum())
        time = np.repeat(np.arange(hours, dtype=np.int64) * SECONDS_PER_HOUR, per_hour)
        time += rng.integers(0, SECONDS_PER_HOUR, n)
        time.sort()

        # Who: Zipf users; which: per hour, the alive items by popularity, bursts on top.
        users = rng.choice(cfg.num_users, size=n, p=self.user_weight)
        items = np.empty(n, dtype=np.int64)
        u01 = rng.random(n)
        hour_start = np.concatenate([[0], np.cumsum(per_hour)])
        for h in range(hours):
            a, b = hour_start[h], hour_start[h + 1]
            if a == b:
                continue
            w = np.where(self.alive(h), self.item_weight, 0.0)
            total = w.sum()
            if total <= 0:
                raise ValueError(
                    f"no item is alive in hour {h}: raise num_items, new_items_per_day or item_lifetime_days"
                )
            for burst in self.bursts:
                if burst.start <= h * SECONDS_PER_HOUR < burst.end:
                    w[burst.item_index] = cfg.burst_share / (1.0 - cfg.burst_share) * total
            cdf = np.cumsum(w)
            items[a:b] = np.searchsorted(cdf, u01[a:b] * cdf[-1], side="right")
        np.minimum(items, len(self.item_ids) - 1, out=items)  # guards a rounding edge at 1.0

        # Click probabilities, a day at a time (the users' vectors move between daily knots).
        logit = np.empty(n, dtype=np.float64)
        day_start = np.searchsorted(time, np.arange(cfg.days + 1) * SECONDS_PER_DAY)
        walk = self._walk()
        w_next = next(walk)
        for k in range(cfg.days):
            w_now, w_next = w_next, next(walk)
            a, b = day_start[k], day_start[k + 1]
            us = users[a:b]
            frac = (time[a:b] - k * SECONDS_PER_DAY) / SECONDS_PER_DAY
            u = self._blend(us, w_now[us], w_next[us], frac)
            logit[a:b] = self._logit(us, items[a:b], time[a:b], u)
        prob = 1.0 / (1.0 + np.exp(-logit))
        label = (rng.random(n) < prob).astype(np.float32)

        # Features: sparse fields salted per field; two dense floats.
        field_cols = (
            field_ids("user", self.user_ids)[users],
            field_ids("item", self.item_ids)[items],
            field_ids("category", np.arange(cfg.num_categories, dtype=np.uint64))[self.item_category[items]],
            field_ids("segment", np.arange(cfg.num_segments, dtype=np.uint64))[self.user_segment[users]],
            field_ids("hour", np.arange(24, dtype=np.uint64))[(time // SECONDS_PER_HOUR) % 24],
        )
        age_hours = (time - self.item_birth[items]) / SECONDS_PER_HOUR
        dense = np.stack(
            [np.log1p(age_hours), np.log(self.user_weight[users] * cfg.num_users)], axis=1
        ).astype(np.float32)
        return Events(
            time=time,
            request_id=mix64(np.arange(n, dtype=np.uint64), mix64_int(4, cfg.seed)),
            user=self.user_ids[users],
            item=self.item_ids[items],
            fields=np.stack(field_cols, axis=1),
            field_names=FIELD_NAMES,
            dense=dense,
            label=label,
            prob=prob.astype(np.float32),
            dense_names=DENSE_NAMES,
        )

    # ---- reports -----------------------------------------------------------------------

    def user_index(self, ids: np.ndarray) -> np.ndarray:
        """World indices of user IDs (``ValueError`` for an ID this world does not have)."""
        return _index_of(self.user_ids, ids, "user")

    def item_index(self, ids: np.ndarray) -> np.ndarray:
        """World indices of item IDs (``ValueError`` for an ID this world does not have)."""
        return _index_of(self.item_ids, ids, "item")

    def burst_effects(self, events: Events) -> list[dict[str, float]]:
        """For each burst: the item's share of traffic and its CTR, during vs. outside it.

        "Outside" is the rest of the item's life within the stream (often few events, since
        bursts mostly hit tail items). ``prob_during`` is the mean true click probability
        during the burst, ``prob_without_boost`` the same events' without the burst boost.
        NaN where undefined.
        See: book/ch08_deepfm.md
        """
        out = []
        for b in self.bursts:
            is_item = events.item == np.uint64(b.item_id)
            during = (events.time >= b.start) & (events.time < b.end)
            alive = (events.time >= self.item_birth[b.item_index]) & (events.time < self.item_death[b.item_index])
            outside = alive & ~during
            burst_prob = events.prob[is_item & during] if events.prob is not None else np.zeros(0)
            no_boost = 1.0 / (1.0 + np.exp(-(np.log(burst_prob / (1.0 - burst_prob)) - self.config.burst_boost)))
            out.append(
                {
                    "item_index": b.item_index,
                    "start_hour": b.start / SECONDS_PER_HOUR,
                    "share_during": _ratio(is_item & during, during),
                    "share_outside": _ratio(is_item & outside, outside),
                    "ctr_during": _mean(events.label[is_item & during]),
                    "ctr_outside": _mean(events.label[is_item & outside]),
                    "prob_during": _mean(burst_prob),
                    "prob_without_boost": _mean(no_boost),
                }
            )
        return out


def _index_of(table: np.ndarray, ids: np.ndarray, what: str) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.uint64)
    order = np.argsort(table)
    pos = np.minimum(np.searchsorted(table, ids, sorter=order), table.size - 1)
    index = order[pos]
    missing = table[index] != ids
    if missing.any():
        raise ValueError(f"{what} ID {int(ids[missing][0])} is not in this world")
    return index


def _ratio(num: np.ndarray, den: np.ndarray) -> float:
    d = int(den.sum())
    return float(num.sum()) / d if d else math.nan


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else math.nan


def synthetic_stream(config: StreamConfig | None = None) -> Events:
    """The synthetic stream of ``config`` (default settings if ``None``): seeded, sorted.

    ``SyntheticWorld(config).sample()``; build the world yourself to ask it for the truth.

    >>> events = synthetic_stream(StreamConfig(num_users=100, num_items=50, events_per_day=1000, days=2))
    >>> len(events), events.field_names
    (2000, ('user', 'item', 'category', 'segment', 'hour'))

    See: book/ch08_deepfm.md
    """
    return SyntheticWorld(StreamConfig() if config is None else config).sample()


def describe(events: Events, world: SyntheticWorld | None = None) -> dict[str, float]:
    """Summary statistics of a stream: size, distinct IDs, CTR, newcomers, skew.

    ``new_item_share`` is the share of events on items first seen after the first day (a
    definition that works for any data set). With the ``world`` that made the events it adds
    ``born_later_share`` (events on items born after the start), the mean true probability,
    the AUC of the true probabilities (the best any model can do), and the mean burst
    effect. See: book/ch08_deepfm.md
    """
    n = len(events)
    if n == 0:
        raise ValueError("describe() needs at least one event")
    t0 = int(events.time.min())
    stats: dict[str, float] = {
        "events": float(n),
        "days": (int(events.time.max()) - t0) / SECONDS_PER_DAY,
        "ctr": float(events.label.mean()),
    }
    for name, ids in (("users", events.user), ("items", events.item)):
        if ids is None:
            continue
        uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
        stats[name] = float(uniq.size)
        stats[f"top_{name[:-1]}_share"] = float(counts.max()) / n
        if name == "items":
            late = events.time[first] >= t0 + SECONDS_PER_DAY
            stats["new_item_share"] = float(counts[late].sum()) / n
    if world is not None:
        if events.item is None:
            raise ValueError("describe(events, world) needs events with items (from that world)")
        index = world.item_index(events.item)
        stats["born_later_share"] = float((world.item_birth[index] > 0).mean())
        if events.prob is not None:
            stats["mean_prob"] = float(events.prob.mean())
            if 0 < events.label.sum() < n:
                stats["oracle_auc"] = auc(events.label, events.prob)
        effects = world.burst_effects(events)
        if effects:
            stats["burst_share_during"] = float(np.nanmean([e["share_during"] for e in effects]))
            stats["burst_share_outside"] = float(np.nanmean([e["share_outside"] for e in effects]))
            stats["burst_ctr_during"] = float(np.nanmean([e["ctr_during"] for e in effects]))
            stats["burst_prob_without_boost"] = float(np.nanmean([e["prob_without_boost"] for e in effects]))
    return stats
