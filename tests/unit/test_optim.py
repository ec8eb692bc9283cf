"""Sparse optimizers against PyTorch (SGD, Adagrad) and a plain FTRL-Proximal reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monolith_ref.optim import FTRL, SGD, Adagrad
from monolith_ref.tables import CuckooTable, DictTable, TableConfig


def run_table(table_cls, opt, batches, dim: int):
    table = table_cls(TableConfig(dim=dim, seed=0, optimizer=opt))
    vocab = np.arange(10, dtype=np.uint64)
    table.lookup(vocab, now=0)
    start = table.lookup(vocab, now=0, train=False).copy()
    for ids, grads in batches:
        table.apply_gradients(ids, grads)
    return start, table.lookup(vocab, now=0, train=False)


def run_torch(start, torch_opt, batches):
    emb = torch.nn.Embedding(start.shape[0], start.shape[1], sparse=True)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(start))
    opt = torch_opt(emb.parameters())
    for ids, grads in batches:
        opt.zero_grad()
        out = emb(torch.from_numpy(ids.astype(np.int64)))
        out.backward(torch.from_numpy(grads))  # d(sum(out * grads))/d(out) = grads
        opt.step()
    return emb.weight.detach().numpy()


def batches(seed: int, dim: int, steps: int = 20):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        ids = rng.integers(0, 10, size=8).astype(np.uint64)  # repeats within a batch
        out.append((ids, rng.normal(size=(8, dim)).astype(np.float32)))
    return out


@pytest.mark.parametrize("table_cls", [DictTable, CuckooTable])
def test_sgd_matches_torch(table_cls) -> None:
    data = batches(0, 4)
    start, ours = run_table(table_cls, SGD(lr=0.1), data, 4)
    theirs = run_torch(start, lambda p: torch.optim.SGD(p, lr=0.1), data)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("table_cls", [DictTable, CuckooTable])
def test_adagrad_matches_torch(table_cls) -> None:
    data = batches(1, 4)
    opt = Adagrad(lr=0.5, initial_accumulator=1.0)
    start, ours = run_table(table_cls, opt, data, 4)
    theirs = run_torch(start, lambda p: torch.optim.Adagrad(p, lr=0.5, initial_accumulator_value=1.0), data)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def ftrl_reference(w: float, z: float, n: float, g: float, a: float, b: float, l1: float, l2: float):
    """One FTRL-Proximal step for one coordinate, as in McMahan et al. (2013), Algorithm 1."""
    sigma = (math.sqrt(n + g * g) - math.sqrt(n)) / a
    z = z + g - sigma * w
    n = n + g * g
    if abs(z) <= l1:
        w = 0.0
    else:
        sign = 1.0 if z > 0 else -1.0
        w = -(z - sign * l1) / ((b + math.sqrt(n)) / a + l2)
    return w, z, n


def test_ftrl_matches_the_reference_and_zeroes_weak_weights() -> None:
    opt = FTRL(alpha=0.1, beta=1.0, l1=0.5, l2=0.1, initial_accumulator=1e-6)
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(3, 5)).astype(np.float32) * 0.01
    state = np.tile(opt.initial_state(5), (3, 1))
    ref = [[(float(rows[i, j]), 0.0, 1e-6) for j in range(5)] for i in range(3)]
    for _ in range(30):
        g = rng.normal(size=(3, 5)).astype(np.float32)
        g[:, 0] *= 0.01  # a weak coordinate: L1 keeps it at exactly zero
        opt.step(rows, state, g)
        ref = [[ftrl_reference(*ref[i][j], float(g[i, j]), 0.1, 1.0, 0.5, 0.1) for j in range(5)] for i in range(3)]
    expected = np.array([[c[0] for c in r] for r in ref])
    np.testing.assert_allclose(rows, expected, rtol=1e-4, atol=1e-6)
    assert (rows[:, 0] == 0).all()
    assert opt.state_width(5) == 10


def test_optimizer_state_lives_with_the_row_and_is_exported() -> None:
    table = DictTable(TableConfig(dim=3, optimizer=Adagrad(lr=0.1, initial_accumulator=0.5), ttl=10))
    table.lookup([1, 2], now=0)
    table.apply_gradients([1], np.ones((1, 3), dtype=np.float32))
    state = table.export()
    assert state["opt_state"].shape == (2, 3)
    assert state["opt_state"][0].tolist() == [1.5, 1.5, 1.5] and state["opt_state"][1].tolist() == [0.5] * 3
    table.expire(11)
    table.lookup([1], now=12)
    assert table.export()["opt_state"][0].tolist() == [0.5] * 3, "a re-inserted ID starts afresh"


@pytest.mark.parametrize("bad", [lambda: Adagrad(lr=0), lambda: Adagrad(initial_accumulator=-1.0),
                                 lambda: FTRL(alpha=0), lambda: FTRL(l1=-0.1), lambda: FTRL(beta=float("nan"))])
def test_optimizer_settings_are_validated(bad) -> None:
    with pytest.raises(ValueError):
        bad()
