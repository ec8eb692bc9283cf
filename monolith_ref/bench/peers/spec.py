"""What every benchmark contestant is built with, and what it must be able to run.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numpy as np

from ...hashing import seed_offset
from ...kernels import RowArena
from ...tables import TableConfig

__all__ = ["PeerConfig", "ALL_WORKLOADS", "groups_by_time"]

#: Workload names: hit lookups, training lookups, Adagrad updates, an expire sweep.
ALL_WORKLOADS = frozenset({"hits", "train", "train_filter", "apply", "expire"})


class PeerConfig:
    """What every contestant is built with. See: book/ch06_numba.md

    ``dim``; ``capacity``: rows to allocate up front (peers with arenas); ``seed`` and
    ``scale`` of the initial rows; Adagrad's ``lr``, ``initial_accumulator`` and ``eps``;
    ``ttl`` in seconds; ``threshold``: admit an unseen ID at its ``threshold``-th occurrence
    (1 admits at once, as ``OccurrenceFilter``).
    """

    def __init__(self, dim: int, capacity: int, seed: int = 0, scale: float = 0.01, lr: float = 0.01,
                 initial_accumulator: float = 1.0, eps: float = 1e-10, ttl: int = 1_000_000,
                 threshold: int = 1) -> None:
        self.dim, self.capacity, self.seed, self.scale = int(dim), int(capacity), int(seed), float(scale)
        self.lr, self.initial_accumulator, self.eps = float(lr), float(initial_accumulator), float(eps)
        self.ttl, self.threshold = int(ttl), int(threshold)

    @property
    def seed_offset(self) -> np.uint64:
        """:func:`~monolith_ref.hashing.seed_offset` of the seed: what the initial rows hash with."""
        return seed_offset(self.seed)

    def table_config(self, filtered: bool = True) -> TableConfig:
        """The same settings as a :class:`TableConfig` for our tables."""
        from ...filters import OccurrenceFilter
        from ...optim import Adagrad

        opt = Adagrad(lr=self.lr, initial_accumulator=self.initial_accumulator, eps=self.eps)
        filt = OccurrenceFilter(self.threshold) if (filtered and self.threshold > 1) else None
        return TableConfig(dim=self.dim, seed=self.seed, ttl=self.ttl, init_scale=self.scale, optimizer=opt,
                           filter=filt)

    def arena(self) -> RowArena:
        """An empty :class:`~monolith_ref.kernels.arena.RowArena` of ``capacity`` rows with these
        settings: the rows (and Adagrad accumulators) the arena-based peers keep."""
        acc0 = np.full(self.dim, self.initial_accumulator, dtype=np.float32)
        return RowArena(self.capacity, self.dim, acc0, self.seed, self.scale)


def groups_by_time(now: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(t, positions)`` for each distinct time in ``now``, positions in their order.

    See: book/ch06_numba.md
    """
    order = np.argsort(now, kind="stable")
    times, starts = np.unique(now[order], return_index=True)
    return [(int(t), np.sort(part)) for t, part in zip(times.tolist(), np.split(order, starts[1:]))]
