"""Exercise 4.1 (solution): cuckoo insertion with kick-outs.

See exercises/ex04_cuckoo.py for the spec and book/ch04_cuckoo.md for the idea.
"""

from __future__ import annotations

from typing import Any

from monolith_ref.tables import CuckooMap
from monolith_ref.tables.cuckoo_table import Move


class CuckooMapExercise(CuckooMap):
    """A cuckoo map whose insertion loop you write (Exercise 4.1, solved)."""

    def _place(self, key: int, value: Any) -> tuple[int, Any] | None:
        """Write the key into its slot; move each evicted occupant to its other table."""
        trail: list[tuple[int, int]] = []
        table = 0
        for _ in range(self.max_kicks):
            slot = self.slot(key, table)
            evicted, evicted_value = self._keys[table][slot], self._values[table][slot]
            self._keys[table][slot], self._values[table][slot] = key, value
            trail.append((table, slot))
            if evicted is None:
                if self.record is not None:
                    self.record.append(Move("place", key, table, slot))
                self.longest_chain = max(self.longest_chain, len(trail) - 1)
                return None
            if self.record is not None:
                self.record.append(Move("kick", key, table, slot, evicted=evicted))
            key, value, table = evicted, evicted_value, 1 - table
        self.longest_chain = max(self.longest_chain, len(trail))
        if not self.auto_rehash:
            self._undo(trail, key, value)
        return key, value
