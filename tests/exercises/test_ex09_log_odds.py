"""Grader for Exercise 9.2: the log-odds correction of negative sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conformance.explain import array_diff, raises, short

pytestmark = pytest.mark.exercise("9.2", title="The log-odds correction")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.points(1)
def test_a_rate_of_one_changes_nothing(mod) -> None:
    p = np.linspace(0.0, 1.0, 11)
    got = mod.log_odds_correction(1.0)
    assert got == 0.0, (
        f"log_odds_correction(1.0): keeping every negative needs no correction, expected 0.0, got {got!r}")
    out = mod.corrected_probability(p, 1.0)
    assert np.array_equal(out, p), (
        f"corrected_probability(p, 1.0) must return p unchanged (p = 0, 0.1, ..., 1): {array_diff(p, out)}")


@pytest.mark.points(1)
def test_rates_outside_zero_one_are_refused(mod) -> None:
    for bad in (0.0, -0.25, 1.0001, 2.0, float("nan")):
        with raises(ValueError, f"log_odds_correction({bad}) must refuse a rate outside (0, 1]"):
            mod.log_odds_correction(bad)
        with raises(ValueError, f"corrected_probability([0.5], {bad}) must refuse a rate outside (0, 1]"):
            mod.corrected_probability(np.array([0.5]), bad)


@pytest.mark.points(1)
def test_it_is_the_logit_shift_elementwise(mod) -> None:
    got = mod.log_odds_correction(0.25)
    assert got == pytest.approx(math.log(0.25)), f"log_odds_correction(0.25) = {got!r}, expected {math.log(0.25)!r}"
    p = np.random.default_rng(0).uniform(0.01, 0.99, (4, 5))
    out = mod.corrected_probability(p, 0.1)
    assert isinstance(out, np.ndarray) and out.shape == (4, 5) and out.dtype == np.float64, (
        f"corrected_probability of a (4, 5) float64 array must return a (4, 5) float64 array, got "
        f"{type(out).__name__} {getattr(out, 'shape', '')} {getattr(out, 'dtype', '')}")
    want = _sigmoid(np.log(p / (1 - p)) + math.log(0.1))
    assert np.allclose(out, want), (
        f"corrected_probability(p, 0.1), elementwise on a (4, 5) array: {array_diff(want, out)}")
    got = float(mod.corrected_probability(0.5, 0.25))
    assert got == pytest.approx(0.2), f"corrected_probability(0.5, 0.25) = {got!r}, expected 0.2"
    ends = mod.corrected_probability(np.array([0.0, 1.0]), 0.3)
    assert ends.tolist() == [0.0, 1.0], (
        f"corrected_probability([0.0, 1.0], 0.3): certainties stay certain, expected [0.0, 1.0], got {short(ends)}")


@pytest.mark.points(3)
def test_the_correction_restores_the_mean_ctr_of_a_sampled_data_set(mod) -> None:
    """True CTR ``sigmoid(-2 + x)``; keep 1 negative in 10; fit a logistic regression on the
    sampled data; corrected, its predictions average to the true CTR again."""
    rng = np.random.default_rng(42)
    rate = 0.1
    x = rng.standard_normal(200_000)
    p = _sigmoid(-2.0 + x)
    y = (rng.random(x.size) < p).astype(np.float64)
    keep = (y == 1) | (rng.random(x.size) < rate)
    xs, ys = x[keep], y[keep]
    # logistic regression by Newton's method on the sampled data
    design = np.stack([np.ones_like(xs), xs], axis=1)
    w = np.zeros(2)
    for _ in range(25):
        q = _sigmoid(design @ w)
        hessian = design.T @ (design * (q * (1 - q))[:, None])
        w += np.linalg.solve(hessian, design.T @ (ys - q))
    sampled_model = _sigmoid(w[0] + w[1] * x)  # served on all the traffic
    assert sampled_model.mean() > 2 * p.mean(), "set-up: the uncorrected model should overestimate badly"
    corrected = mod.corrected_probability(sampled_model, rate)
    assert abs(corrected.mean() - p.mean()) < 0.03 * p.mean(), (
        f"a model fit on data keeping 1 negative in 10 predicts a mean CTR of {sampled_model.mean():.4f}; "
        f"corrected_probability(.., 0.1) gives {corrected.mean():.4f}, the true mean CTR is {p.mean():.4f} "
        "(3% allowed)")
    logits = np.log(sampled_model / (1 - sampled_model)) + mod.log_odds_correction(rate)
    shifted = _sigmoid(logits).mean()
    assert abs(shifted - p.mean()) < 0.03 * p.mean(), (
        f"adding log_odds_correction(0.1) = {mod.log_odds_correction(rate)!r} to the logits gives a mean CTR of "
        f"{shifted:.4f}; the true mean CTR is {p.mean():.4f} (3% allowed)")
    corr = np.corrcoef(corrected, p)[0, 1]
    assert corr > 0.999, f"corrected predictions must rank like the true CTR: correlation {corr:.5f}, needs > 0.999"
