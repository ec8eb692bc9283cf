"""Routing by shard: which shard owns an ID, a batch split by shard, a table state split and merged.

Monolith spreads each embedding table over parameter servers (paper §2, Figure 2), and every
place that deals with shards asks the same few questions: which shard owns this ID
(:func:`route`), which positions of a batch go to each shard (:func:`split_by_shard`), and how
one table's exported state is cut into per-shard states and put back together
(:func:`split_state`, :func:`merge_states`). :class:`~monolith_ref.tables.ShardedTable` (shards
in one process), :class:`~monolith_ref.distributed.RemoteTable` (shards on parameter servers)
and the labs all answer them here, so they route identically and their states load into each
other.

A merged state is a table's export: the row arrays (``ids``, ``embeddings``, ``opt_state``,
``last_seen``) sorted by ID, plus each shard's filter state under ``shard<s>/filter/...``.

See: book/ch07_sharding.md
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from ..hashing import seed_offset
from ..kernels import splitmix
from .base import FILTER_PREFIX, ROW_STATE_KEYS

__all__ = ["ROUTE_SALT", "route", "route_key", "split_by_shard", "split_state", "merge_states", "shard_prefix"]

#: Salt for the routing hash, so that shard choice is independent of the tables' hashes.
ROUTE_SALT = 0x5EED_0F_5A4D


@njit(cache=True, nogil=True)
def _route(ids, offset, num_shards, out) -> None:
    n = np.uint64(num_shards)
    for i in range(ids.shape[0]):
        out[i] = np.int64(splitmix(ids[i] + offset) % n)


@njit(cache=True, nogil=True)
def _counting_sort(shards, num_shards):
    """Positions grouped by shard, batch order kept inside each group (a stable counting sort)."""
    counts = np.zeros(num_shards + 1, dtype=np.int64)
    for i in range(shards.shape[0]):
        counts[shards[i] + 1] += 1
    for s in range(num_shards):
        counts[s + 1] += counts[s]
    order = np.empty(shards.shape[0], dtype=np.int64)
    fill = counts[:-1].copy()
    for i in range(shards.shape[0]):
        s = shards[i]
        order[fill[s]] = i
        fill[s] += 1
    return order, counts


def _salted(seed: int) -> np.uint64:
    return seed_offset((int(seed) ^ ROUTE_SALT) % 2**64)


def route(ids: np.ndarray, num_shards: int, seed: int = 0) -> np.ndarray:
    """The shard (0..num_shards-1) of each ID: a salted splitmix64 mixer, then modulo.

    Equal to ``mix64(ids, seed ^ ROUTE_SALT) % num_shards``, computed in a compiled loop.
    See: book/ch07_sharding.md
    """
    if int(num_shards) < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    ids = np.ascontiguousarray(ids, dtype=np.uint64)
    out = np.empty(ids.shape[0], dtype=np.int64)
    _route(ids, _salted(seed), int(num_shards), out)
    return out


def route_key(key: int, num_shards: int, seed: int = 0) -> int:
    """The shard of one ID, as an ``int``: :func:`route` of a batch of one. See: book/ch07_sharding.md"""
    return int(route(np.array([key], dtype=np.uint64), num_shards, seed)[0])


def split_by_shard(shards: np.ndarray, num_shards: int) -> list[np.ndarray]:
    """Positions of the batch that go to each shard, each in batch order.

    A counting sort: one pass to count, one to place; no comparison sort.
    See: book/ch07_sharding.md
    """
    order, bounds = _counting_sort(np.ascontiguousarray(shards, dtype=np.int64), int(num_shards))
    return [order[bounds[s] : bounds[s + 1]] for s in range(int(num_shards))]


def shard_prefix(shard: int) -> str:
    """``"shard<s>/"``: the prefix of shard ``s``'s own arrays (its filter state) in a merged state.

    See: book/ch07_sharding.md
    """
    return f"shard{shard}/"


def split_state(state: dict[str, np.ndarray], num_shards: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Cut a merged (or single-table) state into one state per shard, each loadable into a shard.

    Every row array is split by :func:`route` of ``state["ids"]`` (rows keep their order, so
    sorted IDs stay sorted), and the arrays under ``shard<s>/`` go, without the prefix, to
    shard ``s``. Other keys (a single table's own ``filter/`` arrays) belong to no shard and
    are left out. The state is not validated here: tables check it before splitting.
    See: book/ch07_sharding.md
    """
    where = route(state["ids"], num_shards, seed)
    parts = []
    for s in range(int(num_shards)):
        mask = where == s
        part = {k: np.asarray(state[k])[mask] for k in ROW_STATE_KEYS if k in state}
        prefix = shard_prefix(s)
        part.update({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        parts.append(part)
    return parts


def merge_states(states: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One state from the shards' exports, ``states[s]`` being shard ``s``'s: the inverse of :func:`split_state`.

    The row arrays are concatenated and sorted by ID (each ID lives on one shard, so the
    order is total), and each shard's filter arrays are kept under ``shard<s>/``.
    See: book/ch07_sharding.md
    """
    if not states:
        raise ValueError("merge_states needs the state of at least one shard")
    order = np.argsort(np.concatenate([st["ids"] for st in states]), kind="stable")
    out = {k: np.concatenate([st[k] for st in states])[order] for k in ROW_STATE_KEYS}
    for s, st in enumerate(states):
        out.update({shard_prefix(s) + k: v for k, v in st.items() if k.startswith(FILTER_PREFIX)})
    return out
