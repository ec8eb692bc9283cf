"""Exercise 8.1 (solution): the factorization-machine second-order term.

See exercises/ex08_fm.py for the spec and book/ch08_deepfm.md for the derivation.
"""

from __future__ import annotations

import torch


def fm_second_order(emb: torch.Tensor) -> torch.Tensor:
    """Half of (square of the sum minus the sum of the squares), summed over coordinates."""
    if emb.dim() != 3:
        raise ValueError(f"expected (batch, fields, dim), got shape {tuple(emb.shape)}")
    return 0.5 * (emb.sum(dim=1).pow(2) - emb.pow(2).sum(dim=1)).sum(dim=1)
