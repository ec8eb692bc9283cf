"""Exercise 9.1: a small online joiner, in memory.

Monolith joins the features a server logged for a request with the user's later action on
it (paper §2.2.2, Figure 5; book/ch09_streaming.md). Write the heart of that joiner: the
rules, without the disk level or negative sampling of :class:`monolith_ref.streaming.joiner.
OnlineJoiner`. The grader plays scripted sequences and a random one, which it also feeds to
``OnlineJoiner``: your answers must match it call for call. Grade with
``monolith-ref grade 9.1``.

The rules. ``now`` is the joiner's clock (the arrival time of the record in hand; the grader
never makes it go back); ``time`` is a request's event time; ``window`` is how long a
request waits for an action. Each method returns the ``(request_id, label)`` pairs it emits,
label ``1.0`` for a positive and ``0.0`` for a negative. A request emits at most once, ever.

* ``advance(now)``: first drop every *early action* (an action that came before its
  features) that arrived more than ``window`` seconds ago (``arrival + window < now``); then
  finalize every waiting request with ``time + window < now`` as a negative ``(id, 0.0)``.
  Return the negatives sorted by ``(time, request_id)``.
* ``add_features`` and ``add_action`` first call ``advance(now)``, then handle their record,
  then call ``advance(now)`` again (a record may be overdue already), and return everything
  emitted, in that order.
* Features for a request that waits already, or has finished (emitted), are ignored.
  Features for a request with an early action make a positive at once; otherwise the
  request waits.
* An action for a waiting request makes a positive at once. An action for a finished
  request (a duplicate, or a late one after its negative), or for a request with an early
  action already, is ignored. Any other action waits as an early action (arrival ``now``).
"""

from __future__ import annotations


class MiniJoiner:
    """Join features and actions by request ID, in memory (Exercise 9.1)."""

    def __init__(self, window: int) -> None:
        """Keep ``window`` and set up your state: the waiting requests (ID -> time), the early
        actions (ID -> arrival), and the finished request IDs. Raise ``ValueError`` if
        ``window < 0``.
        """
        raise NotImplementedError("Exercise 9.1: MiniJoiner.__init__ is not written yet")

    def add_features(self, request_id: int, time: int, now: int) -> list[tuple[int, float]]:
        """A request's features (event time ``time``) arrive at ``now``; see the rules above."""
        raise NotImplementedError("Exercise 9.1: MiniJoiner.add_features is not written yet")

    def add_action(self, request_id: int, now: int) -> list[tuple[int, float]]:
        """An action on a request arrives at ``now``; see the rules above."""
        raise NotImplementedError("Exercise 9.1: MiniJoiner.add_action is not written yet")

    def advance(self, now: int) -> list[tuple[int, float]]:
        """Move the clock to ``now``: drop overdue early actions, emit overdue negatives
        sorted by ``(time, request_id)``.
        """
        raise NotImplementedError("Exercise 9.1: MiniJoiner.advance is not written yet")
