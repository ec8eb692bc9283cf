"""Per-row sparse optimizers whose state lives with the row, as in Monolith.

In Monolith every hash-table entry carries its embedding *and* a segment of optimizer state,
so an ID's Adagrad accumulator (say) is created, expired and synced together with its vector.
An optimizer here is a small frozen dataclass: it says how wide its per-row state is, what
that state starts as, and how one step updates rows in place. Steps are elementwise float32
arithmetic, so updating rows one at a time or as a batch gives bit-identical results: that is
what lets the pure-Python table serve as the oracle for the fast ones.

Three optimizers, as in Monolith: SGD; Adagrad (Monolith's default for embedding vectors, with
an initial accumulator of 1.0); FTRL-Proximal (its default for bias-like features).
See: book/ch03_dict_table.md
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .checks import check_number

__all__ = ["SparseOptimizer", "SGD", "Adagrad", "FTRL"]


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


def _check_settings(optimizer: object, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = ()) -> None:
    """Refuse an optimizer setting that is not a finite number ``> 0`` (``positive``) or ``>= 0``
    (``non_negative``); the error names the optimizer and the setting."""
    for names, low_open in ((positive, True), (non_negative, False)):
        for name in names:
            label = "learning rate" if name == "lr" else name
            check_number(getattr(optimizer, name), f"{type(optimizer).__name__} {label}", 0, low_open=low_open)


@dataclass(frozen=True)
class SGD:
    """Plain stochastic gradient descent: ``row -= lr * grad``, no state.

    See: book/ch03_dict_table.md
    """

    lr: float = 0.01
    name: str = "sgd"

    def __post_init__(self) -> None:
        _check_settings(self, positive=("lr",))

    def state_width(self, dim: int) -> int:
        return 0

    def initial_state(self, dim: int) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)

    def step(self, rows: np.ndarray, state: np.ndarray, grads: np.ndarray) -> None:
        rows -= np.float32(self.lr) * grads


@dataclass(frozen=True)
class Adagrad:
    """Adagrad: ``acc += g*g; row -= lr * g / (sqrt(acc) + eps)``; state = the accumulator.

    Matches ``torch.optim.Adagrad`` (no learning-rate decay, no weight decay) on rows that
    receive gradients. Monolith's default for embeddings is ``initial_accumulator=1.0``.
    See: book/ch06_numba.md
    """

    lr: float = 0.01
    initial_accumulator: float = 1.0
    eps: float = 1e-10
    name: str = "adagrad"

    def __post_init__(self) -> None:
        _check_settings(self, positive=("lr",), non_negative=("initial_accumulator", "eps"))

    def state_width(self, dim: int) -> int:
        return dim

    def initial_state(self, dim: int) -> np.ndarray:
        return np.full(dim, self.initial_accumulator, dtype=np.float32)

    def step(self, rows: np.ndarray, state: np.ndarray, grads: np.ndarray) -> None:
        state += grads * grads
        rows -= np.float32(self.lr) * (grads / (np.sqrt(state) + np.float32(self.eps)))


@dataclass(frozen=True)
class FTRL:
    """FTRL-Proximal (McMahan et al., "Ad Click Prediction: a View from the Trenches", KDD 2013).

    Per coordinate, with state ``z`` and ``n`` (so the state is ``2 * dim`` wide)::

        sigma = (sqrt(n + g*g) - sqrt(n)) / alpha
        z += g - sigma * w;  n += g*g
        w = 0                                                  if |z| <= l1
        w = -(z - sign(z) * l1) / ((beta + sqrt(n)) / alpha + l2)   otherwise

    The L1 term drives rarely useful weights to exactly zero, which is why it suits sparse
    bias-like features. Monolith's bias default: ``initial_accumulator=1e-6``, ``beta=1.0``.
    See: book/ch06_numba.md
    """

    alpha: float = 0.05
    beta: float = 1.0
    l1: float = 0.0
    l2: float = 0.0
    initial_accumulator: float = 1e-6
    name: str = "ftrl"

    def __post_init__(self) -> None:
        _check_settings(self, positive=("alpha",), non_negative=("beta", "l1", "l2", "initial_accumulator"))

    def state_width(self, dim: int) -> int:
        return 2 * dim

    def initial_state(self, dim: int) -> np.ndarray:
        state = np.zeros(2 * dim, dtype=np.float32)
        state[dim:] = self.initial_accumulator
        return state

    def step(self, rows: np.ndarray, state: np.ndarray, grads: np.ndarray) -> None:
        dim = rows.shape[-1]
        z, n = state[..., :dim], state[..., dim:]
        alpha, beta = np.float32(self.alpha), np.float32(self.beta)
        l1, l2 = np.float32(self.l1), np.float32(self.l2)
        n_new = n + grads * grads
        sigma = (np.sqrt(n_new) - np.sqrt(n)) / alpha
        z += grads - sigma * rows
        n[...] = n_new
        shrunk = -(z - np.sign(z) * l1) / ((beta + np.sqrt(n)) / alpha + l2)
        rows[...] = np.where(np.abs(z) <= l1, np.float32(0.0), shrunk)
