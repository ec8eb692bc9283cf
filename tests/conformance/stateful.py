"""A Hypothesis stateful test: any table against DictTable over random operation sequences.

The machine drives the table under test and a ``DictTable`` built from the same config with
the same operations (training and serving lookups, gradient steps with repeated IDs, time
moving forward, expiry, export/load round trips, touched-key hand-offs) and requires every
observable result to be bit-identical.

Random programs aim at the edges on purpose, where a plausible bug hides: time steps are drawn
from a set holding exactly ``ttl``, ``ttl - 1``, ``ttl + 1`` and 0 as well as from a range; a
rule moves the clock to exactly ``ttl`` (or ``ttl +- 1``) seconds after a stored row was last
seen, then expires; batches are often empty or repeat every ID they hold.
"""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from monolith_ref.filters import CountMinFilter, OccurrenceFilter, ProbabilisticFilter
from monolith_ref.optim import FTRL, SGD, Adagrad
from monolith_ref.tables import DictTable, TableConfig

from .checks import TableImpl
from .explain import array_diff, short, state_diff

POOL = [0, 1, 2, 3, 5, 8, 13, 21, 2**32 + 1, 2**63, 2**64 - 1]
STATEFUL_CONFIG = TableConfig(dim=3, seed=11, ttl=100, optimizer=SGD(lr=0.25))

#: Filters every collisionless table is compared under (None: admit at once).
FILTERS = {
    "no-filter": None,
    "occurrence-3": OccurrenceFilter(threshold=3),
    "count-min-2": CountMinFilter(threshold=2, width=8, depth=2),  # tiny: shared counters
    "probabilistic-equal-3": ProbabilisticFilter(threshold=3, mode="equal"),
    "probabilistic-proportional-2": ProbabilisticFilter(threshold=2, mode="proportional"),
}

#: Optimizers every collisionless table is compared under (state must match bit for bit).
OPTIMIZERS = {
    "adagrad": Adagrad(lr=0.3, initial_accumulator=0.5),
    "ftrl": FTRL(alpha=0.2, beta=1.0, l1=0.05, l2=0.01),
}

#: A batch of IDs: any list from POOL (often with repeats), an empty batch on purpose, or a
#: batch in which every ID it holds comes two or three times, shuffled.
ids_strategy = st.one_of(
    st.lists(st.sampled_from(POOL), min_size=0, max_size=8),
    st.just([]),
    st.tuples(st.lists(st.sampled_from(POOL), min_size=1, max_size=4), st.integers(2, 3)).flatmap(
        lambda base: st.permutations(base[0] * base[1])),
)


def time_steps(ttl: int | None) -> st.SearchStrategy[int]:
    """How far the clock moves in one step: 0, 1, exactly ``ttl`` or ``ttl +- 1``, or 0..80."""
    edges = {0, 1} | ({ttl - 1, ttl, ttl + 1} if ttl is not None else set())
    return st.one_of(st.sampled_from(sorted(e for e in edges if e >= 0)), st.integers(0, 80))


def state_machine_for(impl: TableImpl, config: TableConfig = STATEFUL_CONFIG) -> type[RuleBasedStateMachine]:
    """A state machine class comparing ``impl`` with ``DictTable`` under ``config``."""

    class TableVsDict(RuleBasedStateMachine):
        programs_run = 0  # how many random programs Hypothesis ran (reported by the test)

        def __init__(self) -> None:
            super().__init__()
            type(self).programs_run += 1
            self.oracle = DictTable(config)
            self.table = impl.make(config)
            self.now = 0

        @rule(ids=ids_strategy, train=st.booleans())
        def lookup(self, ids: list[int], train: bool) -> None:
            expected = self.oracle.lookup(ids, self.now, train=train)
            got = self.table.lookup(ids, self.now, train=train)
            assert got.dtype == np.float32 and np.array_equal(got, expected), (
                f"lookup({ids}, now={self.now}, train={train}) differs from DictTable: {array_diff(expected, got)}")

        @rule(ids=ids_strategy, seed=st.integers(0, 2**16))
        def apply_gradients(self, ids: list[int], seed: int) -> None:
            grads = np.random.default_rng(seed).normal(size=(len(ids), config.dim)).astype(np.float32)
            self.oracle.apply_gradients(ids, grads)
            self.table.apply_gradients(ids, grads)

        @rule(dt=time_steps(config.ttl))
        def advance(self, dt: int) -> None:
            self.now += dt

        @precondition(lambda self: config.ttl is not None and len(self.oracle) > 0)
        @rule(pick=st.integers(0, 2**16), offset=st.sampled_from((0, 1, -1)), then_expire=st.booleans())
        def advance_to_ttl_edge(self, pick: int, offset: int, then_expire: bool) -> None:
            """Move the clock to exactly ``ttl + offset`` seconds after a stored row was last seen."""
            seen = self.oracle.export()["last_seen"]
            self.now = max(self.now, int(seen[pick % seen.size]) + config.ttl + offset)  # type: ignore[operator]
            if then_expire:
                self.expire()

        @rule()
        def expire(self) -> None:
            before, mine = self.oracle.export(), self.table.export()["ids"]
            want = self.oracle.expire(self.now)
            got = self.table.expire(self.now)
            assert got == want, self._expire_problem(before, mine, got, want)

        def _expire_problem(self, before: dict[str, np.ndarray], mine: np.ndarray, got: object, want: int) -> str:
            """Which IDs each table removed, and how long the disputed ones had been unseen."""
            theirs = before["ids"][~self.oracle.contains(before["ids"])].tolist()
            yours = mine[~self.table.contains(mine)].tolist()
            unseen = dict(zip(before["ids"].tolist(), (self.now - before["last_seen"]).tolist()))
            disputed = {k: unseen.get(k) for k in sorted(set(yours) ^ set(theirs))}
            return (f"a row goes only when now - last_seen > ttl: expire(now={self.now}) with ttl={config.ttl} "
                    f"returned {got} (removed {short(yours)}), DictTable removes {want} ({short(theirs)}); "
                    f"seconds unseen of the IDs in dispute: {short(disputed)}")

        @rule()
        def export_load_round_trip(self) -> None:
            self.table.load(self.table.export())
            self.oracle.load(self.oracle.export())

        @rule()
        def pop_touched(self) -> None:
            got, want = self.table.pop_touched(), self.oracle.pop_touched()
            assert np.array_equal(got, want), (
                f"pop_touched() at now={self.now} returned {short(got)}; DictTable: {short(want)} "
                "(every ID inserted, updated or removed since the last hand-off, sorted, once)")

        @rule(ids=ids_strategy)
        def contains(self, ids: list[int]) -> None:
            got, want = self.table.contains(ids), self.oracle.contains(ids)
            assert np.array_equal(got, want), (
                f"contains({ids}) at now={self.now} returned {short(got)}; DictTable: {short(want)}")

        @invariant()
        def same_contents(self) -> None:
            assert len(self.table) == len(self.oracle), (
                f"len(table) is {len(self.table)} at now={self.now}; DictTable holds {len(self.oracle)} rows")
            mine, theirs = self.table.export(), self.oracle.export()
            keys = theirs.keys() if impl.shared_filter else ("ids", "embeddings", "opt_state", "last_seen")
            if impl.shared_filter:  # per-shard filters export their state per shard
                assert mine.keys() == theirs.keys(), f"export() keys {sorted(mine)}; DictTable: {sorted(theirs)}"
            problem = state_diff(theirs, mine, keys)
            assert not problem, f"export() at now={self.now} differs from DictTable's: {problem}"

    TableVsDict.__name__ = f"{impl.name}VsDict"
    return TableVsDict


def run_against_dict(impl: TableImpl, max_examples: int = 200, steps: int = 40,
                     config: TableConfig = STATEFUL_CONFIG) -> int:
    """Run the comparison as a test with ``max_examples`` random programs; return how many ran."""
    machine = state_machine_for(impl, config)
    run_state_machine_as_test(machine, settings=settings(max_examples=max_examples, stateful_step_count=steps))
    return machine.programs_run
