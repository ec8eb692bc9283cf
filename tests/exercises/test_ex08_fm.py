"""Grader for Exercise 8.1: the FM second-order term, against a brute-force pairwise sum."""

from __future__ import annotations

import itertools

import pytest
import torch

from conformance.explain import raises

pytestmark = pytest.mark.exercise("8.1", title="The FM second-order interaction")


@pytest.fixture
def fm(mod):
    return mod.fm_second_order


def brute(emb: torch.Tensor) -> torch.Tensor:
    f = emb.shape[1]
    return sum(((emb[:, i] * emb[:, j]).sum(-1) for i, j in itertools.combinations(range(f), 2)),
               torch.zeros(emb.shape[0], dtype=emb.dtype))


@pytest.mark.points(3)
@pytest.mark.parametrize("fields", [1, 2, 5, 13])
def test_matches_the_pairwise_sum(fm, fields) -> None:
    emb = torch.randn(7, fields, 4, generator=torch.Generator().manual_seed(fields), dtype=torch.float64)
    out = fm(emb)
    assert out.shape == (7,) and out.dtype == torch.float64, (
        f"fm_second_order of a (batch 7, fields {fields}, dim 4) float64 tensor must return shape (7,) float64, "
        f"got {tuple(out.shape)} {out.dtype}")
    torch.testing.assert_close(out, brute(emb), msg=lambda m: f"{fields} fields: the result differs from the sum over "
                               f"all pairs i < j of <v_i, v_j>: {m}")


@pytest.mark.points(1)
def test_gradient_is_right(fm) -> None:
    emb = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True, generator=torch.Generator().manual_seed(0))
    assert torch.autograd.gradcheck(fm, (emb,)), "torch.autograd.gradcheck failed on fm_second_order"


@pytest.mark.points(1)
def test_rejects_wrong_rank(fm) -> None:
    with raises(ValueError, "fm_second_order of a 2-D tensor (3, 4) must refuse it: it expects (batch, fields, dim)"):
        fm(torch.zeros(3, 4))
