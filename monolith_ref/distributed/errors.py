"""Errors of the parameter-server client: an unreachable PS, a missing table, a remote failure.

A :class:`~monolith_ref.distributed.RemoteTable` raises the same ``TableError`` types as a
local table for bad input (it validates before sending anything, and a PS re-raises what
its table raised). What is new at a distance is that a PS can be gone:
:class:`PSUnavailableError` says which one and what was being done.

See: book/ch12_distributed.md
"""

from __future__ import annotations

__all__ = ["PSUnavailableError", "TableNotFoundError", "RemoteError"]


class PSUnavailableError(ConnectionError):
    """A parameter server did not answer (its process died, or the call timed out).

    ``ps_names`` lists the servers that failed, ``op`` the operation. Nothing is retried:
    the other servers of the same call may have applied their part (see
    :class:`~monolith_ref.distributed.RemoteTable` for the policy).
    See: book/ch12_distributed.md
    """

    def __init__(self, message: str, ps_names: tuple[str, ...] = (), op: str = "") -> None:
        super().__init__(message)
        self.ps_names = tuple(ps_names)
        self.op = op


class TableNotFoundError(LookupError):
    """A PS holds no table of that id (never created, dropped, or lost in a restart without a snapshot).

    See: book/ch12_distributed.md
    """


class RemoteError(RuntimeError):
    """An unexpected exception on a PS whose type could not be rebuilt locally; the message keeps its type's name.

    See: book/ch12_distributed.md
    """
