"""Exercise 5.2: TTL expiry with exact boundaries.

Given a table's entries (ID -> :class:`monolith_ref.tables.Entry`), remove the ones that have
gone unseen for too long. The boundary matters: the grader checks rows seen exactly ``ttl``
seconds ago, one second more, and one second less. Chapter 5 (book/ch05_filters.md).
Grade with ``monolith-ref grade 5``.
"""

from __future__ import annotations

from monolith_ref.tables import Entry


def expire_entries(entries: dict[int, Entry], now: int, ttl: int) -> list[int]:
    """Delete, in place, every entry with ``now - entry.last_seen > ttl``; return their IDs sorted.

    An entry seen exactly ``ttl`` seconds ago stays. ``ttl`` is an integer >= 0 (raise
    ``ValueError`` otherwise). Entries whose ``last_seen`` is in the future (``> now``) stay.
    """
    raise NotImplementedError("Exercise 5.2: expire_entries is not written yet")
