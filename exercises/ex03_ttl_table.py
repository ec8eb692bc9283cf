"""Exercise 3.1: a collisionless table with TTL expiry, written by you.

``TTLDictTable`` inherits everything from :class:`monolith_ref.tables.DictTable` except the
three methods that make it a collisionless, expiring table. Write them from the specs below
(don't call ``DictTable``'s versions: that would grade the book's code, not yours). The
grader runs the same conformance suite as for ``DictTable``: ``monolith-ref grade 3``.

What you can use (read book/ch03_dict_table.md):

* ``self._entries``: a ``dict`` from ``int`` ID to :class:`monolith_ref.tables.Entry`
  (``embedding``: float32 array, ``opt_state``: float32 array, ``last_seen``: int);
* ``self._new_entry(key, now)``: a fresh entry with the initial row for ``key``;
* ``self.config``: the :class:`~monolith_ref.tables.TableConfig` (``dim``, ``ttl``,
  ``optimizer``); ``self.config.optimizer.step(rows, state, grads)`` updates in place;
* ``self._filter``: ``None`` in this exercise (every ID is admitted at once);
* ``self._touch(key)``: record that ``key``'s entry changed (for delta sync).

The public methods (``lookup``, ``apply_gradients``, ``expire``) already validate their
arguments and call yours with clean values: ``ids`` a 1-D ``uint64`` array, ``grads`` a
float32 ``(len(ids), dim)`` array, ``now`` an ``int``; ``_expire`` is only called when
``config.ttl`` is not ``None``.
"""

from __future__ import annotations

import numpy as np

from monolith_ref.tables import DictTable


class TTLDictTable(DictTable):
    """A collisionless embedding table with time-to-live expiry (Exercise 3.1)."""

    def _lookup(self, ids: np.ndarray, now: int, train: bool) -> np.ndarray:
        """Return float32 rows of shape ``(len(ids), dim)``, one per ID, in order.

        * A known ID reads its entry's embedding. In training (``train=True``) the lookup
          also sets the entry's ``last_seen`` to ``now`` and touches the key.
        * An unknown ID in training gets a fresh entry from ``self._new_entry(key, now)``,
          stored in ``self._entries``, touched, and read. A repeated unknown ID in the same
          batch is inserted once and then read like a known one.
        * An unknown ID at serving (``train=False``) reads zeros. Serving changes nothing:
          no insert, no refresh, no touched key.
        """
        raise NotImplementedError("Exercise 3.1: TTLDictTable._lookup is not written yet")

    def _apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
        """Apply one optimizer step per distinct present ID, from its summed gradients.

        * Gradients of a repeated ID are added up in batch order (float32), first
          occurrence first; then ``self.config.optimizer.step(embedding, opt_state, g)``
          runs once for that ID, and the key is touched.
        * IDs with no entry (never seen, or expired) are ignored: no error, no insert.
        """
        raise NotImplementedError("Exercise 3.1: TTLDictTable._apply_gradients is not written yet")

    def _expire(self, now: int) -> int:
        """Remove every entry unseen for *longer* than ``self.config.ttl`` seconds.

        An entry with ``now - last_seen > ttl`` goes; one with exactly ``ttl`` stays.
        Touch every removed key and return how many entries were removed.
        """
        raise NotImplementedError("Exercise 3.1: TTLDictTable._expire is not written yet")
