"""The fixed-size peer: ``torch.nn.Embedding`` over hashed IDs, updated by ``torch.optim.Adagrad``.

See: book/ch06_numba.md
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ...hashing import mix64
from .spec import PeerConfig

__all__ = ["TorchHashed"]


class TorchHashed:
    """``torch.nn.Embedding`` with as many rows as resident IDs, indexed by ``hash(id) % rows``.

    The fixed-size table a user would pick instead of a collisionless one: no inserts, no
    expiry, and IDs that share a row share its parameters (chapter 2). Updates go through a
    sparse gradient and ``torch.optim.Adagrad``. See: book/ch06_numba.md
    """

    name, label, exact = "torch_hashed", "torch.nn.Embedding, hashed IDs", False
    supports = frozenset({"hits", "train", "apply"})

    def __init__(self, spec: PeerConfig, num_rows: int) -> None:
        import torch

        self.torch, self.spec, self.num_rows = torch, spec, int(num_rows)
        gen = torch.Generator().manual_seed(spec.seed)
        weight = torch.empty(self.num_rows, spec.dim).uniform_(-spec.scale, spec.scale, generator=gen)
        self.emb = torch.nn.Embedding(self.num_rows, spec.dim, sparse=True, _weight=weight)
        self.opt = torch.optim.Adagrad(self.emb.parameters(), lr=spec.lr,
                                       initial_accumulator_value=spec.initial_accumulator, eps=spec.eps)

    def load(self, keys: np.ndarray, now: np.ndarray) -> None:
        """Nothing to insert: every ID already has a row (shared with others)."""

    def _rows(self, ids: np.ndarray) -> Any:
        return self.torch.from_numpy((mix64(ids, self.spec.seed) % np.uint64(self.num_rows)).astype(np.int64))

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.emb(self._rows(ids)).numpy()

    def train(self, ids: np.ndarray, now: int) -> np.ndarray:
        return self.lookup(ids)

    def apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
        torch = self.torch
        rows = self._rows(ids)
        self.emb.weight.grad = torch.sparse_coo_tensor(rows[None], torch.from_numpy(grads), (self.num_rows, self.spec.dim),
                                                       check_invariants=False)
        with warnings.catch_warnings():  # torch's Adagrad builds sparse tensors without checks
            warnings.filterwarnings("ignore", message="Sparse invariant checks")
            self.opt.step()

    def expire(self, now: int) -> int:
        return 0

    def __len__(self) -> int:
        return self.num_rows

    def memory_bytes(self) -> int:
        state = self.opt.state.get(self.emb.weight, {})
        extra = sum(v.numel() * v.element_size() for v in state.values() if hasattr(v, "numel"))
        return int(self.emb.weight.numel() * self.emb.weight.element_size() + extra)
