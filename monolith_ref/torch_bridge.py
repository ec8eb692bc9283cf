"""The bridge between PyTorch autograd and an embedding table.

A PyTorch model wants a tensor of embeddings in its forward pass and leaves gradients in
``.grad`` after ``backward``. A Monolith table lives outside the model, grows and shrinks, and
updates its rows with its own per-row optimizer (paper §2: hash-table operations are the
sparse analogue of a dense ``Variable``). :class:`TableEmbedding` joins the two:

* forward: ``table.lookup(ids, now, train=self.training)`` returns the rows; they enter the
  graph through :class:`TableLookup`, a custom autograd function;
* backward: :meth:`TableLookup.backward` receives d(loss)/d(rows) and hands it, with the IDs,
  to the module, which queues it;
* step: :meth:`TableEmbedding.apply_gradients` sends everything queued since the last step to
  ``table.apply_gradients`` in one call, so an ID that appeared several times (in several
  fields or examples) gets one summed update, as ``torch.nn.Embedding`` would.

The dense part of the model trains with any ``torch.optim`` optimizer as usual; the sparse part
with the table's optimizer. That split is Monolith's too: its embeddings use Adagrad and its
bias-like features FTRL, while dense layers use their own optimizer.

See: book/ch08_deepfm.md
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .checks import check_int
from .tables.base import EmbeddingTable, TableConfig, check_ids, initial_rows

__all__ = ["TableLookup", "TableEmbedding", "reference_embedding"]


class TableLookup(torch.autograd.Function):
    """rows = table.lookup(ids); backward queues d(loss)/d(rows) on the owning module.

    ``anchor`` is a zero-size tensor that requires grad: autograd only calls ``backward`` for
    functions with at least one input that needs a gradient, and the table itself is not a
    tensor. See: book/ch08_deepfm.md
    """

    @staticmethod
    def forward(ctx: Any, anchor: torch.Tensor, owner: TableEmbedding, ids: np.ndarray, now: int) -> torch.Tensor:
        rows = owner.table.lookup(ids, now, train=owner.training)
        ctx.owner = owner
        ctx.ids = ids
        return torch.from_numpy(rows)

    @staticmethod
    def backward(ctx: Any, grad_rows: torch.Tensor) -> tuple[None, None, None, None]:
        ctx.owner.queue_gradients(ctx.ids, grad_rows)
        return None, None, None, None


class TableEmbedding(nn.Module):
    """Embeds a batch of IDs of any shape through a protocol table. See: book/ch08_deepfm.md

    ``forward(ids, now)`` takes uint64 IDs of shape ``S`` and returns a float32 tensor of
    shape ``S + (dim,)``. In ``train()`` mode lookups insert and refresh rows and gradients are
    queued in ``backward``; in ``eval()`` mode lookups are serving lookups (no insert) and no
    gradient is kept. Call :meth:`apply_gradients` after ``loss.backward()``.
    """

    def __init__(self, table: EmbeddingTable) -> None:
        super().__init__()
        if not isinstance(table, EmbeddingTable):
            raise TypeError(f"TableEmbedding needs a table that follows the table protocol, got {type(table).__name__}")
        self.table = table
        self.dim = table.config.dim
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=True)
        self._pending_ids: list[np.ndarray] = []
        self._pending_grads: list[np.ndarray] = []

    def forward(self, ids: Any, now: int) -> torch.Tensor:
        arr = np.asarray(ids)
        flat = check_ids(arr.reshape(-1))
        if self.training and torch.is_grad_enabled():
            rows = TableLookup.apply(self.anchor, self, flat, now)
        else:
            rows = torch.from_numpy(self.table.lookup(flat, now, train=self.training))
        return rows.reshape(*arr.shape, self.dim)

    def queue_gradients(self, ids: np.ndarray, grads: torch.Tensor) -> None:
        """Called from backward: keep (ids, d(loss)/d(rows)) until :meth:`apply_gradients`."""
        self._pending_ids.append(ids)
        self._pending_grads.append(grads.detach().to(torch.float32).reshape(-1, self.dim).numpy().copy())

    @property
    def pending(self) -> int:
        """How many ID gradients are queued."""
        return sum(len(ids) for ids in self._pending_ids)

    def apply_gradients(self) -> int:
        """Send every queued gradient to the table's optimizer in one call; return how many."""
        if not self._pending_ids:
            return 0
        ids = np.concatenate(self._pending_ids)
        grads = np.concatenate(self._pending_grads)
        self._pending_ids.clear()
        self._pending_grads.clear()
        self.table.apply_gradients(ids, grads)
        return int(ids.shape[0])

    def discard_gradients(self) -> None:
        """Drop queued gradients without applying them (e.g. after a skipped step)."""
        self._pending_ids.clear()
        self._pending_grads.clear()

    def extra_repr(self) -> str:
        return f"table={type(self.table).__name__}, dim={self.dim}"


def reference_embedding(config: TableConfig, num_ids: int) -> nn.Embedding:
    """An ``nn.Embedding`` whose row ``i`` is the row a table built from ``config`` gives ID ``i``.

    Rows ``0 .. num_ids - 1`` are :func:`~monolith_ref.tables.initial_rows` of ``config``'s
    seed, dim and scale: the reference of the gradient check that a model on a table trains
    exactly like one on ``nn.Embedding`` (IDs must then be below ``num_ids``).
    See: book/ch08_deepfm.md
    """
    n = check_int(num_ids, "num_ids", low=1)
    emb = nn.Embedding(n, config.dim)
    rows = initial_rows(config.seed, np.arange(n, dtype=np.uint64), config.dim, config.init_scale)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(rows))
    return emb
