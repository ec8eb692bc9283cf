"""Grader for Exercise 6.1: a compiled lookup-or-insert kernel, checked against DictTable."""

from __future__ import annotations

import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

from conformance.explain import array_diff
from monolith_ref.data import zipf_ids
from monolith_ref.tables import DictTable, TableConfig
from monolith_ref.hashing import seed_offset

pytestmark = pytest.mark.exercise("6.1", title="A compiled lookup-or-insert kernel")


class LinearProbingTable:
    """Just enough table around the learner's kernel to compare with DictTable."""

    def __init__(self, kernel, dim: int, seed: int, scale: float, capacity: int) -> None:
        self.kernel, self.dim, self.scale = kernel, dim, scale
        self.offset = seed_offset(seed)
        slots = 1 << (2 * capacity - 1).bit_length()
        self.slot_keys = np.zeros(slots, dtype=np.uint64)
        self.slot_rows = np.full(slots, -1, dtype=np.int64)
        self.mask = np.uint64(slots - 1)
        self.embeddings = np.zeros((capacity, dim), dtype=np.float32)
        self.last_seen = np.zeros(capacity, dtype=np.int64)
        self.row_key = np.zeros(capacity, dtype=np.uint64)
        self.n_rows = 0

    def lookup(self, ids: np.ndarray, now: int) -> np.ndarray:
        out = np.empty((ids.size, self.dim), dtype=np.float32)
        self.n_rows = int(self.kernel(ids, np.int64(now), self.offset, self.scale, self.slot_keys, self.slot_rows,
                                      self.mask, self.embeddings, self.last_seen, self.row_key, np.int64(self.n_rows),
                                      out))
        return out

    def export(self) -> dict[str, np.ndarray]:
        order = np.argsort(self.row_key[: self.n_rows])
        return {"ids": self.row_key[order], "last_seen": self.last_seen[order], "embeddings": self.embeddings[order]}


@pytest.fixture
def kernel(mod):
    fn = mod.lookup_or_insert
    assert isinstance(fn, CPUDispatcher), "lookup_or_insert must be an @njit function"
    return fn


def run(kernel, batches, dim=8, seed=4, scale=0.05):
    cfg = TableConfig(dim=dim, seed=seed, init_scale=scale)
    ours = LinearProbingTable(kernel, dim, seed, scale, capacity=sum(b.size for b in batches) + 1)
    ref = DictTable(cfg)
    for now, batch in enumerate(batches):
        got, want = ours.lookup(batch, now), ref.lookup(batch, now)
        assert np.array_equal(got, want), (
            f"batch {now} (IDs {batch[:8].tolist()}{'...' if batch.size > 8 else ''}, now={now}): rows differ "
            f"from DictTable's: {array_diff(want, got)}")
    return ours, ref


@pytest.mark.points(2)
def test_small_batches_with_repeats(kernel) -> None:
    batches = [np.array(b, dtype=np.uint64) for b in ([5, 9, 5], [9, 2**64 - 1, 0], [], [7, 7, 7, 5])]
    ours, ref = run(kernel, batches)
    assert ours.n_rows == len(ref) == 5, (
        f"batches [5, 9, 5], [9, 2**64-1, 0], [], [7, 7, 7, 5] hold 5 distinct IDs: the kernel must return "
        f"n_rows = 5, got {ours.n_rows} (a repeated ID is inserted once)")


@pytest.mark.points(3)
def test_zipf_stream_matches_dict_table(kernel) -> None:
    stream = zipf_ids(30_000, 8_000, alpha=1.1, seed=3)
    ours, ref = run(kernel, np.array_split(stream, 30))
    state = ref.export()
    mine = ours.export()
    for key in ("ids", "last_seen", "embeddings"):
        assert np.array_equal(mine[key], state[key]), (
            f"after 30 batches of a Zipf stream, {key!r} differs from DictTable's: {array_diff(state[key], mine[key])}")


@pytest.mark.points(1)
def test_colliding_home_slots_probe_forward(kernel) -> None:
    """Many keys share home slots in a tiny index: probing must still keep them apart."""
    ours = LinearProbingTable(kernel, dim=2, seed=1, scale=0.1, capacity=6)
    ours.slot_keys = np.zeros(8, dtype=np.uint64)
    ours.slot_rows = np.full(8, -1, dtype=np.int64)
    ours.mask = np.uint64(7)
    ref = DictTable(TableConfig(dim=2, seed=1, init_scale=0.1))
    ids = np.arange(6, dtype=np.uint64) * np.uint64(1000)
    for now in range(3):
        got, want = ours.lookup(ids, now), ref.lookup(ids, now)
        assert np.array_equal(got, want), (
            f"6 IDs in an 8-slot index, lookup {now + 1} of 3: rows differ from DictTable's: {array_diff(want, got)}")
    used = int((ours.slot_rows >= 0).sum())
    assert ours.n_rows == 6 and used == 6, (
        f"6 distinct IDs sharing home slots need 6 rows and 6 used slots: n_rows {ours.n_rows}, used slots {used}")
