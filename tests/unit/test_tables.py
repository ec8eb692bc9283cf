"""Unit tests for the table module pieces that the conformance suite does not cover."""

from __future__ import annotations

import numpy as np
import pytest

from monolith_ref.hashing import bucket_of
from monolith_ref.optim import SGD
from monolith_ref.tables import DictTable, HashedTable, QRHashedTable, TableConfig, initial_rows
from monolith_ref.tables.base import check_ids


def test_initial_rows_are_deterministic_and_in_range() -> None:
    ids = np.array([1, 2, 3, 2**64 - 1], dtype=np.uint64)
    a = initial_rows(5, ids, 16, 0.1)
    assert a.dtype == np.float32 and a.shape == (4, 16)
    assert np.array_equal(a, initial_rows(5, ids, 16, 0.1))
    assert np.array_equal(a[1:2], initial_rows(5, ids[1:2], 16, 0.1))
    assert np.abs(a).max() <= 0.1 and np.abs(a).mean() > 0.02
    assert not np.array_equal(a, initial_rows(6, ids, 16, 0.1))
    # a wider row starts with the same values: column j depends only on (seed, id, j)
    assert np.array_equal(initial_rows(5, ids, 20, 0.1)[:, :16], a)
    assert not initial_rows(0, ids, 4, 0.0).any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": 0}, "dim"),
        ({"dim": 2.5}, "dim"),
        ({"dim": 4, "seed": -1}, "seed"),
        ({"dim": 4, "ttl": -5}, "ttl"),
        ({"dim": 4, "ttl": 1.5}, "ttl"),
        ({"dim": 4, "init_scale": float("nan")}, "init_scale"),
        ({"dim": 4, "optimizer": "sgd"}, "optimizer"),
        ({"dim": 4, "filter": 3}, "filter"),
    ],
)
def test_table_config_refuses_bad_settings(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        TableConfig(**kwargs)


def test_sgd_refuses_bad_learning_rates() -> None:
    for lr in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="learning rate"):
            SGD(lr=lr)


def test_tables_need_a_config() -> None:
    with pytest.raises(TypeError, match="TableConfig"):
        DictTable({"dim": 4})  # type: ignore[arg-type]


def test_check_ids_accepts_big_python_ints() -> None:
    assert check_ids([2**64 - 1, 0]).tolist() == [2**64 - 1, 0]
    assert check_ids(np.array([], dtype=np.int64)).dtype == np.uint64


def test_hashed_table_shares_rows_between_colliding_ids() -> None:
    table = HashedTable(TableConfig(dim=3, seed=1, optimizer=SGD(lr=1.0)), num_rows=4, method="mod")
    a, b = 1, 5  # 1 % 4 == 5 % 4
    assert np.array_equal(table.lookup([a], 0), table.lookup([b], 0))
    before = table.lookup([b], 0)
    table.apply_gradients([a], np.ones((1, 3), dtype=np.float32))
    assert np.array_equal(table.lookup([b], 0), before - 1.0), "training a moves b"
    assert table.rows_of([a, b]).tolist() == [1, 1]
    assert table.touched_ids().tolist() == [1]


def test_hashed_tables_refuse_ttl_and_filters() -> None:
    with pytest.raises(ValueError, match="ttl=None"):
        HashedTable(TableConfig(dim=2, ttl=10), num_rows=4)
    with pytest.raises(ValueError, match="ttl=None"):
        QRHashedTable(TableConfig(dim=2, ttl=10), remainder_bits=2, quotient_rows=2)
    with pytest.raises(ValueError, match="num_rows"):
        HashedTable(TableConfig(dim=2), num_rows=0)
    with pytest.raises(ValueError, match="unknown hash method"):
        HashedTable(TableConfig(dim=2), num_rows=3, method="crc")


def test_qr_table_sums_its_two_parts() -> None:
    cfg = TableConfig(dim=2, seed=4)
    table = QRHashedTable(cfg, remainder_bits=3, quotient_rows=5)
    ids = np.array([0, 9, 2**40 + 3], dtype=np.uint64)
    rem, quo = table.parts_of(ids)
    assert rem.tolist() == [0, 1, 3] and quo.tolist() == [0, 1, (2**37) % 5]
    state = table.export()
    expected = state["remainder/embeddings"][rem] + state["quotient/embeddings"][quo]
    assert np.array_equal(table.lookup(ids, 0), expected)
    assert len(table) == 8 + 5 and table.memory_bytes() == 13 * 2 * 4
    # two IDs that agree on both parts collide; agreeing on one part shares half the vector
    assert np.array_equal(table.lookup([1], 0), table.lookup([1 + 8 * 5], 0))


@pytest.mark.parametrize("dim", [8, 256])
def test_dict_table_memory_is_accounted_per_row(dim) -> None:
    table = DictTable(TableConfig(dim=dim))
    table.lookup(list(range(100)), now=0)
    per_row = table.memory_bytes() / 100
    assert dim * 4 < per_row < dim * 4 + 2000, "each row owns its embedding's bytes"


def test_md5_table_rows_match_bucket_of() -> None:
    table = HashedTable(TableConfig(dim=2), num_rows=10)
    ids = np.array([3, 99, 2**50], dtype=np.uint64)
    assert np.array_equal(table.rows_of(ids), bucket_of(ids, 10, "md5"))


def test_evict_lru_keeps_the_most_recently_seen_rows() -> None:
    from monolith_ref.tables import CuckooTable

    for cls in (DictTable, CuckooTable):
        table = cls(TableConfig(dim=2))
        table.lookup([1, 2, 3], now=0)
        table.lookup([4], now=5)
        table.lookup([1], now=9)
        table.pop_touched()
        assert table.evict_lru(2) == 2
        assert sorted(int(k) for k in table.export()["ids"]) == [1, 4]
        assert table.pop_touched().tolist() == [2, 3]
        assert table.evict_lru(5) == 0
        with pytest.raises(ValueError, match="max_rows"):
            table.evict_lru(-1)
