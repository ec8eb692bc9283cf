"""Exercise 8.1: the factorization-machine second-order term.

DeepFM's FM component (chapter 8, book/ch08_deepfm.md) adds, for every pair of fields, the
dot product of their embeddings. Done pair by pair that costs O(fields^2 x dim); there is a
way in O(fields x dim). Grade with ``monolith-ref grade 8``.
"""

from __future__ import annotations

import torch


def fm_second_order(emb: torch.Tensor) -> torch.Tensor:
    """``sum_{i<j} <emb[:, i], emb[:, j]>`` for each example.

    ``emb`` has shape ``(batch, fields, dim)``; return shape ``(batch,)``, differentiable
    with respect to ``emb``, in the same dtype. Do it in O(fields x dim) per example with
    ``sum_{i<j} x_i x_j = ((sum_i x_i)^2 - sum_i x_i^2) / 2``, applied per coordinate and
    then summed over the ``dim`` coordinates. Raise ``ValueError`` if ``emb`` is not 3-D.
    """
    raise NotImplementedError("Exercise 8.1: fm_second_order is not written yet")
