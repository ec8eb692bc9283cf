"""Exercise 7.1 (solution): route a batch to shards, and put the answers back in order.

See exercises/ex07_routing.py for the spec and book/ch07_sharding.md for the idea.
"""

from __future__ import annotations

import numpy as np

from monolith_ref.hashing import mix64


def route(ids: np.ndarray, num_shards: int, seed: int = 0) -> np.ndarray:
    """Hash with a seeded mixer, then take the remainder."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    return (mix64(np.asarray(ids, dtype=np.uint64), seed) % np.uint64(num_shards)).astype(np.int64)


def split(shards: np.ndarray, num_shards: int) -> list[np.ndarray]:
    """A stable sort by shard keeps batch order inside each shard."""
    order = np.argsort(shards, kind="stable")
    bounds = np.cumsum(np.bincount(shards, minlength=num_shards))[:-1]
    return [part.astype(np.int64) for part in np.split(order, bounds)]


def reassemble(parts: list[np.ndarray], positions: list[np.ndarray], n: int) -> np.ndarray:
    """Scatter each part to its positions."""
    first = next(p for p in parts if p is not None)
    out = np.empty((n, *first.shape[1:]), dtype=first.dtype)
    for part, pos in zip(parts, positions):
        out[pos] = part
    return out
