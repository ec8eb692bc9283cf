"""Exercise 7.1: route a batch to shards, and put the answers back in order.

A sharded table (chapter 7, book/ch07_sharding.md) sends each ID to one shard, lets each
shard answer for its IDs, and returns the answers in the batch's order. Grade with
``monolith-ref grade 7``.
"""

from __future__ import annotations

import numpy as np

from monolith_ref.hashing import mix64  # noqa: F401  (a seeded, well-mixed 64-bit hash)


def route(ids: np.ndarray, num_shards: int, seed: int = 0) -> np.ndarray:
    """The shard (int64 in ``0..num_shards-1``) of each uint64 ID.

    It must depend only on ``(id, num_shards, seed)``, spread distinct IDs evenly over the
    shards (hash first: plain ``id % num_shards`` fails on IDs with a common stride), and
    raise ``ValueError`` if ``num_shards < 1``.
    """
    raise NotImplementedError("Exercise 7.1: route is not written yet")


def split(shards: np.ndarray, num_shards: int) -> list[np.ndarray]:
    """For each shard ``s``, the positions ``i`` with ``shards[i] == s``, in increasing order.

    Returns ``num_shards`` int64 arrays (some may be empty) that together hold every
    position exactly once.
    """
    raise NotImplementedError("Exercise 7.1: split is not written yet")


def reassemble(parts: list[np.ndarray], positions: list[np.ndarray], n: int) -> np.ndarray:
    """Put each shard's answers back where their IDs were in the batch.

    ``parts[s]`` holds shard ``s``'s answers (rows of equal width, one per position in
    ``positions[s]``, in that order). Return an array of ``n`` rows, row ``i`` being the
    answer for batch position ``i``, with the dtype of the parts.
    """
    raise NotImplementedError("Exercise 7.1: reassemble is not written yet")
