"""The torch bridge and DeepFM: the gradient check against nn.Embedding, and the FM term."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch

from monolith_ref.models import DeepFM, DeepFMHead, fm_interaction
from monolith_ref.optim import SGD
from monolith_ref.tables import CuckooTable, DictTable, HashedTable, NumbaTable, ShardedTable, TableConfig
from monolith_ref.torch_bridge import TableEmbedding, reference_embedding

FIELDS, VOCAB, DIM = 3, 20, 4


def data(seed: int, steps: int = 6, batch: int = 16):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        ids = rng.integers(0, VOCAB, size=(batch, FIELDS)) + np.arange(FIELDS) * VOCAB  # distinct per field
        out.append((ids.astype(np.uint64), torch.from_numpy(rng.integers(0, 2, size=batch).astype(np.float32))))
    return out


def test_fm_interaction_is_the_pairwise_sum() -> None:
    emb = torch.randn(5, 4, 3, generator=torch.Generator().manual_seed(0))
    brute = sum((emb[:, i] * emb[:, j]).sum(-1) for i, j in itertools.combinations(range(4), 2))
    torch.testing.assert_close(fm_interaction(emb), brute)
    with pytest.raises(ValueError, match="batch, fields, dim"):
        fm_interaction(torch.zeros(3, 4))


@pytest.mark.parametrize("table_cls", [DictTable, CuckooTable, NumbaTable, lambda c: ShardedTable(c, num_shards=2)])
def test_training_through_the_bridge_equals_nn_embedding(table_cls) -> None:
    """With no collisions and SGD everywhere, the table model and an nn.Embedding model agree."""
    seed, lr_sparse, lr_dense = 3, 0.2, 0.05
    vec_cfg = TableConfig(dim=DIM, seed=seed, init_scale=0.1, optimizer=SGD(lr=lr_sparse))
    w_cfg = TableConfig(dim=1, seed=seed + 1, init_scale=0.1, optimizer=SGD(lr=lr_sparse))
    model = DeepFM(table_cls(vec_cfg), table_cls(w_cfg), num_fields=FIELDS, hidden=(8,), seed=1)

    ref_vec, ref_w = reference_embedding(vec_cfg, FIELDS * VOCAB), reference_embedding(w_cfg, FIELDS * VOCAB)
    ref_head = copy.deepcopy(model.head)

    dense_opt = torch.optim.SGD(model.head.parameters(), lr=lr_dense)
    ref_params = [*ref_head.parameters(), ref_vec.weight, ref_w.weight]
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for now, (ids, labels) in enumerate(data(0)):
        loss = loss_fn(model(ids, now), labels)
        dense_opt.zero_grad()
        loss.backward()
        dense_opt.step()
        assert model.apply_sparse_gradients() == 2 * ids.size

        idx = torch.from_numpy(ids.astype(np.int64))
        ref_loss = loss_fn(ref_head(ref_vec(idx), ref_w(idx)), labels)
        for p in ref_params:
            p.grad = None
        ref_loss.backward()
        with torch.no_grad():  # dense params with the dense lr, embeddings with the sparse lr
            for p in ref_head.parameters():
                p -= lr_dense * p.grad
            ref_vec.weight -= lr_sparse * ref_vec.weight.grad
            ref_w.weight -= lr_sparse * ref_w.weight.grad
        torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)

    for ours, theirs in zip(model.head.parameters(), ref_head.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    seen = np.unique(np.concatenate([ids.reshape(-1) for ids, _ in data(0)]))
    assert len(model.vectors.table) == seen.size  # only IDs met in training have rows
    pos = seen.astype(np.int64)
    vec = model.vectors.table.lookup(seen, now=0, train=False)
    np.testing.assert_allclose(vec, ref_vec.weight.detach().numpy()[pos], rtol=1e-5, atol=1e-6)
    w = model.weights.table.lookup(seen, now=0, train=False)
    np.testing.assert_allclose(w, ref_w.weight.detach().numpy()[pos], rtol=1e-5, atol=1e-6)


def test_eval_mode_serves_without_inserting_or_queueing() -> None:
    emb = TableEmbedding(DictTable(TableConfig(dim=2)))
    emb.eval()
    out = emb(np.array([[1, 2]], dtype=np.uint64), now=0)
    assert out.shape == (1, 2, 2) and not out.any() and len(emb.table) == 0 and emb.pending == 0
    emb.train()
    out = emb(np.array([[1, 2]], dtype=np.uint64), now=0)
    out.sum().backward()
    assert emb.pending == 2 and emb.apply_gradients() == 2 and emb.pending == 0


def test_hashed_baselines_train_through_the_bridge() -> None:
    cfg = TableConfig(dim=DIM, optimizer=SGD(lr=0.1))
    model = DeepFM(HashedTable(cfg, num_rows=16), HashedTable(TableConfig(dim=1), num_rows=16), num_fields=FIELDS)
    ids, labels = data(1, steps=1)[0]
    before = model.vectors.table.export()["embeddings"].copy()
    torch.nn.BCEWithLogitsLoss()(model(ids, 0), labels).backward()
    model.apply_sparse_gradients()
    assert not np.array_equal(before, model.vectors.table.export()["embeddings"])


def test_bad_inputs() -> None:
    with pytest.raises(TypeError, match="table protocol"):
        TableEmbedding(object())  # type: ignore[arg-type]
    model = DeepFM(DictTable(TableConfig(dim=2)), DictTable(TableConfig(dim=1)), num_fields=2)
    with pytest.raises(ValueError, match="field IDs of shape"):
        model(np.zeros((4, 3), dtype=np.uint64), 0)
    with pytest.raises(ValueError, match="dim=1"):
        DeepFM(DictTable(TableConfig(dim=2)), DictTable(TableConfig(dim=2)), num_fields=2)
    with pytest.raises(ValueError):
        DeepFMHead(0, 2)
    head = DeepFMHead(2, 2, num_dense=3)
    with pytest.raises(ValueError, match="dense features"):
        head(torch.zeros(4, 2, 2), torch.zeros(4, 2, 1))


def test_reference_embedding_holds_the_rows_a_table_would_create() -> None:
    cfg = TableConfig(dim=3, seed=7, init_scale=0.2)
    emb = reference_embedding(cfg, 6)
    assert np.array_equal(emb.weight.detach().numpy(), DictTable(cfg).lookup(np.arange(6, dtype=np.uint64), now=0))
    with pytest.raises(ValueError, match="num_ids"):
        reference_embedding(cfg, 0)
