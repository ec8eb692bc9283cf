"""Fixed-size tables that hash IDs into rows: the collision baselines.

``HashedTable`` is what most frameworks do by default: allocate ``num_rows`` rows up front and
send each ID to ``hash(id) % num_rows``. Two IDs that land in one row share its parameters;
that sharing is a *collision*. ``QRHashedTable`` is the quotient-remainder trick that the
paper's production baseline uses (section 3.1.1): two smaller tables indexed by
``id % 2**k`` and ``id // 2**k``, whose rows are summed. It collides far less than one table
of the same memory, but still collides.

Neither table inserts, expires or filters: every row exists from the start. Keys in their
exports and touched sets are *row numbers*, not IDs, because rows are what they store.

See: book/ch02_collisions.md
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import check_int
from ..hashing import bucket_of, qr_split
from .base import StateMismatchError, TableBase, TableConfig, check_ids, initial_rows

__all__ = ["HashedTable", "QRHashedTable"]


class _Rows:
    """A block of ``n`` preallocated rows with their optimizer state."""

    def __init__(self, config: TableConfig, n: int, seed: int) -> None:
        self.config = config
        self.embeddings = initial_rows(seed, np.arange(n, dtype=np.uint64), config.dim, config.init_scale)
        width = config.state_width
        self.opt_state = np.tile(config.optimizer.initial_state(config.dim), (n, 1)).reshape(n, width)

    def step(self, rows: np.ndarray, grads: np.ndarray) -> np.ndarray:
        """Sum ``grads`` per row (in batch order) and apply one optimizer step per row."""
        uniq, inverse = np.unique(rows, return_inverse=True)
        summed = np.zeros((uniq.shape[0], self.config.dim), dtype=np.float32)
        np.add.at(summed, inverse, grads)
        emb = self.embeddings[uniq]
        opt = self.opt_state[uniq]
        self.config.optimizer.step(emb, opt, summed)
        self.embeddings[uniq] = emb
        self.opt_state[uniq] = opt
        return uniq

    def export(self, rows: np.ndarray | None, prefix: str) -> dict[str, np.ndarray]:
        idx = np.arange(self.embeddings.shape[0]) if rows is None else np.unique(rows)
        return {
            f"{prefix}rows": idx.astype(np.uint64),
            f"{prefix}embeddings": self.embeddings[idx].copy(),
            f"{prefix}opt_state": self.opt_state[idx].copy(),
        }

    def check(self, state: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
        n, dim, width = self.embeddings.shape[0], self.config.dim, self.config.state_width
        for key in ("rows", "embeddings", "opt_state"):
            if prefix + key not in state:
                raise StateMismatchError(f"state is missing {prefix + key!r}")
        rows = np.asarray(state[prefix + "rows"])
        emb = np.asarray(state[prefix + "embeddings"])
        opt = np.asarray(state[prefix + "opt_state"])
        if rows.shape != (n,) or not np.array_equal(rows, np.arange(n)):
            raise StateMismatchError(f"{prefix}rows must be all {n} row numbers in order (a full export)")
        if emb.dtype != np.float32 or emb.shape != (n, dim):
            raise StateMismatchError(f"{prefix}embeddings must be float32 ({n}, {dim}), got {emb.dtype} {emb.shape}")
        if opt.dtype != np.float32 or opt.shape != (n, width):
            raise StateMismatchError(f"{prefix}opt_state must be float32 ({n}, {width}), got {opt.dtype} {opt.shape}")
        if not np.isfinite(emb).all() or not np.isfinite(opt).all():
            raise StateMismatchError(f"{prefix}embeddings or opt_state hold NaN or infinity")
        return emb.copy(), opt.copy()

    def memory_bytes(self) -> int:
        return int(self.embeddings.nbytes + self.opt_state.nbytes)


def _no_expiry_or_filter(config: TableConfig, name: str) -> None:
    if config.ttl is not None:
        raise ValueError(f"{name} has a fixed set of rows and never expires them; build it with ttl=None")
    if config.filter is not None:
        raise ValueError(f"{name} has a fixed set of rows and admits every ID; build it with filter=None")


class HashedTable(TableBase):
    """``num_rows`` fixed rows; an ID reads row ``hash(id) % num_rows``.

    ``method`` is the hash (``"md5"`` as in the paper's MovieLens baseline, ``"mix"``, or
    ``"mod"``). See: book/ch02_collisions.md
    """

    def __init__(self, config: TableConfig, num_rows: int, method: str = "md5") -> None:
        super().__init__(config)
        _no_expiry_or_filter(config, "HashedTable")
        self.num_rows = check_int(num_rows, "num_rows", low=1)
        bucket_of(np.zeros(1, dtype=np.uint64), 1, method)  # validates the method name
        self.method = method
        self._rows = _Rows(config, self.num_rows, config.seed)

    def rows_of(self, ids: Any) -> np.ndarray:
        """The row each ID reads. See: book/ch02_collisions.md"""
        return bucket_of(check_ids(ids), self.num_rows, self.method, self.config.seed)

    def _lookup(self, ids: np.ndarray, now: int, train: bool) -> np.ndarray:
        return self._rows.embeddings[self.rows_of(ids)].copy()

    def _apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
        if ids.shape[0] == 0:
            return
        for row in self._rows.step(self.rows_of(ids), grads).tolist():
            self._touch(row)

    def _expire(self, now: int) -> int:
        return 0

    def _export(self, ids: np.ndarray | None) -> dict[str, np.ndarray]:
        return self._rows.export(None if ids is None else self.rows_of(ids), "")

    def _load(self, state: dict[str, np.ndarray]) -> None:
        emb, opt = self._rows.check(state, "")
        self._rows.embeddings, self._rows.opt_state = emb, opt
        self._touched.update(range(self.num_rows))

    def _has(self, key: int) -> bool:
        return True  # every ID has a row: someone's

    def __len__(self) -> int:
        return self.num_rows

    def memory_bytes(self) -> int:
        return self._rows.memory_bytes()


class QRHashedTable(TableBase):
    """The quotient-remainder trick: ``E(id) = R[id % 2**k] + Q[(id >> k) % quotient_rows]``.

    With ``remainder_bits=24`` and ``quotient_rows=2**24`` this is the paper's production
    baseline for a 2**48 ID space. Two IDs collide only if they agree on both parts.
    Keys in exports and touched sets are row numbers: remainder rows first, then quotient
    rows offset by ``2**k``. See: book/ch02_collisions.md
    """

    def __init__(self, config: TableConfig, remainder_bits: int, quotient_rows: int) -> None:
        super().__init__(config)
        _no_expiry_or_filter(config, "QRHashedTable")
        self.remainder_bits = check_int(remainder_bits, "remainder_bits", 1, 33)
        self.remainder_rows = 2**self.remainder_bits
        self.quotient_rows = check_int(quotient_rows, "quotient_rows", low=1)
        # The two blocks draw their initial rows from different seeds so that they differ.
        self._rem = _Rows(config, self.remainder_rows, config.seed)
        self._quo = _Rows(config, self.quotient_rows, (config.seed + 1) % 2**64)

    def parts_of(self, ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """(remainder row, quotient row) of each ID. See: book/ch02_collisions.md"""
        rem, quo = qr_split(check_ids(ids), self.remainder_bits)
        return rem.astype(np.int64), (quo % np.uint64(self.quotient_rows)).astype(np.int64)

    def _lookup(self, ids: np.ndarray, now: int, train: bool) -> np.ndarray:
        rem, quo = self.parts_of(ids)
        return self._rem.embeddings[rem] + self._quo.embeddings[quo]

    def _apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
        if ids.shape[0] == 0:
            return
        rem, quo = self.parts_of(ids)
        # d(R[r] + Q[q]) / dR[r] = d(...) / dQ[q] = identity: both parts get the gradient.
        for row in self._rem.step(rem, grads).tolist():
            self._touch(row)
        for row in self._quo.step(quo, grads).tolist():
            self._touch(self.remainder_rows + row)

    def _expire(self, now: int) -> int:
        return 0

    def _export(self, ids: np.ndarray | None) -> dict[str, np.ndarray]:
        rem, quo = (None, None) if ids is None else self.parts_of(ids)
        return {**self._rem.export(rem, "remainder/"), **self._quo.export(quo, "quotient/")}

    def _load(self, state: dict[str, np.ndarray]) -> None:
        rem = self._rem.check(state, "remainder/")
        quo = self._quo.check(state, "quotient/")
        self._rem.embeddings, self._rem.opt_state = rem
        self._quo.embeddings, self._quo.opt_state = quo
        self._touched.update(range(self.remainder_rows + self.quotient_rows))

    def _has(self, key: int) -> bool:
        return True

    def __len__(self) -> int:
        return self.remainder_rows + self.quotient_rows

    def memory_bytes(self) -> int:
        return self._rem.memory_bytes() + self._quo.memory_bytes()
