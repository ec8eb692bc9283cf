"""Exercise 9.2: undo negative sampling with the log-odds correction.

The joiner keeps every positive but only a fraction ``r`` of the negatives (paper §2.2.2;
book/ch09_streaming.md). A model trained on that data sees too many clicks: where the true
click probability is ``p``, the sampled data has

    p_s = p / (p + r (1 - p)),   so the odds   p_s / (1 - p_s) = (p / (1 - p)) / r.

Dividing the odds by ``r`` adds ``-log r`` to the logit. Monolith corrects at serving: it
adds ``log r`` back to the model's logit before the sigmoid. Write that correction. Grade with
``monolith-ref grade 9.2``.
"""

from __future__ import annotations

import numpy as np  # noqa: F401


def log_odds_correction(sample_rate: float) -> float:
    """The shift to add to a logit learned with negatives kept at ``sample_rate``.

    Return ``log(sample_rate)`` (0.0 for a rate of 1: no sampling, no shift). Raise
    ``ValueError`` if ``sample_rate`` is not in ``(0, 1]`` (NaN included).
    """
    raise NotImplementedError("Exercise 9.2: log_odds_correction is not written yet")


def corrected_probability(p: np.ndarray | float, sample_rate: float) -> np.ndarray:
    """The true click probability behind a prediction ``p`` made by a model trained with
    negatives kept at ``sample_rate``: ``sigmoid(logit(p) + log(sample_rate))``.

    Work element-wise on an array (or a float) of probabilities and return a float64 array
    of the same shape. ``p = 0`` and ``p = 1`` must map to 0 and 1 exactly (hint: simplify
    the formula first; ``logit(0)`` is ``-inf``). Raise ``ValueError`` for a bad rate, as
    :func:`log_odds_correction` does.
    """
    raise NotImplementedError("Exercise 9.2: corrected_probability is not written yet")
