"""Cluster: parameter-server processes on this machine, and this process as their trainer.

``with Cluster(num_ps=2) as cluster:`` starts two PS processes (``python -m
monolith_ref.distributed``, ranks 1 and 2, named ``ps0`` and ``ps1``) on 127.0.0.1 with a
free port, and joins this process to their RPC group as the trainer (rank 0). Then
``RemoteTable(config, cluster)`` puts a table's shards on them. Leaving the block stops
them. Only one RPC group per process: one Cluster at a time.

**One PS dies, the others keep their state** (paper §2.3). A ``torch.distributed.rpc``
group has a fixed membership: a process that dies cannot be replaced inside it, and the
survivors cannot re-join the old group. So :meth:`Cluster.restart` re-forms the group
around the survivors, which keep running: the trainer leaves the group; each surviving
PS is told on its stdin (``regroup <port>``) to leave and join a new group on a new port,
its tables staying in memory because the process never stops; a new process takes the
dead rank and loads its tables from their latest snapshots *before* it joins; and the
trainer joins. Existing :class:`~monolith_ref.distributed.RemoteTable` objects keep
working, since they hold only names. The restarted PS has lost what changed since its
last snapshot, and nothing else has.

**No orphans.** Each PS reads its stdin to the end: when the launcher goes away, even by
SIGKILL, the PS sees end of input and exits (within 10 s if it is stuck). :meth:`shutdown`
closes the pipes, waits, and kills what is left; it also runs at interpreter exit.

**Several machines** (no :class:`Cluster`: each process is started by ``torchrun`` or by
hand; all read ``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE`` and ``RANK``): rank 0 runs
the training script, which calls :func:`connect_trainer`, and ranks 1.. run
``python -m monolith_ref.distributed`` (:func:`~monolith_ref.distributed.ps.main_ps`). Set
``TP_SOCKET_IFNAME`` and ``GLOO_SOCKET_IFNAME`` to the network interface that reaches the
other machines. There ``torchrun --max-restarts N`` restarts the whole group when any
process fails: the PS started with ``--restore`` come back from their latest snapshots, and
the trainer re-attaches (``RemoteTable(..., attach=True)`` when
``TORCHELASTIC_RESTART_COUNT`` is above 0).

See: book/ch12_distributed.md
"""

from __future__ import annotations

import atexit
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import monolith_ref

from ..checks import check_int, check_number
from .group import (TRAINER, in_group, is_loopback, join_group, leave_group, listen_socket, ps_names,
                    set_interface_env)
from .ps import PSServer

__all__ = ["Cluster", "connect_trainer", "disconnect_trainer"]

_ACTIVE: set[Cluster] = set()  # started, not yet shut down (strong references: atexit must find them)


def connect_trainer(world_size: int, master_addr: str = "127.0.0.1", master_port: int = 29500,
                    timeout: float = 60.0) -> list[str]:
    """Join the job at ``master_addr:master_port`` as the trainer (rank 0); return the PS names.

    For jobs whose PS processes were started elsewhere (torchrun, several machines). Rank 0
    hosts the rendezvous store, listening on ``master_addr`` only. See: book/ch12_distributed.md
    """
    join_group(TRAINER, 0, world_size, master_addr, master_port, timeout)
    return ps_names(world_size - 1)


def disconnect_trainer(graceful: bool = True) -> None:
    """Leave the job; ``graceful`` waits for every PS to leave too (they then exit). See: book/ch12_distributed.md"""
    leave_group(graceful=graceful)


class Cluster:
    """``num_ps`` PS processes on this machine, with this process as their trainer.

    ``snapshot_dir``: where each PS writes its snapshots (``<dir>/ps<k>/<table>/``), every
    ``snapshot_every`` changing operations per table (and on demand), keeping
    ``snapshot_keep``; needed for :meth:`restart` to bring tables back. ``restore=True``
    starts every PS from the snapshots already there. ``addr``: the address everything
    binds to (loopback by default; nothing listens elsewhere). ``timeout``: seconds to
    wait for processes to start and for the group to form. ``log_dir``: where each PS's
    stderr goes (``ps<k>.log``; default a temporary folder removed at shutdown).
    See: book/ch12_distributed.md
    """

    def __init__(self, num_ps: int = 2, snapshot_dir: str | os.PathLike[str] | None = None,
                 snapshot_every: int | None = None, snapshot_keep: int = 2, restore: bool = False,
                 addr: str = "127.0.0.1", timeout: float = 60.0, log_dir: str | os.PathLike[str] | None = None,
                 start: bool = True) -> None:
        self.ps_names = ps_names(num_ps)
        self.num_ps = len(self.ps_names)
        PSServer(0, snapshot_dir, snapshot_every, snapshot_keep)  # the PS's own checks of these settings, here
        check_number(timeout, "timeout (seconds)", low=0.0, low_open=True)
        self.snapshot_dir = None if snapshot_dir is None else Path(snapshot_dir)
        self.snapshot_every = snapshot_every
        self.snapshot_keep = snapshot_keep
        self.restore_at_start = bool(restore)
        self.addr = addr
        self.timeout = float(timeout)
        self._own_logs = log_dir is None
        self.log_dir = None if log_dir is None else Path(log_dir)  # made by start()
        self.port: int | None = None
        self._procs: list[subprocess.Popen | None] = [None] * num_ps
        self._started = False
        if start:
            self.start()

    # ---- processes ------------------------------------------------------------------------

    def _command(self, index: int, port: int, restore: bool) -> list[str]:
        cmd = [sys.executable, "-m", "monolith_ref.distributed", "--rank", str(index + 1),
               "--world-size", str(self.num_ps + 1), "--master-addr", self.addr, "--master-port", str(port),
               "--timeout", str(self.timeout), "--control", "stdin", "--snapshot-keep", str(self.snapshot_keep)]
        if self.snapshot_dir is not None:
            cmd += ["--snapshot-dir", str(self.snapshot_dir)]
        if self.snapshot_every is not None:
            cmd += ["--snapshot-every", str(self.snapshot_every)]
        if restore:
            cmd.append("--restore")
        return cmd

    def _spawn(self, index: int, port: int, restore: bool) -> subprocess.Popen:
        env = dict(os.environ)
        root = str(Path(monolith_ref.__file__).resolve().parents[1])  # run the same monolith_ref as this process
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        if is_loopback(self.addr):
            env.setdefault("TP_SOCKET_IFNAME", "lo")
            env.setdefault("GLOO_SOCKET_IFNAME", "lo")
        with open(self.log_path(index), "ab") as log:
            proc = subprocess.Popen(self._command(index, port, restore), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=log, env=env, cwd=root)
        self._procs[index] = proc
        return proc

    def _wait_ready(self, indices: list[int]) -> None:
        deadline = time.monotonic() + self.timeout
        for i in indices:
            proc = self._procs[i]
            assert proc is not None and proc.stdout is not None
            line = b""
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
                if not ready:
                    raise RuntimeError(f"{self.ps_names[i]} did not start within {self.timeout:g} s\n{self._tail(i)}")
                chunk = os.read(proc.stdout.fileno(), 256)
                if not chunk:
                    raise RuntimeError(f"{self.ps_names[i]} exited while starting (code {proc.wait()})\n{self._tail(i)}")
                line += chunk
            if not line.startswith(b"ready"):
                raise RuntimeError(f"{self.ps_names[i]} said {line!r} instead of 'ready'\n{self._tail(i)}")

    def log_path(self, index: int) -> Path:
        """The file that collects PS ``index``'s stderr. See: book/ch12_distributed.md"""
        if self.log_dir is None:
            raise RuntimeError("the Cluster is not started: no logs yet")
        return self.log_dir / f"ps{index}.log"

    def _tail(self, index: int, lines: int = 25) -> str:
        try:
            text = self.log_path(index).read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "(no log)"
        return f"--- last lines of {self.log_path(index)} ---\n" + "\n".join(text)

    # ---- the group ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the PS processes and join them as the trainer. See: book/ch12_distributed.md"""
        if self._started:
            raise RuntimeError("this Cluster is already started")
        if in_group() or _ACTIVE:
            raise RuntimeError("this process is already in an RPC group (another Cluster?): shut it down first")
        set_interface_env(self.addr)
        if self.log_dir is None:
            self.log_dir = Path(tempfile.mkdtemp(prefix="monolith-ps-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port = listen_socket(self.addr)
        _ACTIVE.add(self)
        self._started = True
        try:
            for i in range(self.num_ps):
                self._spawn(i, self.port, self.restore_at_start)
            self._wait_ready(list(range(self.num_ps)))
            join_group(TRAINER, 0, self.num_ps + 1, self.addr, self.port, self.timeout)
        except BaseException:
            self.shutdown()
            raise

    def alive(self, index: int) -> bool:
        """Whether PS ``index``'s process is running. See: book/ch12_distributed.md"""
        proc = self._procs[self._check_index(index)]
        return proc is not None and proc.poll() is None

    def pid(self, index: int) -> int | None:
        """The process id of PS ``index`` (None before start). See: book/ch12_distributed.md"""
        proc = self._procs[self._check_index(index)]
        return None if proc is None else proc.pid

    def _check_index(self, index: int) -> int:
        return check_int(index, "PS index", low=0, high=self.num_ps)

    def kill(self, index: int) -> None:
        """SIGKILL PS ``index`` (a crash: no snapshot, no goodbye) and wait until it is gone.

        Calls that reach it raise :class:`~monolith_ref.distributed.PSUnavailableError`
        until :meth:`restart`. See: book/ch12_distributed.md
        """
        proc = self._procs[self._check_index(index)]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self, index: int) -> None:
        """Replace PS ``index`` (killing it first if it runs) by a new process that restores its snapshots.

        The group is re-formed on a new port around the surviving PS processes, which keep
        their tables in memory (see the module doc). Without a ``snapshot_dir`` the new PS
        starts empty, and its tables raise :class:`~monolith_ref.distributed.TableNotFoundError`.
        See: book/ch12_distributed.md
        """
        self._check_index(index)
        if not self._started:
            raise RuntimeError("the Cluster is not started")
        self.kill(index)
        others = [i for i in range(self.num_ps) if i != index]
        dead = [self.ps_names[i] for i in others if not self.alive(i)]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} died too: restart them as well, one call each, "
                               f"or shut down and start again")
        leave_group()
        self.port = listen_socket(self.addr)
        for i in others:
            proc = self._procs[i]
            assert proc is not None and proc.stdin is not None
            proc.stdin.write(f"regroup {self.port}\n".encode())
            proc.stdin.flush()
        self._spawn(index, self.port, restore=self.snapshot_dir is not None)
        self._wait_ready([index])
        join_group(TRAINER, 0, self.num_ps + 1, self.addr, self.port, self.timeout)

    def shutdown(self) -> None:
        """Leave the group, stop every PS (killing any that does not exit in 10 s), remove temporary logs.

        Safe to call twice. See: book/ch12_distributed.md
        """
        if self in _ACTIVE:
            try:
                leave_group()
            finally:
                _ACTIVE.discard(self)
        for proc in self._procs:
            if proc is None:
                continue
            for stream in (proc.stdin, proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
        deadline = time.monotonic() + 10.0
        for proc in self._procs:
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._started = False
        if self._own_logs and self.log_dir is not None:
            shutil.rmtree(self.log_dir, ignore_errors=True)
            self.log_dir = None

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        states = ["up" if self._procs[i] is not None and self.alive(i) else "down" for i in range(self.num_ps)]
        return f"Cluster(num_ps={self.num_ps}, addr={self.addr!r}, port={self.port}, ps={states})"


@atexit.register
def _stop_all() -> None:
    for cluster in list(_ACTIVE):
        cluster.shutdown()
