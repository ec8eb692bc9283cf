"""An append-only log with Kafka's semantics: topics, partitions, offsets, consumer groups.

Monolith reads user actions and features from Kafka queues (paper section 2.2.1, Figure 4).
This module is the embedded stand-in for Kafka: small enough to read in one sitting, close
enough to a Kafka client that an adapter could swap in a real broker.

A topic has a fixed number of partitions; a partition is a sequence of records with dense
offsets from 0. A consumer group commits, per partition, the next offset to read; records
polled but not yet committed come again after a crash (at-least-once); ``seek`` replays.

How it maps onto a Kafka client:

=====================================  ===============================================
Kafka                                  here
=====================================  ===============================================
``KafkaProducer.send(topic, v, key)``  ``Producer.send(topic, v, key=...)`` -> (partition, offset)
``KafkaProducer.flush()``              ``Producer.flush()`` (``Log.flush``)
``KafkaConsumer(group_id=...)``        ``Consumer(log, group, topics)``
``poll / commit / seek``               ``Consumer.poll / commit / seek``
``position / committed``               ``Consumer.position / committed``
``auto_offset_reset``                  the same two values: ``"earliest"``, ``"latest"``
default partitioner: murmur2(key)      ``blake2b(key, digest_size=8)`` (little-endian) mod partitions;
                                       ``key=None``: round robin per topic (Kafka: "sticky")
=====================================  ===============================================

Left out: replication, retention and compaction (a log only grows), rebalancing (every
consumer of a group is assigned every partition of its topics; run one per group),
transactions and idempotent producers, headers, a network.

Storage. With ``path=None`` the log lives in memory. Given a directory, it is durable::

    path/<topic>/meta.json                        {"partitions": N}, written atomically
    path/<topic>/<partition>/<base offset:020d>.log   segment files, appended to
    path/__offsets__/<group>.json                 {"topic": {"partition": offset}}, atomic

A record on disk is a 32-byte header, then the key, then the value::

    magic b"MLG1" | crc32 u32 | length u32 (whole record) | offset i64 | timestamp i64 | key length i32 (-1: None)

The CRC covers everything after itself. A new segment starts once the active one holds
``segment_bytes``; the old one is flushed and fsynced first, so only the last segment of
a partition can ever be torn. Appends are buffered; ``flush()`` and ``commit()`` make them
durable (``fsync=False`` skips every fsync: for tests and benchmarks, not for crashes).

Recovery on open scans every segment. In the last one, the first record that is cut
short, has a bad magic or length, a CRC mismatch or a wrong offset, ends the log: the file
is truncated there and the bytes counted in ``Log.recovered_bytes``. Two things are not a
torn write and raise :class:`CorruptLogError` instead: damage in a segment that is not the
last, and damage that would cut below an offset some group has committed (a commit fsyncs
the data first, so those records were on disk).

Every record is also kept in memory (parallel lists per partition): reads never touch the
disk, and the log is for teaching-scale data (a few million small records).

See: book/ch09_streaming.md
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import re
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..checks import InvalidArgumentError, check_bytes, check_int, check_name, check_time
from ..fsio import atomic_write, fsync_dir

__all__ = ["Record", "LogError", "CorruptLogError", "Log", "Producer", "Consumer"]

_HEADER = struct.Struct("<4sIIqqi")  # magic, crc32, length, offset, timestamp, key length
_REST = struct.Struct("<Iqqi")  # the header after the CRC: what the CRC starts to cover
_CRC_FROM = _HEADER.size - _REST.size
_MAGIC = b"MLG1"
_OFFSETS_DIR = "__offsets__"
_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")
_SEGMENT = re.compile(r"\d{20}\.log")


@dataclass(frozen=True, slots=True)
class Record:
    """One record read back from a partition. See: book/ch09_streaming.md"""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes


class LogError(InvalidArgumentError):
    """A log operation got a bad argument: unknown topic, bad partition or offset. See: book/ch09_streaming.md"""


class CorruptLogError(LogError):
    """A log directory that cannot be recovered by truncating a torn tail. See: book/ch09_streaming.md"""


def _check_key(key: object) -> bytes | None:
    return None if key is None else check_bytes(key, "key")


def _check_name(kind: str, name: object) -> str:
    rule = f"1-200 of A-Z a-z 0-9 . _ - (and not {_OFFSETS_DIR!r})"
    name = check_name(name, f"{kind} name", _NAME, rule, error=LogError)
    if name in (".", "..", _OFFSETS_DIR):
        raise LogError(f"{kind} name {name!r} must be {rule}")
    return name


def _encode(offset: int, timestamp: int, key: bytes | None, value: bytes) -> bytes:
    klen = -1 if key is None else len(key)
    length = _HEADER.size + max(klen, 0) + len(value)
    rest = _REST.pack(length, offset, timestamp, klen)
    crc = zlib.crc32(value, zlib.crc32(key or b"", zlib.crc32(rest)))
    return b"".join((_MAGIC, crc.to_bytes(4, "little"), rest, key or b"", value))


class _Partition:
    """One partition: its records in memory and, on disk, its active segment file."""

    def __init__(self, directory: Path | None, segment_bytes: int, fsync: bool) -> None:
        self.directory, self.segment_bytes, self.fsync = directory, segment_bytes, fsync
        self.keys: list[bytes | None] = []
        self.values: list[bytes] = []
        self.timestamps: list[int] = []
        self.active: Path | None = None  # the last segment (appended to)
        self.size = 0  # its size in bytes, buffered writes included
        self.handle: BinaryIO | None = None
        self.new_files = False  # a segment was created since the directory was last fsynced

    def __len__(self) -> int:
        return len(self.values)

    def scan(self, data: bytes, base: int) -> tuple[int, str | None]:
        """Load the records of one segment; return where the good ones end and the first problem."""
        view, pos, offset = memoryview(data), 0, base
        while pos < len(data):
            if len(data) - pos < _HEADER.size:
                return pos, "incomplete header"
            magic, crc, length, rec_offset, ts, klen = _HEADER.unpack_from(data, pos)
            if magic != _MAGIC:
                return pos, f"bad magic {magic!r}"
            if klen < -1 or length < _HEADER.size + max(klen, 0):
                return pos, f"bad lengths (record {length}, key {klen})"
            if pos + length > len(data):
                return pos, "incomplete record"
            if zlib.crc32(view[pos + _CRC_FROM : pos + length]) != crc:
                return pos, "CRC mismatch"
            if rec_offset != offset:
                return pos, f"offset {rec_offset} where {offset} was expected"
            start = pos + _HEADER.size
            self.keys.append(None if klen < 0 else data[start : start + klen])
            self.values.append(data[start + max(klen, 0) : pos + length])
            self.timestamps.append(ts)
            pos, offset = pos + length, offset + 1
        return pos, None

    def append(self, keys: list[bytes | None], values: list[bytes], stamps: list[int]) -> int:
        """Append records (to the segment files first); return the offset of the first one."""
        start = len(self.values)
        if self.directory is not None:
            handle, chunk = self._open(start), []
            for i, (key, value, ts) in enumerate(zip(keys, values, stamps)):
                if self.size >= self.segment_bytes:  # roll: one write per partition and segment
                    handle.write(b"".join(chunk))
                    handle, chunk = self._open(start + i), []
                chunk.append(_encode(start + i, ts, key, value))
                self.size += len(chunk[-1])
            handle.write(b"".join(chunk))
        self.keys.extend(keys)
        self.values.extend(values)
        self.timestamps.extend(stamps)
        return start

    def _open(self, next_offset: int) -> BinaryIO:
        """The handle to append to: the active segment, or a new one if it is full or missing."""
        assert self.directory is not None
        if self.active is None or self.size >= self.segment_bytes:
            self.close()  # seal the full segment before the next one exists
            self.active, self.size, self.new_files = self.directory / f"{next_offset:020d}.log", 0, True
        if self.handle is None:
            self.handle = open(self.active, "ab")
        return self.handle

    def flush(self) -> None:
        if self.handle is not None:
            self.handle.flush()
            if self.fsync:
                os.fsync(self.handle.fileno())
        if self.fsync and self.new_files and self.directory is not None:
            fsync_dir(self.directory)
            self.new_files = False

    def close(self) -> None:
        self.flush()
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class Log:
    """Topics of partitioned, append-only records and the committed offsets of consumer groups.

    ``path=None`` keeps everything in memory; a directory makes the log durable, and
    opening it again recovers topics, records and committed offsets (see the module doc).
    See: book/ch09_streaming.md
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, segment_bytes: int = 8 * 2**20, fsync: bool = True
    ) -> None:
        self.segment_bytes = check_int(segment_bytes, "segment_bytes", low=1)
        if not isinstance(fsync, bool):
            raise TypeError(f"fsync must be a bool, got {fsync!r}")
        self.fsync = fsync
        self.path = None if path is None else Path(path)
        self.recovered_bytes = 0  # bytes of torn tails truncated away when the log was opened
        self._topics: dict[str, list[_Partition]] = {}
        self._round_robin: dict[str, int] = {}
        self._offsets: dict[str, dict[tuple[str, int], int]] = {}
        self._closed = False
        if self.path is not None:
            (self.path / _OFFSETS_DIR).mkdir(parents=True, exist_ok=True)
            if fsync:
                fsync_dir(self.path)
            self._load()

    # ------------------------------------------------------------------ opening

    def _load(self) -> None:
        assert self.path is not None
        for file in sorted((self.path / _OFFSETS_DIR).glob("*.json")):  # a leftover *.json.tmp is ignored
            self._offsets[file.stem] = self._read_offsets(file)
        for meta in sorted(self.path.glob("*/meta.json")):  # a topic without meta.json was never created
            if meta.parent.name == _OFFSETS_DIR:  # the offsets of a group called "meta"
                continue
            try:
                count = json.loads(meta.read_text())["partitions"]
            except (ValueError, KeyError, TypeError) as e:
                raise CorruptLogError(f"{meta}: unreadable topic metadata ({e})") from e
            topic = meta.parent.name
            # a committed offset proves the records below it were fsynced: recovery may not cut there
            floors = [max([o.get((topic, p), 0) for o in self._offsets.values()] + [0]) for p in range(count)]
            self._topics[topic] = [self._load_partition(meta.parent / str(p), floors[p]) for p in range(count)]
            self._round_robin[topic] = 0
        for group, offsets in self._offsets.items():
            for (topic, p), offset in offsets.items():
                parts = self._topics.get(topic, [])
                if not (0 <= p < len(parts) and 0 <= offset <= len(parts[p])):
                    raise CorruptLogError(f"group {group!r} committed offset {offset} for {topic}/{p}: not in the log")

    @staticmethod
    def _read_offsets(file: Path) -> dict[tuple[str, int], int]:
        try:
            raw = json.loads(file.read_text())
            return {(t, int(p)): int(o) for t, parts in raw.items() for p, o in parts.items()}
        except (ValueError, AttributeError, TypeError) as e:
            raise CorruptLogError(f"{file}: unreadable committed offsets ({e})") from e

    def _load_partition(self, directory: Path, floor: int) -> _Partition:
        part = _Partition(directory, self.segment_bytes, self.fsync)
        segments = sorted(f for f in directory.glob("*.log") if _SEGMENT.fullmatch(f.name))
        for i, file in enumerate(segments):
            base = int(file.stem)
            if base != len(part):
                raise CorruptLogError(f"{file}: starts at offset {base}, but the segments before it end at {len(part)}")
            data = file.read_bytes()
            good, problem = part.scan(data, base)
            if problem is None:
                continue
            where = f"{file}: {problem} at byte {good} (offset {len(part)})"
            if i < len(segments) - 1:
                raise CorruptLogError(f"{where}, in a sealed segment: not a torn write")
            if len(part) < floor:
                raise CorruptLogError(f"{where}, below committed offset {floor}: not a torn write")
            with open(file, "r+b") as f:  # a torn tail: cut it off
                f.truncate(good)
                if self.fsync:
                    os.fsync(f.fileno())
            self.recovered_bytes += len(data) - good
        if segments:
            part.active, part.size = segments[-1], segments[-1].stat().st_size
        return part

    # ------------------------------------------------------------------ topics

    def _check_open(self) -> None:
        if self._closed:
            raise LogError("the log is closed")

    def _partitions(self, topic: str) -> list[_Partition]:
        self._check_open()
        if not isinstance(topic, str):
            raise TypeError(f"topic must be a str, got {topic!r}")
        if topic not in self._topics:
            raise LogError(f"unknown topic {topic!r} (topics: {sorted(self._topics)})")
        return self._topics[topic]

    def _partition(self, topic: str, partition: int) -> _Partition:
        parts = self._partitions(topic)
        p = check_int(partition, "partition")
        if not 0 <= p < len(parts):
            raise LogError(f"topic {topic!r} has partitions 0..{len(parts) - 1}, got partition {p}")
        return parts[p]

    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create a topic; again with the same partition count is a no-op."""
        self._check_open()
        _check_name("topic", name)
        count = check_int(partitions, "partitions")
        if count < 1:
            raise LogError(f"a topic needs at least 1 partition, got {count}")
        if name in self._topics:
            if len(self._topics[name]) != count:
                raise LogError(f"topic {name!r} exists with {len(self._topics[name])} partitions, not {count}")
            return
        directory = None if self.path is None else self.path / name
        if directory is not None:
            for p in range(count):
                (directory / str(p)).mkdir(parents=True, exist_ok=True)
            atomic_write(directory / "meta.json", json.dumps({"partitions": count}).encode(), self.fsync)
            if self.fsync:
                fsync_dir(directory.parent)
        dirs = [None if directory is None else directory / str(p) for p in range(count)]
        self._topics[name] = [_Partition(d, self.segment_bytes, self.fsync) for d in dirs]
        self._round_robin[name] = 0

    def topics(self) -> dict[str, int]:
        """Each topic's name and number of partitions."""
        self._check_open()
        return {name: len(parts) for name, parts in self._topics.items()}

    def partition_for(self, topic: str, key: bytes | None) -> int:
        """The partition a record with ``key`` goes to: a stable hash of the key, or round robin for None."""
        parts = self._partitions(topic)
        return self._choose(topic, len(parts), _check_key(key))

    def _choose(self, topic: str, count: int, key: bytes | None) -> int:
        if key is None:
            self._round_robin[topic] += 1
            return (self._round_robin[topic] - 1) % count
        return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") % count

    # ------------------------------------------------------------------ records

    def append(
        self, topic: str, value: bytes, *, key: bytes | None = None, timestamp: int = 0, partition: int | None = None
    ) -> tuple[int, int]:
        """Append one record; return its ``(partition, offset)``."""
        if partition is not None:
            self._partition(topic, partition)
        return self._append(topic, [value], [key], [timestamp], partition)[0]

    def append_many(
        self,
        topic: str,
        values: Sequence[bytes],
        *,
        keys: Sequence[bytes | None] | None = None,
        timestamps: Sequence[int] | None = None,
    ) -> list[tuple[int, int]]:
        """Append a batch (one write per partition); return each record's ``(partition, offset)`` in order."""
        return self._append(topic, values, keys, timestamps, None)

    def _append(self, topic: str, values: Sequence[Any], keys: Sequence[Any] | None, timestamps: Sequence[Any] | None,
                partition: int | None) -> list[tuple[int, int]]:
        parts = self._partitions(topic)
        for name, seq in (("keys", keys), ("timestamps", timestamps)):
            if seq is not None and len(seq) != len(values):
                raise LogError(f"{name} has {len(seq)} items but values has {len(values)}")
        vals = [check_bytes(v, "value") for v in values]
        ks = [None] * len(vals) if keys is None else [_check_key(k) for k in keys]
        ts = [0] * len(vals) if timestamps is None else [check_time(t, "timestamp") for t in timestamps]
        # Everything is valid: from here on the log changes.
        if partition is not None:
            targets = [operator.index(partition)] * len(vals)
        else:
            targets = [self._choose(topic, len(parts), k) for k in ks]
        batches: dict[int, list[int]] = {}
        for i, p in enumerate(targets):
            batches.setdefault(p, []).append(i)
        result: list[tuple[int, int]] = [(0, 0)] * len(vals)
        for p, idx in batches.items():
            batch = [ks[i] for i in idx], [vals[i] for i in idx], [ts[i] for i in idx]
            first = parts[p].append(*batch)
            for j, i in enumerate(idx):
                result[i] = (p, first + j)
        return result

    def read(self, topic: str, partition: int, offset: int, max_records: int = 1000) -> list[Record]:
        """Up to ``max_records`` records from ``offset`` on; [] at or past the end."""
        part = self._partition(topic, partition)
        start, limit = check_int(offset, "offset"), check_int(max_records, "max_records", low=1, error=LogError)
        if start < 0:
            raise LogError(f"offset must be >= 0, got {start} for {topic}/{partition}")
        p = operator.index(partition)
        ks, vs, ts = part.keys, part.values, part.timestamps
        return [Record(topic, p, o, ts[o], ks[o], vs[o]) for o in range(start, min(len(part), start + limit))]

    def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next record appended to this partition will get."""
        return len(self._partition(topic, partition))

    def flush(self) -> None:
        """Write buffered records to their segment files and (if ``fsync``) fsync them."""
        self._check_open()
        for parts in self._topics.values():
            for part in parts:
                part.flush()

    # ------------------------------------------------------------------ consumer groups

    def commit(self, group: str, offsets: Mapping[tuple[str, int], int]) -> None:
        """Record ``group``'s next offsets to read; on disk, the data is flushed first, then the offsets atomically."""
        self._check_open()
        _check_name("group", group)
        if not isinstance(offsets, Mapping):
            raise TypeError(f"offsets must map (topic, partition) to an offset, got {type(offsets).__name__}")
        checked: dict[tuple[str, int], int] = {}
        for where, offset in offsets.items():
            if not isinstance(where, tuple) or len(where) != 2:
                raise TypeError(f"offsets keys must be (topic, partition) pairs, got {where!r}")
            part = self._partition(*where)
            o = check_int(offset, "offset")
            if not 0 <= o <= len(part):
                raise LogError(f"offset {o} for {where[0]}/{where[1]} is outside 0..{len(part)} (the end offset)")
            checked[(where[0], operator.index(where[1]))] = o
        merged = {**self._offsets.get(group, {}), **checked}
        if self.path is not None:
            self.flush()
            table: dict[str, dict[str, int]] = {}
            for (topic, p), o in sorted(merged.items()):
                table.setdefault(topic, {})[str(p)] = o
            atomic_write(self.path / _OFFSETS_DIR / f"{group}.json", json.dumps(table, indent=1).encode(), self.fsync)
        self._offsets[group] = merged

    def committed(self, group: str, topic: str, partition: int) -> int | None:
        """``group``'s committed offset for a partition, or None if it never committed one."""
        _check_name("group", group)
        self._partition(topic, partition)
        return self._offsets.get(group, {}).get((topic, operator.index(partition)))

    def close(self) -> None:
        """Flush and close every segment file; the log cannot be used afterwards."""
        if self._closed:
            return
        for parts in self._topics.values():
            for part in parts:
                part.close()
        self._closed = True

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Producer:
    """The Kafka-producer face of a :class:`Log`: ``send`` and ``flush``. See: book/ch09_streaming.md"""

    def __init__(self, log: Log) -> None:
        self.log = log

    def send(
        self, topic: str, value: bytes, *, key: bytes | None = None, timestamp: int = 0, partition: int | None = None
    ) -> tuple[int, int]:
        """Append one record; return its ``(partition, offset)``."""
        return self.log.append(topic, value, key=key, timestamp=timestamp, partition=partition)

    def flush(self) -> None:
        """Make every sent record durable."""
        self.log.flush()


class Consumer:
    """A member of a consumer group, assigned every partition of its topics.

    It starts at the group's committed offsets (else the earliest or latest offset),
    polls round robin between partitions and commits when its work is done: records
    polled but not committed are delivered again after a crash (at-least-once).
    See: book/ch09_streaming.md
    """

    def __init__(self, log: Log, group: str, topics: Sequence[str], *, auto_offset_reset: str = "earliest") -> None:
        if isinstance(topics, str) or not isinstance(topics, Sequence):
            raise TypeError(f"topics must be a sequence of topic names, got {topics!r}")
        if auto_offset_reset not in ("earliest", "latest"):
            raise ValueError(f"auto_offset_reset must be 'earliest' or 'latest', got {auto_offset_reset!r}")
        _check_name("group", group)
        counts = {t: len(log._partitions(t)) for t in dict.fromkeys(topics)}
        self.log, self.group = log, group
        self._assigned = [(t, p) for t, n in counts.items() for p in range(n)]
        self._positions: dict[tuple[str, int], int] = {}
        for t, p in self._assigned:
            committed = log.committed(group, t, p)
            reset = 0 if auto_offset_reset == "earliest" else log.end_offset(t, p)
            self._positions[(t, p)] = reset if committed is None else committed
        self._next = 0  # the partition the next poll starts with

    def assignment(self) -> list[tuple[str, int]]:
        """The (topic, partition) pairs this consumer reads."""
        return list(self._assigned)

    def _assigned_pair(self, topic: str, partition: int) -> tuple[str, int]:
        pair = (topic, check_int(partition, "partition"))
        if pair not in self._positions:
            raise LogError(f"{topic}/{partition} is not assigned to this consumer (assignment: {self._assigned})")
        return pair

    def poll(self, max_records: int = 1000) -> list[Record]:
        """Up to ``max_records`` records, one partition after another in turn; advances the positions."""
        limit = check_int(max_records, "max_records", low=1, error=LogError)
        n = len(self._assigned)
        order = [self._assigned[(self._next + i) % n] for i in range(n)]
        cursor = {pair: self._positions[pair] for pair in order}
        ends = {pair: self.log.end_offset(*pair) for pair in order}
        picks: list[tuple[str, int]] = []  # the partition of each record, in delivery order
        while len(picks) < limit:  # deal records out: one per partition per round
            ready = [pair for pair in order if cursor[pair] < ends[pair]][: limit - len(picks)]
            if not ready:
                break
            for pair in ready:
                cursor[pair] += 1
            picks += ready
        batches = {
            pair: iter(self.log.read(*pair, self._positions[pair], cursor[pair] - self._positions[pair]))
            for pair in set(picks)
        }
        records = [next(batches[pair]) for pair in picks]
        self._positions.update(cursor)
        if picks:  # the next poll starts after the partition served last
            self._next = (self._next + order.index(picks[-1]) + 1) % n
        return records

    def commit(self, offsets: Mapping[tuple[str, int], int] | None = None) -> None:
        """Commit ``offsets`` for the group (default: the current positions)."""
        self.log.commit(self.group, dict(self._positions) if offsets is None else offsets)

    def position(self, topic: str, partition: int) -> int:
        """The offset the next poll reads from in this partition."""
        return self._positions[self._assigned_pair(topic, partition)]

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Move a position, to replay from ``offset`` (0 <= offset <= end offset)."""
        pair = self._assigned_pair(topic, partition)
        o, end = check_int(offset, "offset"), self.log.end_offset(*pair)
        if not 0 <= o <= end:
            raise LogError(f"cannot seek {topic}/{partition} to {o}: offsets run 0..{end}")
        self._positions[pair] = o

    def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed offset for a partition, or None."""
        return self.log.committed(self.group, topic, partition)

    def lag(self) -> int:
        """Records between the positions and the end offsets, over all assigned partitions."""
        return sum(self.log.end_offset(*pair) - pos for pair, pos in self._positions.items())
