"""Exercise 5.2 (solution): TTL expiry with exact boundaries.

See exercises/ex05_expiry.py for the spec and book/ch05_filters.md for the idea.
"""

from __future__ import annotations

from monolith_ref.tables import Entry


def expire_entries(entries: dict[int, Entry], now: int, ttl: int) -> list[int]:
    """Remove entries unseen for longer than ``ttl``; exactly ``ttl`` stays."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
        raise ValueError(f"ttl must be an integer >= 0, got {ttl!r}")
    stale = sorted(key for key, entry in entries.items() if now - entry.last_seen > ttl)
    for key in stale:
        del entries[key]
    return stale
