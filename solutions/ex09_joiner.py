"""Exercise 9.1 (solution): a small online joiner, in memory.

See exercises/ex09_joiner.py for the spec and book/ch09_streaming.md for the idea.
"""

from __future__ import annotations


class MiniJoiner:
    """Three dicts and a set: waiting features, early actions, finished requests."""

    def __init__(self, window: int) -> None:
        """Empty state."""
        if window < 0:
            raise ValueError(f"window must be >= 0, got {window}")
        self.window = window
        self.waiting: dict[int, int] = {}  # request ID -> event time
        self.early: dict[int, int] = {}  # request ID -> arrival of its action
        self.finished: set[int] = set()

    def add_features(self, request_id: int, time: int, now: int) -> list[tuple[int, float]]:
        """Ignore a duplicate, answer an early action, or wait."""
        out = self.advance(now)
        if request_id in self.waiting or request_id in self.finished:
            pass  # a duplicate
        elif request_id in self.early:
            del self.early[request_id]
            self.finished.add(request_id)
            out.append((request_id, 1.0))
        else:
            self.waiting[request_id] = time
        return out + self.advance(now)

    def add_action(self, request_id: int, now: int) -> list[tuple[int, float]]:
        """Join a waiting request, ignore a finished or repeated one, or wait as early."""
        out = self.advance(now)
        if request_id in self.waiting:
            del self.waiting[request_id]
            self.finished.add(request_id)
            out.append((request_id, 1.0))
        elif request_id not in self.finished and request_id not in self.early:
            self.early[request_id] = now
        return out + self.advance(now)

    def advance(self, now: int) -> list[tuple[int, float]]:
        """Keep the early actions still in time; finalize the overdue requests in order."""
        self.early = {r: a for r, a in self.early.items() if a + self.window >= now}
        due = sorted((t, r) for r, t in self.waiting.items() if t + self.window < now)
        for _, r in due:
            del self.waiting[r]
            self.finished.add(r)
        return [(r, 0.0) for _, r in due]
