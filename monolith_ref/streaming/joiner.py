"""The online joiner: features meet actions by request ID, and become training examples.

Monolith's online training reads examples, not raw logs (paper §2.2.2, Figure 5). A server
logs the *features* of each request when it answers it; the user's *action* (a click) comes
later, on another stream. The joiner matches the two by a unique request ID and writes a
labelled example for the trainer. Its problems are the paper's: actions come out of order,
sometimes very late or twice, and most requests never get an action, so their features wait
the whole window. Hence the two-level store of Figure 5 (memory, then disk), and negative
sampling, whose bias is corrected at serving by a shift of the logit (the log-odds
correction, :func:`log_odds_correction`).

The rules, all in *event time* (the ``time`` of a record) against the joiner's clock
(``now``, the arrival time of the record in hand; it never goes back: a smaller ``now`` is
raised to the clock, since out-of-order delivery is normal in a stream):

* Every call first advances the clock to ``now`` (:meth:`OnlineJoiner.advance`), then
  handles its record, then advances again, so after any call nothing overdue is waiting.
* A features record waits in memory. One whose request already waits or has finished is a
  duplicate and is ignored (``duplicate_features``).
* An action for a waiting request joins at once: a positive (label from the action, sample
  rate 1, ``join_time = now``); the features are deleted (from disk: ``disk_hits``) and the
  request is tombstoned. An action whose features have not come yet waits in memory as an
  *early action*; features arriving for it make the positive (``early_actions``). An early
  action whose ``time + window < now`` is dropped (``orphan_actions``).
* An action for a tombstoned request is a duplicate if the request was a positive
  (``duplicate_actions``), and late if it was finalized as a negative (``late_actions``).
  A second action for an early action is a duplicate too. None of these emits anything.
* A waiting request whose ``time + window < now`` is finalized as a negative: emitted
  (label 0, sample rate ``negative_rate``) if :func:`keep_negative`, else counted in
  ``negatives_sampled_out``; tombstoned either way. :meth:`OnlineJoiner.finish` finalizes
  everything still waiting the same way, and drops waiting early actions as orphans.
* Memory holds features younger than ``memory_seconds`` and early actions, at most
  ``memory_capacity`` entries after every call. Spilling to SQLite is batched, so that one
  transaction carries many rows: once the oldest feature in memory is older than
  ``memory_seconds``, every feature older than ``memory_seconds // 2`` goes in the same
  write; once memory exceeds the capacity, the oldest features go until it holds
  ``capacity - capacity // 8``. If no features are left to spill, the oldest early actions
  are dropped (as orphans).
* Tombstones are remembered for ``tombstone_seconds`` of event time; an older one counts as
  absent (and is pruned from disk now and then).

So each features record ends in exactly one of: a positive, an emitted negative, a
sampled-out negative, a duplicate; and each request yields at most one example, ever.

What lives where: memory holds the waiting payloads and early actions (the bounded part),
plus the *keys* of what is on disk with their times (as Bitcask keeps its key directory in
memory), so that most questions ("is this request on disk?", "has anything on disk expired?")
need no query. Deletes and tombstones are buffered and written with the next batch (and by
:meth:`OnlineJoiner.close`); a crash loses them, which recovery (chapter 11) must allow for.

See: book/ch09_streaming.md
"""

from __future__ import annotations

import heapq
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

import numpy as np

from ..checks import check_bytes, check_id, check_int, check_number, check_rate, check_time
from ..hashing import unit_float
from .kvstore import SQLiteStore

__all__ = ["JoinerConfig", "Example", "JoinerStats", "OnlineJoiner", "keep_negative", "log_odds_correction",
           "corrected_probability"]

#: Tombstone outcomes.
NEGATIVE, POSITIVE = 0, 1
_FLUSH_ROWS = 2048  # buffered deletes + tombstones written together once there are this many


# --------------------------------------------------------------------------- sampling


def keep_negative(request_id: int, rate: float, seed: int = 0) -> bool:
    """Whether the joiner emits the negative of this request: a seeded draw per request,
    ``unit_float(request_id, seed) < rate``, so a rerun (or another worker) decides the same.

    See: book/ch09_streaming.md
    """
    rate = check_rate(rate)
    return rate >= 1.0 or unit_float(check_id(request_id), seed) < rate


def log_odds_correction(sample_rate: float) -> float:
    """The shift to add to a logit learned with negatives kept at ``sample_rate``: ``log(rate)``.

    Keeping each negative with probability ``r`` multiplies the odds of a click in the
    training data by ``1 / r``: ``p_s / (1 - p_s) = p / (r (1 - p))``. The model learns
    ``logit(p_s) = logit(p) - log r``; adding ``log r`` (a negative number) at serving gives
    back ``logit(p)``. See: book/ch09_streaming.md
    """
    return math.log(check_rate(sample_rate))


def corrected_probability(p: np.ndarray | float, sample_rate: float) -> np.ndarray:
    """``sigmoid(logit(p) + log(rate))``, computed as ``r p / (r p + 1 - p)`` (exact at 0 and 1).

    See: book/ch09_streaming.md
    """
    r = check_rate(sample_rate)
    p = np.asarray(p, dtype=np.float64)
    return r * p / (r * p + (1.0 - p))


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class JoinerConfig:
    """Settings of :class:`OnlineJoiner` (seconds of event time). See: book/ch09_streaming.md

    ``window``: how long a request waits for an action before it becomes a negative.
    ``memory_seconds``: features older than this move from memory to disk.
    ``memory_capacity``: at most this many entries (features and early actions) in memory.
    ``negative_rate``: the probability of keeping a negative (per request, seeded by ``seed``).
    ``tombstone_seconds``: how long a finished request is remembered (>= ``window``).
    """

    window: int = 3600
    memory_seconds: int = 600
    memory_capacity: int = 100_000
    negative_rate: float = 1.0
    seed: int = 0
    tombstone_seconds: int = 7 * 86400

    def __post_init__(self) -> None:
        for name, low in (("window", 0), ("memory_seconds", 0), ("memory_capacity", 1), ("tombstone_seconds", 0)):
            check_int(getattr(self, name), f"JoinerConfig.{name}", low=low)
        check_int(self.seed, "JoinerConfig.seed", low=0, high=2**64)
        if self.tombstone_seconds < self.window:
            raise ValueError(
                f"JoinerConfig.tombstone_seconds ({self.tombstone_seconds}) must be >= window ({self.window}): "
                "a request must be remembered at least as long as it can wait"
            )
        check_rate(self.negative_rate, "JoinerConfig.negative_rate")


@dataclass(frozen=True)
class Example:
    """One joined example: the request, its event ``time``, when it was joined, its label,
    the rate its kind was kept at, and the feature payload (see :mod:`.codec`).

    See: book/ch09_streaming.md
    """

    request_id: int
    time: int
    join_time: int
    label: float
    sample_rate: float
    payload: bytes


@dataclass
class JoinerStats:
    """Counters of an :class:`OnlineJoiner`. After :meth:`OnlineJoiner.finish`:
    ``features_in = positives + negatives + negatives_sampled_out + duplicate_features`` and
    ``actions_in = positives + duplicate_actions + late_actions + orphan_actions``
    (``early_actions`` counts the positives made by an early action). ``spilled``: features
    moved to disk; ``disk_hits``: positives whose features were read back from disk;
    ``max_memory_entries``: the peak of memory entries after a call.
    See: book/ch09_streaming.md
    """

    features_in: int = 0
    actions_in: int = 0
    positives: int = 0
    negatives: int = 0
    negatives_sampled_out: int = 0
    duplicate_actions: int = 0
    late_actions: int = 0
    orphan_actions: int = 0
    early_actions: int = 0
    spilled: int = 0
    disk_hits: int = 0
    max_memory_entries: int = 0
    duplicate_features: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict. See: book/ch09_streaming.md"""
        return asdict(self)


# --------------------------------------------------------------------------- the joiner


class _TimedDict:
    """A dict whose keys also sit in a min-heap by time: find the oldest entries fast.

    Removing a key leaves its heap entry behind; it is skipped when it reaches the top.
    """

    def __init__(self) -> None:
        self._items: dict[int, tuple[int, Any]] = {}
        self._heap: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: int) -> bool:
        return key in self._items

    def add(self, key: int, time: int, value: Any) -> None:
        self._items[key] = (time, value)
        heapq.heappush(self._heap, (time, key))

    def pop(self, key: int) -> tuple[int, Any]:
        item = self._items.pop(key)
        if len(self._heap) > 2 * len(self._items) + 64:  # too many stale entries: rebuild
            self._heap = [(t, k) for k, (t, _) in self._items.items()]
            heapq.heapify(self._heap)
        return item

    def _top(self) -> tuple[int, int] | None:
        heap, items = self._heap, self._items
        while heap:
            time, key = heap[0]
            item = items.get(key)
            if item is not None and item[0] == time:
                return heap[0]
            heapq.heappop(heap)
        return None

    def due(self, t: int) -> bool:
        """A quick look: might an entry have ``time < t``? (False means surely not.)"""
        return bool(self._heap) and self._heap[0][0] < t

    def oldest_time(self) -> int | None:
        top = self._top()
        return None if top is None else top[0]

    def pop_oldest(self) -> tuple[int, int, Any]:
        top = self._top()
        assert top is not None, "pop_oldest on an empty _TimedDict"
        heapq.heappop(self._heap)
        time, value = self._items.pop(top[1])
        return top[1], time, value

    def pop_older_than(self, t: int) -> list[tuple[int, int, Any]]:
        """``(key, time, value)`` of every entry with ``time < t``, by time then key."""
        out = []
        while (top := self._top()) is not None and top[0] < t:
            out.append(self.pop_oldest())
        return out

    def pop_all(self) -> list[tuple[int, int, Any]]:
        out = [(k, t, v) for k, (t, v) in self._items.items()]
        self._items.clear()
        self._heap.clear()
        return out


class OnlineJoiner:
    """Join features and actions by request ID into examples (the module docstring has the
    rules). ``db_path``: the SQLite file of the disk level; ``None`` makes a temporary one
    that :meth:`close` removes. A file that already holds features is resumed (its features
    wait again). Use as a context manager, or call :meth:`close`.

    See: book/ch09_streaming.md
    """

    def __init__(self, config: JoinerConfig | None = None, db_path: str | os.PathLike[str] | None = None) -> None:
        cfg = JoinerConfig() if config is None else config
        if not isinstance(cfg, JoinerConfig):
            raise TypeError(f"config must be a JoinerConfig, got {type(cfg).__name__}")
        self.config = cfg
        self.stats = JoinerStats()
        self._tmpdir = tempfile.mkdtemp(prefix="monolith-joiner-") if db_path is None else None
        path = os.path.join(self._tmpdir, "joiner.sqlite") if self._tmpdir else os.fspath(db_path)
        self.db_path = path
        try:
            self._store: SQLiteStore | None = SQLiteStore(path)
        except BaseException:
            self._remove_tmpdir()
            raise
        self._memory = _TimedDict()  # request ID -> (time, payload): waiting features
        self._early = _TimedDict()  # request ID -> (action time, label): actions before their features
        self._disk = _TimedDict()  # request ID -> (time, None): the keys of the features on disk
        for rid, time in self._store.index():
            self._disk.add(rid, time, None)
        self._deletes: list[int] = []  # disk rows that are logically gone, not yet deleted
        self._tombs: dict[int, tuple[int, int]] = {}  # request ID -> (time, outcome), not yet written
        self._clock: int | None = None
        self._next_prune: int | None = None

    # ---- public API ---------------------------------------------------------------------

    def add_features(self, request_id: int, time: int, payload: bytes, now: int) -> list[Example]:
        """Take a request's features (``time``: its event time) at clock ``now``; returns
        the examples this call emits. See: book/ch09_streaming.md
        """
        rid, time, now = check_id(request_id), check_time(time), check_time(now, "now")
        payload = check_bytes(payload, "payload")
        now = self._tick(now)
        out = self._advance(now)
        self.stats.features_in += 1
        if rid in self._memory or rid in self._disk or self._finished(rid, now) is not None:
            self.stats.duplicate_features += 1
        elif rid in self._early:
            _, label = self._early.pop(rid)
            self.stats.early_actions += 1
            out.append(self._positive(rid, time, payload, label, now))
        else:
            self._memory.add(rid, time, payload)
        return self._end_call(out, now)

    def add_action(self, request_id: int, time: int, now: int, label: float = 1.0) -> list[Example]:
        """Take an action on a request (``time``: when it happened) at clock ``now``; returns
        the examples this call emits. See: book/ch09_streaming.md
        """
        rid, time, now = check_id(request_id), check_time(time), check_time(now, "now")
        check_number(label, "label")
        now = self._tick(now)
        out = self._advance(now)
        self.stats.actions_in += 1
        if rid in self._memory:
            features_time, payload = self._memory.pop(rid)
            out.append(self._positive(rid, features_time, payload, float(label), now))
        elif rid in self._disk:
            self._disk.pop(rid)
            row = self._db.get(rid)
            if row is None:
                raise RuntimeError(f"request {rid} is missing from the joiner's disk store {self._db.path!r}")
            self._deletes.append(rid)
            self.stats.disk_hits += 1
            out.append(self._positive(rid, row[0], row[1], float(label), now))
        elif rid in self._early:
            self.stats.duplicate_actions += 1
        else:
            outcome = self._finished(rid, now)
            if outcome is None:
                self._early.add(rid, time, float(label))
            elif outcome == POSITIVE:
                self.stats.duplicate_actions += 1
            else:
                self.stats.late_actions += 1
        return self._end_call(out, now)

    def advance(self, now: int) -> list[Example]:
        """Move the clock to ``now``: finalize what expired, spill what aged; returns the
        emitted negatives (by time, then request ID). See: book/ch09_streaming.md
        """
        now = self._tick(check_time(now, "now"))
        return self._end_call(self._advance(now), now)

    def finish(self, now: int | None = None) -> list[Example]:
        """End of stream: advance to ``now`` (default: the clock), then finalize every
        waiting request as a negative (same sampling) and drop waiting early actions as
        orphans. The joiner can go on afterwards. See: book/ch09_streaming.md
        """
        if now is not None:
            now = self._tick(check_time(now, "now"))
        elif self._clock is None:
            self._check_open()
            return []
        else:
            now = self._clock
        out = self._advance(now)
        self.stats.orphan_actions += len(self._early.pop_all())
        waiting = [(t, rid, payload) for rid, t, payload in self._memory.pop_all()]
        waiting += self._read_back(self._disk.pop_all())
        out += self._finalize(waiting, now)
        out = self._end_call(out, now)
        self._flush()
        return out

    def memory_entries(self) -> int:
        """Features and early actions held in memory. See: book/ch09_streaming.md"""
        return len(self._memory._items) + len(self._early._items)

    def disk_entries(self) -> int:
        """Features held on disk. See: book/ch09_streaming.md"""
        return len(self._disk)

    @property
    def clock(self) -> int | None:
        """The latest ``now`` seen (``None`` before the first call)."""
        return self._clock

    def close(self) -> None:
        """Write buffered deletes and tombstones, close the store, and remove a temporary
        file (idempotent). See: book/ch09_streaming.md
        """
        if self._store is not None:
            try:
                self._flush()
            finally:
                self._store.close()
                self._store = None
                self._remove_tmpdir()

    def __enter__(self) -> OnlineJoiner:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"OnlineJoiner(memory={self.memory_entries()}, disk={self.disk_entries()}, "
                f"clock={self._clock}, {self.config})")

    # ---- internals ----------------------------------------------------------------------

    @property
    def _db(self) -> SQLiteStore:
        if self._store is None:
            raise RuntimeError("the joiner is closed")
        return self._store

    def _check_open(self) -> None:
        self._db  # noqa: B018  (raises if closed)

    def _remove_tmpdir(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def _tick(self, now: int) -> int:
        """Raise the clock to ``now`` (never lower it) and return the clock."""
        self._check_open()
        if self._clock is None or now > self._clock:
            self._clock = now
        return self._clock

    def _finished(self, rid: int, now: int) -> int | None:
        """The outcome of a remembered finished request, or ``None``."""
        tomb = self._tombs.get(rid) or self._db.tombstone(rid)
        if tomb is None or tomb[0] < now - self.config.tombstone_seconds:
            return None
        return tomb[1]

    def _positive(self, rid: int, time: int, payload: bytes, label: float, now: int) -> Example:
        self.stats.positives += 1
        self._tombs[rid] = (time, POSITIVE)
        return Example(rid, time, now, label, 1.0, payload)

    def _finalize(self, waiting: list[tuple[int, int, bytes | None]], now: int) -> list[Example]:
        """Negatives for ``(time, request_id, payload)`` entries, sampled, by time then ID."""
        rate = self.config.negative_rate
        out = []
        for time, rid, payload in sorted(waiting, key=lambda w: (w[0], w[1])):
            self._tombs[rid] = (time, NEGATIVE)
            if self._keep(rid):
                assert payload is not None
                self.stats.negatives += 1
                out.append(Example(rid, time, now, 0.0, rate, payload))
            else:
                self.stats.negatives_sampled_out += 1
        return out

    def _advance(self, now: int) -> list[Example]:
        """Orphan overdue early actions, finalize overdue requests, spill, flush, prune.

        Each step first peeks at the top of a heap, so a call with nothing to do is cheap.
        """
        cfg = self.config
        deadline = now - cfg.window
        if self._early.due(deadline):
            self.stats.orphan_actions += len(self._early.pop_older_than(deadline))
        waiting: list[tuple[int, int, bytes | None]] = []
        if self._memory.due(deadline):
            waiting += [(t, rid, payload) for rid, t, payload in self._memory.pop_older_than(deadline)]
        if self._disk.due(deadline):
            waiting += self._read_back(self._disk.pop_older_than(deadline))
        out = self._finalize(waiting, now) if waiting else []
        if self._memory.due(now - cfg.memory_seconds) or self.memory_entries() > cfg.memory_capacity:
            self._spill(now)
        if len(self._deletes) + len(self._tombs) >= _FLUSH_ROWS:
            self._flush()
        if self._next_prune is None or now >= self._next_prune:
            self._prune(now)
        return out

    def _read_back(self, expired: list[tuple[int, int, Any]]) -> list[tuple[int, int, bytes | None]]:
        """``(time, request_id, payload)`` of disk entries being finalized. Only the payloads
        of negatives that will be kept are read; every row is marked for deletion."""
        kept = [rid for rid, _, _ in expired if self._keep(rid)]
        if len(kept) == 1:  # the common case: one request expires per second or so
            row = self._db.get(kept[0])
            rows = {} if row is None else {kept[0]: row}
        else:
            rows = self._db.get_many(kept) if kept else {}
        if len(rows) != len(kept):
            lost = next(rid for rid in kept if rid not in rows)
            raise RuntimeError(f"request {lost} is missing from the joiner's disk store {self._db.path!r}")
        self._deletes.extend(rid for rid, _, _ in expired)
        return [(t, rid, rows[rid][1] if rid in rows else None) for rid, t, _ in expired]

    def _keep(self, rid: int) -> bool:
        """:func:`keep_negative` with this joiner's rate and seed (arguments known valid)."""
        rate = self.config.negative_rate
        return rate >= 1.0 or unit_float(rid, self.config.seed) < rate

    def _spill(self, now: int) -> None:
        """Move aged features, then features beyond the capacity, to disk in one write."""
        cfg = self.config
        spill = []
        oldest = self._memory.oldest_time()
        if oldest is not None and oldest < now - cfg.memory_seconds:
            spill = self._memory.pop_older_than(now - cfg.memory_seconds // 2)
        if self.memory_entries() > cfg.memory_capacity:
            target = cfg.memory_capacity - cfg.memory_capacity // 8
            while self._memory and self.memory_entries() > target:
                spill.append(self._memory.pop_oldest())
            while self.memory_entries() > cfg.memory_capacity:  # only early actions are left
                self._early.pop_oldest()
                self.stats.orphan_actions += 1
        if spill:
            self._flush(put=[(rid, t, payload) for rid, t, payload in spill])
            for rid, t, _ in spill:
                self._disk.add(rid, t, None)
            self.stats.spilled += len(spill)

    def _flush(self, put: list[tuple[int, int, bytes]] | None = None) -> None:
        """One transaction: buffered deletes, then ``put``, then buffered tombstones."""
        if not (put or self._deletes or self._tombs):
            return
        tombs = [(rid, t, outcome) for rid, (t, outcome) in self._tombs.items()]
        self._db.write_batch(put=put or (), delete=self._deletes, tombstones=tombs)
        self._deletes = []
        self._tombs = {}

    def _prune(self, now: int) -> None:
        """Now and then, delete tombstones too old to matter (they already count as absent)."""
        if self._next_prune is not None:
            self._flush()
            self._db.prune_tombstones(now - self.config.tombstone_seconds)
        self._next_prune = now + max(1, self.config.tombstone_seconds // 8)

    def _end_call(self, out: list[Example], now: int) -> list[Example]:
        """Apply the rules to what the call added (only that can be overdue), note the peak."""
        cfg = self.config
        if (self._memory.due(now - min(cfg.window, cfg.memory_seconds)) or self._early.due(now - cfg.window)
                or self.memory_entries() > cfg.memory_capacity):
            out += self._advance(now)
        self.stats.max_memory_entries = max(self.stats.max_memory_entries, self.memory_entries())
        return out
