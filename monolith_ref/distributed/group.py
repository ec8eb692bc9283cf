"""Joining and leaving the RPC group of a parameter-server job (``torch.distributed.rpc``).

Every process of a job joins one group: the trainer as rank 0, named ``"trainer"``, and
parameter server ``k`` as rank ``k + 1``, named ``f"ps{k}"`` (paper §2, Figure 2: workers
and parameter servers). Four details make this safe and restartable on one machine:

* **Interfaces.** TensorPipe and Gloo choose a network interface from ``TP_SOCKET_IFNAME``
  and ``GLOO_SOCKET_IFNAME``. For a loopback address (127.0.0.1, the default everywhere)
  :func:`set_interface_env` sets both to ``lo`` unless they are already set.
* **The rendezvous store.** Members find each other through a key-value store that rank 0
  hosts. torch's ``tcp://`` rendezvous makes that store listen on *every* interface and
  wait 30 minutes for missing members. We register a rendezvous scheme of our own,
  ``mref-tcp://``, whose rank 0 listens only on the address it was given (a socket bound
  here and handed to ``TCPStore(master_listen_fd=...)``) and whose store gives up after
  ``timeout`` seconds. Under ``torchrun`` (``TORCHELASTIC_USE_AGENT_STORE=True``) every
  rank is a client of torchrun's own store instead, as with torch's scheme, under a key
  prefix per restart attempt (the store outlives a restart; stale keys would mislead Gloo).
* **Transports.** TensorPipe sends over TCP only (:data:`TRANSPORTS`); its shared-memory
  transport would poll, keeping every process busy while idle.
* **Joining again.** torch numbers RPC initialisations per process (a store prefix and an
  all-gather sequence number). A process that joins a second group (the trainer after a PS
  restart, a surviving PS) must count from zero like a new process, or the group waits
  for a timeout (or forever). :func:`join_group` resets those two counters first; they are
  private torch globals (checked by a test against the pinned torch version).

See: book/ch12_distributed.md
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import warnings
from datetime import timedelta
from urllib.parse import parse_qsl, urlparse

from ..checks import check_int

__all__ = [
    "TRAINER",
    "SCHEME",
    "TRANSPORTS",
    "ps_name",
    "ps_names",
    "is_loopback",
    "set_interface_env",
    "listen_socket",
    "join_group",
    "leave_group",
    "in_group",
]

#: The trainer's RPC name (rank 0).
TRAINER = "trainer"
#: Our rendezvous scheme: like ``tcp://``, but rank 0 listens only on the given address.
SCHEME = "mref-tcp"
#: TensorPipe transports. Only TCP ("uv"): the shared-memory transport ("shm") is faster for
#: tiny calls on one machine, but its threads poll while idle, costing each process a good
#: part of a core even when no call is made.
TRANSPORTS = ("uv",)

_LISTENERS: dict[tuple[str, int], socket.socket] = {}  # sockets bound by listen_socket, by (addr, port)
_LOCK = threading.Lock()
_REGISTERED = False


def ps_name(index: int) -> str:
    """The RPC name of parameter server ``index`` (rank ``index + 1``). See: book/ch12_distributed.md"""
    return f"ps{check_int(index, 'PS index', low=0)}"


def ps_names(num_ps: int) -> list[str]:
    """The names of the ``num_ps`` parameter servers, in shard order. See: book/ch12_distributed.md"""
    return [ps_name(i) for i in range(check_int(num_ps, "num_ps", low=1))]


def is_loopback(addr: str) -> bool:
    """Whether ``addr`` is a loopback address (127.0.0.0/8, ::1, or "localhost"). See: book/ch12_distributed.md"""
    if addr == "localhost":
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def set_interface_env(addr: str) -> None:
    """Point TensorPipe and Gloo at the loopback interface when ``addr`` is a loopback address.

    Variables already set are left alone (multi-machine jobs set them to their NIC, e.g.
    ``eth0``). See: book/ch12_distributed.md
    """
    if is_loopback(addr):
        os.environ.setdefault("TP_SOCKET_IFNAME", "lo")
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")


def _bind(addr: str, port: int) -> socket.socket:
    family, kind, proto, _, sockaddr = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(sockaddr)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def listen_socket(addr: str = "127.0.0.1", port: int = 0) -> int:
    """Bind the rendezvous port of a new group on ``addr`` now; return the port number.

    ``port=0`` picks a free one. The bound socket waits here until rank 0 of the next
    :func:`join_group` on ``(addr, port)`` in this process takes it, so no other program
    can grab the port in between. See: book/ch12_distributed.md
    """
    sock = _bind(addr, port)
    chosen = int(sock.getsockname()[1])
    with _LOCK:
        old = _LISTENERS.pop((addr, chosen), None)
        if old is not None:
            old.close()
        _LISTENERS[(addr, chosen)] = sock
    return chosen


def _rendezvous(url: str, **kwargs):
    """The ``mref-tcp://host:port?rank=..&world_size=..&timeout=..`` rendezvous handler."""
    import torch.distributed as dist

    parsed = urlparse(url)
    query = dict(parse_qsl(parsed.query))
    host, port = parsed.hostname, parsed.port
    if host is None or port is None:
        raise ValueError(f"{SCHEME}:// rendezvous needs host:port, got {url!r}")
    rank, world_size = int(query["rank"]), int(query["world_size"])
    timeout = timedelta(seconds=float(query.get("timeout", 60)))
    if rank == 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        with _LOCK:
            sock = _LISTENERS.pop((host, port), None)
        if sock is None:
            sock = _bind(host, port)
        store = dist.TCPStore(host, port, world_size, True, timeout, wait_for_workers=False,
                              master_listen_fd=sock.detach(), use_libuv=True)
    else:
        store = dist.TCPStore(host, port, world_size, False, timeout)
        if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":  # torchrun's store outlives a restart:
            attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")  # keep each attempt's keys apart
            store = dist.PrefixStore(f"{SCHEME}-attempt{attempt}", store)
    yield store, rank, world_size
    raise RuntimeError(f"{SCHEME}:// cannot re-rendezvous; join a new group on a new port")


def _register_scheme() -> None:
    global _REGISTERED
    from torch.distributed.rendezvous import register_rendezvous_handler

    with _LOCK:
        if not _REGISTERED:
            try:
                register_rendezvous_handler(SCHEME, _rendezvous)
            except RuntimeError:  # registered by an earlier copy of this module
                pass
            _REGISTERED = True


def _reset_rpc_counters() -> None:
    """Make this process count RPC initialisations from zero, as a newly started one does."""
    import torch.distributed.rpc as rpc
    from torch.distributed.rpc import api

    missing = [n for n, mod in (("_init_counter", rpc), ("_all_gather_sequence_id", api),
                                ("_all_gather_sequence_id_to_states", api)) if not hasattr(mod, n)]
    if missing:
        raise RuntimeError(f"this torch version lacks {missing}; re-joining an RPC group is not supported")
    with api._all_gather_dict_lock:
        rpc._init_counter = 0
        api._all_gather_sequence_id.clear()
        api._all_gather_sequence_id_to_states.clear()


def in_group() -> bool:
    """Whether this process is a member of an RPC group now. See: book/ch12_distributed.md"""
    from torch.distributed.rpc.api import _is_current_rpc_agent_set

    return bool(_is_current_rpc_agent_set())


def join_group(name: str, rank: int, world_size: int, addr: str = "127.0.0.1", port: int = 29500,
               timeout: float = 60.0, threads: int = 8, transports: tuple[str, ...] = TRANSPORTS) -> None:
    """Join the RPC group at ``addr:port`` as ``name`` (rank ``rank`` of ``world_size``).

    Blocks until every member has joined, or raises after ``timeout`` seconds. Rank 0
    hosts the rendezvous store, listening on ``addr`` only. ``threads`` is the number of
    threads that serve incoming calls; ``transports`` the TensorPipe transports to use
    (:data:`TRANSPORTS`). See: book/ch12_distributed.md
    """
    import torch.distributed.rpc as rpc

    if in_group():
        raise RuntimeError("this process is already in an RPC group; leave_group() first")
    if not (isinstance(rank, int) and isinstance(world_size, int) and 0 <= rank < world_size and world_size >= 2):
        raise ValueError(f"need 0 <= rank < world_size and world_size >= 2, got rank={rank!r}, world_size={world_size!r}")
    set_interface_env(addr)
    _register_scheme()
    _reset_rpc_counters()
    host = f"[{addr}]" if ":" in addr else addr
    options = rpc.TensorPipeRpcBackendOptions(
        init_method=f"{SCHEME}://{host}:{int(port)}?timeout={float(timeout)}",
        rpc_timeout=float(timeout),
        num_worker_threads=int(threads),
        _transports=list(transports),
    )
    with warnings.catch_warnings():  # torch's own use of a Gloo group inside init_rpc warns
        warnings.filterwarnings("ignore", message=".*ProcessGroupGloo.*")
        warnings.filterwarnings("ignore", message=".*as a ProcessGroup.*")
        rpc.init_rpc(name, rank=rank, world_size=world_size, rpc_backend_options=options)


def leave_group(graceful: bool = False) -> None:
    """Leave the RPC group (a no-op outside one).

    ``graceful=True`` first waits until every member calls ``leave_group(graceful=True)``
    (the end of a torchrun job); the default leaves at once, which is what a member does
    when another member died. See: book/ch12_distributed.md
    """
    import torch.distributed.rpc as rpc

    if in_group():
        rpc.shutdown(graceful=graceful)
