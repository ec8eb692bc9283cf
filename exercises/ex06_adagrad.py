"""Exercise 6.2: the Adagrad update of one row.

Monolith trains embedding vectors with Adagrad, whose per-coordinate accumulator lives in
the table entry next to the row (chapter 6, book/ch06_numba.md). Graded against
``torch.optim.Adagrad`` and ``monolith_ref.optim.Adagrad``: ``monolith-ref grade 6``.
"""

from __future__ import annotations

import numpy as np


def adagrad_update(row: np.ndarray, acc: np.ndarray, grad: np.ndarray, lr: float, eps: float = 1e-10) -> None:
    """Update ``row`` and ``acc`` (float32 arrays of one shape) in place from ``grad``.

    First add the squared gradient to the accumulator, then move each coordinate against its
    gradient, scaled by the square root of its accumulator:
    ``acc += grad**2``; ``row -= lr * grad / (sqrt(acc) + eps)``. Compute in float32 (use
    ``np.float32(lr)`` and ``np.float32(eps)``) so the result matches the table's optimizer
    bit for bit.
    """
    raise NotImplementedError("Exercise 6.2: adagrad_update is not written yet")
