"""DeepFM (Guo et al., IJCAI 2017), the model of the paper's experiments (§3.1, Figure 6).

DeepFM adds three things up into one logit for "will this user click":

* a **first-order** term: a learned weight per feature ID (plus a linear map of dense
  features), i.e. logistic regression on one-hot features;
* a **second-order** (factorization machine) term: for every pair of fields, the dot product
  of their embeddings, computed in O(fields x dim) with the identity
  ``sum_{i<j} <e_i, e_j> = 0.5 * (||sum_i e_i||^2 - sum_i ||e_i||^2)``;
* a **deep** term: an MLP over the concatenated embeddings (and dense features).

The FM and deep parts share the embeddings. Here the embeddings and the first-order weights
come from collisionless tables through :class:`~monolith_ref.torch_bridge.TableEmbedding`:
vectors from one table, per-ID weights from a ``dim=1`` table, as Monolith keeps vectors
(Adagrad) and biases (FTRL) in separate tables. Only the MLP, the dense-feature weights and
the global bias are ordinary PyTorch parameters.

See: book/ch08_deepfm.md
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .checks import check_int
from .tables.base import EmbeddingTable
from .torch_bridge import TableEmbedding

__all__ = ["fm_interaction", "DeepFMHead", "DeepFM"]


def fm_interaction(emb: torch.Tensor) -> torch.Tensor:
    """The FM second-order term per example: ``sum_{i<j} <e_i, e_j>`` over fields.

    ``emb`` has shape ``(batch, fields, dim)``; the result has shape ``(batch,)``.
    See: book/ch08_deepfm.md
    """
    if emb.dim() != 3:
        raise ValueError(f"fm_interaction expects (batch, fields, dim) embeddings, got shape {tuple(emb.shape)}")
    square_of_sum = emb.sum(dim=1).pow(2)
    sum_of_squares = emb.pow(2).sum(dim=1)
    return 0.5 * (square_of_sum - sum_of_squares).sum(dim=1)


class DeepFMHead(nn.Module):
    """The dense part of DeepFM: takes embeddings and per-ID weights, returns logits.

    It owns only ordinary parameters (MLP, dense-feature weights, global bias), so it can be
    tested and compared with any source of embeddings. See: book/ch08_deepfm.md
    """

    def __init__(self, num_fields: int, dim: int, num_dense: int = 0, hidden: Sequence[int] = (64, 32),
                 seed: int = 0) -> None:
        super().__init__()
        self.num_fields = check_int(num_fields, "DeepFM num_fields", low=1)
        self.dim = check_int(dim, "DeepFM dim", low=1)
        self.num_dense = check_int(num_dense, "DeepFM num_dense", low=0)
        gen = torch.Generator().manual_seed(seed)
        layers: list[nn.Module] = []
        width = num_fields * dim + num_dense
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        self.dense_linear = nn.Linear(num_dense, 1, bias=False) if num_dense else None
        self.bias = nn.Parameter(torch.zeros(1))
        with torch.no_grad():  # seeded initialisation, independent of torch's global RNG
            for p in self.parameters():
                if p.dim() > 1:
                    bound = 1.0 / np.sqrt(p.shape[1])
                    p.copy_(torch.empty_like(p).uniform_(-bound, bound, generator=gen))
                elif p is not self.bias:
                    p.zero_()

    def forward(self, emb: torch.Tensor, weights: torch.Tensor, dense: torch.Tensor | None = None) -> torch.Tensor:
        """``emb`` (B, F, dim), ``weights`` (B, F, 1), ``dense`` (B, D) -> logits (B,)."""
        first = weights.sum(dim=(1, 2)) + self.bias
        deep_in = emb.reshape(emb.shape[0], -1)
        if self.num_dense:
            if dense is None or dense.shape != (emb.shape[0], self.num_dense):
                raise ValueError(f"DeepFM expects dense features of shape ({emb.shape[0]}, {self.num_dense})")
            first = first + self.dense_linear(dense).squeeze(1)
            deep_in = torch.cat([deep_in, dense], dim=1)
        return first + fm_interaction(emb) + self.mlp(deep_in).squeeze(1)


class DeepFM(nn.Module):
    """DeepFM whose embeddings and first-order weights live in protocol tables.

    ``vectors``: a table with ``dim`` columns (one row per feature ID); ``weights``: a table with
    one column (the first-order weight per ID). Both may be any table (dict, cuckoo, Numba,
    sharded, or a hashed baseline). ``forward(fields, now, dense)`` takes uint64 IDs of shape
    (batch, num_fields). After ``loss.backward()``, call :meth:`apply_sparse_gradients`.
    See: book/ch08_deepfm.md
    """

    def __init__(self, vectors: EmbeddingTable, weights: EmbeddingTable, num_fields: int, num_dense: int = 0,
                 hidden: Sequence[int] = (64, 32), seed: int = 0) -> None:
        super().__init__()
        if weights.config.dim != 1:
            raise ValueError(f"the first-order weight table must have dim=1, got dim={weights.config.dim}")
        self.vectors = TableEmbedding(vectors)
        self.weights = TableEmbedding(weights)
        self.head = DeepFMHead(num_fields, vectors.config.dim, num_dense, hidden, seed)

    def forward(self, fields: np.ndarray, now: int, dense: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
        fields = np.asarray(fields)
        if fields.ndim != 2 or fields.shape[1] != self.head.num_fields:
            raise ValueError(f"DeepFM expects field IDs of shape (batch, {self.head.num_fields}), got {fields.shape}")
        emb = self.vectors(fields, now)
        w = self.weights(fields, now)
        d = None
        if self.head.num_dense:
            d = dense if isinstance(dense, torch.Tensor) else torch.as_tensor(np.asarray(dense, dtype=np.float32))
        return self.head(emb, w, d)

    def apply_sparse_gradients(self) -> int:
        """Push the queued embedding and weight gradients to their tables' optimizers."""
        return self.vectors.apply_gradients() + self.weights.apply_gradients()
