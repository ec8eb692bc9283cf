"""Negative sampling biases a model's CTR upward; the log-odds correction at serving undoes it.

End to end: synthetic events -> arrivals -> the online joiner keeping 1 negative in 4 -> the
example bytes -> a DeepFM trained on the first day and a half -> predictions on the held-out
rest, compared with the true click probabilities.
"""

from __future__ import annotations

import numpy as np

from monolith_ref.data import StreamConfig, synthetic_stream
from monolith_ref.streaming.codec import decode_examples, encode_examples, encode_features
from monolith_ref.streaming.joiner import JoinerConfig, OnlineJoiner, log_odds_correction
from monolith_ref.streaming.simulate import FEATURE, ArrivalConfig, arrivals
from monolith_ref.training import ModelConfig, TrainConfig, build_deepfm_for, predict, train

RATE = 0.25


def test_log_odds_correction_restores_the_mean_ctr() -> None:
    events = synthetic_stream(StreamConfig(num_users=2000, num_items=1000, days=2, events_per_day=15_000, seed=1))
    arr = arrivals(events, ArrivalConfig(seed=2))
    payloads = encode_features(events)
    out = []
    with OnlineJoiner(JoinerConfig(negative_rate=RATE, seed=3)) as joiner:
        for k, r, t, a, w in zip(arr.kind.tolist(), arr.request_id.tolist(), arr.event_time.tolist(),
                                 arr.arrival.tolist(), arr.row.tolist()):
            out += joiner.add_features(r, t, payloads[w], now=a) if k == FEATURE else joiner.add_action(r, t, now=a)
        out += joiner.finish()
    examples = decode_examples(encode_examples(out), events.field_names, events.dense_names).events

    cut = int(1.5 * 86400)
    train_set = examples[examples.time < cut]
    train_set = train_set[np.argsort(train_set.time, kind="stable")]
    test_set = events[events.time >= cut]
    true_ctr = float(test_set.prob.mean())
    # the sampled training data: p_s = p / (p + r (1 - p)) on average
    p = float(events.prob[events.time < cut].mean())
    assert abs(train_set.label.mean() - p / (p + RATE * (1 - p))) < 0.05

    model = build_deepfm_for(events, ModelConfig(seed=0))
    train(model, train_set, TrainConfig(batch_size=256, progress=False))
    raw = float(predict(model, test_set).mean())
    corrected = float(predict(model, test_set, log_odds_shift=log_odds_correction(RATE)).mean())
    assert raw > 1.5 * true_ctr  # seen ~0.55 against a true ~0.25
    assert abs(corrected - true_ctr) < 0.2 * true_ctr  # seen within 1%
