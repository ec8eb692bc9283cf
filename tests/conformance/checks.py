"""The table conformance suite: checks that every table implementation must pass.

Each check is a plain function taking a :class:`TableImpl`; test modules parametrize them over
the implementations (``test_conformance.py``) and the exercise graders run the same checks
against a learner's table. A new table joins with one line in ``IMPLS`` below.

Checks marked ``collisionless`` describe a dynamic table (insert on miss, expiry, rows keyed
by ID); the fixed-size collision baselines run only the others.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import pytest

from monolith_ref.optim import SGD
from solutions.ex03_ttl_table import TTLDictTable
from monolith_ref.tables import (
    CuckooTable,
    DictTable,
    NumbaTable,
    ShardedTable,
    HashedTable,
    QRHashedTable,
    StateMismatchError,
    TableConfig,
    initial_rows,
)


@dataclass(frozen=True)
class TableImpl:
    """A table implementation under test: a name, a factory, and what kind of table it is."""

    name: str
    make: Callable[[TableConfig], object]
    collisionless: bool = True
    shared_filter: bool = True  # one filter for all IDs (False: per-shard filters, state exported per shard)
    rows_per_id: int = 1  # how many stored rows an ID's embedding sums (2 for quotient-remainder)

    def __str__(self) -> str:
        return self.name


def fixed_config(config: TableConfig) -> TableConfig:
    """Fixed-size tables take no TTL and no filter."""
    return replace(config, ttl=None, filter=None)


IMPLS: list[TableImpl] = [
    TableImpl("DictTable", DictTable),
    TableImpl("TTLDictTable-solution-3.1", TTLDictTable),
    TableImpl("CuckooTable", CuckooTable),
    TableImpl("CuckooTable-tiny", lambda c: CuckooTable(c, capacity=1, max_kicks=4)),  # rehashes a lot
    TableImpl("NumbaTable", NumbaTable),
    TableImpl("NumbaTable-tiny", lambda c: NumbaTable(c, capacity=1, max_kicks=2)),  # grows a lot
    TableImpl("ShardedTable", lambda c: ShardedTable(c, num_shards=3), shared_filter=False),
    TableImpl("ShardedTable-dict-serial", lambda c: ShardedTable(c, num_shards=2, shard_factory=DictTable, threads=1),
              shared_filter=False),
    TableImpl("HashedTable", lambda c: HashedTable(fixed_config(c), num_rows=64), collisionless=False),
    TableImpl(
        "QRHashedTable",
        lambda c: QRHashedTable(fixed_config(c), remainder_bits=4, quotient_rows=16),
        collisionless=False,
        rows_per_id=2,
    ),
]

BIG = 2**64 - 1  # the largest ID: must work everywhere
CFG = TableConfig(dim=4, seed=3, ttl=100, optimizer=SGD(lr=0.5))


def snapshot(table) -> dict[str, np.ndarray]:
    """Everything observable about a table's contents, for "unchanged" checks."""
    state = {k: v.copy() for k, v in table.export().items()}
    state["__len__"] = np.array(len(table))
    state["__touched__"] = table.touched_ids()
    return state


def assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert np.array_equal(a[key], b[key]), key


# =========================================================================== all tables


def check_lookup_shape_and_dtype(impl: TableImpl) -> None:
    table = impl.make(CFG)
    out = table.lookup(np.array([1, 2, 3], dtype=np.uint64), now=0)
    assert out.dtype == np.float32 and out.shape == (3, CFG.dim)
    empty = table.lookup(np.array([], dtype=np.uint64), now=0)
    assert empty.dtype == np.float32 and empty.shape == (0, CFG.dim)


def check_accepts_id_forms(impl: TableImpl) -> None:
    """uint64, non-negative int64, other integer dtypes and Python lists give the same rows."""
    table = impl.make(CFG)
    ref = table.lookup(np.array([5, 9, BIG], dtype=np.uint64), now=0)
    assert np.array_equal(table.lookup([5, 9, BIG], now=0), ref)
    assert np.array_equal(table.lookup(np.array([5, 9], dtype=np.int64), now=0), ref[:2])
    assert np.array_equal(table.lookup(np.array([5, 9], dtype=np.uint32), now=0), ref[:2])


def check_repeated_ids_read_one_row(impl: TableImpl) -> None:
    table = impl.make(CFG)
    out = table.lookup([8, 8, 1, 8], now=0)
    assert np.array_equal(out[0], out[1]) and np.array_equal(out[0], out[3])


def check_rows_are_a_function_of_seed_and_id(impl: TableImpl) -> None:
    a, b = impl.make(CFG), impl.make(CFG)
    ids = [3, 1, 2**40 + 7, BIG]
    assert np.array_equal(a.lookup(ids, now=0), b.lookup(list(reversed(ids)), now=5)[::-1])
    other = impl.make(replace(CFG, seed=CFG.seed + 1))
    assert not np.array_equal(a.lookup(ids, now=0), other.lookup(ids, now=0))


def check_sgd_step_is_exact(impl: TableImpl) -> None:
    table = impl.make(CFG)
    before = table.lookup([11], now=0)
    grad = np.array([[0.25, -1.0, 3.0, 0.0]], dtype=np.float32)
    table.apply_gradients([11], grad)
    after = table.lookup([11], now=0)
    step = np.float32(CFG.optimizer.lr) * grad
    if impl.rows_per_id == 1:
        assert np.array_equal(after, before - step)
    else:  # every summed row takes the step
        np.testing.assert_allclose(after, before - impl.rows_per_id * step, rtol=1e-6, atol=1e-6)


def check_duplicate_gradients_accumulate(impl: TableImpl) -> None:
    """Gradients of a repeated ID are summed (in batch order), then one step is taken."""
    rng = np.random.default_rng(0)
    g = rng.normal(size=(3, CFG.dim)).astype(np.float32)
    a, b = impl.make(CFG), impl.make(CFG)
    ids = [4, 54]  # chosen to share no row in the fixed-size test tables either
    a.lookup(ids, now=0)
    b.lookup(ids, now=0)
    a.apply_gradients([ids[0], ids[1], ids[0]], g)
    b.apply_gradients(ids, np.stack([g[0] + g[2], g[1]]))
    assert np.array_equal(a.lookup(ids, now=0), b.lookup(ids, now=0))


def check_export_load_round_trip(impl: TableImpl) -> None:
    rng = np.random.default_rng(1)
    a = impl.make(CFG)
    ids = np.array([1, 5, 9, 2**63 + 5], dtype=np.uint64)
    a.lookup(ids, now=10)
    a.apply_gradients(ids, rng.normal(size=(4, CFG.dim)).astype(np.float32))
    state = a.export()
    for value in state.values():
        assert isinstance(value, np.ndarray)
    b = impl.make(CFG)
    b.load(state)
    assert_same_state({k: v for k, v in a.export().items()}, b.export())
    assert len(a) == len(b)
    assert np.array_equal(a.lookup(ids, now=10, train=False), b.lookup(ids, now=10, train=False))


def check_export_is_a_copy(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1, 2], now=0)
    state = table.export()
    before = snapshot(table)
    for value in state.values():
        if value.dtype.kind == "f":
            value += 1.0
    assert_same_state(before, snapshot(table))


def check_load_refuses_mismatched_state(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1, 2, 3], now=0)
    good = table.export()
    before = snapshot(table)
    wider = impl.make(replace(CFG, dim=CFG.dim + 1))
    wider.lookup([1, 2, 3], now=0)
    bad_states = [
        wider.export(),  # another dim
        {k: v for k, v in list(good.items())[1:]},  # a key missing
        {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in good.items()},  # dtypes
        {k: (np.where(np.isfinite(v), np.nan, v) if v.dtype == np.float32 and v.size else v) for k, v in good.items()},
        "not a dict",
    ]
    for bad in bad_states:
        if isinstance(bad, dict) and all(np.array_equal(bad.get(k), v) for k, v in good.items()):
            continue  # the mutation did not change anything for this table (e.g. no floats)
        with pytest.raises(ValueError):
            table.load(bad)  # type: ignore[arg-type]
        assert_same_state(before, snapshot(table))
    # exporting from one table and loading into another with the same dim but wrong shape
    assert isinstance(StateMismatchError("x"), ValueError)


BAD_IDS = [
    ("negative", np.array([1, -1], dtype=np.int64)),
    ("float", np.array([1.0, 2.0])),
    ("nan", np.array([1.0, np.nan])),
    ("2-D", np.array([[1, 2]], dtype=np.uint64)),
    ("0-D", np.array(3, dtype=np.uint64)),
    ("bool", np.array([True, False])),
    ("string", np.array(["1", "2"])),
    ("negative list", [3, -2]),
    ("too big", [2**64]),
    ("mixed list", [1, 2.5]),
]


def check_bad_ids_raise_and_change_nothing(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1, 2], now=0)
    before = snapshot(table)
    for name, bad in BAD_IDS:
        for call in (
            lambda: table.lookup(bad, now=1),
            lambda: table.lookup(bad, now=1, train=False),
            lambda: table.apply_gradients(bad, np.zeros((2, CFG.dim), dtype=np.float32)),
            lambda: table.export(bad),
        ):
            with pytest.raises(ValueError, match="ID"):
                call()
            assert_same_state(before, snapshot(table)), name


def check_bad_grads_raise_and_change_nothing(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1, 2], now=0)
    before = snapshot(table)
    bad_grads = [
        np.zeros((2, CFG.dim + 1), dtype=np.float32),  # wrong width
        np.zeros((3, CFG.dim), dtype=np.float32),  # wrong count
        np.zeros((CFG.dim,), dtype=np.float32),  # wrong rank
        np.array([[0.0] * CFG.dim, [np.nan] * CFG.dim]),  # NaN
        np.array([[0.0] * CFG.dim, [np.inf] * CFG.dim], dtype=np.float32),  # inf
        np.array([[0.0] * CFG.dim, [1e39] * CFG.dim]),  # overflows float32
        np.zeros((2, CFG.dim), dtype=np.int64),  # not floating point
    ]
    for grads in bad_grads:
        with pytest.raises(ValueError, match="gradient"):
            table.apply_gradients([1, 2], grads)
        assert_same_state(before, snapshot(table))


def check_bad_time_raises_and_changes_nothing(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1], now=0)
    before = snapshot(table)
    for now in (1.5, -1, True, "3", None, float("nan"), 2**63):
        with pytest.raises(ValueError, match="now"):
            table.lookup([1, 2], now=now)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="now"):
            table.expire(now)  # type: ignore[arg-type]
        assert_same_state(before, snapshot(table))
    table.lookup([1], now=np.int64(5))  # NumPy integers are fine


def check_contains(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([7], now=0)
    assert 7 in table and np.uint64(7) in table
    for weird in (-1, 1.5, "7", None, 2**64):
        assert (weird in table) is False
    mask = table.contains([7, 7])
    assert mask.dtype == bool and mask.tolist() == [True, True]


def check_memory_bytes_positive(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup(list(range(50)), now=0)
    assert isinstance(table.memory_bytes(), int) and table.memory_bytes() > 50 * CFG.dim * 4 // 2


def check_pop_touched_hands_over_and_clears(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([3, 4], now=0)
    table.apply_gradients([3], np.ones((1, CFG.dim), dtype=np.float32))
    touched = table.pop_touched()
    assert touched.dtype == np.uint64 and touched.size > 0
    assert list(touched) == sorted(touched)
    assert table.pop_touched().size == 0
    table.lookup([3, 4], now=0, train=False)
    assert table.touched_ids().size == 0, "serving lookups change nothing"


# =========================================================================== collisionless


def check_initial_rows_are_the_shared_recipe(impl: TableImpl) -> None:
    table = impl.make(CFG)
    ids = np.array([0, 1, 99, 2**63, BIG], dtype=np.uint64)
    expected = initial_rows(CFG.seed, ids, CFG.dim, CFG.init_scale)
    assert np.array_equal(table.lookup(ids, now=0), expected)
    assert np.abs(expected).max() <= CFG.init_scale


def check_training_lookup_inserts(impl: TableImpl) -> None:
    table = impl.make(CFG)
    assert len(table) == 0 and 5 not in table
    table.lookup([5, 6, 5], now=0)
    assert len(table) == 2 and 5 in table and 6 in table and 7 not in table
    assert table.touched_ids().tolist() == [5, 6]


def check_serving_never_inserts(impl: TableImpl) -> None:
    table = impl.make(CFG)
    trained = table.lookup([1], now=0)
    before = snapshot(table)
    out = table.lookup([1, 2, BIG], now=50, train=False)
    assert np.array_equal(out[0], trained[0])
    assert not out[1:].any(), "unknown IDs read zeros at serving"
    assert_same_state(before, snapshot(table))  # no insert, no refresh, nothing touched


def check_gradients_for_absent_ids_are_dropped(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1], now=0)
    table.pop_touched()
    table.apply_gradients([2, 3], np.ones((2, CFG.dim), dtype=np.float32))
    assert len(table) == 1 and 2 not in table
    assert table.touched_ids().size == 0


def check_expiry_boundary(impl: TableImpl) -> None:
    """A row unseen for exactly ``ttl`` seconds stays; one second more and it goes."""
    table = impl.make(CFG)
    ttl = CFG.ttl
    assert ttl is not None
    table.lookup([1, 2], now=1000)
    table.lookup([2], now=1030)  # refresh 2
    assert table.expire(1000 + ttl) == 0 and len(table) == 2
    table.pop_touched()
    assert table.expire(1000 + ttl + 1) == 1
    assert 1 not in table and 2 in table
    assert table.pop_touched().tolist() == [1], "a removed row is a touched key"
    assert table.expire(1030 + ttl) == 0
    assert table.expire(1030 + ttl + 1) == 1 and len(table) == 0


def check_expired_id_comes_back_fresh(impl: TableImpl) -> None:
    table = impl.make(CFG)
    first = table.lookup([9], now=0)
    table.apply_gradients([9], np.ones((1, CFG.dim), dtype=np.float32))
    table.expire(CFG.ttl + 1)  # type: ignore[operator]
    again = table.lookup([9], now=CFG.ttl + 2)  # type: ignore[operator]
    assert np.array_equal(first, again), "a re-inserted ID starts from its initial row"


def check_no_ttl_never_expires(impl: TableImpl) -> None:
    table = impl.make(replace(CFG, ttl=None))
    table.lookup([1, 2], now=0)
    assert table.expire(2**62) == 0 and len(table) == 2


def check_zero_ttl(impl: TableImpl) -> None:
    table = impl.make(replace(CFG, ttl=0))
    table.lookup([1], now=5)
    assert table.expire(5) == 0 and table.expire(6) == 1


def check_serving_does_not_refresh(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1], now=0)
    table.lookup([1], now=CFG.ttl, train=False)  # type: ignore[arg-type]
    assert table.expire(CFG.ttl + 1) == 1  # type: ignore[operator]


def check_export_subset_and_last_seen(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([30, 10, 20], now=7)
    table.lookup([20], now=9)
    state = table.export()
    assert state["ids"].tolist() == [10, 20, 30]
    assert state["last_seen"].tolist() == [7, 9, 7]
    sub = table.export(np.array([20, 99, 10, 20], dtype=np.uint64))
    assert sub["ids"].tolist() == [10, 20]
    assert np.array_equal(sub["embeddings"], state["embeddings"][:2])


def check_load_replaces_everything(impl: TableImpl) -> None:
    a, b = impl.make(CFG), impl.make(CFG)
    a.lookup([1, 2], now=0)
    b.lookup([3], now=0)
    b.load(a.export())
    assert 3 not in b and len(b) == 2
    assert set(b.pop_touched().tolist()) == {1, 2, 3}


def check_load_refuses_unsorted_or_duplicate_ids(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1, 2], now=0)
    before = snapshot(table)
    state = table.export()
    for ids in ([2, 1], [1, 1]):
        bad = dict(state, ids=np.array(ids, dtype=np.uint64))
        with pytest.raises(StateMismatchError):
            table.load(bad)
        assert_same_state(before, snapshot(table))


def check_memory_grows_with_rows(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup(list(range(3000)), now=0)
    assert table.memory_bytes() >= 3000 * CFG.dim * 4, "every row's embedding is counted"


ALL_CHECKS = [
    check_lookup_shape_and_dtype,
    check_accepts_id_forms,
    check_repeated_ids_read_one_row,
    check_rows_are_a_function_of_seed_and_id,
    check_sgd_step_is_exact,
    check_duplicate_gradients_accumulate,
    check_export_load_round_trip,
    check_export_is_a_copy,
    check_load_refuses_mismatched_state,
    check_bad_ids_raise_and_change_nothing,
    check_bad_grads_raise_and_change_nothing,
    check_bad_time_raises_and_changes_nothing,
    check_contains,
    check_memory_bytes_positive,
    check_pop_touched_hands_over_and_clears,
]

COLLISIONLESS_CHECKS = [
    check_initial_rows_are_the_shared_recipe,
    check_training_lookup_inserts,
    check_serving_never_inserts,
    check_gradients_for_absent_ids_are_dropped,
    check_expiry_boundary,
    check_expired_id_comes_back_fresh,
    check_no_ttl_never_expires,
    check_zero_ttl,
    check_serving_does_not_refresh,
    check_export_subset_and_last_seen,
    check_load_replaces_everything,
    check_load_refuses_unsorted_or_duplicate_ids,
    check_memory_grows_with_rows,
]


def checks_for(impl: TableImpl) -> list[Callable[[TableImpl], None]]:
    """The checks that apply to ``impl``."""
    return ALL_CHECKS + (COLLISIONLESS_CHECKS if impl.collisionless else [])
