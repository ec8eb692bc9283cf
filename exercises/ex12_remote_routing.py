"""Exercise 12.1: route a batch to remote shards, and put the answers back in order.

A :class:`~monolith_ref.distributed.RemoteTable` (chapter 12, book/ch12_distributed.md) sends
each parameter server the IDs it owns, all at once, and only then waits for the answers: the
servers work in parallel, so a batch costs one round trip, not one per server. Here you write
that step with the remote call given to you as a function, so no real RPC is needed. Grade
with ``monolith-ref grade 12``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from monolith_ref.tables.routing import route, split_by_shard  # noqa: F401  (the routing of ShardedTable)


def gather_rows(ids: np.ndarray, num_shards: int, call: Callable[[int, np.ndarray], Any], dim: int,
                seed: int = 0) -> np.ndarray:
    """Look up a batch on ``num_shards`` remote shards; return the rows in the batch's order.

    1. The shard of each ID is ``route(ids, num_shards, seed)``: the hash that
       ``ShardedTable`` and ``RemoteTable`` use, so your answer can be checked against them.
    2. For each shard ``s`` that owns at least one ID, in increasing ``s``, call
       ``call(s, shard_ids)`` exactly once, ``shard_ids`` being that shard's IDs as a uint64
       array in batch order (repeated IDs repeated). A shard that owns no ID gets no call.
    3. Only after *every* call has been made, wait for the answers: a call returns a
       future-like object (like ``torch.futures.Future``) whose ``wait()`` returns a float32
       array ``(len(shard_ids), dim)``, row ``j`` answering ``shard_ids[j]``. If a ``wait()``
       raises, still wait for every other call (none may be left running), then raise the
       first such exception.
    4. Return a float32 ``(len(ids), dim)`` array whose row ``i`` answers ``ids[i]``. An
       empty batch makes no call and returns an array of shape ``(0, dim)``.

    Raise ``ValueError`` if ``num_shards < 1``.
    """
    raise NotImplementedError("Exercise 12.1: gather_rows is not written yet")
