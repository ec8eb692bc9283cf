"""The joiner's on-disk store (monolith_ref.streaming.kvstore)."""

from __future__ import annotations

import pytest

from monolith_ref.streaming.kvstore import SQLiteStore, to_signed, to_unsigned

BIG = 2**63 + 12345  # above SQLite's signed range: stored as its two's complement
TOP = 2**64 - 1


@pytest.fixture
def store(tmp_path):
    with SQLiteStore(tmp_path / "store.sqlite") as s:
        yield s


def test_two_complement_mapping_is_a_bijection() -> None:
    for x in (0, 1, 2**63 - 1, 2**63, BIG, TOP):
        assert -(2**63) <= to_signed(x) < 2**63 and to_unsigned(to_signed(x)) == x
    assert to_signed(TOP) == -1 and to_signed(2**63) == -(2**63)


def test_put_get_pop(store) -> None:
    store.put_many([(1, 100, b"one"), (BIG, 50, b"big"), (TOP, 70, b"top")])
    assert len(store) == 3
    assert store.get(1) == (100, b"one") and store.get(BIG) == (50, b"big") and store.get(TOP) == (70, b"top")
    assert store.get(2) is None and store.get(BIG - 2**63) is None  # no aliasing with the small ID
    assert store.pop(BIG) == (50, b"big") and store.get(BIG) is None and store.pop(BIG) is None
    store.put_many([(1, 101, b"uno")])  # same ID: replaced
    assert store.get(1) == (101, b"uno") and len(store) == 2
    assert store.get_many([1, 7, TOP]) == {1: (101, b"uno"), TOP: (70, b"top")}
    store.delete_many([1, 999])
    assert len(store) == 1 and store.index() == [(TOP, 70)]


def test_pop_older_than_returns_by_time_then_id(store) -> None:
    store.put_many([(TOP, 10, b"a"), (5, 10, b"b"), (BIG, 5, b"c"), (7, 20, b"d"), (8, 30, b"e")])
    assert store.min_time() == 5
    assert store.pop_older_than(20) == [(BIG, 5, b"c"), (5, 10, b"b"), (TOP, 10, b"a")]
    assert store.pop_older_than(20) == []
    assert sorted(store.index()) == [(7, 20), (8, 30)] and store.min_time() == 20
    assert store.pop_older_than(10**12) == [(7, 20, b"d"), (8, 30, b"e")] and len(store) == 0
    assert store.min_time() is None


def test_tombstones(store) -> None:
    store.add_tombstones([(1, 100), (BIG, 200, 1)])
    assert store.is_tombstoned(1) and store.is_tombstoned(BIG) and not store.is_tombstoned(2)
    assert store.tombstone(1) == (100, 0) and store.tombstone(BIG) == (200, 1)
    assert store.num_tombstones() == 2
    assert store.prune_tombstones(150) == 1
    assert not store.is_tombstoned(1) and store.is_tombstoned(BIG)
    assert len(store) == 0  # tombstones are not features


def test_write_batch_is_one_transaction_deletes_before_puts(store) -> None:
    store.put_many([(1, 1, b"old")])
    store.write_batch(put=[(1, 2, b"new"), (2, 2, b"two")], delete=[1], tombstones=[(3, 3, 1)])
    assert store.get(1) == (2, b"new") and store.get(2) == (2, b"two") and store.tombstone(3) == (3, 1)
    # a bad row anywhere leaves everything unchanged
    with pytest.raises(ValueError, match=r"\[0, 2\*\*64\)"):
        store.write_batch(put=[(4, 4, b"four")], tombstones=[(-1, 0)])
    with pytest.raises(TypeError, match="payload must be bytes"):
        store.put_many([(5, 5, b"five"), (6, 6, "six")])
    assert store.get(4) is None and store.get(5) is None and len(store) == 2


def test_bad_input_is_refused(store) -> None:
    with pytest.raises(ValueError, match="request ID"):
        store.get(2**64)
    with pytest.raises(TypeError, match="request ID"):
        store.get(1.5)
    with pytest.raises(TypeError, match="time"):
        store.put_many([(1, "noon", b"x")])
    with pytest.raises(ValueError, match="signed 64-bit"):
        store.pop_older_than(2**63)
    with pytest.raises(ValueError, match=r"\(request_id, time, payload\)"):
        store.put_many([(1, 2)])
    with pytest.raises(ValueError, match="tombstone"):
        store.add_tombstones([(1,)])


def test_reopening_keeps_the_data(tmp_path) -> None:
    path = tmp_path / "joiner.sqlite"
    with SQLiteStore(path) as s:
        s.put_many([(BIG, 9, b"payload"), (3, 4, b"p3")])
        s.add_tombstones([(TOP, 1, 1)])
    with SQLiteStore(str(path)) as s:
        assert s.get(BIG) == (9, b"payload") and len(s) == 2 and s.tombstone(TOP) == (1, 1)


def test_closed_store_and_bad_files(tmp_path) -> None:
    s = SQLiteStore(tmp_path / "s.sqlite")
    s.close()
    s.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        s.get(1)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="not a usable SQLite database"):
        SQLiteStore(junk)
    with pytest.raises(ValueError, match="cannot open"):
        SQLiteStore(tmp_path / "no" / "such" / "dir" / "s.sqlite")
