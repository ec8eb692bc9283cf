"""Exercise 8.2 (solution): the autograd function that sends embedding gradients to the table.

See exercises/ex08_bridge.py for the spec and book/ch08_deepfm.md for the idea.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class LookupToTable(torch.autograd.Function):
    """rows = owner.table.lookup(ids); the gradient of rows goes back to the owner."""

    @staticmethod
    def forward(ctx: Any, anchor: torch.Tensor, owner: Any, ids: np.ndarray, now: int) -> torch.Tensor:
        """Look up; remember who asked and for which IDs."""
        ctx.owner, ctx.ids = owner, ids
        return torch.from_numpy(owner.table.lookup(ids, now, train=owner.training))

    @staticmethod
    def backward(ctx: Any, grad_rows: torch.Tensor) -> tuple[Any, Any, Any, Any]:
        """Queue the rows' gradient on the owner; no input needs a gradient."""
        ctx.owner.queue_gradients(ctx.ids, grad_rows)
        return None, None, None, None
