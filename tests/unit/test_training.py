"""The batch stage: it learns on the synthetic stream, is reproducible, and checks its input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from monolith_ref.data.synthetic import StreamConfig, synthetic_stream
from monolith_ref.events import Events
from monolith_ref.tables import DictTable, HashedTable
from monolith_ref.training import (ModelConfig, TrainConfig, batch_stage, build_deepfm, build_deepfm_for, evaluate,
                                   predict, train)

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
        model = build_deepfm_for(train_ev, ModelConfig(dim=8, seed=3))
        history = train(model, train_ev, TrainConfig(epochs=2, progress=False, seed=3), test=test_ev)
        runs.append((history.series("test_auc"), predict(model, test_ev[:500])))
    (aucs, p1), (aucs2, p2) = runs
    assert aucs == aucs2 and np.array_equal(p1, p2), "same seeds, same run"
    assert aucs[-1] > 0.6
    assert len(runs[0][0]) == 2 and 0 < p1.min() and p1.max() < 1


def test_any_table_can_back_the_model(split) -> None:
    train_ev, test_ev = split
    hashed = build_deepfm_for(train_ev, ModelConfig(dim=8),
                              table=lambda c: HashedTable(replace(c, ttl=None), num_rows=64))
    train(hashed, train_ev[:4096], TrainConfig(progress=False))
    dict_model = build_deepfm_for(train_ev, ModelConfig(dim=8), table=DictTable)
    train(dict_model, train_ev[:4096], TrainConfig(progress=False))
    assert len(dict_model.vectors.table) > 64
    assert set(evaluate(hashed, test_ev[:2000])) == {"auc", "logloss"}


def test_training_restores_torch_threads_and_validates(split) -> None:
    before = torch.get_num_threads()
    model = build_deepfm_for(split[0], ModelConfig(dim=4))
    train(model, split[0][:2048], TrainConfig(progress=False, torch_threads=1))
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="at least one event"):
        train(model, split[0][:0], TrainConfig(progress=False))
    for bad in ({"batch_size": 0}, {"epochs": 0}, {"lr": 0.0}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)


def test_build_deepfm_for_sizes_the_model_from_the_events(split) -> None:
    events = split[0]
    model = build_deepfm_for(events, ModelConfig(dim=4, seed=2))
    same = build_deepfm(len(events.field_names), events.dense.shape[1], ModelConfig(dim=4, seed=2))
    assert (model.head.num_fields, model.head.num_dense) == (5, 2)
    assert all(torch.equal(a, b) for a, b in zip(model.head.state_dict().values(), same.head.state_dict().values()))
    no_dense = Events(**{**vars(events[:10]), "dense": np.zeros((10, 0), np.float32), "dense_names": ()})
    assert build_deepfm_for(no_dense).head.num_dense == 0
    with pytest.raises(TypeError, match="Events"):
        build_deepfm_for(events.fields)


def test_batch_stage_is_build_adam_and_train_written_out(split) -> None:
    train_ev, test_ev = split[0][:3000], split[1][:1000]
    model_cfg, train_cfg = ModelConfig(dim=4, hidden=(8,), seed=0), TrainConfig(batch_size=256, lr=2e-3, progress=False)
    model, opt = batch_stage(train_ev, model_cfg, train_cfg, seed=5)
    by_hand = build_deepfm_for(train_ev, replace(model_cfg, seed=5))
    by_hand_opt = torch.optim.Adam(by_hand.head.parameters(), lr=2e-3)
    train(by_hand, train_ev, replace(train_cfg, seed=5), optimizer=by_hand_opt)
    assert np.array_equal(predict(model, test_ev), predict(by_hand, test_ev))
    assert opt.defaults["lr"] == 2e-3
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], by_hand_opt.state_dict()["state"][0]["exp_avg"])
    unseeded, _ = batch_stage(train_ev, model_cfg, train_cfg)  # the configs' own seed (0)
    assert not np.array_equal(predict(unseeded, test_ev), predict(model, test_ev))
    with pytest.raises(ValueError, match="at least one event"):
        batch_stage(train_ev[:0], model_cfg, train_cfg)
