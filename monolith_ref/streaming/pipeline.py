"""The online pipeline of the paper's Figures 4 and 5, wired through the log.

::

    events --arrivals()--> log "features" (at serving time) + log "actions" (later, out of order)
           --run_joiner(): one consumer group, records merged in arrival order--> OnlineJoiner
           --> log "examples" --read_examples(): the trainer's consumer group--> JoinedBatch

Every hop goes through :class:`~monolith_ref.streaming.log.Log` as bytes, with committed
offsets, so a crashed joiner or trainer resumes where its group committed (chapter 11 adds
snapshots of the joiner's and the trainer's own state).

See: book/ch09_streaming.md
"""

from __future__ import annotations

import heapq
import struct
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..events import Events
from .codec import JoinedBatch, decode_examples, encode_examples, encode_features, request_key
from .joiner import JoinerStats, OnlineJoiner
from .log import Consumer, Log, Record
from .simulate import Arrivals

__all__ = ["FEATURES", "ACTIONS", "EXAMPLES", "encode_actions", "decode_action", "publish", "time_ordered",
           "run_joiner", "read_examples", "release_times", "join_arrivals", "PipelineResult", "run_pipeline"]

FEATURES, ACTIONS, EXAMPLES = "features", "actions", "examples"
_ACTION = struct.Struct("<Qqf")  # request id, click time, label
_FEATURE_HEAD = struct.Struct("<Qq")  # a feature payload starts with request id, event time


def encode_actions(request_ids: np.ndarray, times: np.ndarray, labels: np.ndarray | None = None) -> list[bytes]:
    """Action records: ``(request_id u64, time i64, label f32)``, little-endian.

    See: book/ch09_streaming.md
    """
    n = len(request_ids)
    labels = np.ones(n, dtype=np.float32) if labels is None else labels
    return [_ACTION.pack(int(r), int(t), float(v)) for r, t, v in zip(request_ids, times, labels)]


def decode_action(value: bytes) -> tuple[int, int, float]:
    """The inverse of :func:`encode_actions` for one record. See: book/ch09_streaming.md"""
    if len(value) != _ACTION.size:
        raise ValueError(f"an action record has {_ACTION.size} bytes, got {len(value)}")
    return _ACTION.unpack(value)


def publish(log: Log, events: Events, arrivals: Arrivals, partitions: int = 2) -> dict[str, int]:
    """Write the features and actions of ``events`` to the log in arrival order, keyed by
    request id (so a request's records share a partition), stamped with arrival times.

    See: book/ch09_streaming.md
    """
    log.create_topic(FEATURES, partitions)
    log.create_topic(ACTIONS, partitions)
    payloads = encode_features(events)
    feat = np.flatnonzero(arrivals.kind == 0)
    act = np.flatnonzero(arrivals.kind == 1)
    log.append_many(FEATURES, [payloads[int(r)] for r in arrivals.row[feat]],
                    keys=[request_key(int(r)) for r in arrivals.request_id[feat]],
                    timestamps=arrivals.arrival[feat].tolist())
    log.append_many(ACTIONS, encode_actions(arrivals.request_id[act], arrivals.event_time[act]),
                    keys=[request_key(int(r)) for r in arrivals.request_id[act]],
                    timestamps=arrivals.arrival[act].tolist())
    log.flush()
    return {FEATURES: int(feat.size), ACTIONS: int(act.size)}


def time_ordered(consumer: Consumer, log: Log, batch: int = 4096) -> Iterator[Record]:
    """The consumer's records merged across its partitions in timestamp order (ties: the
    order of the subscribed topics, then partition, then offset).

    Each partition is in arrival order already; polling buffers what arrives, and a record
    is released only when every partition that still has data has a buffered head to
    compare with. See: book/ch09_streaming.md
    """
    order = {t: i for i, t in enumerate(dict.fromkeys(t for t, _ in consumer.assignment()))}
    buffers: dict[tuple[str, int], deque[Record]] = {tp: deque() for tp in consumer.assignment()}
    heap: list[tuple[int, int, int, int]] = []
    queued: set[tuple[str, int]] = set()  # partitions with a head in the heap

    def push(tp: tuple[str, int]) -> None:
        rec = buffers[tp][0]
        heapq.heappush(heap, (rec.timestamp, order[rec.topic], rec.partition, rec.offset))
        queued.add(tp)

    def refill() -> None:  # poll until every partition that has unread data has a head
        while any(tp not in queued and consumer.position(*tp) < log.end_offset(*tp) for tp in buffers):
            for rec in consumer.poll(batch):
                tp = (rec.topic, rec.partition)
                buffers[tp].append(rec)
                if tp not in queued:
                    push(tp)

    topics = list(order)
    refill()
    while heap:
        _, rank, partition, _ = heapq.heappop(heap)
        tp = (topics[rank], partition)
        queued.discard(tp)
        rec = buffers[tp].popleft()
        if buffers[tp]:
            push(tp)
        else:
            refill()
        yield rec


def run_joiner(log: Log, joiner: OnlineJoiner, group: str = "joiner", advance_every: int = 60,
               commit_every: int = 20_000, finish: bool = True) -> JoinerStats:
    """Consume ``features`` and ``actions`` in arrival order, join them, and append the
    examples to ``examples`` (one partition: the trainer reads them in join order).

    The joiner's clock is the arrival time of the record in hand; it advances (finalizing
    expired requests as negatives) whenever that clock moves ``advance_every`` seconds.
    Offsets of processed records are committed every ``commit_every`` records.
    ``finish``: at the end of the log, finalize every waiting request.
    See: book/ch09_streaming.md
    """
    log.create_topic(EXAMPLES, 1)
    consumer = Consumer(log, group, [FEATURES, ACTIONS])
    out: list = []
    done: dict[tuple[str, int], int] = {}
    last_advance, now, seen = None, 0, 0

    def emit(examples: Sequence) -> None:
        out.extend(examples)
        if len(out) >= 4096:
            drain()

    def drain() -> None:
        if out:
            log.append_many(EXAMPLES, encode_examples(out), keys=[request_key(e.request_id) for e in out],
                            timestamps=[e.join_time for e in out])
            out.clear()

    for rec in time_ordered(consumer, log):
        now = max(now, rec.timestamp)
        if last_advance is None or now - last_advance >= advance_every:
            emit(joiner.advance(now))
            last_advance = now
        if rec.topic == FEATURES:
            request_id, time = _FEATURE_HEAD.unpack_from(rec.value)
            emit(joiner.add_features(request_id, time, rec.value, now))
        else:
            request_id, time, label = decode_action(rec.value)
            emit(joiner.add_action(request_id, time, now, label))
        done[(rec.topic, rec.partition)] = rec.offset + 1
        seen += 1
        if seen % commit_every == 0:
            drain()
            consumer.commit(done)
    if finish:
        emit(joiner.finish(now))
    drain()
    if done:
        consumer.commit(done)
    log.flush()
    return joiner.stats


def read_examples(log: Log, field_names: Sequence[str], dense_names: Sequence[str] = (), group: str = "trainer",
                  max_records: int | None = None, commit: bool = True) -> JoinedBatch:
    """Everything the trainer's consumer group has not read yet from ``examples``, decoded
    (in join order). See: book/ch09_streaming.md
    """
    consumer = Consumer(log, group, [EXAMPLES])
    values: list[bytes] = []
    while max_records is None or len(values) < max_records:
        want = 50_000 if max_records is None else min(50_000, max_records - len(values))
        recs = consumer.poll(want)
        if not recs:
            break
        values.extend(r.value for r in recs)
    batch = decode_examples(values, tuple(field_names), tuple(dense_names))
    if commit:
        consumer.commit()
    return batch


def join_arrivals(events: Events, arrivals: Arrivals, joiner: OnlineJoiner, finish: bool = True) -> list:
    """Feed the arrivals straight to a joiner, in arrival order, without the log: the
    joiner's logic alone (for experiments with its settings). Returns every example it
    emitted; its counters are in ``joiner.stats``. See: book/ch09_streaming.md
    """
    payloads = encode_features(events)
    out: list = []
    now = 0
    for kind, rid, etime, now, row in zip(arrivals.kind.tolist(), arrivals.request_id.tolist(),
                                          arrivals.event_time.tolist(), arrivals.arrival.tolist(),
                                          arrivals.row.tolist()):
        if kind == 0:
            out.extend(joiner.add_features(rid, etime, payloads[row], now))
        else:
            out.extend(joiner.add_action(rid, etime, now))
    if finish:
        out.extend(joiner.finish(now))
    return out


def release_times(batch: JoinedBatch, window: int, hold: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """When a trainer should learn from each joined example, and the order that gives.

    The joiner emits a positive the moment its click arrives, but a negative only when its
    window closes, ``window`` seconds after the request. Trained in that order, the model
    always sees the last hour's clicks before the same hour's non-clicks: an item's first
    hour looks like nothing but clicks (the *delayed feedback* bias; chapter 14 measures
    what it costs). ``hold=True`` releases every example at ``max(join time, request time
    + window)``, when its label is final, so a period's positives and negatives are learned
    together; ``hold=False`` keeps the join order. Returns ``(order, release)``: a stable
    permutation of the batch and the sorted release times. See: book/ch09_streaming.md (and
    book/ch14_online_measured.md, which measures what holding is worth)
    """
    join = np.asarray(batch.join_time, dtype=np.int64)
    if not hold:
        return np.arange(join.shape[0]), join
    release = np.maximum(join, batch.events.time.astype(np.int64) + int(window))
    order = np.argsort(release, kind="stable")
    return order, release[order]


@dataclass
class PipelineResult:
    """The joined examples and the joiner's counters of one pipeline run.

    See: book/ch09_streaming.md
    """

    examples: JoinedBatch
    stats: JoinerStats
    published: dict[str, int]


def run_pipeline(events: Events, arrivals: Arrivals, joiner: OnlineJoiner, log: Log | None = None,
                 partitions: int = 2) -> PipelineResult:
    """Publish, join and read back: the whole path from served requests to training examples.

    See: book/ch09_streaming.md
    """
    log = log if log is not None else Log()
    published = publish(log, events, arrivals, partitions)
    stats = run_joiner(log, joiner)
    examples = read_examples(log, events.field_names, events.dense_names)
    return PipelineResult(examples, stats, published)
