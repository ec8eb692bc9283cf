"""The batch stage: it learns on the synthetic stream, is reproducible, and checks its input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from monolith_ref.data.synthetic import StreamConfig, synthetic_stream
from monolith_ref.tables import DictTable, HashedTable
from monolith_ref.training import ModelConfig, TrainConfig, build_deepfm, evaluate, predict, train

SMALL = StreamConfig(days=2, events_per_day=20_000, num_users=800, num_items=300, new_items_per_day=50, seed=1)


@pytest.fixture(scope="module")
def split():
    events = synthetic_stream(SMALL)
    first, second = events.days()
    return first, second


def test_training_beats_chance_and_is_reproducible(split) -> None:
    train_ev, test_ev = split
    runs = []
    for _ in range(2):
        model = build_deepfm(len(train_ev.field_names), train_ev.dense.shape[1], ModelConfig(dim=8, seed=3))
        history = train(model, train_ev, TrainConfig(epochs=2, progress=False, seed=3), test=test_ev)
        runs.append((history.series("test_auc"), predict(model, test_ev[:500])))
    (aucs, p1), (aucs2, p2) = runs
    assert aucs == aucs2 and np.array_equal(p1, p2), "same seeds, same run"
    assert aucs[-1] > 0.6
    assert len(runs[0][0]) == 2 and 0 < p1.min() and p1.max() < 1


def test_any_table_can_back_the_model(split) -> None:
    train_ev, test_ev = split
    hashed = build_deepfm(len(train_ev.field_names), train_ev.dense.shape[1], ModelConfig(dim=8),
                          table=lambda c: HashedTable(replace(c, ttl=None), num_rows=64))
    train(hashed, train_ev[:4096], TrainConfig(progress=False))
    dict_model = build_deepfm(len(train_ev.field_names), train_ev.dense.shape[1], ModelConfig(dim=8), table=DictTable)
    train(dict_model, train_ev[:4096], TrainConfig(progress=False))
    assert len(dict_model.vectors.table) > 64
    assert set(evaluate(hashed, test_ev[:2000])) == {"auc", "logloss"}


def test_training_restores_torch_threads_and_validates(split) -> None:
    before = torch.get_num_threads()
    model = build_deepfm(len(split[0].field_names), split[0].dense.shape[1], ModelConfig(dim=4))
    train(model, split[0][:2048], TrainConfig(progress=False, torch_threads=1))
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="at least one event"):
        train(model, split[0][:0], TrainConfig(progress=False))
    for bad in ({"batch_size": 0}, {"epochs": 0}, {"lr": 0.0}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)
