"""Exercise 12.1 (solution): route a batch to remote shards, and put the answers back in order.

See exercises/ex12_remote_routing.py for the spec and book/ch12_distributed.md for the idea.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from monolith_ref.tables.routing import route, split_by_shard


def gather_rows(ids: np.ndarray, num_shards: int, call: Callable[[int, np.ndarray], Any], dim: int,
                seed: int = 0) -> np.ndarray:
    """Send every shard its IDs first, then wait for all of them, then scatter the rows back."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    ids = np.asarray(ids, dtype=np.uint64)
    positions = split_by_shard(route(ids, num_shards, seed), num_shards)
    sent = [(pos, call(s, ids[pos])) for s, pos in enumerate(positions) if pos.size]  # all in flight
    out = np.empty((ids.shape[0], dim), dtype=np.float32)
    first_error = None
    for pos, future in sent:  # then wait for every one of them
        try:
            out[pos] = future.wait()
        except Exception as exc:  # noqa: BLE001 - kept until the others are done
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return out
