"""Exercise 3.1 (solution): a collisionless table with TTL expiry.

See exercises/ex03_ttl_table.py for the specs and book/ch03_dict_table.md for the ideas.
"""

from __future__ import annotations

import numpy as np

from monolith_ref.tables import DictTable


class TTLDictTable(DictTable):
    """A collisionless embedding table with time-to-live expiry (Exercise 3.1, solved)."""

    def _lookup(self, ids: np.ndarray, now: int, train: bool) -> np.ndarray:
        """Rows for ``ids``: insert on miss and refresh in training; read-only at serving."""
        out = np.zeros((len(ids), self.config.dim), dtype=np.float32)
        for i, key in enumerate(int(k) for k in ids):
            if key in self._entries:
                entry = self._entries[key]
                if train:
                    entry.last_seen = now
                    self._touch(key)
            elif train:
                entry = self._new_entry(key, now)
                self._entries[key] = entry
                self._touch(key)
            else:
                continue
            out[i] = entry.embedding
        return out

    def _apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
        """Sum each present ID's gradients in batch order, then one optimizer step per ID."""
        order: list[int] = []
        totals: dict[int, np.ndarray] = {}
        for key, grad in zip((int(k) for k in ids), grads):
            if key not in self._entries:
                continue
            if key in totals:
                totals[key] = totals[key] + grad
            else:
                order.append(key)
                totals[key] = grad.copy()
        for key in order:
            entry = self._entries[key]
            self.config.optimizer.step(entry.embedding, entry.opt_state, totals[key])
            self._touch(key)

    def _expire(self, now: int) -> int:
        """Drop entries with ``now - last_seen > ttl``; return how many went."""
        ttl = self.config.ttl
        assert ttl is not None
        stale = [key for key, entry in self._entries.items() if now - entry.last_seen > ttl]
        for key in stale:
            del self._entries[key]
            self._touch(key)
        return len(stale)
