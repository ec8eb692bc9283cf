"""Row operations the arena-based peers share: copying rows out and Adagrad steps.

Two ways of each, because the peers stand for two ways of writing a table: with NumPy
(:func:`take_rows`, :func:`adagrad_numpy`: one vectorized call per batch) and with compiled
code (:func:`adagrad_compiled`: NumbaTable's own kernel, so those peers pay the same update
cost and only their indexes differ). All three compute exactly what NumbaTable computes.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numpy as np

from ...kernels import OPT_ADAGRAD, RowArena, apply_gradients

__all__ = ["take_rows", "adagrad_numpy", "adagrad_compiled"]


def take_rows(arena: RowArena, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` of the embeddings (one ``np.take``); zeros where ``rows`` is -1.

    See: book/ch06_numba.md
    """
    if not rows.size or rows.min() >= 0:
        return np.take(arena.embeddings, rows, axis=0)
    out = np.take(arena.embeddings, np.maximum(rows, 0), axis=0)
    out[rows < 0] = 0.0
    return out


def adagrad_numpy(arena: RowArena, rows: np.ndarray, grads: np.ndarray, lr: float, eps: float) -> None:
    """Sum per row in batch order (``np.add.at``), then one vectorized Adagrad step.

    Rows of -1 are skipped. See: book/ch06_numba.md
    """
    lr32, eps32 = np.float32(lr), np.float32(eps)
    present = rows >= 0
    rows, grads = rows[present], grads[present]
    uniq, inverse = np.unique(rows, return_inverse=True)
    summed = np.zeros((uniq.shape[0], grads.shape[1]), dtype=np.float32)
    np.add.at(summed, inverse, grads)
    acc = arena.opt_state[uniq] + summed * summed
    arena.opt_state[uniq] = acc
    arena.embeddings[uniq] = arena.embeddings[uniq] - lr32 * (summed / (np.sqrt(acc) + eps32))


def adagrad_compiled(arena: RowArena, rows: np.ndarray, grads: np.ndarray, lr: float, eps: float) -> None:
    """The same with :func:`monolith_ref.kernels.optim.apply_gradients`, NumbaTable's kernel.

    See: book/ch06_numba.md
    """
    params = np.array([lr, eps], dtype=np.float32)
    apply_gradients(rows, grads, OPT_ADAGRAD, params, arena.embeddings, arena.opt_state, arena.touched)
