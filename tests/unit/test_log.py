"""Tests for the append-only log: offsets, partitions, consumer groups, durability and recovery."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from monolith_ref.streaming.log import Consumer, CorruptLogError, Log, LogError, Producer, Record


@pytest.fixture(params=["memory", "disk"])
def log(request, tmp_path):
    """The same semantics must hold in memory and on disk."""
    lg = Log(None if request.param == "memory" else tmp_path / "log")
    yield lg
    lg.close()


def segments(path: Path, topic: str, partition: int = 0) -> list[Path]:
    return sorted((path / topic / str(partition)).glob("*.log"))


def values_of(records: list[Record]) -> list[bytes]:
    return [r.value for r in records]


# =========================================================================== offsets and reads


def test_offsets_are_dense_per_partition_and_start_at_zero(log):
    log.create_topic("t", partitions=2)
    assert [log.append("t", b"a", partition=0), log.append("t", b"b", partition=1)] == [(0, 0), (1, 0)]
    assert log.append("t", b"c", partition=0) == (0, 1)
    home = log.partition_for("t", b"k")
    end = log.end_offset("t", home)
    assert log.append_many("t", [b"d", b"e"], keys=[b"k", b"k"]) == [(home, end), (home, end + 1)]
    assert log.end_offset("t", 0) + log.end_offset("t", 1) == 5
    for p in (0, 1):
        assert [r.offset for r in log.read("t", p, 0)] == list(range(log.end_offset("t", p)))


def test_read_replays_from_any_offset_and_past_the_end_is_empty(log):
    log.create_topic("t")
    log.append_many("t", [bytes([i]) for i in range(10)], timestamps=list(range(100, 110)))
    assert values_of(log.read("t", 0, 7)) == [b"\x07", b"\x08", b"\x09"]
    assert log.read("t", 0, 3, max_records=2) == [
        Record("t", 0, 3, 103, None, b"\x03"),
        Record("t", 0, 4, 104, None, b"\x04"),
    ]
    assert log.read("t", 0, 10) == [] and log.read("t", 0, 99) == []


def test_bad_topic_partition_or_offset_raise_log_error_and_change_nothing(log):
    log.create_topic("t", partitions=2)
    log.append("t", b"x", partition=1)
    with pytest.raises(LogError, match="unknown topic 'nope'"):
        log.append("nope", b"x")
    with pytest.raises(LogError, match="partitions 0..1, got partition 2"):
        log.append("t", b"x", partition=2)
    with pytest.raises(LogError, match="partition -1"):
        log.read("t", -1, 0)
    with pytest.raises(LogError, match="offset must be >= 0"):
        log.read("t", 1, -1)
    with pytest.raises(LogError, match="unknown topic"):
        log.end_offset("u", 0)
    with pytest.raises(LogError, match="max_records"):
        log.read("t", 1, 0, max_records=0)
    assert log.topics() == {"t": 2} and [log.end_offset("t", p) for p in (0, 1)] == [0, 1]


def test_types_are_validated_not_coerced(log):
    log.create_topic("t")
    with pytest.raises(TypeError, match="value must be bytes, got str"):
        log.append("t", "hello")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key must be bytes"):
        log.append("t", b"v", key="k")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timestamp must be an integer"):
        log.append("t", b"v", timestamp=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timestamp must be an integer"):
        log.append("t", b"v", timestamp=True)
    with pytest.raises(TypeError, match="value must be bytes"):  # one bad item: the whole batch is refused
        log.append_many("t", [b"ok", "bad", b"ok"])  # type: ignore[list-item]
    with pytest.raises(LogError, match="keys has 1 items but values has 2"):
        log.append_many("t", [b"a", b"b"], keys=[b"k"])
    with pytest.raises(TypeError, match="topic must be a str"):
        log.append(b"t", b"v")  # type: ignore[arg-type]
    assert log.end_offset("t", 0) == 0
    # bytes-like values and numpy integers are fine
    assert log.append("t", bytearray(b"v"), timestamp=np.int64(7), partition=np.int64(0)) == (0, 0)
    assert log.read("t", 0, 0)[0] == Record("t", 0, 0, 7, None, b"v")


def test_create_topic_is_idempotent_and_checks_its_arguments(log):
    log.create_topic("t", partitions=3)
    log.create_topic("t", partitions=3)
    with pytest.raises(LogError, match="exists with 3 partitions, not 2"):
        log.create_topic("t", partitions=2)
    with pytest.raises(LogError, match="at least 1 partition"):
        log.create_topic("u", partitions=0)
    for bad in ("", "a/b", "..", "__offsets__", "x" * 201):
        with pytest.raises(LogError, match="topic name"):
            log.create_topic(bad)
    assert log.topics() == {"t": 3}


def test_record_is_frozen():
    with pytest.raises(AttributeError):
        Record("t", 0, 0, 0, None, b"v").value = b"w"  # type: ignore[misc]


def test_closed_log_refuses_work(tmp_path):
    with Log(tmp_path) as lg:
        lg.create_topic("t")
    with pytest.raises(LogError, match="closed"):
        lg.append("t", b"v")
    lg.close()  # closing twice is fine


# =========================================================================== partitioning


def test_keyed_records_always_land_in_the_same_partition(log):
    log.create_topic("t", partitions=8)
    keys = [f"user-{i}".encode() for i in range(50)]
    first = {k: log.append("t", b"1", key=k)[0] for k in keys}
    again = log.append_many("t", [b"2"] * 50, keys=keys)
    assert [p for p, _ in again] == [first[k] for k in keys]
    # the documented partitioner: blake2b(key, digest_size=8), little-endian, mod partitions
    expected = {k: int.from_bytes(hashlib.blake2b(k, digest_size=8).digest(), "little") % 8 for k in keys}
    assert first == expected and len(set(first.values())) > 4
    assert all(log.partition_for("t", k) == expected[k] for k in keys)


def test_none_keys_go_round_robin(log):
    log.create_topic("t", partitions=3)
    assert [log.append("t", b"v")[0] for _ in range(4)] == [0, 1, 2, 0]
    assert [p for p, _ in log.append_many("t", [b"v"] * 5)] == [1, 2, 0, 1, 2]
    assert [log.end_offset("t", p) for p in range(3)] == [3, 3, 3]


def test_explicit_partition_wins(log):
    log.create_topic("t", partitions=4)
    assert log.append("t", b"v", key=b"k", partition=3) == (3, 0)


def test_append_many_is_fast(tmp_path):
    values = [bytes(100)] * 100_000
    for lg, budget in ((Log(), 1.0), (Log(tmp_path, fsync=True), 3.0)):
        lg.create_topic("t", partitions=4)
        start = time.perf_counter()
        lg.append_many("t", values, keys=[i.to_bytes(4, "little") for i in range(100_000)], timestamps=range(100_000))
        lg.flush()
        assert time.perf_counter() - start < budget
        assert sum(lg.end_offset("t", p) for p in range(4)) == 100_000
        lg.close()


# =========================================================================== consumers


def test_consumer_groups_are_independent(log):
    log.create_topic("t", partitions=2)
    log.append_many("t", [bytes([i]) for i in range(6)])
    a, b = Consumer(log, "a", ["t"]), Consumer(log, "b", ["t"])
    assert sorted(values_of(a.poll())) == sorted(values_of(b.poll())) == [bytes([i]) for i in range(6)]
    a.commit()
    assert a.committed("t", 0) == 3 and b.committed("t", 0) is None
    assert Consumer(log, "b", ["t"]).lag() == 6 and Consumer(log, "a", ["t"]).lag() == 0


def test_committed_offsets_survive_reopening(tmp_path):
    with Log(tmp_path) as lg:
        lg.create_topic("t", partitions=2)
        lg.append_many("t", [b"a", b"b", b"c", b"d"])
        c = Consumer(lg, "g", ["t"])
        c.poll(max_records=3)
        c.commit()
    with Log(tmp_path) as lg:
        assert (lg.committed("g", "t", 0), lg.committed("g", "t", 1)) == (2, 1)
        c = Consumer(lg, "g", ["t"])
        assert [(r.partition, r.offset, r.value) for r in c.poll()] == [(1, 1, b"d")]
    offsets = json.loads((tmp_path / "__offsets__" / "g.json").read_text())
    assert offsets == {"t": {"0": 2, "1": 1}}


def test_crash_before_commit_delivers_again_at_least_once(tmp_path):
    with Log(tmp_path) as lg:
        lg.create_topic("t")
        lg.append_many("t", [b"1", b"2", b"3"])
        c = Consumer(lg, "g", ["t"])
        assert values_of(c.poll(max_records=2)) == [b"1", b"2"]
        c.commit()
        assert values_of(c.poll()) == [b"3"]  # processed, then the worker dies before committing
    with Log(tmp_path) as lg:
        c = Consumer(lg, "g", ["t"])
        assert values_of(c.poll()) == [b"3"]  # delivered again
        c.commit()
    with Log(tmp_path) as lg:
        assert Consumer(lg, "g", ["t"]).poll() == []  # committed: not again


def test_auto_offset_reset(log):
    log.create_topic("t")
    log.append_many("t", [b"old"] * 3)
    latest = Consumer(log, "new", ["t"], auto_offset_reset="latest")
    assert latest.position("t", 0) == 3 and latest.poll() == []
    log.append("t", b"fresh")
    assert values_of(latest.poll()) == [b"fresh"]
    assert Consumer(log, "other", ["t"]).position("t", 0) == 0
    with pytest.raises(ValueError, match="auto_offset_reset"):
        Consumer(log, "x", ["t"], auto_offset_reset="smallest")
    with pytest.raises(LogError, match="unknown topic"):
        Consumer(log, "x", ["t", "missing"])


def test_seek_then_poll_replays(log):
    log.create_topic("t")
    log.append_many("t", [bytes([i]) for i in range(5)])
    c = Consumer(log, "g", ["t"])
    c.poll()
    c.seek("t", 0, 2)
    assert c.position("t", 0) == 2 and values_of(c.poll()) == [b"\x02", b"\x03", b"\x04"]
    c.seek("t", 0, 5)
    assert c.poll() == []
    with pytest.raises(LogError, match="cannot seek t/0 to 6"):
        c.seek("t", 0, 6)
    with pytest.raises(LogError, match="not assigned"):
        c.seek("t", 1, 0)
    assert c.position("t", 0) == 5


def test_poll_goes_round_robin_between_partitions(log):
    log.create_topic("a", partitions=2)
    log.create_topic("b")
    for p in (0, 1):
        for i in range(3):
            log.append("a", f"a{p}-{i}".encode(), partition=p)
    log.append("b", b"b0-0")
    c = Consumer(log, "g", ["a", "b"])
    assert c.assignment() == [("a", 0), ("a", 1), ("b", 0)]
    assert values_of(c.poll(4)) == [b"a0-0", b"a1-0", b"b0-0", b"a0-1"]
    # the next poll starts after the partition served last, and skips drained ones
    assert values_of(c.poll(3)) == [b"a1-1", b"a0-2", b"a1-2"]
    assert c.poll() == [] and c.lag() == 0


def test_lag_counts_records_between_positions_and_ends(log):
    log.create_topic("t", partitions=3)
    c = Consumer(log, "g", ["t"])
    assert c.lag() == 0
    log.append_many("t", [b"v"] * 9)
    assert c.lag() == 9
    c.poll(4)
    assert c.lag() == 5
    assert [c.position("t", p) for p in range(3)] == [2, 1, 1]
    c.seek("t", 0, 0)
    assert c.lag() == 7


def test_commit_is_validated_and_atomic(log):
    log.create_topic("t", partitions=2)
    log.append("t", b"v", partition=0)
    log.commit("g", {("t", 0): 1})
    for offsets, error in (
        ({("t", 0): 0, ("t", 1): 1}, "outside 0..0"),  # one bad offset: nothing is committed
        ({("t", 0): -1}, "outside"),
        ({("t", 2): 0}, "partition 2"),
        ({("u", 0): 0}, "unknown topic"),
    ):
        with pytest.raises(LogError, match=error):
            log.commit("g", offsets)
    with pytest.raises(TypeError, match="pairs"):
        log.commit("g", {"t": 0})  # type: ignore[dict-item]
    with pytest.raises(LogError, match="group name"):
        log.commit("a/b", {("t", 0): 0})
    assert log.committed("g", "t", 0) == 1 and log.committed("g", "t", 1) is None
    log.commit("g", {("t", 0): 0})  # moving back (to reprocess) is allowed
    assert log.committed("g", "t", 0) == 0


def test_producer_sends_to_the_log(tmp_path):
    with Log(tmp_path) as lg:
        lg.create_topic("t", partitions=2)
        producer = Producer(lg)
        assert producer.send("t", b"v", key=b"k", timestamp=5) == (lg.partition_for("t", b"k"), 0)
        producer.flush()
        size = sum(f.stat().st_size for p in (0, 1) for f in segments(tmp_path, "t", p))
        assert size == 32 + 1 + 1  # header, key, value: on disk after flush


# =========================================================================== durability and recovery


def test_disk_layout(tmp_path):
    with Log(tmp_path) as lg:
        lg.create_topic("clicks", partitions=2)
        lg.append("clicks", b"v", partition=1)
        lg.commit("trainer", {("clicks", 1): 1})
    assert json.loads((tmp_path / "clicks" / "meta.json").read_text()) == {"partitions": 2}
    assert [f.name for f in segments(tmp_path, "clicks", 1)] == ["0" * 20 + ".log"]
    assert segments(tmp_path, "clicks", 0) == []
    assert (tmp_path / "__offsets__" / "trainer.json").exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_none_key_and_empty_key_survive_reopening_distinct(tmp_path):
    with Log(tmp_path) as lg:
        lg.create_topic("t")
        lg.append_many("t", [b"", b"x", b"y"], keys=[None, b"", b"k"], timestamps=[-5, 2**63 - 1, 0])
    with Log(tmp_path) as lg:
        got = [(r.key, r.value, r.timestamp) for r in lg.read("t", 0, 0)]
        assert got == [(None, b"", -5), (b"", b"x", 2**63 - 1), (b"k", b"y", 0)]


def _write_then_tear(tmp_path: Path) -> Path:
    """Ten committed records, five more flushed; return the one segment file."""
    with Log(tmp_path) as lg:
        lg.create_topic("t")
        lg.append_many("t", [f"rec-{i}".encode() for i in range(10)], timestamps=list(range(10)))
        lg.commit("g", {("t", 0): 10})
        lg.append_many("t", [f"rec-{i}".encode() for i in range(10, 15)], timestamps=list(range(10, 15)))
        lg.flush()
    [seg] = segments(tmp_path, "t")
    return seg


def test_torn_last_record_is_truncated_and_appends_continue(tmp_path):
    seg = _write_then_tear(tmp_path)
    size = seg.stat().st_size
    os.truncate(seg, size - 7)  # the crash cut the last record short
    with Log(tmp_path) as lg:
        assert lg.recovered_bytes == 32 + 6 - 7
        assert lg.end_offset("t", 0) == 14
        assert values_of(lg.read("t", 0, 0)) == [f"rec-{i}".encode() for i in range(14)]
        assert lg.committed("g", "t", 0) == 10
        assert lg.append("t", b"after") == (0, 14)
    assert seg.stat().st_size == size - (32 + 6) + 32 + 5
    with Log(tmp_path) as lg:
        assert lg.recovered_bytes == 0
        assert values_of(lg.read("t", 0, 13)) == [b"rec-13", b"after"]


def test_torn_header_is_truncated(tmp_path):
    seg = _write_then_tear(tmp_path)
    with open(seg, "ab") as f:
        f.write(b"MLG1\x00\x01")  # a header cut short
    with Log(tmp_path) as lg:
        assert lg.recovered_bytes == 6 and lg.end_offset("t", 0) == 15


def test_crc_mismatch_in_the_final_record_is_truncated(tmp_path):
    seg = _write_then_tear(tmp_path)
    data = bytearray(seg.read_bytes())
    data[-2] ^= 0xFF  # a flipped byte in the value of the last record
    seg.write_bytes(bytes(data))
    with Log(tmp_path) as lg:
        assert lg.recovered_bytes == 32 + 6
        assert lg.end_offset("t", 0) == 14
        assert lg.read("t", 0, 13)[0].value == b"rec-13"


def test_damage_below_a_committed_offset_is_corruption_not_a_torn_tail(tmp_path):
    seg = _write_then_tear(tmp_path)
    data = bytearray(seg.read_bytes())
    data[3 * (32 + 5)] = ord("X")  # bad magic in record 3, which group g has committed past
    seg.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError, match="bad magic .* below committed offset 10"):
        Log(tmp_path)
    assert seg.read_bytes() == bytes(data)  # nothing was truncated


def test_damage_in_a_sealed_segment_is_corruption(tmp_path):
    with Log(tmp_path, segment_bytes=100, fsync=False) as lg:
        lg.create_topic("t")
        lg.append_many("t", [b"v" * 20] * 10)
    first = segments(tmp_path, "t")[0]
    data = bytearray(first.read_bytes())
    data[-1] ^= 1
    first.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError, match="CRC mismatch .* sealed segment"):
        Log(tmp_path)


def test_leftover_temp_files_are_ignored(tmp_path):
    with Log(tmp_path) as lg:
        lg.create_topic("t")
        lg.append("t", b"v")
        lg.commit("g", {("t", 0): 1})
    (tmp_path / "__offsets__" / "g.json.tmp").write_bytes(b'{"t": {"0": ')  # a commit torn mid-write
    (tmp_path / "__offsets__" / "h.json.tmp").write_bytes(b"")
    (tmp_path / "u").mkdir()  # create_topic torn before meta.json was in place
    (tmp_path / "u" / "meta.json.tmp").write_bytes(b"{")
    with Log(tmp_path) as lg:
        assert lg.committed("g", "t", 0) == 1 and lg.committed("h", "t", 0) is None
        assert lg.topics() == {"t": 1}
        lg.commit("g", {("t", 0): 0})
        lg.create_topic("u", partitions=2)
    with Log(tmp_path) as lg:
        assert lg.committed("g", "t", 0) == 0 and lg.topics() == {"t": 1, "u": 2}


def test_a_group_called_meta_is_not_a_topic(tmp_path):
    with Log(tmp_path) as lg:
        lg.create_topic("t")
        lg.commit("meta", {("t", 0): 0})
    with Log(tmp_path) as lg:
        assert lg.topics() == {"t": 1} and lg.committed("meta", "t", 0) == 0


def test_segments_roll_and_reopen_reads_everything(tmp_path):
    values = [f"value-{i:04d}".encode() for i in range(500)]
    with Log(tmp_path, segment_bytes=1000, fsync=False) as lg:
        lg.create_topic("t", partitions=2)
        lg.append_many("t", values[:300], keys=[bytes([i % 7]) for i in range(300)])
        for i in range(300, 500):
            lg.append("t", values[i], key=bytes([i % 7]))
        expected = [values_of(lg.read("t", p, 0, max_records=500)) for p in (0, 1)]
    files = segments(tmp_path, "t", 0) + segments(tmp_path, "t", 1)
    assert len(files) > 20 and all(f.stat().st_size < 1000 + 50 for f in files)
    with Log(tmp_path, segment_bytes=1000) as lg:
        assert [values_of(lg.read("t", p, 0, max_records=500)) for p in (0, 1)] == expected
        assert sorted(expected[0] + expected[1]) == values
        for p in (0, 1):  # each segment is named after its first offset
            bases = [int(f.stem) for f in segments(tmp_path, "t", p)]
            assert all(lg.read("t", p, b)[0].offset == b for b in bases)


def test_a_record_with_the_wrong_offset_ends_the_log(tmp_path):
    with Log(tmp_path / "other") as other:
        other.create_topic("t")
        other.append("t", b"stray")  # offset 0
    with Log(tmp_path / "log") as lg:
        lg.create_topic("t")
        lg.append("t", b"mine")
    [seg] = segments(tmp_path / "log", "t")
    with open(seg, "ab") as f:
        f.write(segments(tmp_path / "other", "t")[0].read_bytes())  # a valid record, but offset 0, not 1
    with Log(tmp_path / "log") as lg:
        assert lg.recovered_bytes == 32 + 5 and values_of(lg.read("t", 0, 0)) == [b"mine"]


def test_reopening_with_a_missing_segment_is_corruption(tmp_path):
    with Log(tmp_path, segment_bytes=100, fsync=False) as lg:
        lg.create_topic("t")
        lg.append_many("t", [b"v" * 20] * 10)
    segments(tmp_path, "t")[1].unlink()
    with pytest.raises(CorruptLogError, match="starts at offset"):
        Log(tmp_path)


# =========================================================================== property: the log is a dict of lists

appends = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.one_of(st.none(), st.binary(max_size=3)),  # key
        st.one_of(st.none(), st.integers(0, 2)),  # explicit partition
        st.binary(max_size=40),  # value
        st.integers(-(2**63), 2**63 - 1),  # timestamp
        st.booleans(),  # reopen the log after this append
    ),
    max_size=40,
)


@settings(max_examples=40)
@given(ops=appends, segment_bytes=st.integers(40, 400))
def test_reads_after_reopening_give_back_exactly_what_was_appended(ops, segment_bytes):
    counts = {"a": 1, "b": 3}
    model: dict[tuple[str, int], list[tuple[bytes | None, bytes, int]]] = {
        (t, p): [] for t, n in counts.items() for p in range(n)
    }
    key_home: dict[tuple[str, bytes], int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        lg = Log(tmp, segment_bytes=segment_bytes, fsync=False)
        for t, n in counts.items():
            lg.create_topic(t, partitions=n)
        for topic, key, partition, value, ts, reopen in ops:
            partition = None if partition is None else partition % counts[topic]
            p, offset = lg.append(topic, value, key=key, timestamp=ts, partition=partition)
            if partition is not None:
                assert p == partition
            elif key is not None:
                assert key_home.setdefault((topic, key), p) == p
            assert offset == len(model[(topic, p)])
            model[(topic, p)].append((key, value, ts))
            if reopen:
                lg.close()
                lg = Log(tmp, segment_bytes=segment_bytes, fsync=False)
        lg.close()
        with Log(tmp, segment_bytes=segment_bytes, fsync=False) as lg:
            assert lg.recovered_bytes == 0
            for (topic, p), expected in model.items():
                assert lg.end_offset(topic, p) == len(expected)
                got = lg.read(topic, p, 0, max_records=100)
                assert [(r.key, r.value, r.timestamp) for r in got] == expected
                assert [r.offset for r in got] == list(range(len(expected)))
