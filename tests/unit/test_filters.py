"""Admission filters: exact thresholds, count-min bounds, probabilistic admission rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monolith_ref.filters import (
    CountMinFilter,
    OccurrenceFilter,
    ProbabilisticFilter,
    equal_probability,
)
from monolith_ref.tables import (CuckooTable, DictTable, HashedTable, NumbaTable, ShardedTable, StateMismatchError,
                                 TableConfig, TableError)


@pytest.mark.parametrize("threshold", [1, 2, 5])
def test_occurrence_filter_admits_exactly_at_the_threshold(threshold) -> None:
    f = OccurrenceFilter(threshold).build(0)
    decisions = [f.admit(42, now=i) for i in range(threshold)]
    assert decisions == [False] * (threshold - 1) + [True]


@pytest.mark.parametrize("table_cls", [DictTable, CuckooTable])
def test_a_filtered_table_reads_zeros_and_drops_gradients_until_admission(table_cls) -> None:
    table = table_cls(TableConfig(dim=2, ttl=100, filter=OccurrenceFilter(3)))
    for now in (0, 1):
        assert not table.lookup([7], now).any() and 7 not in table
        table.apply_gradients([7], np.ones((1, 2), dtype=np.float32))
        assert 7 not in table
    row = table.lookup([7], 2)
    assert row.any() and 7 in table and len(table) == 1
    # duplicates in one batch count as separate occurrences
    out = table.lookup([8, 8, 8, 9], 3)
    assert not out[:2].any() and out[2].any() and np.array_equal(out[2], table.lookup([8], 3)[0])


def test_pending_filter_counts_expire_with_the_ttl() -> None:
    table = DictTable(TableConfig(dim=2, ttl=10, filter=OccurrenceFilter(3)))
    table.lookup([5, 5], now=0)
    table.expire(11)  # pending ID 5 unseen for 11 > 10 seconds: its count is gone
    assert not table.lookup([5], now=12).any()
    assert table.export()["filter/counts"].tolist() == [1]


def test_filter_state_is_exported_and_checked_on_load() -> None:
    cfg = TableConfig(dim=2, ttl=10, filter=OccurrenceFilter(3))
    a = DictTable(cfg)
    a.lookup([1, 1, 2], now=0)
    state = a.export()
    assert state["filter/keys"].tolist() == [1, 2] and state["filter/counts"].tolist() == [2, 1]
    b = DictTable(cfg)
    b.load(state)
    assert b.lookup([1], now=1).any(), "the third sighting after load admits ID 1"
    bad = dict(state)
    bad["filter/counts"] = np.array([2, 7], dtype=np.int64)
    with pytest.raises(StateMismatchError, match="filter"):
        DictTable(cfg).load(bad)
    missing = {k: v for k, v in state.items() if not k.startswith("filter/")}
    with pytest.raises(StateMismatchError, match="missing"):
        DictTable(cfg).load(missing)


@pytest.mark.parametrize("make", [DictTable, NumbaTable, lambda c: ShardedTable(c, num_shards=2, threads=1)],
                         ids=["dict", "numba", "sharded"])
def test_a_bypassed_filter_admits_at_once_and_is_left_unchanged(make) -> None:
    cfg = TableConfig(dim=2, ttl=100, filter=OccurrenceFilter(3))
    table = make(cfg)
    table.lookup([1], now=0)  # one sighting of ID 1 pending
    pending = {k: v for k, v in table.export().items() if "filter/" in k}  # sharded: shardN/filter/...
    assert pending
    with table.filter_bypassed():
        assert table.lookup([5, 6], now=1).any(axis=1).all()
    assert 5 in table and 6 in table and 1 not in table
    after = {k: v for k, v in table.export().items() if "filter/" in k}
    assert pending.keys() == after.keys() and all(np.array_equal(pending[k], after[k]) for k in pending)
    assert not table.lookup([9], now=2).any() and 9 not in table, "the filter is back after the block"


def test_the_admission_filter_is_public_and_a_table_without_one_bypasses_trivially() -> None:
    filtered = DictTable(TableConfig(dim=2, filter=OccurrenceFilter(2)))
    assert filtered.admission_filter is not None and filtered.admission_filter.admit(3, now=0) is False
    hashed = HashedTable(TableConfig(dim=2), num_rows=8)
    assert hashed.admission_filter is None
    with hashed.filter_bypassed():
        assert hashed.lookup([3], now=0).shape == (1, 2)


@given(st.lists(st.integers(0, 50), max_size=300), st.integers(1, 16), st.integers(1, 4))
def test_count_min_never_under_counts(stream, width, depth) -> None:
    sketch = CountMinFilter(threshold=10**6, width=width, depth=depth).build(seed=3)
    true: dict[int, int] = {}
    for key in stream:
        sketch.admit(key, now=0)
        true[key] = true.get(key, 0) + 1
        assert sketch.estimate(key) >= true[key]
    keys = np.array(sorted(true), dtype=np.uint64)
    if keys.size:
        assert (sketch.estimate_many(keys) >= np.array([true[k] for k in sorted(true)])).all()


def test_count_min_error_bound_holds() -> None:
    """Overcount <= e*N/width for all but about exp(-depth) of the keys."""
    rng = np.random.default_rng(0)
    stream = rng.zipf(1.3, size=20_000) % 5_000
    f = CountMinFilter(threshold=10**6, width=512, depth=4).build(seed=1)
    for key in stream.tolist():
        f.admit(key, now=0)
    keys, counts = np.unique(stream, return_counts=True)
    over = f.estimate_many(keys.astype(np.uint64)) - counts
    bound = math.e * stream.size / 512
    assert (over >= 0).all()
    assert (over > bound).mean() <= math.exp(-4) + 0.01


def test_count_min_window_clears_after_ttl() -> None:
    table = DictTable(TableConfig(dim=2, ttl=10, filter=CountMinFilter(threshold=2, width=64, depth=2)))
    table.lookup([3], now=0)
    table.expire(11)
    assert not table.lookup([3], now=12).any(), "the first sighting was cleared with the window"
    assert table.lookup([3], now=13).any()


def test_equal_probability_is_95_percent_at_the_threshold() -> None:
    for t in (1, 2, 5, 10, 100):
        p = equal_probability(t)
        assert 1 - (1 - p) ** t == pytest.approx(0.95)
    assert ProbabilisticFilter(4, mode="proportional").probability == 0.25
    with pytest.raises(ValueError):
        ProbabilisticFilter(4, mode="sometimes")


@pytest.mark.parametrize(("mode", "threshold", "sightings"), [("equal", 5, 5), ("equal", 10, 3), ("proportional", 4, 2)])
def test_probabilistic_admission_rate_matches_the_formula(mode, threshold, sightings) -> None:
    """Over 4,000 IDs, the fraction admitted within ``sightings`` occurrences is binomial with
    p = 1 - (1 - q)**sightings; the seeded run must land within 4.5 standard deviations."""
    spec = ProbabilisticFilter(threshold, mode=mode)
    f = spec.build(seed=123)
    n = 4_000
    admitted = sum(any(f.admit(key, now=0) for _ in range(sightings)) for key in range(n))
    p = 1 - (1 - spec.probability) ** sightings
    sd = math.sqrt(n * p * (1 - p))
    assert abs(admitted - n * p) <= 4.5 * sd


def test_probabilistic_filter_is_reproducible() -> None:
    a, b = ProbabilisticFilter(3).build(7), ProbabilisticFilter(3).build(7)
    seq = [(k % 17, k) for k in range(500)]
    assert [a.admit(k, t) for k, t in seq] == [b.admit(k, t) for k, t in seq]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_filter_settings_are_validated(bad) -> None:
    for make in (lambda: OccurrenceFilter(bad), lambda: CountMinFilter(bad), lambda: ProbabilisticFilter(bad),
                 lambda: CountMinFilter(2, width=bad), lambda: CountMinFilter(2, depth=bad)):
        with pytest.raises(ValueError):
            make()


def test_a_table_that_does_not_keep_its_filter_refuses_to_bypass_it() -> None:
    class FilterKeptElsewhere(DictTable):
        def __init__(self, config: TableConfig) -> None:
            super().__init__(config)
            self._filter = None  # as a table whose shards keep the filters

    table = FilterKeptElsewhere(TableConfig(dim=2, filter=OccurrenceFilter(2)))
    with pytest.raises(TableError, match="does not keep its admission filter"):
        with table.filter_bypassed():
            pass
