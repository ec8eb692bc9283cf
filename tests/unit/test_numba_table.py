"""NumbaTable specifics: growth, the kernels with the JIT off, optimizers, statistics."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from monolith_ref.filters import OccurrenceFilter
from monolith_ref.optim import FTRL, Adagrad
from monolith_ref.tables import DictTable, NumbaTable, TableConfig

ROOT = Path(__file__).resolve().parents[2]


def same_state(a, b) -> bool:
    x, y = a.export(), b.export()
    return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) and x[k].dtype == y[k].dtype for k in x)


@pytest.mark.parametrize("optimizer", [Adagrad(lr=0.2), FTRL(alpha=0.1, l1=0.01)])
def test_large_zipf_run_is_bit_identical(optimizer) -> None:
    from monolith_ref.data import zipf_ids

    cfg = TableConfig(dim=8, seed=5, ttl=40, optimizer=optimizer, filter=OccurrenceFilter(2))
    fast, slow = NumbaTable(cfg, capacity=16), DictTable(cfg)
    rng = np.random.default_rng(0)
    stream = zipf_ids(20_000, 5_000, alpha=1.1, seed=1)
    for step, batch in enumerate(np.array_split(stream, 40)):
        now = step * 5
        assert np.array_equal(fast.lookup(batch, now), slow.lookup(batch, now))
        grads = rng.normal(size=(batch.size, 8)).astype(np.float32)
        fast.apply_gradients(batch, grads)
        slow.apply_gradients(batch, grads)
        if step % 7 == 6:
            assert fast.expire(now) == slow.expire(now)
        if step % 10 == 9:
            assert np.array_equal(fast.pop_touched(), slow.pop_touched())
    assert same_state(fast, slow)
    stats = fast.stats()
    assert stats["size"] == len(slow) and stats["generation"] > 0 and stats["capacity"] >= len(slow)


def test_kernels_run_with_the_jit_disabled() -> None:
    """NUMBA_DISABLE_JIT=1 (the debugging mode) gives the same results as DictTable."""
    code = textwrap.dedent(
        """
        import numpy as np
        from monolith_ref.optim import Adagrad
        from monolith_ref.tables import DictTable, NumbaTable, TableConfig
        from monolith_ref.kernels import jit_enabled
        assert not jit_enabled()
        cfg = TableConfig(dim=3, seed=2, ttl=5, optimizer=Adagrad(lr=0.1))
        a, b = NumbaTable(cfg, capacity=2, max_kicks=2), DictTable(cfg)
        rng = np.random.default_rng(0)
        for now in range(12):
            ids = rng.integers(0, 30, size=6).astype(np.uint64)
            assert np.array_equal(a.lookup(ids, now), b.lookup(ids, now))
            g = rng.normal(size=(6, 3)).astype(np.float32)
            a.apply_gradients(ids, g); b.apply_gradients(ids, g)
            assert a.expire(now) == b.expire(now)
        x, y = a.export(), b.export()
        assert all(np.array_equal(x[k], y[k]) for k in x)
        print("ok", len(a))
        """
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok")


def test_arena_and_index_grow_without_losing_rows() -> None:
    table = NumbaTable(TableConfig(dim=2, seed=1), capacity=1, max_kicks=1)
    ids = np.arange(5000, dtype=np.uint64) * np.uint64(7919)
    first = table.lookup(ids, now=0)
    assert len(table) == 5000 and table.stats()["capacity"] >= 5000
    assert np.array_equal(table.lookup(ids, now=1, train=False), first)


def test_expired_rows_are_reused() -> None:
    table = NumbaTable(TableConfig(dim=2, ttl=1), capacity=4)
    table.lookup([1, 2, 3, 4], now=0)
    table.expire(5)
    table.lookup([5, 6, 7, 8], now=6)
    assert table.stats()["capacity"] == 4 and len(table) == 4


def test_unsupported_optimizer_and_bad_arguments() -> None:
    class Odd:
        name = "odd"

        def state_width(self, dim):
            return 0

        def initial_state(self, dim):
            return np.zeros(0, dtype=np.float32)

        def step(self, rows, state, grads):
            pass

    with pytest.raises(ValueError, match="supports SGD, Adagrad and FTRL"):
        NumbaTable(TableConfig(dim=2, optimizer=Odd()))
    for bad in ({"capacity": 0}, {"max_kicks": 0}, {"capacity": 2.5}):
        with pytest.raises(ValueError):
            NumbaTable(TableConfig(dim=2), **bad)


def test_memory_per_row_is_close_to_the_payload() -> None:
    cfg = TableConfig(dim=64, optimizer=Adagrad())
    table = NumbaTable(cfg, capacity=1 << 14)
    table.lookup(np.arange(1 << 14, dtype=np.uint64), now=0)
    payload = (64 + 64) * 4  # embedding + Adagrad accumulator
    assert table.memory_bytes() / len(table) <= 1.5 * payload
