"""Cuckoo hashing: the hash map inside Monolith's collisionless table (paper §2.1, Figure 3).

A cuckoo hash map keeps two arrays of slots, T0 and T1, and two hash functions, h0 and h1.
Key ``k`` may live in exactly two places: ``T0[h0(k)]`` or ``T1[h1(k)]``. So a lookup reads
two slots and is done (worst-case O(1)), and so is a delete. An insert puts the key in
``T0[h0(k)]``; if that slot was taken, the occupant is kicked out to *its* other place, which
may kick out another key, and so on. A chain longer than ``max_kicks`` (in practice, a cycle)
means the current hash functions cannot place this set of keys: the map picks new hash seeds
(and, if it is getting full, doubles its size) and reinserts everything. Rehashes are rare,
so an insert costs amortised O(1).

:class:`CuckooMap` is the map (a ``MutableMapping[int, V]``), instrumented so the book can
draw its moves frame by frame. :class:`CuckooTable` is the collisionless embedding table of
chapter 3 with a ``CuckooMap`` in place of the Python ``dict``: the table's behaviour is
identical, bit for bit, and only the storage differs.

See: book/ch04_cuckoo.md
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..checks import check_int, check_number
from ..hashing import mix64_int
from .base import TableConfig
from .dict_table import DictTable, Entry

__all__ = ["CuckooMap", "CuckooTable", "CuckooInsertError", "Move", "colliding_keys"]

V = TypeVar("V")

_EMPTY = None


class CuckooInsertError(RuntimeError):
    """An insert whose kick-out chain failed while rehashing is off; the map is unchanged. See: book/ch04_cuckoo.md"""


@dataclass(frozen=True)
class Move:
    """One step of an insert, recorded when ``CuckooMap.record`` is a list.

    ``kind`` is ``"place"`` (``key`` put in an empty slot), ``"kick"`` (``key`` put in a slot
    whose occupant ``evicted`` must move on), ``"rehash"`` (new seeds, ``capacity`` slots per
    table) or ``"fail"`` (the chain hit ``max_kicks``).

    See: book/ch04_cuckoo.md
    """

    kind: str
    key: int | None = None
    table: int | None = None
    slot: int | None = None
    evicted: int | None = None
    capacity: int | None = None


class CuckooMap(MutableMapping[int, V], Generic[V]):
    """A two-table cuckoo hash map from uint64 keys to values. See: book/ch04_cuckoo.md

    ``capacity`` slots per table (so ``2 * capacity`` in all); ``seed`` picks the hash
    functions; ``max_kicks`` bounds a kick-out chain; ``max_load`` is the load factor
    (keys / slots) above which the map doubles before inserting; with ``auto_rehash=False`` a
    failed chain is undone and raises :class:`CuckooInsertError` instead of rehashing (for
    measuring where plain cuckoo hashing breaks down).
    """

    def __init__(self, capacity: int = 8, seed: int = 0, max_kicks: int = 32,
                 max_load: float = 0.45, auto_rehash: bool = True) -> None:
        capacity = check_int(capacity, "capacity", low=1)
        max_kicks = check_int(max_kicks, "max_kicks", low=1)
        check_number(max_load, "max_load", 0.0, 1.0, low_open=True)
        self.capacity = capacity
        self.base_seed = seed % 2**64
        self.max_kicks = max_kicks
        self.max_load = max_load
        self.auto_rehash = auto_rehash
        self.generation = 0  # bumps on every rehash: new seeds, new hash functions
        self.rehashes = 0
        self.longest_chain = 0
        self.record: list[Move] | None = None
        self._size = 0
        self._keys: list[list[int | None]] = [[_EMPTY] * capacity, [_EMPTY] * capacity]
        self._values: list[list[V | None]] = [[None] * capacity, [None] * capacity]

    # ---- hashing --------------------------------------------------------------------

    def seeds(self) -> tuple[int, int]:
        """The seeds of h0 and h1 in the current generation."""
        s = (self.base_seed + 2 * self.generation) % 2**64
        return s, (s + 1) % 2**64

    def slot(self, key: int, table: int) -> int:
        """``h_table(key)``: the only slot ``key`` may occupy in ``table``."""
        return mix64_int(key, self.seeds()[table]) % self.capacity

    # ---- reading: two probes ------------------------------------------------------------

    def _find(self, key: int) -> tuple[int, int] | None:
        for table in (0, 1):
            s = self.slot(key, table)
            if self._keys[table][s] == key:
                return table, s
        return None

    def __getitem__(self, key: int) -> V:
        where = self._find(key)
        if where is None:
            raise KeyError(key)
        return self._values[where[0]][where[1]]  # type: ignore[return-value]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int) and self._find(key) is not None

    def __delitem__(self, key: int) -> None:
        where = self._find(key)
        if where is None:
            raise KeyError(key)
        table, s = where
        self._keys[table][s] = _EMPTY
        self._values[table][s] = None
        self._size -= 1

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[int]:
        for table in (0, 1):
            for key in self._keys[table]:
                if key is not _EMPTY:
                    yield key

    # ---- writing: kick-outs ---------------------------------------------------------------

    def __setitem__(self, key: int, value: V) -> None:
        where = self._find(key)
        if where is not None:  # an update in place
            self._values[where[0]][where[1]] = value
            return
        if (self._size + 1) / (2 * self.capacity) > self.max_load and self.auto_rehash:
            self._rehash(grow=True)
        homeless = self._place(key, value)
        while homeless is not None:  # the chain failed: new hash functions, then retry
            self._rehash(grow=self.load_factor() > self.max_load / 2, extra=homeless)
            homeless = None
        self._size += 1

    def _place(self, key: int, value: V) -> tuple[int, V] | None:
        """Insert by kicking out; return the key left without a slot if the chain fails."""
        record = self.record
        trail: list[tuple[int, int]] = []
        table = 0
        for _ in range(self.max_kicks):
            s = self.slot(key, table)
            occupant = self._keys[table][s]
            occupant_value = self._values[table][s]
            self._keys[table][s], self._values[table][s] = key, value
            trail.append((table, s))
            if occupant is _EMPTY:
                if record is not None:
                    record.append(Move("place", key, table, s))
                self.longest_chain = max(self.longest_chain, len(trail) - 1)
                return None
            if record is not None:
                record.append(Move("kick", key, table, s, evicted=occupant))
            key, value = occupant, occupant_value  # type: ignore[assignment]
            table = 1 - table  # the evicted key's other home is in the other table
        if record is not None:
            record.append(Move("fail", key))
        self.longest_chain = max(self.longest_chain, len(trail))
        if not self.auto_rehash:
            self._undo(trail, key, value)
        return key, value

    def _undo(self, trail: list[tuple[int, int]], key: int, value: V) -> None:
        """Walk a failed chain backwards so every key is where it was; then raise."""
        for table, s in reversed(trail):
            back_key, back_value = self._keys[table][s], self._values[table][s]
            self._keys[table][s], self._values[table][s] = key, value
            key, value = back_key, back_value  # type: ignore[assignment]
        raise CuckooInsertError(
            f"kick-out chain longer than {self.max_kicks} at load factor {self.load_factor():.3f}; "
            f"key {key} not inserted"
        )

    def _rehash(self, grow: bool, extra: tuple[int, V] | None = None) -> None:
        """New seeds (and twice the slots if ``grow``), then reinsert every key."""
        items = [(k, v) for t in (0, 1) for k, v in zip(self._keys[t], self._values[t]) if k is not _EMPTY]
        if extra is not None:
            items.append(extra)
        capacity = self.capacity * 2 if grow else self.capacity
        while True:
            self.generation += 1
            self.rehashes += 1
            self.capacity = capacity
            self._keys = [[_EMPTY] * capacity, [_EMPTY] * capacity]
            self._values = [[None] * capacity, [None] * capacity]
            if self.record is not None:
                self.record.append(Move("rehash", capacity=capacity))
            if all(self._place(k, v) is None for k, v in items):
                return
            capacity *= 2  # these seeds failed too: give the keys more room

    # ---- statistics ---------------------------------------------------------------------

    def load_factor(self) -> float:
        """Keys per slot, over both tables."""
        return self._size / (2 * self.capacity)

    def stats(self) -> dict[str, float]:
        """Size, capacity, load factor, rehashes and the longest kick-out chain so far."""
        return {
            "size": self._size,
            "capacity": 2 * self.capacity,
            "load_factor": self.load_factor(),
            "rehashes": self.rehashes,
            "longest_chain": self.longest_chain,
        }

    def slots(self) -> list[list[int | None]]:
        """A copy of both tables' keys (``None`` for empty), for drawing."""
        return [list(self._keys[0]), list(self._keys[1])]

    def slot_bytes(self) -> int:
        """Bytes of the four slot lists themselves (pointers), without what they point to."""
        return sum(sys.getsizeof(t) for t in self._keys) + sum(sys.getsizeof(t) for t in self._values)

    def memory_bytes(self) -> int:
        """Bytes of the slot lists and the key objects stored in them (CPython sizes)."""
        return self.slot_bytes() + sum(sys.getsizeof(k) for k in self)


def colliding_keys(m: CuckooMap, count: int, start: int = 0) -> list[int]:
    """The first ``count`` keys from ``start`` up that share *both* their slots in ``m``.

    ``count`` such keys have only two homes between them, so for ``count >= 3`` no placement
    exists under the current hash functions: inserting them forces a rehash. This is the
    adversarial input of chapter 4, found by brute-force search over the seeded hashes.
    See: book/ch04_cuckoo.md
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    groups: dict[tuple[int, int], list[int]] = {}
    key = start
    while True:
        group = groups.setdefault((m.slot(key, 0), m.slot(key, 1)), [])
        group.append(key)
        if len(group) == count:
            return group
        key += 1


class CuckooTable(DictTable):
    """The collisionless table of chapter 3 stored in a :class:`CuckooMap`.

    ``capacity``, ``max_kicks`` and ``max_load`` are passed to the map. Results are
    bit-identical to :class:`DictTable` for any sequence of operations; only where entries
    live differs. See: book/ch04_cuckoo.md
    """

    def __init__(self, config: TableConfig, capacity: int = 64, max_kicks: int = 32, max_load: float = 0.45) -> None:
        self._map_args = {"capacity": capacity, "max_kicks": max_kicks, "max_load": max_load}
        CuckooMap(seed=config.seed, **self._map_args)  # validate the arguments before anything else
        super().__init__(config)

    def _new_map(self) -> CuckooMap[Entry]:
        return CuckooMap(seed=self.config.seed, **self._map_args)

    @property
    def map(self) -> CuckooMap[Entry]:
        """The underlying cuckoo map (for its statistics and slots)."""
        return self._entries  # type: ignore[return-value]

    def load_factor(self) -> float:
        """Entries per slot of the cuckoo map."""
        return self.map.load_factor()

    def stats(self) -> dict[str, float]:
        """The map's statistics: size, capacity, load factor, rehashes, longest chain."""
        return self.map.stats()

    def _map_bytes(self) -> int:
        return self.map.slot_bytes()  # DictTable.memory_bytes counts the keys and entries
