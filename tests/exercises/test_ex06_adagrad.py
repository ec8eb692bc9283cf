"""Grader for Exercise 6.2: the Adagrad row update, against torch and monolith_ref."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conformance.explain import array_diff, short
from monolith_ref.optim import Adagrad

pytestmark = pytest.mark.exercise("6.2", title="The Adagrad row update")


@pytest.fixture
def update(mod):
    return mod.adagrad_update


def steps(seed: int, n: int = 25, dim: int = 6):
    rng = np.random.default_rng(seed)
    return rng.normal(size=dim).astype(np.float32), [rng.normal(size=dim).astype(np.float32) for _ in range(n)]


@pytest.mark.points(2)
def test_matches_torch_adagrad(update) -> None:
    start, grads = steps(0)
    row, acc = start.copy(), np.full(6, 0.1, dtype=np.float32)
    param = torch.nn.Parameter(torch.from_numpy(start.copy()))
    opt = torch.optim.Adagrad([param], lr=0.3, initial_accumulator_value=0.1)
    for g in grads:
        update(row, acc, g, lr=0.3)
        opt.zero_grad()
        param.grad = torch.from_numpy(g.copy())
        opt.step()
    np.testing.assert_allclose(row, param.detach().numpy(), rtol=1e-5, atol=1e-6,
                               err_msg="after 25 steps (lr=0.3, accumulator from 0.1) the row differs from "
                                       "torch.optim.Adagrad's parameter")
    np.testing.assert_allclose(acc, opt.state[param]["sum"].numpy(), rtol=1e-6,
                               err_msg="after 25 steps the accumulator differs from torch's state 'sum' "
                                       "(it adds grad ** 2 each step)")


@pytest.mark.points(2)
def test_bit_identical_to_the_table_optimizer(update) -> None:
    start, grads = steps(1)
    row, acc = start.copy(), np.ones(6, dtype=np.float32)
    ref_row, ref_acc = start.copy(), np.ones(6, dtype=np.float32)
    opt = Adagrad(lr=0.05, initial_accumulator=1.0, eps=1e-10)
    for g in grads:
        update(row, acc, g, lr=0.05, eps=1e-10)
        opt.step(ref_row, ref_acc, g)
    assert row.dtype == np.float32, f"the row must stay float32, got {row.dtype}"
    assert np.array_equal(row, ref_row) and np.array_equal(acc, ref_acc), (
        f"after 25 steps (lr=0.05, eps=1e-10) the row or accumulator is not bit-identical to "
        f"monolith_ref.optim.Adagrad's: row {array_diff(ref_row, row)}; accumulator {array_diff(ref_acc, acc)}. "
        "Compute in float32, in the same order")


@pytest.mark.points(1)
def test_updates_in_place_and_handles_zero_gradients(update) -> None:
    row, acc = np.ones(3, dtype=np.float32), np.zeros(3, dtype=np.float32)
    ids = (id(row), id(acc))
    returned = update(row, acc, np.zeros(3, dtype=np.float32), lr=1.0)
    assert returned is None, f"adagrad_update updates row and acc in place and returns None, got {short(returned)}"
    assert (id(row), id(acc)) == ids and np.array_equal(row, np.ones(3)) and not acc.any(), (
        f"a zero gradient with a zero accumulator must change nothing (no division by zero): "
        f"row {short(row)}, acc {short(acc)}")
