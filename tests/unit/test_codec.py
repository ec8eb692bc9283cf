"""The byte layout of feature and example records (monolith_ref.streaming.codec)."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monolith_ref.data import Events, StreamConfig, synthetic_stream
from monolith_ref.streaming.codec import (
    JoinedBatch,
    decode_examples,
    decode_features,
    encode_examples,
    encode_features,
    example_dtype,
    feature_dtype,
    request_key,
)
from monolith_ref.streaming.joiner import Example


def _events(n: int, num_fields: int, num_dense: int, seed: int, with_optional: bool = True) -> Events:
    rng = np.random.default_rng(seed)
    return Events(
        time=np.sort(rng.integers(-(2**40), 2**40, n)).astype(np.int64),
        request_id=rng.integers(0, 2**64, n, dtype=np.uint64),
        user=rng.integers(0, 2**64, n, dtype=np.uint64) if with_optional else None,
        item=rng.integers(0, 2**64, n, dtype=np.uint64) if with_optional else None,
        fields=rng.integers(0, 2**64, (n, num_fields), dtype=np.uint64),
        field_names=tuple(f"f{i}" for i in range(num_fields)),
        dense=rng.standard_normal((n, num_dense)).astype(np.float32),
        label=np.zeros(n, dtype=np.float32),
        prob=rng.random(n).astype(np.float32) if with_optional else None,
        dense_names=tuple(f"d{i}" for i in range(num_dense)),
    )


def _same(a: Events, b: Events) -> None:
    assert a.field_names == b.field_names and a.dense_names == b.dense_names
    for name in ("time", "request_id", "user", "item", "fields", "dense", "label", "prob"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        else:
            assert x.dtype == y.dtype and np.array_equal(x, y), name


@settings(max_examples=60)
@given(n=st.integers(0, 30), num_fields=st.integers(0, 6), num_dense=st.integers(0, 4),
       seed=st.integers(0, 2**32 - 1), with_optional=st.booleans())
def test_features_round_trip(n, num_fields, num_dense, seed, with_optional) -> None:
    events = _events(n, num_fields, num_dense, seed, with_optional)
    payloads = encode_features(events)
    assert len(payloads) == n
    assert all(len(p) == 41 + 8 * num_fields + 4 * num_dense for p in payloads)
    back = decode_features(payloads, events.field_names, events.dense_names)
    if n == 0:
        assert len(back) == 0
    else:
        _same(back, events)


@settings(max_examples=40)
@given(n=st.integers(1, 20), num_fields=st.integers(0, 5), num_dense=st.integers(0, 3),
       seed=st.integers(0, 2**32 - 1))
def test_examples_round_trip(n, num_fields, num_dense, seed) -> None:
    events = _events(n, num_fields, num_dense, seed)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(np.float32)
    rates = rng.choice(np.array([1.0, 0.25, 0.1], dtype=np.float32), n)
    joins = rng.integers(0, 2**40, n)
    examples = [
        Example(int(r), int(t), int(j), float(y), float(s), p)
        for r, t, j, y, s, p in zip(events.request_id, events.time, joins, labels, rates, encode_features(events))
    ]
    batch = decode_examples(encode_examples(examples), events.field_names, events.dense_names)
    assert isinstance(batch, JoinedBatch) and len(batch) == n
    expected = events[np.arange(n)]
    expected.label = labels
    _same(batch.events, expected)
    assert batch.sample_rate.dtype == np.float32 and np.array_equal(batch.sample_rate, rates)
    assert batch.join_time.dtype == np.int64 and np.array_equal(batch.join_time, joins)


def test_layout_is_the_documented_one() -> None:
    events = _events(1, 2, 1, seed=3)
    (payload,) = encode_features(events)
    rid, t, user, item, flags, prob, nf, nd = struct.unpack_from("<QqQQBfHH", payload)
    assert (rid, t, user, item) == (int(events.request_id[0]), int(events.time[0]), int(events.user[0]),
                                    int(events.item[0]))
    assert flags == 7 and nf == 2 and nd == 1 and np.float32(prob) == events.prob[0]
    assert struct.unpack_from("<QQf", payload, 41) == (*map(int, events.fields[0]), float(events.dense[0, 0]))
    assert feature_dtype(2, 1).itemsize == len(payload) == 61
    assert example_dtype(2, 1).itemsize == 61 + 16


def test_encoding_a_realistic_stream_is_fast_and_exact() -> None:
    events = synthetic_stream(StreamConfig(num_users=500, num_items=300, days=1, events_per_day=100_000, seed=2))
    start = time.perf_counter()
    payloads = encode_features(events)
    back = decode_features(payloads, events.field_names, events.dense_names)
    assert time.perf_counter() - start < 3.0  # well under a second on a quiet machine
    events.label = np.zeros(len(events), dtype=np.float32)
    _same(back, events)


def test_bad_bytes_raise_value_errors_that_say_what() -> None:
    events = _events(3, 2, 1, seed=1)
    payloads = encode_features(events)
    with pytest.raises(ValueError, match="feature record 1 has 60 bytes"):
        decode_features([payloads[0], payloads[1][:-1], payloads[2]], events.field_names, events.dense_names)
    with pytest.raises(ValueError, match="bytes"):  # the reader's schema has one field fewer
        decode_features(payloads, events.field_names[:1], events.dense_names)
    # same size, wrong counts: 2 fields + 1 dense (61 bytes) read as 1 field + 3 dense (61 bytes)
    with pytest.raises(ValueError, match="n_fields=2"):
        decode_features(payloads, ("a",), ("x", "y", "z"))
    bad_flags = bytearray(payloads[2])
    bad_flags[32] = 0x80
    with pytest.raises(ValueError, match="record 2 has unknown flag bits 0x80"):
        decode_features([payloads[0], payloads[1], bytes(bad_flags)], events.field_names, events.dense_names)
    mixed = bytearray(payloads[1])
    mixed[32] = 0  # no user, item or prob in this one
    with pytest.raises(ValueError, match="mix records"):
        decode_features([payloads[0], bytes(mixed)], events.field_names, events.dense_names)
    with pytest.raises(TypeError, match="sequence of byte strings"):
        decode_features(payloads[0], events.field_names)
    with pytest.raises(TypeError, match=r"payloads\[1\] must be bytes"):
        decode_features([payloads[0], "text"], events.field_names, events.dense_names)
    with pytest.raises(TypeError, match="not the string"):
        decode_features(payloads, "f0")
    with pytest.raises(ValueError, match="example record 0 has"):
        decode_examples(payloads, events.field_names, events.dense_names)  # features are 16 bytes short
    with pytest.raises(TypeError, match="Events"):
        encode_features([1, 2, 3])
    with pytest.raises(TypeError, match="payload of type str"):
        encode_examples([Example(1, 0, 0, 1.0, 1.0, "not bytes")])


def test_request_key_is_8_big_endian_bytes() -> None:
    assert request_key(1) == b"\x00" * 7 + b"\x01"
    assert request_key(2**64 - 1) == b"\xff" * 8
    assert request_key(np.uint64(2**63)) == b"\x80" + b"\x00" * 7
    keys = [request_key(k) for k in (0, 5, 2**32, 2**63, 2**64 - 2)]
    assert keys == sorted(keys)  # byte order is numeric order
    for bad in (-1, 2**64):
        with pytest.raises(ValueError, match="request_id"):
            request_key(bad)
    for bad in (1.0, True, "7"):
        with pytest.raises(TypeError):
            request_key(bad)
