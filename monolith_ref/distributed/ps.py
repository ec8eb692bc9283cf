"""The parameter server: a registry of table shards in one process, served over RPC.

In Monolith (paper §2, Figure 2) the embedding tables live on parameter servers (PS) and
the workers send them batches of IDs to look up and gradients to apply. Here a PS is a
process that holds, for every table the trainer created, the shard of it that routing sent
to this PS: a :class:`~monolith_ref.tables.NumbaTable` (or :class:`~monolith_ref.tables.DictTable`)
keyed by a table id in a :class:`PSServer`.

The trainer reaches it through one RPC function, :func:`serve`, called with an operation
name and its arguments. :func:`serve` runs the operation on this process's server and turns
any exception into a value (:class:`Failure`), so that the client can raise it again with
its own type: a ``StateMismatchError`` on the PS is a ``StateMismatchError`` for the trainer.

Each PS snapshots its tables by itself (paper §2.3): every ``snapshot_every`` operations
that change a table, and when asked. A PS started with ``restore=True`` (a restarted one)
loads every table it has a snapshot of before it joins the group
(:mod:`~monolith_ref.distributed.snapshots`).

Start one from the shell with ``python -m monolith_ref.distributed --rank 1 --world-size 3``
(:func:`main_ps`); :class:`~monolith_ref.distributed.Cluster` does that for you on one machine.

See: book/ch12_distributed.md
"""

from __future__ import annotations

import argparse
import os
import pickle
import queue
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..checks import check_int
from ..tables.base import TableBase, TableConfig
from ..tables.dict_table import DictTable
from ..tables.numba_table import NumbaTable
from .errors import RemoteError, TableNotFoundError
from .group import join_group, leave_group, ps_name
from .snapshots import check_table_id, load_latest_table, next_seq, save_table, table_dir
from .wire import pack, unpack

__all__ = ["FACTORIES", "OPS", "Failure", "PSServer", "serve", "ping", "configure", "server", "run_ps", "main_ps"]

#: Table kinds a PS can hold, by the name the trainer sends.
FACTORIES: dict[str, Callable[[TableConfig], TableBase]] = {"numba": NumbaTable, "dict": DictTable}

#: The operations :func:`serve` accepts (the public methods of :class:`PSServer`).
OPS = frozenset({
    "create", "describe", "tables", "lookup", "apply_gradients", "expire", "export", "load", "stage_load",
    "commit_load", "abort_load", "size", "contains", "touched_ids", "pop_touched", "memory_bytes", "drop",
    "snapshot", "restore",
})


@dataclass
class _Slot:
    """One table shard on this PS, with its bookkeeping."""

    table_id: str
    table: TableBase
    factory: str
    shard: int
    num_shards: int
    ops: int = 0  # operations that changed the table (counted for snapshot_every)
    seq: int = 0  # the number of the newest snapshot written or restored (0: none)
    snapshot_error: str | None = None  # why the last periodic snapshot failed, if it did
    staged: dict[str, np.ndarray] | None = None  # a validated state waiting for commit_load
    lock: threading.Lock = field(default_factory=threading.Lock)

    def describe(self) -> dict[str, Any]:
        return {"table_id": self.table_id, "config": self.table.config, "factory": self.factory,
                "shard": self.shard, "num_shards": self.num_shards, "ops": self.ops, "snapshots": self.seq,
                "snapshot_error": self.snapshot_error}


class PSServer:
    """The tables of one PS, by table id, and the operations the trainer calls on them.

    ``index`` is the PS number (its RPC name is ``f"ps{index}"``). With a ``snapshot_dir``
    the server writes a snapshot of a table after every ``snapshot_every`` changing
    operations (training lookups, gradient steps, expiry, loads) and on :meth:`snapshot`,
    keeping the newest ``snapshot_keep``. Operations on one table run one at a time (a lock
    per table); different tables run in parallel. See: book/ch12_distributed.md
    """

    def __init__(self, index: int = 0, snapshot_dir: str | os.PathLike[str] | None = None,
                 snapshot_every: int | None = None, snapshot_keep: int = 2) -> None:
        ps_name(index)  # validates
        if snapshot_every is not None:
            snapshot_every = check_int(snapshot_every, "snapshot_every (or None)", low=1)
        if snapshot_every is not None and snapshot_dir is None:
            raise ValueError("snapshot_every needs a snapshot_dir")
        snapshot_keep = check_int(snapshot_keep, "snapshot_keep", low=1)
        self.index = int(index)
        self.snapshot_dir = None if snapshot_dir is None else Path(snapshot_dir)
        self.snapshot_every = snapshot_every
        self.snapshot_keep = snapshot_keep
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()

    # ---- the registry -----------------------------------------------------------------

    def _slot(self, table_id: str) -> _Slot:
        try:
            return self._slots[table_id]
        except KeyError:
            raise TableNotFoundError(f"no table {table_id!r} on {ps_name(self.index)}") from None

    def create(self, table_id: str, config: TableConfig, factory: str = "numba", shard: int = 0,
               num_shards: int = 1) -> dict[str, Any]:
        """Create an empty table shard; an existing id raises ``ValueError``."""
        check_table_id(table_id)
        if not isinstance(config, TableConfig):
            raise TypeError(f"config must be a TableConfig, got {type(config).__name__}")
        if factory not in FACTORIES:
            raise ValueError(f"unknown table kind {factory!r}; known: {sorted(FACTORIES)}")
        if not (isinstance(num_shards, int) and isinstance(shard, int) and 0 <= shard < num_shards):
            raise ValueError(f"need 0 <= shard < num_shards, got shard={shard!r}, num_shards={num_shards!r}")
        with self._lock:
            if table_id in self._slots:
                raise ValueError(f"table {table_id!r} already exists on {ps_name(self.index)}")
            slot = _Slot(table_id, FACTORIES[factory](config), factory, shard, num_shards)
            self._slots[table_id] = slot
        return slot.describe()

    def describe(self, table_id: str) -> dict[str, Any]:
        """The table's config, kind, shard, operation count, newest snapshot number and last snapshot error."""
        return self._slot(table_id).describe()

    def tables(self) -> list[str]:
        """The ids of the tables on this PS, sorted."""
        with self._lock:
            return sorted(self._slots)

    def drop(self, table_id: str) -> None:
        """Forget a table: its rows here and its snapshots on disk (so a restart will not bring it back)."""
        with self._lock:
            slot = self._slot(table_id)
            del self._slots[table_id]
        with slot.lock:
            if self.snapshot_dir is not None:
                shutil.rmtree(table_dir(self.snapshot_dir, self.index, table_id), ignore_errors=True)

    # ---- the table protocol, per shard --------------------------------------------------

    def _changed(self, slot: _Slot) -> None:
        slot.ops += 1
        if self.snapshot_every is not None and slot.ops % self.snapshot_every == 0:
            try:  # the operation itself succeeded: a failed snapshot is reported, not raised
                self._write_snapshot(slot)
                slot.snapshot_error = None
            except (OSError, ValueError, TypeError) as exc:
                slot.snapshot_error = f"after {slot.ops} operations: {type(exc).__name__}: {exc}"
                print(f"{ps_name(self.index)}: snapshot of {slot.table_id!r} failed {slot.snapshot_error}",
                      file=sys.stderr, flush=True)

    def lookup(self, table_id: str, ids: np.ndarray, now: int, train: bool = True) -> np.ndarray:
        """Rows for ``ids`` (see :meth:`EmbeddingTable.lookup`)."""
        slot = self._slot(table_id)
        with slot.lock:
            out = slot.table.lookup(ids, now, train)
            if train:
                self._changed(slot)
        return out

    def apply_gradients(self, table_id: str, ids: np.ndarray, grads: np.ndarray) -> None:
        """One optimizer step per distinct ID (see :meth:`EmbeddingTable.apply_gradients`)."""
        slot = self._slot(table_id)
        with slot.lock:
            slot.table.apply_gradients(ids, grads)
            self._changed(slot)

    def expire(self, table_id: str, now: int) -> int:
        """Evict rows unseen for longer than the TTL; return how many."""
        slot = self._slot(table_id)
        with slot.lock:
            removed = slot.table.expire(now)
            self._changed(slot)
        return removed

    def export(self, table_id: str, ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The shard's state (or the present rows among ``ids``)."""
        slot = self._slot(table_id)
        with slot.lock:
            return slot.table.export(ids)

    def stage_load(self, table_id: str, state: dict[str, np.ndarray]) -> None:
        """Check that ``state`` loads (into a scratch table) and keep it for :meth:`commit_load`."""
        slot = self._slot(table_id)
        with slot.lock:
            FACTORIES[slot.factory](slot.table.config).load(state)  # raises if it does not fit
            slot.staged = state

    def commit_load(self, table_id: str) -> None:
        """Replace the shard's contents with the staged state."""
        slot = self._slot(table_id)
        with slot.lock:
            if slot.staged is None:
                raise RuntimeError(f"no staged state for table {table_id!r} on {ps_name(self.index)}")
            state, slot.staged = slot.staged, None
            slot.table.load(state)
            self._changed(slot)

    def abort_load(self, table_id: str) -> None:
        """Drop a staged state, if any."""
        slot = self._slot(table_id)
        with slot.lock:
            slot.staged = None

    def load(self, table_id: str, state: dict[str, np.ndarray]) -> None:
        """Replace the shard's contents at once (a state that does not fit changes nothing)."""
        slot = self._slot(table_id)
        with slot.lock:
            slot.table.load(state)
            self._changed(slot)

    def size(self, table_id: str) -> int:
        """Rows in the shard."""
        slot = self._slot(table_id)
        with slot.lock:
            return len(slot.table)

    def contains(self, table_id: str, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` have a row here."""
        slot = self._slot(table_id)
        with slot.lock:
            return slot.table.contains(ids)

    def touched_ids(self, table_id: str) -> np.ndarray:
        """Keys changed since the last pop."""
        slot = self._slot(table_id)
        with slot.lock:
            return slot.table.touched_ids()

    def pop_touched(self, table_id: str) -> np.ndarray:
        """Keys changed since the last pop, and start a new round."""
        slot = self._slot(table_id)
        with slot.lock:
            return slot.table.pop_touched()

    def memory_bytes(self, table_id: str) -> int:
        """Bytes the shard occupies."""
        slot = self._slot(table_id)
        with slot.lock:
            return int(slot.table.memory_bytes())

    # ---- snapshots ------------------------------------------------------------------------

    def _write_snapshot(self, slot: _Slot) -> str:
        if self.snapshot_dir is None:
            raise RuntimeError(f"{ps_name(self.index)} has no snapshot directory")
        meta = {"table_id": slot.table_id, "factory": slot.factory, "shard": slot.shard,
                "num_shards": slot.num_shards, "ops": slot.ops, "ps": self.index}
        folder = table_dir(self.snapshot_dir, self.index, slot.table_id)
        seq = max(slot.seq + 1, next_seq(folder))
        path = save_table(folder, seq, slot.table, meta, keep=self.snapshot_keep)
        slot.seq = seq
        return str(path)

    def snapshot(self, table_id: str | None = None) -> list[str]:
        """Snapshot one table (or all); return the paths written."""
        ids = self.tables() if table_id is None else [table_id]
        paths = []
        for tid in ids:
            slot = self._slot(tid)
            with slot.lock:
                paths.append(self._write_snapshot(slot))
        return paths

    def restore(self, table_id: str | None = None) -> dict[str, Any]:
        """Load tables from their newest snapshot that verifies (one table, or every one on disk).

        Returns ``{"restored": [ids], "skipped": {id: why}}``; a restored table replaces an
        in-memory one of the same id.
        """
        if self.snapshot_dir is None:
            raise RuntimeError(f"{ps_name(self.index)} has no snapshot directory")
        root = self.snapshot_dir / f"ps{self.index}"
        if table_id is not None:
            ids = [check_table_id(table_id)]
        else:
            ids = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        restored, skipped = [], {}
        for tid in ids:
            try:
                state, meta, config, passed = load_latest_table(table_dir(self.snapshot_dir, self.index, tid))
                factory = str(meta["factory"])
                table = FACTORIES[factory](config)
                table.load(state)
            except (FileNotFoundError, KeyError, ValueError) as exc:
                skipped[tid] = str(exc)
                continue
            slot = _Slot(tid, table, factory, int(meta["shard"]), int(meta["num_shards"]), ops=int(meta["ops"]),
                         seq=int(meta["seq"]))
            with self._lock:
                self._slots[tid] = slot
            restored.append(tid)
            if passed:
                skipped[tid] = "restored from an older snapshot: " + "; ".join(passed)
        return {"restored": restored, "skipped": skipped}


# --------------------------------------------------------------------------- the RPC side


@dataclass(frozen=True)
class Failure:
    """An exception raised on a PS, carried back to the trainer as a value.

    ``error`` is the exception itself when it pickles (our errors do), else a
    :class:`RemoteError` naming its type. See: book/ch12_distributed.md
    """

    error: BaseException
    ps: str


_SERVER = PSServer()


def configure(index: int, snapshot_dir: str | os.PathLike[str] | None = None, snapshot_every: int | None = None,
              snapshot_keep: int = 2) -> PSServer:
    """Make this process PS ``index`` with an empty registry (what :func:`run_ps` does first).

    See: book/ch12_distributed.md
    """
    global _SERVER
    _SERVER = PSServer(index, snapshot_dir, snapshot_every, snapshot_keep)
    return _SERVER


def server() -> PSServer:
    """This process's :class:`PSServer`. See: book/ch12_distributed.md"""
    return _SERVER


def serve(op: str, *args: Any) -> Any:
    """The one RPC entry point: run ``op`` on this process's server; exceptions come back as :class:`Failure`.

    Arrays travel packed as tensors both ways (:mod:`~monolith_ref.distributed.wire`).

    See: book/ch12_distributed.md
    """
    try:
        if op not in OPS:
            raise ValueError(f"unknown PS operation {op!r}")
        return pack(getattr(_SERVER, op)(*unpack(args)))
    except Exception as exc:  # noqa: BLE001 - every error goes back to the caller
        try:
            pickle.dumps(exc)
            error: BaseException = exc
        except Exception:  # noqa: BLE001 - an exception that does not pickle
            error = RemoteError(f"{type(exc).__name__}: {exc}")
        return Failure(error.with_traceback(None), ps_name(_SERVER.index))


def ping() -> None:
    """Do nothing: the cheapest RPC, to measure a round trip. See: book/ch12_distributed.md"""
    return None


# --------------------------------------------------------------------------- the process


def _control_lines(stream: TextIO) -> queue.Queue:
    """Read control lines in a thread; at end of input queue None and, failing a clean exit, quit in 10 s."""
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line.strip())
        lines.put(None)  # the launcher is gone: leave
        timer = threading.Timer(10.0, lambda: os._exit(0))
        timer.daemon = True
        timer.start()

    threading.Thread(target=read, name="ps-control", daemon=True).start()
    return lines


def run_ps(rank: int, world_size: int, master_addr: str = "127.0.0.1", master_port: int = 29500,
           snapshot_dir: str | os.PathLike[str] | None = None, snapshot_every: int | None = None,
           snapshot_keep: int = 2, restore: bool = False, timeout: float = 60.0, control: TextIO | None = None,
           on_ready: Callable[[], None] | None = None) -> dict[str, Any]:
    """Serve as PS ``rank - 1`` (RPC name ``f"ps{rank - 1}"``) until the job ends.

    The trainer is rank 0. With ``restore=True`` every table with a snapshot under
    ``snapshot_dir`` is loaded before joining. Without ``control`` the PS serves until every
    member leaves gracefully (a torchrun job's end). With ``control`` (a text stream, the
    :class:`~monolith_ref.distributed.Cluster` passes stdin) it obeys lines
    ``regroup <port>`` (leave, then join the group re-formed on ``<port>``, keeping every
    table in memory) and ``stop``; end of input means stop. ``on_ready`` is called once
    the PS is about to join. Returns the restore report (empty without ``restore``).
    See: book/ch12_distributed.md
    """
    if not (isinstance(rank, int) and isinstance(world_size, int) and 1 <= rank < world_size):
        raise ValueError(f"a PS has rank 1..world_size-1 (the trainer is rank 0), got rank={rank!r}, "
                         f"world_size={world_size!r}")
    lines = None if control is None else _control_lines(control)
    srv = configure(rank - 1, snapshot_dir, snapshot_every, snapshot_keep)
    report: dict[str, Any] = srv.restore() if restore and snapshot_dir is not None else {}
    if report:
        print(f"{ps_name(rank - 1)}: restored {report['restored']}, skipped {report['skipped']}", file=sys.stderr,
              flush=True)
    if on_ready is not None:
        on_ready()
    join_group(ps_name(rank - 1), rank, world_size, master_addr, master_port, timeout)
    if lines is None:
        leave_group(graceful=True)  # blocks until the trainer (and every PS) leaves
        return report
    while True:
        command = lines.get()
        if command == "":
            continue
        words = ["stop"] if command is None else command.split()
        if words[0] == "regroup" and len(words) == 2:
            leave_group()
            join_group(ps_name(rank - 1), rank, world_size, master_addr, int(words[1]), timeout)
        elif words[0] == "stop":
            leave_group()
            return report
        else:
            print(f"{ps_name(rank - 1)}: ignoring unknown control line {command!r}", file=sys.stderr, flush=True)


def _env_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def main_ps(argv: list[str] | None = None) -> int:
    """Command line of a PS process (``python -m monolith_ref.distributed``, ``monolith-ref ps``).

    Defaults come from torchrun's variables ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``
    (else 127.0.0.1) and ``MASTER_PORT`` (else 29500). With ``--control stdin`` the process
    prints ``ready <pid>`` when it is about to join and then takes control lines on stdin
    (see :func:`run_ps`). See: book/ch12_distributed.md
    """
    parser = argparse.ArgumentParser(prog="monolith-ref ps", description="Run one parameter server (rank >= 1).")
    parser.add_argument("--rank", type=int, default=_env_int("RANK", None), help="this PS's rank (default $RANK)")
    parser.add_argument("--world-size", type=int, default=_env_int("WORLD_SIZE", None),
                        help="trainer + PS processes (default $WORLD_SIZE)")
    parser.add_argument("--master-addr", default=os.environ.get("MASTER_ADDR") or "127.0.0.1",
                        help="the trainer's address (default $MASTER_ADDR, else 127.0.0.1)")
    parser.add_argument("--master-port", type=int, default=_env_int("MASTER_PORT", 29500),
                        help="the rendezvous port (default $MASTER_PORT, else 29500)")
    parser.add_argument("--snapshot-dir", type=Path, default=None, help="where this PS writes its snapshots")
    parser.add_argument("--snapshot-every", type=int, default=None, help="snapshot a table every N changing operations")
    parser.add_argument("--snapshot-keep", type=int, default=2, help="snapshots kept per table (default 2)")
    parser.add_argument("--restore", action="store_true", help="load every table's latest snapshot before joining")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the group (default 60)")
    parser.add_argument("--control", choices=("none", "stdin"), default="none",
                        help="'stdin': take regroup/stop lines on stdin (used by Cluster)")
    args = parser.parse_args(argv)
    if args.rank is None or args.world_size is None:
        parser.error("--rank and --world-size are required (or set RANK and WORLD_SIZE)")

    def ready() -> None:
        print(f"ready {os.getpid()}", flush=True)
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nothing else goes to the launcher's pipe

    if not 1 <= args.rank < args.world_size:
        parser.error(f"a PS has rank 1..world_size-1 (the trainer is rank 0), got --rank {args.rank} "
                     f"--world-size {args.world_size}")
    run_ps(args.rank, args.world_size, args.master_addr, args.master_port, args.snapshot_dir, args.snapshot_every,
           args.snapshot_keep, args.restore, args.timeout, control=sys.stdin if args.control == "stdin" else None,
           on_ready=ready if args.control == "stdin" else None)
    return 0
