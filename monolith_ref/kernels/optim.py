"""Optimizer steps in compiled code: the formulas of :mod:`monolith_ref.optim`, row by row.

The compiled kernels cannot call the optimizers' Python methods, so each optimizer gets a
code (:data:`OPT_SGD`, :data:`OPT_ADAGRAD`, :data:`OPT_FTRL`) and a float32 parameter vector
(:func:`optimizer_code`), and :func:`optimizer_step` restates its update coordinate by
coordinate, rounding exactly as NumPy's float32 arithmetic does.
:func:`apply_gradients` sums a batch's gradients per row in batch order, then takes one step
per row: the tables' contract for repeated IDs.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..hashing import GOLDEN_GAMMA
from ..optim import FTRL, SGD, Adagrad

__all__ = ["OPT_SGD", "OPT_ADAGRAD", "OPT_FTRL", "optimizer_code", "optimizer_step", "apply_gradients"]

#: Optimizer codes for :func:`optimizer_step`.
OPT_SGD, OPT_ADAGRAD, OPT_FTRL = 0, 1, 2


def optimizer_code(opt: object) -> tuple[int, np.ndarray]:
    """``(code, params)`` of an optimizer for :func:`optimizer_step`: SGD ``[lr]``, Adagrad
    ``[lr, eps]``, FTRL ``[alpha, beta, l1, l2]`` (float32). Any other optimizer: ValueError.

    See: book/ch06_numba.md
    """
    if isinstance(opt, SGD):
        return OPT_SGD, np.array([opt.lr], dtype=np.float32)
    if isinstance(opt, Adagrad):
        return OPT_ADAGRAD, np.array([opt.lr, opt.eps], dtype=np.float32)
    if isinstance(opt, FTRL):
        return OPT_FTRL, np.array([opt.alpha, opt.beta, opt.l1, opt.l2], dtype=np.float32)
    raise ValueError(f"NumbaTable supports SGD, Adagrad and FTRL, got {type(opt).__name__}")


@njit(cache=True, nogil=True)
def optimizer_step(code, params, w, st, g) -> None:
    """One optimizer step on one row, exactly as :mod:`monolith_ref.optim` computes it.

    See: book/ch06_numba.md
    """
    dim = w.shape[0]
    if code == OPT_SGD:
        lr = params[0]
        for j in range(dim):
            w[j] = w[j] - lr * g[j]
    elif code == OPT_ADAGRAD:
        lr, eps = params[0], params[1]
        for j in range(dim):
            st[j] = st[j] + g[j] * g[j]
            w[j] = w[j] - lr * (g[j] / (np.sqrt(st[j]) + eps))
    else:
        alpha, beta, l1, l2 = params[0], params[1], params[2], params[3]
        zero = np.float32(0.0)
        for j in range(dim):
            z, n = st[j], st[dim + j]
            n_new = n + g[j] * g[j]
            sigma = (np.sqrt(n_new) - np.sqrt(n)) / alpha
            z = z + (g[j] - sigma * w[j])
            st[j] = z
            st[dim + j] = n_new
            sign = np.float32(1.0) if z > zero else (np.float32(-1.0) if z < zero else zero)
            shrunk = -(z - sign * l1) / ((beta + np.sqrt(n_new)) / alpha + l2)
            w[j] = zero if abs(z) <= l1 else shrunk


@njit(cache=True, nogil=True)
def apply_gradients(rows, grads, code, params, emb, opt, touched) -> None:
    """Sum each present row's gradients in batch order, then one optimizer step per row.

    ``rows[i]`` is the row of gradient ``grads[i]`` (-1: no row, the gradient is dropped).
    Repeated rows are found with a small open-addressing map from row number to its
    accumulator, local to the call (so the arena carries no scratch arrays).
    See: book/ch06_numba.md
    """
    n, dim = grads.shape
    acc = np.empty((n, dim), dtype=np.float32)
    order = np.empty(n, dtype=np.int64)
    bits = 1
    while (1 << bits) < 2 * n:
        bits += 1
    size = 1 << bits
    shift = np.uint64(64 - bits)
    seen_row = np.full(size, -1, dtype=np.int64)
    seen_at = np.empty(size, dtype=np.int32)
    u = 0
    for i in range(n):
        r = rows[i]
        if r < 0:
            continue
        h = np.int64((np.uint64(r) * GOLDEN_GAMMA) >> shift)
        while seen_row[h] != r and seen_row[h] != -1:
            h = (h + 1) & (size - 1)
        if seen_row[h] == -1:
            seen_row[h] = r
            seen_at[h] = u
            order[u] = r
            for j in range(dim):
                acc[u, j] = grads[i, j]
            u += 1
        else:
            k = seen_at[h]
            for j in range(dim):
                acc[k, j] = acc[k, j] + grads[i, j]
    for k in range(u):
        r = order[k]
        optimizer_step(code, params, emb[r], opt[r], acc[k])
        touched[r] = 1
