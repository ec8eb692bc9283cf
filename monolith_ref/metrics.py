"""Metrics for click prediction: AUC and log loss, batch and streaming.

The paper reports AUC everywhere (sections 3.2.1, 3.2.2). In online training the honest way
to measure it is *progressive validation*: each batch is scored by the current model before
the model trains on it, so every prediction is on data the model has not seen yet
(Algorithm 1 evaluates each shard with the serving parameters, then trains on it).

* :func:`auc` is exact: the Mann-Whitney statistic, with tied scores counted as half.
* :class:`StreamingAUC` gives the same number over a stream of batches, exactly.
* :class:`ProgressiveValidation` keeps the predict-then-train record and cuts it into
  windows of event time (AUC per hour, per day, ...).

See: book/ch08_deepfm.md
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .events import Events

__all__ = [
    "auc",
    "log_loss",
    "StreamingAUC",
    "StreamingLogLoss",
    "ProgressiveValidation",
    "WindowSeries",
]


# --------------------------------------------------------------------------- validation


def _check_labels(labels: object, n: int | None = None) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be a 1-D array, got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} labels, {n} scores")
    if y.dtype == np.bool_:
        return y
    if y.dtype.kind not in "iuf":
        raise ValueError(f"labels must be 0/1 numbers or booleans, got dtype {y.dtype}")
    binary = (y == 0) | (y == 1)
    if not binary.all():
        bad = y[~binary][0]
        raise ValueError(f"labels must be 0 or 1, got {bad.item()!r}")
    return y == 1


def _check_scores(scores: object, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores)
    if s.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {s.shape}")
    if s.dtype.kind not in "iufb":
        raise ValueError(f"{name} must be numbers, got dtype {s.dtype}")
    s = s.astype(np.float64)
    if np.isnan(s).any():
        raise ValueError(f"{name} contain NaN (at index {int(np.flatnonzero(np.isnan(s))[0])})")
    return s


def _check_pair(labels: object, scores: object, name: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    s = _check_scores(scores, name)
    y = _check_labels(labels, s.shape[0])
    if y.shape[0] == 0:
        raise ValueError(f"labels and {name} are empty")
    return y, s


# --------------------------------------------------------------------------- AUC


def _group(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum positive and negative counts per distinct score; scores come back sorted."""
    if scores.size == 0:
        return scores, pos[:0], neg[:0]
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
    return s[starts], np.add.reduceat(pos[order], starts), np.add.reduceat(neg[order], starts)


def _auc_from_counts(pos: np.ndarray, neg: np.ndarray) -> float:
    """AUC from per-score counts sorted by score: P(score+ > score-) + P(tie) / 2."""
    n_pos, n_neg = float(pos.sum()), float(neg.sum())
    if n_pos == 0 or n_neg == 0:
        which = "positive" if n_pos == 0 else "negative"
        raise ValueError(f"AUC is undefined without a {which} label (all labels are the same)")
    pos = pos.astype(np.float64)
    neg = neg.astype(np.float64)
    neg_below = np.cumsum(neg) - neg
    return float((pos @ neg_below + 0.5 * (pos @ neg)) / (n_pos * n_neg))


def auc(labels: object, scores: object) -> float:
    """Exact ROC AUC: the chance a random positive scores above a random negative.

    Ties count as half (the Mann-Whitney U statistic over average ranks), which is what
    ``sklearn.metrics.roc_auc_score`` computes. Labels are 0/1 (or booleans); scores any
    real numbers (no NaN). Raises ``ValueError`` for empty input, a length mismatch,
    non-binary labels, NaN scores, or a single class. See: book/ch08_deepfm.md

    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, s = _check_pair(labels, scores)
    _, pos, neg = _group(s, y.astype(np.int64), (~y).astype(np.int64))
    return _auc_from_counts(pos, neg)


def log_loss(labels: object, probs: object, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy, with probabilities clipped to ``[eps, 1 - eps]``.

    Probabilities must lie in ``[0, 1]``. See: book/ch08_deepfm.md

    >>> round(log_loss([1, 0], [0.9, 0.2]), 4)
    0.1643
    """
    y, p = _check_pair(labels, probs, "probs")
    return _log_loss_sum(y, p, eps) / y.shape[0]


def _log_loss_sum(y: np.ndarray, p: np.ndarray, eps: float) -> float:
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps}")
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        bad = p[(p < 0.0) | (p > 1.0)][0]
        raise ValueError(f"probs must lie in [0, 1], got {bad.item()!r}")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-(np.log(p[y]).sum() + np.log1p(-p[~y]).sum()))


# --------------------------------------------------------------------------- streaming


class StreamingAUC:
    """Exact AUC over a stream of batches: ``update(labels, scores)``, then ``value()``.

    It keeps one ``(score, positives, negatives)`` count per distinct score (24 bytes each),
    plus the raw batches not yet merged (9 bytes per event), merged once they outnumber the
    counts, so memory stays within about twice the counts and the total cost is
    ``O(n log n)``. Model scores are mostly distinct, so budget ~24-40 bytes per event
    (40 MB for a million); rounding scores before ``update`` shrinks that. The value equals
    :func:`auc` over everything seen. See: book/ch08_deepfm.md
    """

    def __init__(self) -> None:
        self._scores = np.zeros(0, dtype=np.float64)
        self._pos = np.zeros(0, dtype=np.int64)
        self._neg = np.zeros(0, dtype=np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_n = 0
        self.count = 0

    def update(self, labels: object, scores: object) -> None:
        """Add a batch (an empty batch is allowed and changes nothing)."""
        s = _check_scores(scores)
        y = _check_labels(labels, s.shape[0])
        if s.size == 0:
            return
        self._pending.append((s, y))
        self._pending_n += s.size
        self.count += s.size
        if self._pending_n > max(self._scores.size, 1 << 16):
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        s = np.concatenate([self._scores] + [p[0] for p in self._pending])
        y = np.concatenate([p[1] for p in self._pending])
        pos = np.concatenate([self._pos, y.astype(np.int64)])
        neg = np.concatenate([self._neg, (~y).astype(np.int64)])
        self._scores, self._pos, self._neg = _group(s, pos, neg)
        self._pending, self._pending_n = [], 0

    def value(self) -> float:
        """The AUC of everything seen so far (``ValueError`` if empty or one class)."""
        if self.count == 0:
            raise ValueError("StreamingAUC is empty: call update() first")
        self._merge()
        return _auc_from_counts(self._pos, self._neg)

    def memory_bytes(self) -> int:
        """Bytes held in counts and unmerged batches."""
        return int(self._scores.nbytes + self._pos.nbytes + self._neg.nbytes + 9 * self._pending_n)


class StreamingLogLoss:
    """Mean log loss over a stream of batches, in O(1) memory. See: book/ch08_deepfm.md"""

    def __init__(self, eps: float = 1e-7) -> None:
        self.eps = eps
        self.total = 0.0
        self.count = 0

    def update(self, labels: object, probs: object) -> None:
        """Add a batch (an empty batch is allowed and changes nothing)."""
        p = _check_scores(probs, "probs")
        y = _check_labels(labels, p.shape[0])
        self.total += _log_loss_sum(y, p, self.eps)
        self.count += p.size

    def value(self) -> float:
        """The mean log loss of everything seen so far."""
        if self.count == 0:
            raise ValueError("StreamingLogLoss is empty: call update() first")
        return self.total / self.count


# --------------------------------------------------------------------------- progressive


@dataclass(frozen=True)
class WindowSeries:
    """A metric per window of event time: window ``start`` (seconds), ``value``, ``count``
    (events) and ``positives``. ``value`` is NaN where a window holds one class only.

    See: book/ch08_deepfm.md
    """

    start: np.ndarray
    value: np.ndarray
    count: np.ndarray
    positives: np.ndarray

    def __len__(self) -> int:
        return int(self.start.shape[0])


class ProgressiveValidation:
    """Predict-then-train bookkeeping: score each batch *before* training on it.

    >>> pv = ProgressiveValidation()
    >>> pv.update([0, 1], [0.2, 0.7], times=[0, 10])    # predictions made before training
    >>> pv.update([1, 0], [0.6, 0.4], times=[3600, 3700])
    >>> pv.auc(), len(pv.window_auc(3600))
    (1.0, 2)

    Batches must come in event-time order (times never go back), since progressive
    validation is one pass over a stream. It keeps every ``(time, label, prob)`` (17 bytes
    per event) so that any window can be cut afterwards. See: book/ch08_deepfm.md
    """

    def __init__(self, eps: float = 1e-7) -> None:
        self.eps = eps
        self._time: list[np.ndarray] = []
        self._label: list[np.ndarray] = []
        self._prob: list[np.ndarray] = []
        self._auc = StreamingAUC()
        self._loss = StreamingLogLoss(eps)
        self._last_time: int | None = None

    def __len__(self) -> int:
        return self._auc.count

    def update(self, labels: object, probs: object, times: object) -> None:
        """Record a batch's predictions (made before training on it) with its event times."""
        p = _check_scores(probs, "probs")
        y = _check_labels(labels, p.shape[0])
        t = np.asarray(times)
        if t.ndim != 1 or t.shape[0] != p.shape[0]:
            raise ValueError(f"times must be a 1-D array of length {p.shape[0]}, got shape {t.shape}")
        if t.dtype.kind not in "iu":
            raise ValueError(f"times must be integer seconds, got dtype {t.dtype}")
        if t.size == 0:
            return
        t = t.astype(np.int64)
        if np.any(t[1:] < t[:-1]) or (self._last_time is not None and t[0] < self._last_time):
            raise ValueError("times went back: progressive validation needs batches in event-time order")
        self._loss.update(y, p)  # validates the probabilities before anything is stored
        self._auc.update(y, p)
        self._time.append(t)
        self._label.append(y)
        self._prob.append(p)
        self._last_time = int(t[-1])

    def record(self, events: Events, probs: object) -> None:
        """:meth:`update` from an :class:`~monolith_ref.events.Events` batch."""
        self.update(events.label, probs, events.time)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Everything recorded: ``(time int64, label bool, prob float64)``."""
        if not self._time:
            return np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.float64)
        return np.concatenate(self._time), np.concatenate(self._label), np.concatenate(self._prob)

    def auc(self) -> float:
        """Progressive AUC over everything recorded."""
        return self._auc.value()

    def log_loss(self) -> float:
        """Progressive log loss over everything recorded."""
        return self._loss.value()

    def _windows(self, window_seconds: int, origin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if int(window_seconds) < 1:
            raise ValueError(f"window_seconds must be >= 1, got {window_seconds}")
        t, y, p = self.arrays()
        if t.size == 0:
            raise ValueError("ProgressiveValidation is empty: call update() first")
        w = (t - int(origin)) // int(window_seconds)
        starts = np.flatnonzero(np.concatenate([[True], w[1:] != w[:-1]]))
        return w[starts] * int(window_seconds) + int(origin), np.append(starts, t.size), y, p

    def window_auc(self, window_seconds: int, origin: int = 0) -> WindowSeries:
        """AUC per window ``[origin + k * window_seconds, ...)`` that holds events.

        See: book/ch08_deepfm.md
        """
        return self._per_window(window_seconds, origin, "auc")

    def window_log_loss(self, window_seconds: int, origin: int = 0) -> WindowSeries:
        """Log loss per window of event time that holds events."""
        return self._per_window(window_seconds, origin, "log_loss")

    def _per_window(self, window_seconds: int, origin: int, metric: str) -> WindowSeries:
        start, bounds, y, p = self._windows(window_seconds, origin)
        values, counts, positives = [], [], []
        for a, b in zip(bounds[:-1], bounds[1:]):
            yy, pp = y[a:b], p[a:b]
            k = int(yy.sum())
            if metric == "auc":
                values.append(auc(yy, pp) if 0 < k < yy.size else math.nan)
            else:
                values.append(_log_loss_sum(yy, pp, self.eps) / yy.size)
            counts.append(yy.size)
            positives.append(k)
        return WindowSeries(start, np.array(values), np.array(counts, np.int64), np.array(positives, np.int64))
