"""Exercise 4.1: cuckoo insertion with kick-outs.

``CuckooMapExercise`` is :class:`monolith_ref.tables.CuckooMap` with its heart removed:
``_place``, the loop that puts a key in its slot and kicks the occupant on to its other home.
Everything else (lookups, deletes, rehashing, statistics) is inherited. The grader builds a
:class:`~monolith_ref.tables.CuckooTable` on your map and runs the table conformance suite,
then throws adversarial keys at it. Grade with ``monolith-ref grade 4``.

What you can use (read book/ch04_cuckoo.md):

* ``self.slot(key, table)``: the slot ``key`` must occupy in table 0 or table 1;
* ``self._keys[table][slot]`` and ``self._values[table][slot]``: the two tables (``None``
  marks an empty slot);
* ``self.max_kicks``: how many slots a chain may write before it gives up;
* ``self.record``: ``None``, or a list you may append :class:`~monolith_ref.tables.cuckoo_table.Move`
  records to (optional; the book's drawings use it);
* ``self.longest_chain``: update it with the number of kicks of the longest chain so far;
* ``self.auto_rehash`` and ``self._undo(trail, key, value)``: see below.
"""

from __future__ import annotations

from typing import Any

from monolith_ref.tables import CuckooMap


class CuckooMapExercise(CuckooMap):
    """A cuckoo map whose insertion loop you write (Exercise 4.1)."""

    def _place(self, key: int, value: Any) -> tuple[int, Any] | None:
        """Insert ``key`` (not yet in the map) by kicking out; return ``None`` on success.

        Start in table 0. Repeat at most ``self.max_kicks`` times: write ``(key, value)`` into
        its slot ``self.slot(key, table)`` of the current table, remembering ``(table, slot)``
        in a list ``trail``; if the slot was empty, you are done (return ``None``); otherwise
        the previous occupant becomes the key to place, in the *other* table.

        If the loop ends without an empty slot, the last evicted ``(key, value)`` has no home.
        If ``self.auto_rehash`` is False, call ``self._undo(trail, key, value)`` (it restores
        the tables and raises); otherwise return ``(key, value)``, and the caller rehashes.
        """
        raise NotImplementedError("Exercise 4.1: CuckooMapExercise._place is not written yet")
