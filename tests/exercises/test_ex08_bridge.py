"""Grader for Exercise 8.2: the autograd bridge, graded by the gradient check."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conformance.explain import array_diff
from monolith_ref.models import DeepFM
from monolith_ref.optim import SGD
from monolith_ref.tables import DictTable, TableConfig
from monolith_ref.tables.base import check_ids
from monolith_ref.torch_bridge import TableEmbedding, reference_embedding

pytestmark = pytest.mark.exercise("8.2", title="The backward hook into the table")

FIELDS, VOCAB, DIM = 3, 15, 4


@pytest.fixture
def embedding_cls(mod):
    fn = mod.LookupToTable

    class ExerciseEmbedding(TableEmbedding):
        def forward(self, ids, now):
            arr = np.asarray(ids)
            flat = check_ids(arr.reshape(-1))
            rows = fn.apply(self.anchor, self, flat, now)
            return rows.reshape(*arr.shape, self.dim)

    return ExerciseEmbedding


@pytest.mark.points(2)
def test_gradients_reach_the_queue(embedding_cls) -> None:
    emb = embedding_cls(DictTable(TableConfig(dim=2)))
    out = emb(np.array([[3, 4], [3, 5]], dtype=np.uint64), now=0)
    assert out.shape == (2, 2, 2) and len(emb.table) == 3, (
        f"forward of IDs [[3, 4], [3, 5]] (dim 2) must give shape (2, 2, 2) and insert 3 rows: "
        f"shape {tuple(out.shape)}, table rows {len(emb.table)}")
    (out * torch.arange(8.0).reshape(2, 2, 2)).sum().backward()
    assert emb.pending == 4, (
        f"backward must queue one gradient row per looked-up position (4, repeats included), queued {emb.pending}")
    ids = np.concatenate(emb._pending_ids)
    grads = np.concatenate(emb._pending_grads)
    assert ids.tolist() == [3, 4, 3, 5], f"queued IDs must be the batch's, in order: [3, 4, 3, 5], got {ids.tolist()}"
    want = np.arange(8.0, dtype=np.float32).reshape(4, 2)
    assert np.array_equal(grads, want), (
        f"queued gradients must be d(loss)/d(rows) per position, not summed per ID: {array_diff(want, grads)}")


@pytest.mark.points(4)
def test_gradient_check_against_nn_embedding(embedding_cls) -> None:
    seed, lr = 2, 0.2
    cfg = TableConfig(dim=DIM, seed=seed, init_scale=0.1, optimizer=SGD(lr=lr))
    wcfg = TableConfig(dim=1, seed=seed + 1, init_scale=0.1, optimizer=SGD(lr=lr))
    model = DeepFM(DictTable(cfg), DictTable(wcfg), num_fields=FIELDS, hidden=(8,), seed=1)
    model.vectors = embedding_cls(model.vectors.table)
    model.weights = embedding_cls(model.weights.table)
    ref_vec, ref_w = reference_embedding(cfg, FIELDS * VOCAB), reference_embedding(wcfg, FIELDS * VOCAB)
    ref_head = copy.deepcopy(model.head)
    rng = np.random.default_rng(5)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for now in range(5):
        ids = (rng.integers(0, VOCAB, size=(12, FIELDS)) + np.arange(FIELDS) * VOCAB).astype(np.uint64)
        y = torch.from_numpy(rng.integers(0, 2, size=12).astype(np.float32))
        for p in model.head.parameters():
            p.grad = None
        loss_fn(model(ids, now), y).backward()
        with torch.no_grad():
            for p in model.head.parameters():
                p -= lr * p.grad
        model.apply_sparse_gradients()
        idx = torch.from_numpy(ids.astype(np.int64))
        params = [*ref_head.parameters(), ref_vec.weight, ref_w.weight]
        for p in params:
            p.grad = None
        loss_fn(ref_head(ref_vec(idx), ref_w(idx)), y).backward()
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
    seen = model.vectors.table.export()["ids"]
    np.testing.assert_allclose(model.vectors.table.lookup(seen, 0, train=False),
                               ref_vec.weight.detach().numpy()[seen.astype(np.int64)], rtol=1e-5, atol=1e-6,
                               err_msg="after 5 SGD steps of DeepFM, the table's rows differ from nn.Embedding's: "
                                       "the gradient that reaches the table is wrong")
    for (name, ours), theirs in zip(model.head.named_parameters(), ref_head.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6,
                                   msg=lambda m, name=name: f"after 5 steps, the head's {name} differs from the "
                                   f"nn.Embedding model's (wrong table rows change the head's gradients too): {m}")
