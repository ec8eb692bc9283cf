"""Unit and property tests for monolith_ref.hashing and monolith_ref.data.zipf."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monolith_ref import hashing
from monolith_ref.data import zipf_ids, zipf_probabilities

u64 = st.integers(0, 2**64 - 1)


def test_mix64_matches_the_splitmix64_reference_stream() -> None:
    # splitmix64 seeded with 0 yields these first outputs (the published reference values).
    expected = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    state = np.array([0], dtype=np.uint64)
    out = [int(hashing.splitmix64(state + hashing.seed_offset(0, i + 1))[0]) for i in range(3)]  # state += GOLDEN
    assert out == expected
    assert int(hashing.mix64(0, seed=0)[0]) == expected[0]


@given(st.lists(u64, min_size=1, max_size=50, unique=True))
def test_splitmix64_is_a_bijection_on_samples(values) -> None:
    out = hashing.splitmix64(np.array(values, dtype=np.uint64))
    assert np.unique(out).size == len(values)


def test_mix64_seeds_give_different_functions() -> None:
    ids = np.arange(1000, dtype=np.uint64)
    a, b = hashing.mix64(ids, 1), hashing.mix64(ids, 2)
    assert (a != b).mean() > 0.99
    with pytest.raises(ValueError):
        hashing.mix64(ids, -1)


def test_md5_hash64_is_md5_of_little_endian_bytes() -> None:
    for value in (0, 1, 2**63 + 17, 2**64 - 1):
        digest = hashlib.md5(value.to_bytes(8, "little")).digest()
        assert int(hashing.md5_hash64(np.array([value], dtype=np.uint64))[0]) == int.from_bytes(digest[:8], "little")


def test_bucket_of_methods_and_errors() -> None:
    ids = np.arange(100, dtype=np.uint64) * 64
    assert np.unique(hashing.bucket_of(ids, 64, "mod")).size == 1  # structured IDs defeat modulo
    assert np.unique(hashing.bucket_of(ids, 64, "md5")).size > 40
    assert np.unique(hashing.bucket_of(ids, 64, "mix")).size > 40
    assert hashing.bucket_of(ids, 7, "mix").dtype == np.int64
    with pytest.raises(ValueError, match="num_buckets"):
        hashing.bucket_of(ids, 0)
    with pytest.raises(ValueError, match="unknown hash method"):
        hashing.bucket_of(ids, 3, "sha")
    with pytest.raises(ValueError, match="integer"):
        hashing.bucket_of(np.array([1.5]), 3)


@given(st.lists(u64, max_size=30), st.integers(1, 63))
def test_qr_split_reconstructs_the_id(values, bits) -> None:
    ids = np.array(values, dtype=np.uint64)
    rem, quo = hashing.qr_split(ids, bits)
    assert np.array_equal((quo << np.uint64(bits)) | rem, ids)
    assert (rem < np.uint64(2**bits)).all()


def test_collision_rate_definitions() -> None:
    ids = np.arange(10, dtype=np.uint64)
    assert hashing.collision_rate(ids, 10, "mod") == 0.0
    assert hashing.collision_rate(ids, 5, "mod") == pytest.approx(0.5)
    assert hashing.colliding_fraction(ids, 5, "mod") == pytest.approx(1.0)
    assert hashing.colliding_fraction(np.array([0, 1, 5], dtype=np.uint64), 5, "mod") == pytest.approx(2 / 3)
    assert hashing.collision_rate(np.array([], dtype=np.uint64), 5) == 0.0
    # repeated events do not change per-ID rates, but do weigh the traffic rate
    events = np.array([0, 0, 0, 0, 5, 1], dtype=np.uint64)
    assert hashing.traffic_collision_rate(events, 5, "mod") == pytest.approx(5 / 6)


def test_expected_rates_agree_with_simulation() -> None:
    rng = np.random.default_rng(7)
    n, m = 2000, 3000
    ids = rng.choice(2**62, size=n, replace=False).astype(np.uint64)
    measured = np.mean([hashing.collision_rate(ids, m, "mix", seed=s) for s in range(20)])
    assert measured == pytest.approx(hashing.expected_collision_rate(n, m), abs=0.01)
    crowded = np.mean([hashing.colliding_fraction(ids, m, "mix", seed=s) for s in range(20)])
    assert crowded == pytest.approx(hashing.expected_colliding_fraction(n, m), abs=0.015)


def test_expected_rate_edge_cases_and_paper_scale() -> None:
    assert hashing.expected_collision_rate(0, 10) == 0.0
    assert hashing.expected_collision_rate(4, 1) == pytest.approx(0.75)
    assert hashing.expected_colliding_fraction(1, 10) == 0.0
    assert hashing.expected_colliding_fraction(3, 1) == 1.0
    assert hashing.expected_collision_rate(10_000, 10**12) == pytest.approx(9_999 / 2e12, rel=1e-4)
    with pytest.raises(ValueError):
        hashing.expected_collision_rate(-1, 10)
    with pytest.raises(ValueError):
        hashing.expected_collision_rate(10, 0)


def test_buckets_for_collision_rate_is_the_smallest_table() -> None:
    n = 162_541
    m = hashing.buckets_for_collision_rate(n, 0.0773)
    assert hashing.expected_collision_rate(n, m) <= 0.0773 < hashing.expected_collision_rate(n, m - 1)
    assert hashing.buckets_for_collision_rate(n, 0.5) < m
    with pytest.raises(ValueError):
        hashing.buckets_for_collision_rate(n, 1.5)


def test_zipf_ids_are_seeded_and_skewed() -> None:
    a = zipf_ids(20_000, 1_000, alpha=1.2, seed=3)
    b = zipf_ids(20_000, 1_000, alpha=1.2, seed=3)
    assert a.dtype == np.uint64 and np.array_equal(a, b)
    assert not np.array_equal(a, zipf_ids(20_000, 1_000, alpha=1.2, seed=4))
    _, counts = np.unique(a, return_counts=True)
    probs = zipf_probabilities(1_000, 1.2)
    assert counts.max() / a.size == pytest.approx(probs[0], rel=0.1)
    assert a.max() > 2**40, "IDs are sparse 64-bit values, not ranks"
    with pytest.raises(ValueError):
        zipf_probabilities(0, 1.0)
    with pytest.raises(ValueError):
        zipf_ids(-1, 10)
