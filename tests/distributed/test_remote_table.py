"""RemoteTable on the shared 2-PS cluster: the same as ShardedTable, one call per shard per batch.

These tests pin what is special about the remote table: bit-identity with the in-process
sharded table (and exports that load into each other), the number of RPCs a batch costs,
errors that keep their types across the process boundary, attaching to an existing table,
and a load that fails on one PS changing nothing on the other.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch.distributed.rpc as rpc

from monolith_ref.data import zipf_ids
from monolith_ref.distributed import PSUnavailableError, RemoteTable, TableNotFoundError
from monolith_ref.distributed import ps as ps_module
from monolith_ref.filters import OccurrenceFilter
from monolith_ref.optim import Adagrad
from monolith_ref.tables import InvalidIdsError, NumbaTable, ShardedTable, StateMismatchError, TableConfig
from monolith_ref.tables.routing import route

CFG = TableConfig(dim=8, seed=21, ttl=30, optimizer=Adagrad(lr=0.05), filter=OccurrenceFilter(threshold=2))


@pytest.fixture
def tables(cluster):
    made = []

    def make(config=CFG, ps=None, **kwargs) -> RemoteTable:
        made.append(RemoteTable(config, cluster if ps is None else ps, **kwargs))
        return made[-1]

    yield make
    for table in made:
        try:
            table.drop()
        except (TableNotFoundError, PSUnavailableError):
            pass


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key


def test_bit_identical_to_sharded_table_and_exports_interchange(tables) -> None:
    remote, ref = tables(), ShardedTable(CFG, num_shards=2, threads=1)
    rng = np.random.default_rng(4)
    for step in range(12):
        ids = zipf_ids(3000, 2000, seed=step)
        grads = rng.normal(size=(ids.size, CFG.dim)).astype(np.float32)
        assert np.array_equal(remote.lookup(ids, now=5 * step), ref.lookup(ids, now=5 * step))
        remote.apply_gradients(ids, grads)
        ref.apply_gradients(ids, grads)
        if step % 4 == 3:
            assert remote.expire(5 * step) == ref.expire(5 * step)
    assert len(remote) == len(ref) and np.array_equal(remote.shard_sizes(), ref.shard_sizes())
    assert np.array_equal(remote.touched_ids(), ref.touched_ids())
    assert np.array_equal(remote.pop_touched(), ref.pop_touched()) and remote.touched_ids().size == 0
    state = remote.export()
    _same(state, ref.export())
    assert any(k.startswith("shard1/filter/") for k in state)
    probe = zipf_ids(500, 4000, seed=99)
    assert np.array_equal(remote.contains(probe), ref.contains(probe))
    _same(remote.export(probe), ref.export(probe))
    other = ShardedTable(CFG, num_shards=2, threads=1)
    other.load(state)  # a remote export loads into a sharded table ...
    _same(other.export(), state)
    fresh = tables()
    fresh.load(ref.export())  # ... and the other way round
    _same(fresh.export(), state)


def test_one_ps_equals_one_numba_table(tables) -> None:
    cfg = TableConfig(dim=4, seed=1)
    remote, local = tables(cfg, ps=["ps0"]), NumbaTable(cfg)
    ids = zipf_ids(5000, 3000, seed=1)
    assert np.array_equal(remote.lookup(ids, now=0), local.lookup(ids, now=0))
    assert remote.describe()[0]["num_shards"] == 1 and len(remote) == len(local)


def test_one_rpc_per_shard_per_batch(tables, monkeypatch) -> None:
    remote = tables(TableConfig(dim=4, seed=3))
    calls = []
    real = rpc.rpc_async

    def counting(to, fn, args=(), **kwargs):
        calls.append((to, args[0]))
        return real(to, fn, args=args, **kwargs)

    monkeypatch.setattr(rpc, "rpc_async", counting)
    ids = np.arange(1000, dtype=np.uint64)
    remote.lookup(ids, now=0)
    assert sorted(calls) == [("ps0", "lookup"), ("ps1", "lookup")]
    calls.clear()
    only0 = ids[route(ids, 2, 3) == 0][:50]
    remote.apply_gradients(np.concatenate([only0, only0]), np.ones((100, 4), dtype=np.float32))
    assert calls == [("ps0", "apply_gradients")], "no call to a PS that owns none of the batch"
    calls.clear()
    assert remote.lookup(np.empty(0, dtype=np.uint64), now=0).shape == (0, 4) and calls == []
    with pytest.raises(InvalidIdsError):
        remote.lookup([1, -1], now=0)
    with pytest.raises(StateMismatchError):
        remote.load({"ids": np.array([1], dtype=np.uint64)})
    assert calls == [], "bad input is refused before anything is sent"


def test_remote_errors_keep_their_type(tables, cluster) -> None:
    remote = tables(CFG, table_id="typed-errors")
    with pytest.raises(ValueError, match="already exists on ps0"):
        RemoteTable(CFG, cluster, table_id="typed-errors")
    assert cluster.ps_names == ["ps0", "ps1"]
    with pytest.raises(ValueError, match="table id"):
        RemoteTable(CFG, cluster, table_id="../escape")
    with pytest.raises(ValueError, match="timeout"):
        RemoteTable(CFG, cluster, timeout=0)
    with pytest.raises(PSUnavailableError, match="ps7"):
        RemoteTable(CFG, ["ps0", "ps7"], table_id="half-made")
    with pytest.raises(TableNotFoundError):  # the shard made on ps0 was dropped again
        RemoteTable(CFG, ["ps0"], table_id="half-made", attach=True)
    with pytest.raises(RuntimeError, match="no snapshot directory"):  # the shared cluster has none
        remote.snapshot()
    remote.drop()
    with pytest.raises(TableNotFoundError, match="typed-errors"):
        remote.lookup([1], now=0)


def test_attach_to_an_existing_table(tables, cluster) -> None:
    remote = tables(CFG, table_id="shared-emb")
    remote.lookup([1, 2, 3, 1], now=0)  # the filter admits 1 only (at its second occurrence)
    rows = remote.lookup([1, 2, 3], now=0, train=False)
    assert rows[0].any() and not rows[1:].any()
    again = RemoteTable(CFG, cluster, table_id="shared-emb", attach=True)
    assert np.array_equal(again.lookup([1, 2, 3], now=0, train=False), rows)
    with pytest.raises(ValueError, match="not"):
        RemoteTable(TableConfig(dim=8, seed=22), cluster, table_id="shared-emb", attach=True)
    with pytest.raises(ValueError, match="not"):
        RemoteTable(CFG, ["ps1", "ps0"], table_id="shared-emb", attach=True)  # shards swapped


def test_a_load_that_fails_on_one_ps_changes_nothing(tables) -> None:
    remote = tables()
    remote.lookup(np.arange(200, dtype=np.uint64).repeat(2), now=0)
    before = remote.export()
    source = ShardedTable(CFG, num_shards=2, threads=1)
    source.lookup(np.arange(500, 700, dtype=np.uint64).repeat(2), now=1)
    rpc.rpc_sync("ps1", ps_module.serve, args=("drop", remote.table_id))  # ps1 loses its shard behind our back
    with pytest.raises(TableNotFoundError, match="ps1"):
        remote.load(source.export())
    state0 = rpc.rpc_sync("ps0", ps_module.serve, args=("export", remote.table_id, None))
    mine = route(before["ids"], 2, CFG.seed) == 0
    assert np.array_equal(state0["ids"], before["ids"][mine]), "ps0 staged but never committed"


def _listening(pid: int) -> list[tuple[str, bool]]:
    """(hex local address, is IPv6) of every listening TCP socket that process ``pid`` holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        if not os.path.exists(table):
            continue
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append((fields[1].split(":")[0], v6))
    return found


def _is_loopback(hex_addr: str, v6: bool) -> bool:
    if not v6:
        return hex_addr.endswith("7F")  # 127.x.x.x, little-endian
    return hex_addr in ("00000000000000000000000001000000",) or (
        hex_addr.startswith("0000000000000000FFFF0000") and hex_addr.endswith("7F"))  # ::1, ::ffff:127.x.x.x


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux /proc")
def test_nothing_listens_beyond_loopback(cluster) -> None:
    """House rule: by default every socket of the job (store, TensorPipe, Gloo) is bound to 127.0.0.1."""
    pids = [os.getpid()] + [cluster.pid(i) for i in range(cluster.num_ps)]
    sockets = [(pid, addr, v6) for pid in pids for addr, v6 in _listening(pid)]
    assert any(pid == os.getpid() for pid, _, _ in sockets), "the trainer hosts the rendezvous store"
    wide = [(pid, addr) for pid, addr, v6 in sockets if not _is_loopback(addr, v6)]
    assert not wide, f"listening beyond loopback: {wide}"
