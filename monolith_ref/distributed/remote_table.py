"""RemoteTable: the table protocol over RPC, one shard per parameter server.

A worker in Monolith (paper §2, Figure 2) does not hold the embedding tables: it sends each
batch's IDs to the parameter servers (PS) that own them and gets the rows back. A
:class:`RemoteTable` is that worker-side view. It routes IDs exactly as
:class:`~monolith_ref.tables.ShardedTable` does (the same :func:`~monolith_ref.tables.routing.route`
hash of ``config.seed``), with PS ``k`` of ``ps_names`` as shard ``k``. So a RemoteTable on N
parameter servers holds what a ShardedTable with N shards holds, bit for bit, and their
exports (with the filter state of shard ``s`` under ``shard<s>/``) load into each other.

Each batch costs one ``rpc_async`` call per PS that owns some of its IDs: all calls are sent
first, then their futures are waited together, and the answers are put back in batch order.
Arguments are checked here before anything is sent (the checks of
:class:`~monolith_ref.tables.TableBase`), so bad input raises the usual ``ValueError``
subclass and leaves every PS untouched; an error raised on a PS comes back with its own type.

**When a PS is gone** (its process died, or a call ran past ``timeout``), the call raises
:class:`~monolith_ref.distributed.PSUnavailableError` naming it. Nothing is retried, not even
lookups: a training lookup writes (it inserts rows and refreshes their time), and a retry
after a restart would read the restored snapshot, not what the trainer saw. Every future is
waited before the error is raised, so no call is left running; the other PS of the same
batch *have* applied their part. After :meth:`Cluster.restart <monolith_ref.distributed.Cluster.restart>`
the same RemoteTable object works again, the restarted PS serving its last snapshot.

**Loading** is two-phase: the whole state is validated here, then each PS stages its part
(loading it into a scratch table, which validates again) and only when every PS staged it
are they told to commit. A state that does not fit changes nothing anywhere. If a PS dies
between its stage and its commit, the error names the PS that did commit (they hold the new
state) and the one that did not (it holds its old state, or its snapshot after a restart).

See: book/ch12_distributed.md
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..checks import check_number
from ..tables.base import TableBase, TableConfig, check_ids, check_row_state, filter_from_state
from ..tables.routing import merge_states, route, route_key, split_by_shard, split_state
from . import ps as _ps
from .errors import PSUnavailableError
from .group import in_group
from .snapshots import check_table_id
from .wire import pack, unpack

__all__ = ["RemoteTable"]

_COUNTER = itertools.count()


def _new_table_id() -> str:
    return f"table-{os.getpid()}-{next(_COUNTER)}"


def _names_of(ps: Any) -> tuple[str, ...]:
    names = getattr(ps, "ps_names", ps)
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"give a Cluster or a list of PS names, got {ps!r}")
    names = tuple(names)
    if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"PS names must be distinct non-empty strings, at least one, got {names!r}")
    return names


class RemoteTable(TableBase):
    """An embedding table whose shards live on parameter servers. See: book/ch12_distributed.md

    ``ps``: a :class:`~monolith_ref.distributed.Cluster` or the PS names, in shard order
    (``["ps0", "ps1"]``). ``table_id``: the name of the table on every PS (default: a new
    unique one); ``attach=True`` connects to a table that already exists on the PS (same
    config, kind and shard layout) instead of creating it. ``factory``: the kind of table
    each PS holds (``"numba"`` or ``"dict"``). ``timeout``: seconds one RPC may take before
    the PS counts as unavailable. The trainer process must be in the RPC group
    (:class:`~monolith_ref.distributed.Cluster` or :func:`~monolith_ref.distributed.connect_trainer`).
    """

    def __init__(self, config: TableConfig, ps: Any, table_id: str | None = None, factory: str = "numba",
                 timeout: float = 30.0, attach: bool = False) -> None:
        super().__init__(config)
        self.ps_names = _names_of(ps)
        self.num_shards = len(self.ps_names)
        self.table_id = check_table_id(_new_table_id() if table_id is None else table_id)
        if factory not in _ps.FACTORIES:
            raise ValueError(f"unknown table kind {factory!r}; known: {sorted(_ps.FACTORIES)}")
        self.factory = factory
        self.timeout = check_number(timeout, "timeout (seconds)", low=0.0, low_open=True)
        if attach:
            self._check_attached()
        else:
            self._create()

    def _create(self) -> None:
        shards = range(self.num_shards)
        outcomes = self._send([(s, "create", (self.config, self.factory, s, self.num_shards)) for s in shards])
        failed = [o for o in outcomes if isinstance(o, (BaseException, _ps.Failure))]
        if failed:  # undo the shards that were created, then raise
            made = [s for s, o in zip(shards, outcomes) if not isinstance(o, (BaseException, _ps.Failure))]
            self._send([(s, "drop", ()) for s in made])
            self._raise(outcomes, "create")

    def _check_attached(self) -> None:
        for s, info in enumerate(self._run([(s, "describe", ()) for s in range(self.num_shards)], "attach")):
            want = {"config": self.config, "factory": self.factory, "shard": s, "num_shards": self.num_shards}
            got = {k: info[k] for k in want}
            if got != want:
                raise ValueError(f"table {self.table_id!r} on {self.ps_names[s]} is {got}, not {want}")

    # ---- calls ----------------------------------------------------------------------------

    def _send(self, calls: list[tuple[int, str, tuple]]) -> list[Any]:
        """Send every call at once, then wait for all: each outcome is a value, a Failure, or a transport error."""
        import torch.distributed.rpc as rpc

        if not in_group():
            raise RuntimeError("this process is not in an RPC group: start a Cluster or call connect_trainer() first")
        futures: list[Any] = []
        for s, op, args in calls:
            try:
                futures.append(rpc.rpc_async(self.ps_names[s], _ps.serve, args=(op, self.table_id, *pack(args)),
                                             timeout=self.timeout))
            except Exception as exc:  # noqa: BLE001 - e.g. an unknown worker name
                futures.append(exc)
        outcomes: list[Any] = []
        for fut in futures:
            if isinstance(fut, BaseException):
                outcomes.append(fut)
                continue
            try:
                outcomes.append(unpack(fut.wait()))
            except Exception as exc:  # noqa: BLE001 - the PS died, or the call timed out
                outcomes.append(exc)
        return outcomes

    def _raise(self, outcomes: list[Any], op: str, calls: list[tuple[int, str, tuple]] | None = None) -> None:
        shards = [c[0] for c in calls] if calls is not None else list(range(len(outcomes)))
        gone = [(self.ps_names[s], o) for s, o in zip(shards, outcomes) if isinstance(o, BaseException)]
        if gone:
            names = tuple(n for n, _ in gone)
            done = [self.ps_names[s] for s, o in zip(shards, outcomes) if not isinstance(o, BaseException)]
            why = "; ".join(f"{n}: {str(e).splitlines()[0] if str(e) else type(e).__name__}" for n, e in gone)
            raise PSUnavailableError(
                f"parameter server {', '.join(names)} unavailable during {op} of table {self.table_id!r} ({why}); "
                f"{'the call completed on ' + ', '.join(done) if done else 'no PS completed the call'}; "
                f"nothing was retried", names, op)
        for o in outcomes:
            if isinstance(o, _ps.Failure):
                err = o.error
                text = str(err) if o.ps in str(err) else f"{err} (on {o.ps})"
                try:
                    again = type(err)(text)
                except Exception:  # noqa: BLE001 - a type that takes other arguments
                    raise err from None
                raise again from None

    def _run(self, calls: list[tuple[int, str, tuple]], op: str) -> list[Any]:
        """Send the calls in parallel and return their results in order, or raise the first problem."""
        outcomes = self._send(calls)
        if any(isinstance(o, (BaseException, _ps.Failure)) for o in outcomes):
            self._raise(outcomes, op, calls)
        return outcomes

    def _all(self, op: str, *args: Any) -> list[Any]:
        return self._run([(s, op, args) for s in range(self.num_shards)], op)

    def _parts(self, ids: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """(shard, positions in the batch) for every shard that owns some of ``ids``."""
        positions = split_by_shard(route(ids, self.num_shards, self.config.seed), self.num_shards)
        return [(s, pos) for s, pos in enumerate(positions) if pos.size]

    # ---- the protocol ---------------------------------------------------------------------

    def _lookup(self, ids: np.ndarray, now: int, train: bool) -> np.ndarray:
        out = np.empty((ids.shape[0], self.config.dim), dtype=np.float32)
        parts = self._parts(ids)
        rows = self._run([(s, "lookup", (ids[pos], now, train)) for s, pos in parts], "lookup")
        for (_, pos), part in zip(parts, rows):
            out[pos] = part
        return out

    def _apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None:
        self._run([(s, "apply_gradients", (ids[pos], grads[pos])) for s, pos in self._parts(ids)], "apply_gradients")

    def _expire(self, now: int) -> int:
        return int(sum(self._all("expire", now)))

    def _export(self, ids: np.ndarray | None) -> dict[str, np.ndarray]:
        if ids is None:
            return merge_states(self._all("export", None))
        where = route(ids, self.num_shards, self.config.seed)
        return merge_states(self._run([(s, "export", (ids[where == s],)) for s in range(self.num_shards)], "export"))

    def _load(self, state: dict[str, np.ndarray]) -> None:
        rows = check_row_state(state, self.config)
        parts = split_state({**state, **rows}, self.num_shards, self.config.seed)
        for part in parts:
            filter_from_state(self.config, part)  # a bad filter state raises here, before anything is sent
        staged = self._send([(s, "stage_load", (part,)) for s, part in enumerate(parts)])
        if any(isinstance(o, (BaseException, _ps.Failure)) for o in staged):
            self._send([(s, "abort_load", ()) for s, o in enumerate(staged) if not isinstance(o, BaseException)])
            self._raise(staged, "load (staging; no PS changed)")
        self._run([(s, "commit_load", ()) for s in range(self.num_shards)], "load (commit)")

    def _has(self, key: int) -> bool:
        s = route_key(key, self.num_shards, self.config.seed)
        return bool(self._run([(s, "contains", (np.array([key], dtype=np.uint64),))], "contains")[0][0])

    def contains(self, ids: Any) -> np.ndarray:
        """Boolean mask: which of ``ids`` have a row (one call per PS concerned)."""
        keys = check_ids(ids)
        out = np.zeros(keys.shape[0], dtype=bool)
        parts = self._parts(keys)
        for (_, pos), mask in zip(parts, self._run([(s, "contains", (keys[pos],)) for s, pos in parts], "contains")):
            out[pos] = mask
        return out

    def __len__(self) -> int:
        return int(sum(self._all("size")))

    def memory_bytes(self) -> int:
        """Bytes of every shard, on its PS."""
        return int(sum(self._all("memory_bytes")))

    def touched_ids(self) -> np.ndarray:
        """Sorted keys changed since the last pop: the union of the shards'."""
        return self._union(self._all("touched_ids"))

    def pop_touched(self) -> np.ndarray:
        """Every shard's touched keys (sorted, as one array), and a new round on every shard."""
        return self._union(self._all("pop_touched"))

    @staticmethod
    def _union(parts: list[np.ndarray]) -> np.ndarray:
        return np.unique(np.concatenate([np.asarray(p, dtype=np.uint64) for p in parts] or
                                        [np.empty(0, dtype=np.uint64)]))

    # ---- beyond the protocol ----------------------------------------------------------------

    def shard_sizes(self) -> np.ndarray:
        """Rows held by each PS. See: book/ch12_distributed.md"""
        return np.array(self._all("size"), dtype=np.int64)

    def describe(self) -> list[dict[str, Any]]:
        """What each PS says about its shard: config, kind, shard, operations, snapshots. See: book/ch12_distributed.md"""
        return self._all("describe")

    def snapshot(self) -> list[str]:
        """Have every PS snapshot its shard now; return the paths written. See: book/ch12_distributed.md"""
        return [path for paths in self._all("snapshot") for path in paths]

    def restore(self) -> list[dict[str, Any]]:
        """Have every PS reload its shard from its newest snapshot that verifies (a rollback).

        Returns each PS's report (``restored``, ``skipped``). See: book/ch12_distributed.md
        """
        return self._all("restore")

    def drop(self) -> None:
        """Delete the table on every PS (rows and snapshots). See: book/ch12_distributed.md"""
        self._all("drop")

    def __repr__(self) -> str:  # no RPC: a repr must work with a PS down
        return f"RemoteTable(table_id={self.table_id!r}, dim={self.config.dim}, ps={list(self.ps_names)})"
