"""Exercise 13.1 (solution): is the AUC gap between two tables real, or seed noise?

See exercises/ex13_auc_gap.py for the spec and book/ch13_collisions_measured.md for the idea.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as st


def auc_gap_stats(auc_a: list[float], auc_b: list[float], confidence: float = 0.95) -> dict[str, float | bool]:
    """Paired differences, their mean, spread, t statistic and a Student-t interval."""
    a, b = np.asarray(auc_a, dtype=float), np.asarray(auc_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"auc_a and auc_b must be equally long lists, got {a.shape} and {b.shape}")
    n = a.size
    if n < 2:
        raise ValueError(f"need at least 2 seeds, got {n}")
    d = a - b
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    if se > 0:
        t = mean / se
    else:
        t = math.copysign(math.inf, mean) if mean != 0 else 0.0
    half = float(st.t.ppf((1 + confidence) / 2, n - 1)) * se
    low, high = mean - half, mean + half
    return {"n": n, "mean_gap": mean, "sd_gap": sd, "stderr": se, "t": t, "ci_low": low, "ci_high": high,
            "significant": bool(low > 0 or high < 0)}


def interpret(stats: dict[str, float | bool], threshold: float = 0.001) -> str:
    """Significant and large enough, in one direction or the other; else no clear difference."""
    mean = float(stats["mean_gap"])
    if stats["significant"] and mean >= threshold:
        return "a better"
    if stats["significant"] and mean <= -threshold:
        return "b better"
    return "no clear difference"
