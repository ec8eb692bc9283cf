"""Hashing: 64-bit mixers, bucket hashing, the quotient-remainder split, collision arithmetic.

A collisionless table never hashes an ID into a fixed number of rows; the baselines it is
compared with do. This module holds both sides: the mixers every table uses to place keys and
to draw deterministic initial rows, and the bucket hashes whose collisions the book measures.

See: book/ch02_collisions.md
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from .checks import check_int

__all__ = [
    "GOLDEN_GAMMA",
    "seed_offset",
    "splitmix64",
    "mix64",
    "mix64_int",
    "unit_float",
    "md5_hash64",
    "bucket_of",
    "qr_split",
    "collision_rate",
    "colliding_fraction",
    "traffic_collision_rate",
    "expected_collision_rate",
    "expected_colliding_fraction",
    "buckets_for_collision_rate",
]

#: The odd constant splitmix64 adds between outputs (2**64 divided by the golden ratio).
GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_GOLDEN = int(GOLDEN_GAMMA)


def _offset(seed: int, k: int) -> int:
    """:func:`seed_offset` as a Python int, unchecked: the one place the formula is written."""
    return ((seed + k) * _GOLDEN) % 2**64


def seed_offset(seed: int, k: int = 1) -> np.uint64:
    """``(seed + k) * GOLDEN_GAMMA`` modulo 2**64: the offset a seeded hash adds to each key.

    ``mix64(ids, seed) == splitmix64(ids + seed_offset(seed))``: different seeds give
    independent-looking hash functions. The compiled kernels take the offset, not the seed;
    a cuckoo index uses ``k = 1`` and ``k = 2`` for its two hashes.
    See: book/ch06_numba.md
    """
    if type(seed) is not int or type(k) is not int:  # the common case needs no further checks
        seed, k = check_int(seed, "seed_offset's seed"), check_int(k, "seed_offset's k")
    return np.uint64(_offset(seed, k))


def _as_u64(x: np.ndarray | int) -> np.ndarray:
    """A uint64 array view of ``x``; Python ints are reduced modulo 2**64."""
    if isinstance(x, (int, np.integer)):
        return np.array([int(x) % 2**64], dtype=np.uint64)
    arr = np.asarray(x)
    if arr.dtype != np.uint64:
        if arr.dtype.kind not in "iu":
            raise ValueError(f"expected integer keys, got dtype {arr.dtype}")
        arr = arr.astype(np.uint64)
    return arr


def splitmix64(x: np.ndarray | int) -> np.ndarray:
    """The splitmix64 finaliser: a bijection on 64-bit integers that scrambles every bit.

    Wrap-around multiplication is intended; the result is always a uint64 array.
    See: book/ch02_collisions.md
    """
    z = _as_u64(x).copy()
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def mix64(ids: np.ndarray | int, seed: int = 0) -> np.ndarray:
    """A seeded 64-bit hash of each ID: ``splitmix64(id + (seed + 1) * GOLDEN_GAMMA)``.

    Different seeds give independent-looking hash functions (cuckoo hashing needs two).
    See: book/ch02_collisions.md
    """
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return splitmix64(_as_u64(ids) + np.uint64(_offset(int(seed), 1)))


_MASK = 2**64 - 1


def mix64_int(key: int, seed: int = 0) -> int:
    """:func:`mix64` for one Python int, in pure Python (no array round trip).

    The cuckoo table hashes one key at a time; building a NumPy array per key would cost
    more than the hash. ``mix64_int(k, s) == int(mix64(k, s)[0])`` for every key and seed.
    See: book/ch04_cuckoo.md
    """
    z = (key + _offset(seed, 1)) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def unit_float(key: int, seed: int = 0) -> float:
    """A float in ``[0, 1)`` from the top 53 bits of ``mix64_int(key, seed)``: a seeded draw.

    See: book/ch05_filters.md
    """
    return (mix64_int(key, seed) >> 11) * 2.0**-53


def md5_hash64(ids: np.ndarray | int) -> np.ndarray:
    """The first 8 bytes (little-endian) of MD5 over each ID's 8-byte little-endian encoding.

    The paper's MovieLens collision baseline hashes IDs with MD5 (section 3.1.1); this is a
    concrete, reproducible reading of that. It loops in Python, so it suits up to a few
    million IDs. See: book/ch02_collisions.md
    """
    arr = _as_u64(ids)
    raw = arr.astype("<u8").tobytes()
    out = np.empty(arr.shape[0] if arr.ndim else 1, dtype=np.uint64)
    for i in range(out.shape[0]):
        digest = hashlib.md5(raw[8 * i : 8 * i + 8]).digest()
        out[i] = int.from_bytes(digest[:8], "little")
    return out


def bucket_of(ids: np.ndarray | int, num_buckets: int, method: str = "md5", seed: int = 0) -> np.ndarray:
    """The bucket (row) of each ID in a fixed table of ``num_buckets`` rows.

    ``method`` is ``"md5"`` (the paper's baseline), ``"mix"`` (seeded splitmix64, fast) or
    ``"mod"`` (plain ``id % num_buckets``, what a naive table does). Returns int64 indices.
    See: book/ch02_collisions.md
    """
    if int(num_buckets) < 1:
        raise ValueError(f"num_buckets must be >= 1, got {num_buckets}")
    m = np.uint64(num_buckets)
    if method == "md5":
        h = md5_hash64(ids)
    elif method == "mix":
        h = mix64(ids, seed)
    elif method == "mod":
        h = _as_u64(ids)
    else:
        raise ValueError(f"unknown hash method {method!r}; use 'md5', 'mix' or 'mod'")
    return (h % m).astype(np.int64)


def qr_split(ids: np.ndarray | int, remainder_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Split IDs into ``(id mod 2**k, id // 2**k)``: the quotient-remainder trick.

    The paper's production baseline maps a 2**48 ID space to two tables of 2**24 rows this
    way and sums the two embeddings (section 3.1.1). See: book/ch02_collisions.md
    """
    if not 0 < int(remainder_bits) < 64:
        raise ValueError(f"remainder_bits must be in 1..63, got {remainder_bits}")
    arr = _as_u64(ids)
    k = np.uint64(remainder_bits)
    return arr & ((np.uint64(1) << k) - np.uint64(1)), arr >> k


def _distinct(ids: np.ndarray) -> np.ndarray:
    return np.unique(_as_u64(ids))


def collision_rate(ids: np.ndarray, num_buckets: int, method: str = "md5", seed: int = 0) -> float:
    """Measured fraction of distinct IDs that lose a row of their own: ``1 - buckets/ids``.

    This is how the paper's Table 1 counts: 162,541 user IDs fall into 149,970 distinct
    buckets, so 7.73% of the IDs have no row of their own. See: book/ch02_collisions.md
    """
    uniq = _distinct(ids)
    if uniq.size == 0:
        return 0.0
    used = np.unique(bucket_of(uniq, num_buckets, method, seed)).size
    return 1.0 - used / uniq.size


def colliding_fraction(ids: np.ndarray, num_buckets: int, method: str = "md5", seed: int = 0) -> float:
    """Measured fraction of distinct IDs that share their bucket with at least one other ID.

    A stricter count than :func:`collision_rate`: both members of a colliding pair count.
    See: book/ch02_collisions.md
    """
    uniq = _distinct(ids)
    if uniq.size == 0:
        return 0.0
    counts = np.bincount(bucket_of(uniq, num_buckets, method, seed), minlength=int(num_buckets))
    crowded = counts[counts > 1].sum()
    return float(crowded) / uniq.size


def traffic_collision_rate(ids: np.ndarray, num_buckets: int, method: str = "md5", seed: int = 0) -> float:
    """Fraction of *events* (lookups, with repeats) whose ID shares its bucket with another ID.

    Under skewed traffic this differs from the per-ID rates: a popular ID that collides
    spoils many lookups, a rare one few. See: book/ch02_collisions.md
    """
    events = _as_u64(ids)
    if events.size == 0:
        return 0.0
    uniq, inverse = np.unique(events, return_inverse=True)
    buckets = bucket_of(uniq, num_buckets, method, seed)
    crowded = np.bincount(buckets, minlength=int(num_buckets)) > 1
    return float(crowded[buckets][inverse].mean())


def _check_counts(n: int, m: int) -> tuple[int, int]:
    if int(n) < 0:
        raise ValueError(f"the number of IDs must be >= 0, got {n}")
    if int(m) < 1:
        raise ValueError(f"the number of buckets must be >= 1, got {m}")
    return int(n), int(m)


def expected_collision_rate(n: int, m: int) -> float:
    """Expected :func:`collision_rate` of ``n`` distinct IDs hashed uniformly into ``m`` buckets.

    The expected number of occupied buckets is ``m * (1 - (1 - 1/m)**n)`` (the birthday
    problem), so the rate is ``1 - m * (1 - (1 - 1/m)**n) / n``. Computed with ``log1p`` and
    ``expm1`` so that it stays accurate when ``m`` is huge. See: book/ch02_collisions.md
    """
    n, m = _check_counts(n, m)
    if n == 0:
        return 0.0
    if m == 1:
        return 1.0 - 1.0 / n
    occupied = -m * math.expm1(n * math.log1p(-1.0 / m))
    return max(0.0, 1.0 - occupied / n)


def expected_colliding_fraction(n: int, m: int) -> float:
    """Expected :func:`colliding_fraction`: ``1 - (1 - 1/m)**(n - 1)``.

    See: book/ch02_collisions.md
    """
    n, m = _check_counts(n, m)
    if n <= 1:
        return 0.0
    if m == 1:
        return 1.0
    return -math.expm1((n - 1) * math.log1p(-1.0 / m))


def buckets_for_collision_rate(n: int, rate: float) -> int:
    """The smallest number of buckets whose expected collision rate for ``n`` IDs is <= ``rate``.

    Used to size hashed baselines to the paper's rates (7.73% of users, 2.86% of movies).
    See: book/ch02_collisions.md
    """
    if not 0.0 < float(rate) < 1.0:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    n, _ = _check_counts(n, 1)
    if n <= 1:
        return 1
    lo, hi = 1, 1
    while expected_collision_rate(n, hi) > rate:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if expected_collision_rate(n, mid) <= rate:
            hi = mid
        else:
            lo = mid + 1
    return lo
