"""When features and actions arrive: a seeded model of the two streams the joiner merges.

A server logs a request's features the moment it answers (they reach the log within
seconds); the user's click, if any, comes later, and on its own path. So the joiner sees,
for one request, the features first and the action some time after, and sometimes neither
in the expected way (paper §2.2.2, Figure 5):

* most clicks come within minutes: an exponential delay of mean ``action_delay``;
* a few come *late*, hours or days after the impression (``late_fraction``, a delay uniform
  in ``[late_min, late_max]``): after the joiner has given up and emitted a negative;
* a few are delivered twice (``duplicate_fraction``): at-least-once delivery retries, the
  copy an exponential ``duplicate_delay`` after the original;
* a click within ``feature_jitter`` seconds of its impression can overtake the features.

:func:`arrivals` turns :class:`~monolith_ref.events.Events` into that merged stream,
sorted by arrival time, as indices into the events, so the truth of every record is known.

See: book/ch09_streaming.md
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import InvalidIntegerError, check_int, check_number
from ..events import SECONDS_PER_DAY, SECONDS_PER_HOUR, Events

__all__ = ["FEATURE", "ACTION", "ArrivalConfig", "Arrivals", "arrivals"]

#: Values of :attr:`Arrivals.kind`.
FEATURE, ACTION = 0, 1


@dataclass(frozen=True)
class ArrivalConfig:
    """How records arrive. Times are integer seconds; delays are rounded down.

    ``feature_jitter``: features arrive uniformly 0..jitter seconds after the event.
    ``action_delay``: mean of the exponential delay from impression to click.
    ``late_fraction`` of clicks instead take a delay uniform in ``[late_min, late_max]``.
    ``duplicate_fraction`` of clicks are delivered again, an exponential
    ``duplicate_delay`` after the first delivery. ``seed`` fixes every draw.
    See: book/ch09_streaming.md
    """

    feature_jitter: int = 5
    action_delay: float = 120.0
    late_fraction: float = 0.02
    late_min: int = SECONDS_PER_HOUR
    late_max: int = 2 * SECONDS_PER_DAY
    duplicate_fraction: float = 0.02
    duplicate_delay: float = 60.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("feature_jitter", "late_min", "late_max"):
            check_int(getattr(self, name), f"ArrivalConfig.{name}", low=0)
        check_int(self.seed, "ArrivalConfig.seed", low=0, high=2**64)
        if self.late_max < self.late_min:
            raise InvalidIntegerError(f"ArrivalConfig.late_max ({self.late_max}) must be >= late_min ({self.late_min})")
        for name in ("action_delay", "duplicate_delay"):
            check_number(getattr(self, name), f"ArrivalConfig.{name}", low=0.0)
        for name in ("late_fraction", "duplicate_fraction"):
            check_number(getattr(self, name), f"ArrivalConfig.{name}", low=0.0, high=1.0)


@dataclass
class Arrivals:
    """The merged stream of feature and action records, sorted by arrival.

    Per record: ``kind`` (uint8, :data:`FEATURE` or :data:`ACTION`), ``request_id``
    (uint64), ``event_time`` (int64: the impression time for features, the click time for
    actions), ``arrival`` (int64: when the record reaches the joiner), ``row`` (int64: the
    event it belongs to), ``late`` (bool: an action whose delay was drawn from the late
    range) and ``duplicate`` (bool: a redelivered copy of an action). Ties in arrival put
    features first, then order by request ID, then the original before its copy.
    See: book/ch09_streaming.md
    """

    kind: np.ndarray
    request_id: np.ndarray
    event_time: np.ndarray
    arrival: np.ndarray
    row: np.ndarray
    late: np.ndarray
    duplicate: np.ndarray

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    @property
    def num_features(self) -> int:
        """How many feature records."""
        return int(np.count_nonzero(self.kind == FEATURE))

    @property
    def num_actions(self) -> int:
        """How many action records, copies included."""
        return int(np.count_nonzero(self.kind == ACTION))

    @property
    def num_late(self) -> int:
        """How many clicks took a late delay (copies of late clicks not counted)."""
        return int(np.count_nonzero(self.late & ~self.duplicate))

    @property
    def num_duplicates(self) -> int:
        """How many records are redelivered copies."""
        return int(np.count_nonzero(self.duplicate))

    def __getitem__(self, key: slice | np.ndarray) -> Arrivals:
        """A subset (a slice, a mask or an index array), e.g. a reordering."""
        return Arrivals(*(getattr(self, name)[key] for name in
                          ("kind", "request_id", "event_time", "arrival", "row", "late", "duplicate")))


def arrivals(events: Events, config: ArrivalConfig | None = None) -> Arrivals:
    """One feature record per event and one action (plus any copy) per clicked event.

    Deterministic given ``config.seed``: the same events and config give the same stream.
    See: book/ch09_streaming.md
    """
    if not isinstance(events, Events):
        raise TypeError(f"arrivals needs Events, got {type(events).__name__}")
    cfg = config or ArrivalConfig()
    rng = np.random.default_rng([cfg.seed, 9])
    n = len(events)
    time = events.time.astype(np.int64)
    rows = np.arange(n, dtype=np.int64)
    feature_arrival = time + rng.integers(0, cfg.feature_jitter + 1, n)

    clicked = np.flatnonzero(events.label > 0.5)
    k = clicked.size
    late = rng.random(k) < cfg.late_fraction
    late_delay = rng.integers(cfg.late_min, cfg.late_max + 1, k)
    delay = np.where(late, late_delay, np.floor(rng.exponential(1.0, k) * cfg.action_delay).astype(np.int64))
    click = time[clicked] + delay
    dup = rng.random(k) < cfg.duplicate_fraction
    redelivery = click + np.floor(rng.exponential(1.0, k) * cfg.duplicate_delay).astype(np.int64)

    kind = np.concatenate([np.full(n, FEATURE), np.full(k, ACTION), np.full(int(dup.sum()), ACTION)]).astype(np.uint8)
    row = np.concatenate([rows, clicked, clicked[dup]])
    event_time = np.concatenate([time, click, click[dup]])
    arrival = np.concatenate([feature_arrival, click, redelivery[dup]])
    is_late = np.concatenate([np.zeros(n, dtype=bool), late, late[dup]])
    is_dup = np.concatenate([np.zeros(n + k, dtype=bool), np.ones(int(dup.sum()), dtype=bool)])
    request_id = events.request_id.astype(np.uint64)[row]
    order = np.lexsort((is_dup, request_id, kind, arrival))
    return Arrivals(kind[order], request_id[order], event_time[order], arrival[order], row[order],
                    is_late[order], is_dup[order])
