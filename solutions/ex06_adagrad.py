"""Exercise 6.2 (solution): the Adagrad update of one row.

See exercises/ex06_adagrad.py for the spec and book/ch06_numba.md for the idea.
"""

from __future__ import annotations

import numpy as np


def adagrad_update(row: np.ndarray, acc: np.ndarray, grad: np.ndarray, lr: float, eps: float = 1e-10) -> None:
    """``acc += g*g``; ``row -= lr * g / (sqrt(acc) + eps)``, in float32, in place."""
    acc += grad * grad
    row -= np.float32(lr) * (grad / (np.sqrt(acc) + np.float32(eps)))
