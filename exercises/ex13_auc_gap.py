"""Exercise 13.1: is the AUC gap between two tables real, or seed noise?

Chapter 13 (book/ch13_collisions_measured.md) trains the same model on a collisionless table
and on a hashed one, with several seeds each. Seed ``s`` of both runs shares its data order
and initial rows, so the runs are *paired*. Grade with ``monolith-ref grade 13``.
"""

from __future__ import annotations

import numpy as np  # noqa: F401


def auc_gap_stats(auc_a: list[float], auc_b: list[float], confidence: float = 0.95) -> dict[str, float | bool]:
    """Paired statistics of the gap ``a - b`` over seeds.

    ``auc_a[i]`` and ``auc_b[i]`` come from the same seed ``i``. Return a dict with:

    * ``"n"``: the number of seeds;
    * ``"mean_gap"``: the mean of the per-seed differences ``a_i - b_i``;
    * ``"sd_gap"``: their sample standard deviation (``ddof=1``);
    * ``"stderr"``: ``sd_gap / sqrt(n)``;
    * ``"t"``: ``mean_gap / stderr`` (``inf`` with the sign of the mean if ``stderr == 0``
      and the mean is not zero; ``0.0`` if both are zero);
    * ``"ci_low"``, ``"ci_high"``: the two-sided ``confidence`` interval of the mean gap,
      ``mean_gap -/+ t_crit * stderr`` with ``t_crit`` Student's t quantile at
      ``(1 + confidence) / 2`` with ``n - 1`` degrees of freedom
      (``scipy.stats.t.ppf``);
    * ``"significant"``: True if the interval excludes zero.

    Raise ``ValueError`` if the lists differ in length or have fewer than 2 seeds.
    """
    raise NotImplementedError("Exercise 13.1: auc_gap_stats is not written yet")


def interpret(stats: dict[str, float | bool], threshold: float = 0.001) -> str:
    """One of ``"a better"``, ``"b better"``, ``"no clear difference"``.

    ``"a better"`` if the gap is significant, positive and at least ``threshold`` AUC;
    ``"b better"`` if significant, negative and at most ``-threshold``; otherwise
    ``"no clear difference"`` (a significant gap smaller than ``threshold`` is too small to
    matter).
    """
    raise NotImplementedError("Exercise 13.1: interpret is not written yet")
