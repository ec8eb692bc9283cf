"""A Hypothesis stateful test: any table against DictTable over random operation sequences.

The machine drives the table under test and a ``DictTable`` built from the same config with
the same operations (training and serving lookups, gradient steps with repeated IDs, time
moving forward, expiry, export/load round trips, touched-key hand-offs) and requires every
observable result to be bit-identical.
"""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from monolith_ref.filters import CountMinFilter, OccurrenceFilter, ProbabilisticFilter
from monolith_ref.optim import FTRL, SGD, Adagrad
from monolith_ref.tables import DictTable, TableConfig

from .checks import TableImpl

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

ids_strategy = st.lists(st.sampled_from(POOL), min_size=0, max_size=8)


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
            assert got.dtype == np.float32 and np.array_equal(got, expected)

        @rule(ids=ids_strategy, seed=st.integers(0, 2**16))
        def apply_gradients(self, ids: list[int], seed: int) -> None:
            grads = np.random.default_rng(seed).normal(size=(len(ids), config.dim)).astype(np.float32)
            self.oracle.apply_gradients(ids, grads)
            self.table.apply_gradients(ids, grads)

        @rule(dt=st.integers(0, 80))
        def advance(self, dt: int) -> None:
            self.now += dt

        @rule()
        def expire(self) -> None:
            assert self.table.expire(self.now) == self.oracle.expire(self.now)

        @rule()
        def export_load_round_trip(self) -> None:
            self.table.load(self.table.export())
            self.oracle.load(self.oracle.export())

        @rule()
        def pop_touched(self) -> None:
            assert np.array_equal(self.table.pop_touched(), self.oracle.pop_touched())

        @rule(ids=ids_strategy)
        def contains(self, ids: list[int]) -> None:
            assert np.array_equal(self.table.contains(ids), self.oracle.contains(ids))

        @invariant()
        def same_contents(self) -> None:
            assert len(self.table) == len(self.oracle)
            mine, theirs = self.table.export(), self.oracle.export()
            if impl.shared_filter:  # per-shard filters export their state per shard
                assert mine.keys() == theirs.keys()
            for key in theirs if impl.shared_filter else ("ids", "embeddings", "opt_state", "last_seen"):
                assert mine[key].dtype == theirs[key].dtype, key
                assert np.array_equal(mine[key], theirs[key]), key

    TableVsDict.__name__ = f"{impl.name}VsDict"
    return TableVsDict


def run_against_dict(impl: TableImpl, max_examples: int = 200, steps: int = 40,
                     config: TableConfig = STATEFUL_CONFIG) -> int:
    """Run the comparison as a test with ``max_examples`` random programs; return how many ran."""
    machine = state_machine_for(impl, config)
    run_state_machine_as_test(machine, settings=settings(max_examples=max_examples, stateful_step_count=steps))
    return machine.programs_run
