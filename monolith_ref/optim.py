"""Per-row sparse optimizers whose state lives with the row, as in Monolith.

In Monolith every hash-table entry carries its embedding *and* a segment of optimizer state,
so an ID's Adagrad accumulator (say) is created, expired and synced together with its vector.
An optimizer here is a small frozen dataclass: it says how wide its per-row state is, what
that state starts as, and how one step updates rows in place. Steps are elementwise float32
arithmetic, so updating rows one at a time or as a batch gives bit-identical results: that is
what lets the pure-Python table serve as the oracle for the fast ones.

This release has SGD; Adagrad and FTRL join in chapter 6.
See: book/ch03_dict_table.md
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["SparseOptimizer", "SGD"]


@runtime_checkable
class SparseOptimizer(Protocol):
    """What a table needs from an optimizer. See: book/ch03_dict_table.md"""

    name: str

    def state_width(self, dim: int) -> int:
        """Number of float32 state values stored beside each row of width ``dim``."""
        ...

    def initial_state(self, dim: int) -> np.ndarray:
        """The state a fresh row starts with: float32, shape ``(state_width(dim),)``."""
        ...

    def step(self, rows: np.ndarray, state: np.ndarray, grads: np.ndarray) -> None:
        """Update ``rows`` (…, dim) and ``state`` (…, width) in place from summed ``grads``."""
        ...


@dataclass(frozen=True)
class SGD:
    """Plain stochastic gradient descent: ``row -= lr * grad``, no state.

    See: book/ch03_dict_table.md
    """

    lr: float = 0.01
    name: str = "sgd"

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"SGD learning rate must be a finite number > 0, got {self.lr!r}")

    def state_width(self, dim: int) -> int:
        return 0

    def initial_state(self, dim: int) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)

    def step(self, rows: np.ndarray, state: np.ndarray, grads: np.ndarray) -> None:
        rows -= np.float32(self.lr) * grads
