"""Exercise 2.1 (solution): the expected collision rate of n IDs hashed into m buckets.

Chapter 2 (book/ch02_collisions.md) derives it from the birthday problem.
"""

from __future__ import annotations

import math


def expected_collision_rate(n: int, m: int) -> float:
    """Expected fraction of ``n`` distinct IDs that get no bucket of their own among ``m``.

    A bucket stays empty with probability ``(1 - 1/m) ** n``, so ``m (1 - (1 - 1/m) ** n)``
    buckets are occupied on average, and the rate is one minus that over ``n``. Computing
    ``(1 - 1/m) ** n`` as ``exp(n log1p(-1/m))`` and ``1 - exp(x)`` as ``-expm1(x)`` keeps
    every digit when ``m`` is huge.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    if n == 0:
        return 0.0
    if m == 1:
        return 1.0 - 1.0 / n
    occupied = -m * math.expm1(n * math.log1p(-1.0 / m))
    return max(0.0, 1.0 - occupied / n)
