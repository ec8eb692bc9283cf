"""The tables a user would otherwise reach for, behind one small benchmark interface.

Every contestant of the benchmark (``monolith_ref.bench``) is an object with the same few
methods, so one harness can feed them all the same keys:

* ``load(keys, now)``: make ``keys`` resident, each last seen at ``now[i]`` (not timed);
* ``lookup(ids)``: serving lookups, no inserts (unknown IDs read zeros);
* ``train(ids, now)``: training lookups: insert unseen IDs (through the admission rule,
  if the peer was built with ``threshold`` > 1) and refresh the last-seen time;
* ``apply_gradients(ids, grads)``: sum the gradients per ID, then one Adagrad step per row;
* ``expire(now)``: remove rows unseen for longer than the TTL; return how many;
* ``memory_bytes()``: bytes held (``None`` where it cannot be measured).

A peer sets ``supports`` to the workloads it can run. One module per peer:

* :mod:`~monolith_ref.bench.peers.seed_mock`: :class:`~monolith_ref.bench.peers.seed_mock.CollisionlessEmbedding`, **the seed
  blog post's mock**, as written there (a dict of NumPy vectors and a Python loop per ID);
  :class:`~monolith_ref.bench.peers.seed_mock.SeedMockAdapter` drives it.
* :mod:`~monolith_ref.bench.peers.dict_arena`: :class:`~monolith_ref.bench.peers.dict_arena.DictArena`, a Python ``dict`` from ID
  to a row number, plus NumPy arrays.
* :mod:`~monolith_ref.bench.peers.typed_dict`: :class:`~monolith_ref.bench.peers.typed_dict.TypedDictTable`, ``numba.typed.Dict``
  (uint64 -> int64), used inside ``@njit``.
* :mod:`~monolith_ref.bench.peers.pandas_table`: :class:`~monolith_ref.bench.peers.pandas_table.PandasTable`, pandas' C hash table
  (``UInt64HashTable``) plus ``np.take``.
* :mod:`~monolith_ref.bench.peers.torch_hashed`: :class:`~monolith_ref.bench.peers.torch_hashed.TorchHashed`, ``torch.nn.Embedding``
  over hashed IDs (a fixed-size table).
* :mod:`~monolith_ref.bench.peers.ceiling`: :class:`~monolith_ref.bench.peers.ceiling.GatherCeiling`, rows whose positions are
  already known, no hashing at all.
* :mod:`~monolith_ref.bench.peers.ours`: :class:`~monolith_ref.bench.peers.ours.OursAdapter`, ``NumbaTable``,
  ``ShardedTable`` and ``DictTable`` themselves.

What they share: :mod:`~monolith_ref.bench.peers.spec` (:class:`~monolith_ref.bench.peers.spec.PeerConfig`, the settings),
:mod:`~monolith_ref.bench.peers.row_ops` (NumPy and compiled row operations) and
:mod:`~monolith_ref.bench.peers.arena_peer` (the dict and pandas peers' common part). The peers
with rows of their own keep them in the same :class:`~monolith_ref.kernels.arena.RowArena` as
``NumbaTable``, which starts new rows with the same kernels (the recipe of
:func:`monolith_ref.tables.initial_rows`), so their lookups return exactly our rows and the
harness can check that every contestant computed the same thing. See: book/ch06_numba.md
"""

from __future__ import annotations

from .ceiling import GatherCeiling
from .dict_arena import DictArena
from .ours import OursAdapter
from .pandas_table import PandasTable
from .seed_mock import CollisionlessEmbedding, FilteredCollisionlessEmbedding, SeedMockAdapter
from .spec import ALL_WORKLOADS, PeerConfig
from .torch_hashed import TorchHashed
from .typed_dict import TypedDictTable

__all__ = [
    "PeerConfig",
    "CollisionlessEmbedding",
    "FilteredCollisionlessEmbedding",
    "SeedMockAdapter",
    "DictArena",
    "TypedDictTable",
    "PandasTable",
    "TorchHashed",
    "GatherCeiling",
    "OursAdapter",
    "ALL_WORKLOADS",
]
