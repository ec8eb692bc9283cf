"""Exercise 8.2: the autograd function that sends embedding gradients to the table.

Chapter 8 (book/ch08_deepfm.md) joins PyTorch's autograd to a table that lives outside the
model. Write the two halves of that join. The grader puts your function inside a
:class:`~monolith_ref.torch_bridge.TableEmbedding` and runs the gradient check: a DeepFM trained
through your function must match the same model on ``torch.nn.Embedding``.
Grade with ``monolith-ref grade 8``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class LookupToTable(torch.autograd.Function):
    """rows = owner.table.lookup(ids); the gradient of rows goes back to the owner."""

    @staticmethod
    def forward(ctx: Any, anchor: torch.Tensor, owner: Any, ids: np.ndarray, now: int) -> torch.Tensor:
        """Look the IDs up and return the rows as a float32 tensor of shape (len(ids), dim).

        ``owner`` is a ``TableEmbedding``: use ``owner.table.lookup(ids, now,
        train=owner.training)``. Keep ``owner`` and ``ids`` on ``ctx`` for the backward pass.
        ``anchor`` is a zero-size tensor that requires grad; it is only there so that autograd
        calls ``backward``.
        """
        raise NotImplementedError("Exercise 8.2: LookupToTable.forward is not written yet")

    @staticmethod
    def backward(ctx: Any, grad_rows: torch.Tensor) -> tuple[Any, Any, Any, Any]:
        """Hand ``grad_rows`` (d loss / d rows) and the IDs to ``ctx.owner.queue_gradients``.

        Return one gradient per input of ``forward``: none of them needs one, so four Nones.
        """
        raise NotImplementedError("Exercise 8.2: LookupToTable.backward is not written yet")
