"""Exercise 9.2 (solution): undo negative sampling with the log-odds correction.

See exercises/ex09_log_odds.py for the spec and book/ch09_streaming.md for the idea.
"""

from __future__ import annotations

import math

import numpy as np


def log_odds_correction(sample_rate: float) -> float:
    """``log(r)``, for ``0 < r <= 1``."""
    if not 0.0 < sample_rate <= 1.0:  # False for NaN as well
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
    return math.log(sample_rate)


def corrected_probability(p: np.ndarray | float, sample_rate: float) -> np.ndarray:
    """Multiply the odds by ``r``: ``r p / (r p + 1 - p)``, exact at 0 and 1."""
    log_odds_correction(sample_rate)  # validates the rate
    p = np.asarray(p, dtype=np.float64)
    return sample_rate * p / (sample_rate * p + (1.0 - p))
