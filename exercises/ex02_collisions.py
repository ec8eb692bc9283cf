"""Exercise 2.1: the expected collision rate of n IDs hashed into m buckets.

Chapter 2 (book/ch02_collisions.md) derives it from the birthday problem. Grade your answer
with ``monolith-ref grade 2``.
"""

from __future__ import annotations

import math  # noqa: F401  (you will probably want log1p and expm1)


def expected_collision_rate(n: int, m: int) -> float:
    """Expected fraction of ``n`` distinct IDs that get no bucket of their own among ``m``.

    Each of the ``n`` IDs is hashed independently and uniformly into one of ``m`` buckets.
    The collision rate is counted as in the paper's Table 1: ``1 - (occupied buckets) / n``
    (162,541 users landing in 149,970 buckets is a rate of 7.73%). Return its expectation.

    Requirements:

    * ``n == 0`` gives ``0.0``; ``m == 1`` gives ``1 - 1/n``.
    * Raise ``ValueError`` if ``n < 0`` or ``m < 1``.
    * Stay accurate when ``m`` is huge compared with ``n`` (say ``m = 10**12``): there the
      rate is about ``(n - 1) / (2 m)``, and a naive ``(1 - 1/m) ** n`` loses every digit.

    Hint: the chance that a given bucket stays empty is ``(1 - 1/m) ** n``.
    """
    raise NotImplementedError("Exercise 2.1: expected_collision_rate is not written yet")
