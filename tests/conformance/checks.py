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

from .explain import array_diff, raises, short, state_diff


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


def assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray], rule: str = "state changed") -> None:
    """``a`` (before) and ``b`` (after) hold the same arrays; else fail naming ``rule`` and the first difference."""
    problem = state_diff(a, b)
    assert not problem, f"{rule}: {problem}"


# =========================================================================== all tables


def check_lookup_shape_and_dtype(impl: TableImpl) -> None:
    table = impl.make(CFG)
    out = table.lookup(np.array([1, 2, 3], dtype=np.uint64), now=0)
    assert out.dtype == np.float32 and out.shape == (3, CFG.dim), (
        f"lookup of 3 IDs must return float32 rows of shape (3, dim={CFG.dim}): "
        f"{array_diff(np.zeros((3, CFG.dim), np.float32), out)}")
    empty = table.lookup(np.array([], dtype=np.uint64), now=0)
    assert empty.dtype == np.float32 and empty.shape == (0, CFG.dim), (
        f"lookup of an empty batch must return float32 rows of shape (0, dim={CFG.dim}): "
        f"{array_diff(np.zeros((0, CFG.dim), np.float32), empty)}")


def check_accepts_id_forms(impl: TableImpl) -> None:
    """uint64, non-negative int64, other integer dtypes and Python lists give the same rows."""
    table = impl.make(CFG)
    ref = table.lookup(np.array([5, 9, BIG], dtype=np.uint64), now=0)
    for ids, want in (([5, 9, BIG], ref), (np.array([5, 9], dtype=np.int64), ref[:2]),
                      (np.array([5, 9], dtype=np.uint32), ref[:2])):
        got = table.lookup(ids, now=0)
        assert np.array_equal(got, want), (
            f"lookup({short(ids)}) as {type(ids).__name__} {getattr(ids, 'dtype', '')} must read the same rows "
            f"as uint64 IDs: {array_diff(want, got)}")


def check_repeated_ids_read_one_row(impl: TableImpl) -> None:
    table = impl.make(CFG)
    out = table.lookup([8, 8, 1, 8], now=0)
    assert np.array_equal(out[0], out[1]) and np.array_equal(out[0], out[3]), (
        f"lookup([8, 8, 1, 8]): an ID repeated in a batch reads one row, got rows {short(out[[0, 1, 3]])}")


def check_rows_are_a_function_of_seed_and_id(impl: TableImpl) -> None:
    a, b = impl.make(CFG), impl.make(CFG)
    ids = [3, 1, 2**40 + 7, BIG]
    first, second = a.lookup(ids, now=0), b.lookup(list(reversed(ids)), now=5)[::-1]
    assert np.array_equal(first, second), (
        f"two tables with seed {CFG.seed} must give ID the same row whatever the order and time of the lookup "
        f"(IDs {ids}): {array_diff(first, second)}")
    other = impl.make(replace(CFG, seed=CFG.seed + 1))
    assert not np.array_equal(a.lookup(ids, now=0), other.lookup(ids, now=0)), (
        f"seeds {CFG.seed} and {CFG.seed + 1} gave the same rows for IDs {ids}: the seed must change the rows")


def check_sgd_step_is_exact(impl: TableImpl) -> None:
    table = impl.make(CFG)
    before = table.lookup([11], now=0)
    grad = np.array([[0.25, -1.0, 3.0, 0.0]], dtype=np.float32)
    table.apply_gradients([11], grad)
    after = table.lookup([11], now=0)
    step = np.float32(CFG.optimizer.lr) * grad
    if impl.rows_per_id == 1:
        assert np.array_equal(after, before - step), (
            f"one SGD step (lr={CFG.optimizer.lr}) on ID 11 with gradient {short(grad[0])} must give exactly "
            f"row - lr * grad in float32: {array_diff(before - step, after)}")
    else:  # every summed row takes the step
        np.testing.assert_allclose(after, before - impl.rows_per_id * step, rtol=1e-6, atol=1e-6,
                                   err_msg=f"each of the {impl.rows_per_id} summed rows takes one SGD step")


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
    got, want = a.lookup(ids, now=0), b.lookup(ids, now=0)
    assert np.array_equal(got, want), (
        f"apply_gradients([4, 54, 4], g) must equal apply_gradients([4, 54], [g0 + g2, g1]): sum a repeated ID's "
        f"gradients in batch order, then take one step. {array_diff(want, got)}")


def check_export_load_round_trip(impl: TableImpl) -> None:
    rng = np.random.default_rng(1)
    a = impl.make(CFG)
    ids = np.array([1, 5, 9, 2**63 + 5], dtype=np.uint64)
    a.lookup(ids, now=10)
    a.apply_gradients(ids, rng.normal(size=(4, CFG.dim)).astype(np.float32))
    state = a.export()
    for key, value in state.items():
        assert isinstance(value, np.ndarray), f"export()[{key!r}] must be a NumPy array, got {type(value).__name__}"
    b = impl.make(CFG)
    b.load(state)
    assert_same_state({k: v for k, v in a.export().items()}, b.export(), "load(export()) must rebuild the same state")
    assert len(a) == len(b), f"after load(export()), len is {len(b)}; the exporting table holds {len(a)} rows"
    want, got = a.lookup(ids, now=10, train=False), b.lookup(ids, now=10, train=False)
    assert np.array_equal(got, want), (
        f"after load(export()), rows differ from the exporting table's: {array_diff(want, got)}")


def check_export_is_a_copy(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1, 2], now=0)
    state = table.export()
    before = snapshot(table)
    for value in state.values():
        if value.dtype.kind == "f":
            value += 1.0
    assert_same_state(before, snapshot(table), "export() must return copies: changing them changed the table")


def check_load_refuses_mismatched_state(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1, 2, 3], now=0)
    good = table.export()
    before = snapshot(table)
    wider = impl.make(replace(CFG, dim=CFG.dim + 1))
    wider.lookup([1, 2, 3], now=0)
    bad_states = [
        ("a state of another dim", wider.export()),
        (f"a state without its key {next(iter(good))!r}", {k: v for k, v in list(good.items())[1:]}),
        ("a state with float64 instead of float32 arrays",
         {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in good.items()}),
        ("a state with NaN rows",
         {k: (np.where(np.isfinite(v), np.nan, v) if v.dtype == np.float32 and v.size else v)
          for k, v in good.items()}),
        ("a string instead of a dict", "not a dict"),
    ]
    for what, bad in bad_states:
        if isinstance(bad, dict) and all(np.array_equal(bad.get(k), v) for k, v in good.items()):
            continue  # the mutation did not change anything for this table (e.g. no floats)
        with raises(ValueError, f"load() of {what} must refuse it"):
            table.load(bad)  # type: ignore[arg-type]
        assert_same_state(before, snapshot(table), f"a refused load() of {what} must leave the table unchanged")
    # exporting from one table and loading into another with the same dim but wrong shape
    assert isinstance(StateMismatchError("x"), ValueError), "StateMismatchError must be a ValueError"


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
        for what, call in (
            ("lookup()", lambda: table.lookup(bad, now=1)),
            ("lookup(train=False)", lambda: table.lookup(bad, now=1, train=False)),
            ("apply_gradients()", lambda: table.apply_gradients(bad, np.zeros((2, CFG.dim), dtype=np.float32))),
            ("export()", lambda: table.export(bad)),
        ):
            with raises(ValueError, f"{what} with {name} IDs {short(bad, 40)} must refuse them", match="ID"):
                call()
            assert_same_state(before, snapshot(table), f"a refused {what} with {name} IDs must change nothing")


def check_bad_grads_raise_and_change_nothing(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1, 2], now=0)
    before = snapshot(table)
    bad_grads = [
        ("of the wrong width", np.zeros((2, CFG.dim + 1), dtype=np.float32)),
        ("of the wrong count (3 rows for 2 IDs)", np.zeros((3, CFG.dim), dtype=np.float32)),
        ("of the wrong rank (1-D)", np.zeros((CFG.dim,), dtype=np.float32)),
        ("with NaN", np.array([[0.0] * CFG.dim, [np.nan] * CFG.dim])),
        ("with inf", np.array([[0.0] * CFG.dim, [np.inf] * CFG.dim], dtype=np.float32)),
        ("that overflow float32 (1e39)", np.array([[0.0] * CFG.dim, [1e39] * CFG.dim])),
        ("that are not floating point (int64)", np.zeros((2, CFG.dim), dtype=np.int64)),
    ]
    for what, grads in bad_grads:
        with raises(ValueError, f"apply_gradients([1, 2], gradients {what}) must refuse them", match="gradient"):
            table.apply_gradients([1, 2], grads)
        assert_same_state(before, snapshot(table), f"a refused apply_gradients (gradients {what}) must change nothing")


def check_bad_time_raises_and_changes_nothing(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1], now=0)
    before = snapshot(table)
    for now in (1.5, -1, True, "3", None, float("nan"), 2**63):
        with raises(ValueError, f"lookup([1, 2], now={now!r}) must refuse the time", match="now"):
            table.lookup([1, 2], now=now)  # type: ignore[arg-type]
        with raises(ValueError, f"expire({now!r}) must refuse the time", match="now"):
            table.expire(now)  # type: ignore[arg-type]
        assert_same_state(before, snapshot(table), f"a refused now={now!r} must change nothing")
    table.lookup([1], now=np.int64(5))  # NumPy integers are fine


def check_contains(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([7], now=0)
    assert 7 in table and np.uint64(7) in table, "after a training lookup of 7, `7 in table` (int or np.uint64) is True"
    for weird in (-1, 1.5, "7", None, 2**64):
        assert (weird in table) is False, f"`{weird!r} in table` must be False (not a valid ID), not raise or be True"
    mask = table.contains([7, 7])
    assert mask.dtype == bool and mask.tolist() == [True, True], (
        f"contains([7, 7]) must be a bool array [True, True], got {short(mask)}")


def check_memory_bytes_positive(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup(list(range(50)), now=0)
    got = table.memory_bytes()
    assert isinstance(got, int) and got > 50 * CFG.dim * 4 // 2, (
        f"memory_bytes() with 50 rows of dim {CFG.dim} must be an int above {50 * CFG.dim * 4 // 2}, got {got!r}")


def check_pop_touched_hands_over_and_clears(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([3, 4], now=0)
    table.apply_gradients([3], np.ones((1, CFG.dim), dtype=np.float32))
    touched = table.pop_touched()
    assert touched.dtype == np.uint64 and touched.size > 0, (
        f"pop_touched() after training on 3 and 4 must be a non-empty uint64 array, got {short(touched)}")
    assert list(touched) == sorted(touched), f"pop_touched() must be sorted, got {short(touched)}"
    again = table.pop_touched()
    assert again.size == 0, (
        f"a second pop_touched() must be empty (the first hands over and clears), got {short(again)}")
    table.lookup([3, 4], now=0, train=False)
    assert table.touched_ids().size == 0, "serving lookups change nothing, so they touch no key"


# =========================================================================== collisionless


def check_initial_rows_are_the_shared_recipe(impl: TableImpl) -> None:
    table = impl.make(CFG)
    ids = np.array([0, 1, 99, 2**63, BIG], dtype=np.uint64)
    expected = initial_rows(CFG.seed, ids, CFG.dim, CFG.init_scale)
    got = table.lookup(ids, now=0)
    assert np.array_equal(got, expected), (
        f"a new ID's row must be initial_rows(seed, ids, dim, init_scale) (IDs {ids.tolist()}): "
        f"{array_diff(expected, got)}")
    assert np.abs(expected).max() <= CFG.init_scale, "initial_rows exceeds init_scale"


def check_training_lookup_inserts(impl: TableImpl) -> None:
    table = impl.make(CFG)
    assert len(table) == 0 and 5 not in table, f"a new table must be empty, len is {len(table)}"
    table.lookup([5, 6, 5], now=0)
    assert len(table) == 2 and 5 in table and 6 in table and 7 not in table, (
        f"a training lookup of [5, 6, 5] inserts 5 and 6 once each: len is {len(table)}, "
        f"5 in table: {5 in table}, 6 in table: {6 in table}, 7 in table: {7 in table}")
    touched = table.touched_ids()
    assert touched.tolist() == [5, 6], f"inserting 5 and 6 must touch [5, 6] (sorted, once), got {short(touched)}"


def check_serving_never_inserts(impl: TableImpl) -> None:
    table = impl.make(CFG)
    trained = table.lookup([1], now=0)
    before = snapshot(table)
    out = table.lookup([1, 2, BIG], now=50, train=False)
    assert np.array_equal(out[0], trained[0]), (
        f"a serving lookup must read ID 1's stored row: {array_diff(trained[0], out[0])}")
    assert not out[1:].any(), f"unknown IDs read zeros at serving, got {short(out[1:])}"
    assert_same_state(before, snapshot(table), "a serving lookup (train=False) must not insert, refresh or touch")


def check_gradients_for_absent_ids_are_dropped(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1], now=0)
    table.pop_touched()
    table.apply_gradients([2, 3], np.ones((2, CFG.dim), dtype=np.float32))
    assert len(table) == 1 and 2 not in table, (
        f"gradients for IDs not in the table (2, 3) are dropped, not inserted: len is {len(table)}")
    touched = table.touched_ids()
    assert touched.size == 0, f"dropped gradients touch no key, got touched {short(touched)}"


def check_expiry_boundary(impl: TableImpl) -> None:
    """A row unseen for exactly ``ttl`` seconds stays; one second more and it goes."""
    table = impl.make(CFG)
    ttl = CFG.ttl
    assert ttl is not None, "this check needs a config with a ttl"
    table.lookup([1, 2], now=1000)
    table.lookup([2], now=1030)  # refresh 2
    rule = f"a row goes only when now - last_seen > ttl (ttl={ttl})"
    gone = table.expire(1000 + ttl)
    assert gone == 0 and len(table) == 2, (
        f"{rule}: ID 1 seen at 1000 is unseen exactly ttl seconds at expire(now={1000 + ttl}) and must stay; "
        f"expire returned {gone}, len is {len(table)}")
    table.pop_touched()
    gone = table.expire(1000 + ttl + 1)
    assert gone == 1, (
        f"ID 1 seen at 1000, expire(now={1000 + ttl + 1}) must remove it (unseen ttl + 1 s), returned {gone}")
    assert 1 not in table and 2 in table, (
        f"after expire(now={1000 + ttl + 1}): 1 (seen at 1000) goes, 2 (seen at 1030) stays; "
        f"1 in table: {1 in table}, 2 in table: {2 in table}")
    touched = table.pop_touched()
    assert touched.tolist() == [1], f"a removed row is a touched key: pop_touched() must be [1], got {short(touched)}"
    gone = table.expire(1030 + ttl)
    assert gone == 0, f"{rule}: ID 2 seen at 1030, expire(now={1030 + ttl}) must keep it, returned {gone}"
    gone = table.expire(1030 + ttl + 1)
    assert gone == 1 and len(table) == 0, (
        f"ID 2 seen at 1030, expire(now={1030 + ttl + 1}) must remove it: returned {gone}, len is {len(table)}")


def check_expired_id_comes_back_fresh(impl: TableImpl) -> None:
    table = impl.make(CFG)
    first = table.lookup([9], now=0)
    table.apply_gradients([9], np.ones((1, CFG.dim), dtype=np.float32))
    table.expire(CFG.ttl + 1)  # type: ignore[operator]
    again = table.lookup([9], now=CFG.ttl + 2)  # type: ignore[operator]
    assert np.array_equal(first, again), (
        f"ID 9 trained, expired, then looked up again: a re-inserted ID starts from its initial row, "
        f"not its old one. {array_diff(first, again)}")


def check_no_ttl_never_expires(impl: TableImpl) -> None:
    table = impl.make(replace(CFG, ttl=None))
    table.lookup([1, 2], now=0)
    gone = table.expire(2**62)
    assert gone == 0 and len(table) == 2, (
        f"with ttl=None nothing ever expires: expire(2**62) returned {gone}, len is {len(table)} (expected 0, 2)")


def check_zero_ttl(impl: TableImpl) -> None:
    table = impl.make(replace(CFG, ttl=0))
    table.lookup([1], now=5)
    gone = table.expire(5)
    assert gone == 0, f"ttl=0, ID 1 seen at 5: expire(now=5) must keep it (0 > 0 is false), returned {gone}"
    gone = table.expire(6)
    assert gone == 1, f"ttl=0, ID 1 seen at 5: expire(now=6) must remove it (1 > 0), returned {gone}"


def check_serving_does_not_refresh(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1], now=0)
    table.lookup([1], now=CFG.ttl, train=False)  # type: ignore[arg-type]
    gone = table.expire(CFG.ttl + 1)  # type: ignore[operator]
    assert gone == 1, (
        f"ID 1 trained at 0 and read at serving at {CFG.ttl}: a serving read does not refresh last_seen, "
        f"so expire(now={CFG.ttl + 1}) must remove it (ttl={CFG.ttl}); returned {gone}")  # type: ignore[operator]


def check_export_subset_and_last_seen(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([30, 10, 20], now=7)
    table.lookup([20], now=9)
    state = table.export()
    assert state["ids"].tolist() == [10, 20, 30], (
        f"export()['ids'] must be sorted [10, 20, 30], got {short(state['ids'])}")
    assert state["last_seen"].tolist() == [7, 9, 7], (
        f"last_seen of 10, 20, 30 (seen at 7, 20 again at 9) must be [7, 9, 7], got {short(state['last_seen'])}")
    sub = table.export(np.array([20, 99, 10, 20], dtype=np.uint64))
    assert sub["ids"].tolist() == [10, 20], (
        f"export([20, 99, 10, 20]) holds the present IDs, sorted, once: [10, 20], got {short(sub['ids'])}")
    assert np.array_equal(sub["embeddings"], state["embeddings"][:2]), (
        f"export([20, 99, 10, 20]) rows must be those of 10 and 20: "
        f"{array_diff(state['embeddings'][:2], sub['embeddings'])}")


def check_load_replaces_everything(impl: TableImpl) -> None:
    a, b = impl.make(CFG), impl.make(CFG)
    a.lookup([1, 2], now=0)
    b.lookup([3], now=0)
    b.load(a.export())
    assert 3 not in b and len(b) == 2, (
        f"load() replaces everything: after loading a state with IDs 1, 2 into a table holding 3, "
        f"3 in table: {3 in b}, len: {len(b)}")
    touched = b.pop_touched()
    assert set(touched.tolist()) == {1, 2, 3}, (
        f"load() touches every ID it adds or removes: expected {{1, 2, 3}}, got {short(touched)}")


def check_load_refuses_unsorted_or_duplicate_ids(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup([1, 2], now=0)
    before = snapshot(table)
    state = table.export()
    for ids in ([2, 1], [1, 1]):
        bad = dict(state, ids=np.array(ids, dtype=np.uint64))
        with raises(StateMismatchError, f"load() of a state with ids {ids} (unsorted or repeated) must refuse it"):
            table.load(bad)
        assert_same_state(before, snapshot(table), f"a refused load() (ids {ids}) must change nothing")


def check_memory_grows_with_rows(impl: TableImpl) -> None:
    table = impl.make(CFG)
    table.lookup(list(range(3000)), now=0)
    got = table.memory_bytes()
    assert got >= 3000 * CFG.dim * 4, (
        f"every row's embedding is counted: 3000 rows of dim {CFG.dim} need {3000 * CFG.dim * 4} bytes, "
        f"memory_bytes() is {got}")


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
