"""Tests for monolith_ref.metrics: cross-checks against scikit-learn, properties, streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from monolith_ref.data import StreamConfig, synthetic_stream
from monolith_ref.metrics import (
    ProgressiveValidation,
    StreamingAUC,
    StreamingLogLoss,
    auc,
    log_loss,
)

# --------------------------------------------------------------------------- scikit-learn


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("decimals", [None, 1, 0])  # continuous scores, many ties, all-but-two ties
def test_auc_matches_sklearn_with_ties(seed: int, decimals: int | None) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 3000))
    y = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(np.float32)
    y[:2] = [0, 1]  # both classes
    s = rng.normal(size=n) + 0.8 * y
    if decimals is not None:
        s = np.round(s, decimals)
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_log_loss_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 2000))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    p = rng.uniform(0.01, 0.99, n)
    assert log_loss(y, p) == pytest.approx(sk_log_loss(y, p), rel=1e-12)


def test_log_loss_clips_certain_mistakes() -> None:
    assert log_loss([1, 0], [0.0, 1.0]) == pytest.approx(-math.log(1e-7))
    assert log_loss([1, 0], [1.0, 0.0]) == pytest.approx(-math.log1p(-1e-7))
    assert log_loss([1], [0.0], eps=1e-3) == pytest.approx(-math.log(1e-3))


def test_small_known_values() -> None:
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auc([0, 1], [0.5, 0.5]) == 0.5
    assert auc([False, True, True], [3, 1, 2]) == 0.0
    assert auc(np.array([0, 1]), np.array([-np.inf, np.inf])) == 1.0


# --------------------------------------------------------------------------- properties

# Scores on a grid of eighths: exact in floating point, with plenty of ties, so that the
# transforms below are strictly increasing in floating point too.
scores_st = st.lists(st.integers(-8000, 8000).map(lambda k: k / 8), min_size=2, max_size=60)


@st.composite
def labelled(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    s = np.array(draw(scores_st), dtype=np.float64)
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=len(s), max_size=len(s))), dtype=np.int64)
    y[0], y[-1] = 0, 1
    return y, s


@given(st.integers(1, 40), st.integers(1, 40))
def test_perfect_ranking_is_one_and_reversed_is_zero(n_neg: int, n_pos: int) -> None:
    y = np.array([0] * n_neg + [1] * n_pos)
    s = np.arange(y.size, dtype=np.float64)
    assert auc(y, s) == 1.0
    assert auc(y, -s) == 0.0


@given(labelled())
def test_auc_is_invariant_to_strictly_increasing_transforms(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = data
    base = auc(y, s)
    assert auc(y, 3.0 * s + 7.0) == pytest.approx(base, abs=1e-12)
    assert auc(y, np.exp(s / 100)) == pytest.approx(base, abs=1e-12)
    assert auc(y, np.arctan(s / 100)) == pytest.approx(base, abs=1e-12)  # squashes, keeps order
    ranks = np.unique(s, return_inverse=True)[1]
    assert auc(y, ranks) == pytest.approx(base, abs=1e-12)
    assert auc(1 - y, s) == pytest.approx(1.0 - base, abs=1e-12)  # swapping classes mirrors it
    assert auc(y, -s) == pytest.approx(1.0 - base, abs=1e-12)


@given(labelled(), st.lists(st.integers(0, 60), max_size=6))
def test_streaming_equals_batch(data: tuple[np.ndarray, np.ndarray], cuts: list[int]) -> None:
    y, s = data
    p = 1.0 / (1.0 + np.exp(-s / 100))
    bounds = [0, *sorted(min(c, y.size) for c in cuts), y.size]
    sa, sl = StreamingAUC(), StreamingLogLoss()
    for a, b in zip(bounds[:-1], bounds[1:]):
        sa.update(y[a:b], s[a:b])  # empty pieces are allowed
        sl.update(y[a:b], p[a:b])
    assert sa.value() == pytest.approx(auc(y, s), abs=1e-12)
    assert sl.value() == pytest.approx(log_loss(y, p), rel=1e-9)
    assert sa.count == sl.count == y.size


def test_streaming_auc_merges_many_batches_exactly() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300_000)
    s = np.round(rng.normal(size=y.size) + 0.5 * y, 3).astype(np.float32)  # ties within and across batches
    sa = StreamingAUC()
    for a in range(0, y.size, 7_000):
        sa.update(y[a : a + 7_000], s[a : a + 7_000])
        if a == 140_000:
            assert sa.value() == pytest.approx(auc(y[: a + 7_000], s[: a + 7_000]), abs=1e-12)
    assert sa.value() == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert 0 < sa.memory_bytes() <= 24 * np.unique(s).size + 9 * y.size


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", [auc, log_loss])
def test_clear_errors(fn) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        fn([0, 1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="empty"):
        fn([], [])
    with pytest.raises(ValueError, match="labels must be 0 or 1, got 2"):
        fn([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        fn([0, 0.5], [0.1, 0.2])
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        fn([0, np.nan], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        fn([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="1-D"):
        fn([[0, 1]], [[0.1, 0.2]])
    with pytest.raises(ValueError, match="numbers"):
        fn([0, 1], ["a", "b"])


def test_auc_needs_both_classes_and_log_loss_needs_probabilities() -> None:
    with pytest.raises(ValueError, match="without a negative label"):
        auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="without a positive label"):
        auc([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        log_loss([0, 1], [0.5, 1.5])
    with pytest.raises(ValueError, match="eps"):
        log_loss([0, 1], [0.5, 0.5], eps=0.0)
    for empty in (StreamingAUC(), StreamingLogLoss()):
        with pytest.raises(ValueError, match="empty"):
            empty.value()


# --------------------------------------------------------------------------- progressive


def test_progressive_validation_windows() -> None:
    rng = np.random.default_rng(3)
    t = np.sort(rng.integers(0, 5 * 3600, 4000))
    y = rng.integers(0, 2, t.size)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, t.size), 0, 1)
    pv = ProgressiveValidation()
    for a in range(0, t.size, 128):
        pv.update(y[a : a + 128], p[a : a + 128], t[a : a + 128])
    assert len(pv) == t.size
    assert pv.auc() == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert pv.log_loss() == pytest.approx(sk_log_loss(y, p), rel=1e-9)
    series = pv.window_auc(3600)
    assert series.start.tolist() == [0, 3600, 7200, 10800, 14400]
    for k, start in enumerate(series.start):
        m = (t >= start) & (t < start + 3600)
        assert series.value[k] == pytest.approx(roc_auc_score(y[m], p[m]), abs=1e-12)
        assert series.count[k] == m.sum() and series.positives[k] == y[m].sum()
    losses = pv.window_log_loss(7200, origin=-3600)
    assert losses.start.tolist() == [-3600, 3600, 10800]
    assert sum(losses.count) == t.size


def test_progressive_validation_single_class_windows_and_order() -> None:
    pv = ProgressiveValidation()
    pv.update([0, 1], [0.2, 0.7], times=[0, 10])
    pv.update([1, 1], [0.6, 0.4], times=[3600, 3700])
    series = pv.window_auc(3600)
    assert series.value[0] == 1.0 and math.isnan(series.value[1])
    with pytest.raises(ValueError, match="event-time order"):
        pv.update([0], [0.5], times=[100])
    with pytest.raises(ValueError, match="event-time order"):
        ProgressiveValidation().update([0, 1], [0.5, 0.5], times=[5, 4])
    with pytest.raises(ValueError, match="integer seconds"):
        ProgressiveValidation().update([0, 1], [0.5, 0.5], times=[0.5, 1.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pv.update([0], [1.5], times=[4000])
    assert len(pv) == 4  # a refused batch leaves no trace
    with pytest.raises(ValueError, match="window_seconds"):
        pv.window_auc(0)
    with pytest.raises(ValueError, match="empty"):
        ProgressiveValidation().window_auc(60)


def test_progressive_validation_on_a_synthetic_stream() -> None:
    events = synthetic_stream(StreamConfig(num_users=500, num_items=300, new_items_per_day=50, days=2,
                                           events_per_day=5000, num_bursts=1))  # fmt: skip
    pv = ProgressiveValidation()
    for batch in events.batches(512):
        pv.record(batch, batch.prob)  # the true probabilities: the best possible predictions
    assert pv.auc() == pytest.approx(auc(events.label, events.prob), abs=1e-12)
    daily = pv.window_auc(86400)
    assert len(daily) == 2 and (daily.value > 0.6).all()
