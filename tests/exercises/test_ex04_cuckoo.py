"""Grader for Exercise 4.1: cuckoo insertion with kick-outs."""

from __future__ import annotations

import random
import pytest

from conformance.checks import ALL_CHECKS, COLLISIONLESS_CHECKS, TableImpl
from conformance.explain import raises
from conformance.stateful import run_against_dict
from monolith_ref.tables import CuckooInsertError, CuckooTable
from monolith_ref.tables.cuckoo_table import colliding_keys as colliding

pytestmark = pytest.mark.exercise("4.1", title="Cuckoo insertion with kick-outs")


@pytest.fixture
def map_cls(mod):
    cls = mod.CuckooMapExercise
    assert "_place" in vars(cls), "CuckooMapExercise must define its own _place"
    return cls


@pytest.fixture
def impl(map_cls) -> TableImpl:
    class ExerciseCuckooTable(CuckooTable):
        def _new_map(self):
            return map_cls(seed=self.config.seed, **self._map_args)

    return TableImpl("CuckooTable(exercise map)", lambda c: ExerciseCuckooTable(c, capacity=2, max_kicks=6))


@pytest.mark.points(2)
def test_insert_and_read_back_many_keys(map_cls) -> None:
    m = map_cls(capacity=4, seed=0)
    rng = random.Random(0)
    keys = [rng.getrandbits(64) for _ in range(3000)]
    for i, k in enumerate(keys):
        m[k] = i
    assert len(m) == len(set(keys)), f"after inserting {len(set(keys))} distinct random keys, len(map) is {len(m)}"
    wrong = next(((k, i) for i, k in enumerate(keys) if m.get(k) != i), None)
    assert wrong is None, f"map[{wrong[0]}] must read {wrong[1]}, got {m.get(wrong[0])!r} (a key lost in a kick-out?)"
    assert m.longest_chain >= 1, "some insert must have kicked a key out (longest_chain is 0 after 3000 inserts)"


@pytest.mark.points(2)
def test_adversarial_keys_lose_nothing(map_cls) -> None:
    m = map_cls(capacity=8, seed=3, max_kicks=8, max_load=1.0)
    keys = colliding(m, 3, 0) + colliding(m, 3, 10_000)
    for k in keys:
        m[k] = -k
    assert m.rehashes >= 1, (
        "6 keys with the same two buckets cannot all fit in capacity 8 without a rehash: rehashes is 0")
    assert sorted(m) == sorted(keys), (
        f"keys lost or added by the rehash: the map holds {sorted(m)}, expected {sorted(keys)}")
    wrong = next((k for k in keys if m.get(k) != -k), None)
    assert wrong is None, f"after a rehash, map[{wrong}] must read {-wrong}, got {m.get(wrong)!r}"


@pytest.mark.points(2)
def test_failed_chain_is_undone_when_rehash_is_off(map_cls) -> None:
    m = map_cls(capacity=8, seed=1, auto_rehash=False, max_load=1.0)
    a, b, c = colliding(m, 3, 0)
    m[a], m[b] = 1, 2
    before = m.slots()
    with raises(CuckooInsertError, "a third key for two full buckets with auto_rehash=False must fail"):
        m[c] = 3
    assert m.slots() == before and len(m) == 2, (
        f"a failed kick-out chain must be undone: slots changed from {before} to {m.slots()}, len is {len(m)}")


@pytest.mark.points(1)
@pytest.mark.parametrize("check", ALL_CHECKS + COLLISIONLESS_CHECKS, ids=lambda c: c.__name__[6:])
def test_table_conformance(impl, check) -> None:
    check(impl)


@pytest.mark.points(4)
def test_random_programs_match_dict_table(impl) -> None:
    programs = run_against_dict(impl, max_examples=60)
    assert programs >= 60, f"Hypothesis ran only {programs} random programs; 60 are required"
