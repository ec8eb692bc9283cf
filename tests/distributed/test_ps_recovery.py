"""A PS dies during training, the trainer is told, and the PS comes back from its snapshot.

Paper §2.3: a failed parameter server recovers from its last snapshot while the others keep
their state. The tests run 2 PS processes with ``snapshot_every=4`` (each PS snapshots a table
after every 4 operations that change it) beside an in-process ``ShardedTable`` with 2 shards
that is told exactly what the remote table should have lived through, and compare the two
bit for bit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conformance.checks import TableImpl, checks_for
from monolith_ref.checkpoint import list_snapshots
from monolith_ref.data import zipf_ids
from monolith_ref.distributed import PSUnavailableError, RemoteTable, TableNotFoundError
from monolith_ref.filters import OccurrenceFilter
from monolith_ref.optim import Adagrad
from monolith_ref.tables import ShardedTable, TableConfig
from monolith_ref.tables.routing import route

EVERY = 4
CFG = TableConfig(dim=4, seed=5, ttl=1000, optimizer=Adagrad(lr=0.1), filter=OccurrenceFilter(threshold=2))


@pytest.fixture
def recovery(cluster_pool, tmp_path_factory):
    """Its own 2-PS cluster with periodic snapshots (the shared one never sees a kill)."""
    snapshots = tmp_path_factory.getbasetemp() / "ps-snapshots"
    return cluster_pool.get("recovery", num_ps=2, snapshot_dir=snapshots, snapshot_every=EVERY)


def _batch(step: int) -> tuple[np.ndarray, np.ndarray]:
    ids = zipf_ids(64, 300, seed=100 + step)
    assert set(route(ids, 2, CFG.seed).tolist()) == {0, 1}, "every batch must reach both PS"
    grads = np.random.default_rng(step).normal(size=(ids.size, CFG.dim)).astype(np.float32)
    return ids, grads


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key


def test_kill_during_training_then_restart_from_snapshot_and_conform_again(recovery) -> None:
    remote = RemoteTable(CFG, recovery, table_id="clicks")
    ref = ShardedTable(CFG, num_shards=2, threads=1)
    shard1_after: list[dict] = []
    for step in range(5):  # 2 changing operations per PS per step: snapshots after steps 1 and 3
        ids, grads = _batch(step)
        for table in (remote, ref):
            table.lookup(ids, now=step)
            table.apply_gradients(ids, grads)
        shard1_after.append(ref.shards[1].export())
    assert [d["ops"] for d in remote.describe()] == [10, 10]
    assert [d["snapshots"] for d in remote.describe()] == [2, 2]
    lonely = RemoteTable(CFG, recovery, table_id="no-snapshot")  # 1 operation: never snapshotted
    lonely.lookup([1, 2, 3, 4, 5, 6], now=0)

    recovery.kill(1)
    ids, grads = _batch(5)
    ps0 = route(ids, 2, CFG.seed) == 0
    with pytest.raises(PSUnavailableError, match="ps1") as err:
        remote.lookup(ids, now=5)
    assert err.value.ps_names == ("ps1",) and err.value.op == "lookup"
    ref.shards[0].lookup(ids[ps0], now=5)  # ps0 did its part of the failed call: no rollback
    with pytest.raises(PSUnavailableError, match="ps1"):
        remote.apply_gradients(ids, grads)
    ref.shards[0].apply_gradients(ids[ps0], grads[ps0])
    with pytest.raises(PSUnavailableError):
        len(remote)
    assert "clicks" in repr(remote)  # no RPC in a repr

    recovery.restart(1)
    ref.shards[1].load(shard1_after[3])  # ps1 is back at its snapshot after 8 operations (step 3) ...
    _assert_same(remote.export(), ref.export())  # ... and ps0 kept everything, the failed call's part included
    assert [d["ops"] for d in remote.describe()] == [12, 8]
    for step in range(6, 9):  # training goes on, still bit-identical
        ids, grads = _batch(step)
        assert np.array_equal(remote.lookup(ids, now=step), ref.lookup(ids, now=step))
        remote.apply_gradients(ids, grads)
        ref.apply_gradients(ids, grads)
    _assert_same(remote.export(), ref.export())
    with pytest.raises(TableNotFoundError, match="no-snapshot.*ps1"):
        lonely.lookup([1, 2, 3, 4, 5, 6], now=1)
    remote.drop()
    with pytest.raises(TableNotFoundError):
        remote.lookup([1], now=0)

    made = []  # and the whole conformance suite passes on the restarted cluster

    def make(config):
        made.append(RemoteTable(config, recovery))
        return made[-1]

    impl = TableImpl("RemoteTable-after-restart", make, shared_filter=False)
    try:
        for check in checks_for(impl):
            check(impl)
    finally:
        for table in made:
            table.drop()


def test_a_corrupt_latest_snapshot_falls_back_to_the_one_before(recovery) -> None:
    remote = RemoteTable(CFG, recovery, table_id="fallback")
    ref = ShardedTable(CFG, num_shards=2, threads=1)
    after = []
    for step in range(4):  # 8 changing operations per PS: snapshots 1 and 2
        ids, grads = _batch(step)
        for table in (remote, ref):
            table.lookup(ids, now=step)
            table.apply_gradients(ids, grads)
        after.append(ref.shards[0].export())
    paths = [Path(p) for p in remote.snapshot()]  # on demand: snapshot 3 on each PS; keep=2 drops snapshot 1
    assert all(p.is_dir() and p.parent.name == "fallback" for p in paths)
    newest = paths[0]
    assert newest.parent.parent.name == "ps0"
    victim = next(f for f in sorted(newest.iterdir()) if f.suffix == ".npy")
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")  # alter a byte: the checksum no longer matches
    recovery.restart(0)  # this time the first PS; ps1 survives
    ref.shards[0].load(after[3])  # snapshot 2, taken after 8 operations
    _assert_same(remote.export(), ref.export())
    assert [d["ops"] for d in remote.describe()] == [8, 8]
    assert "older snapshot" in recovery.log_path(0).read_text()
    ids, grads = _batch(9)
    for step in range(4):  # ps0 was restored from snapshot 2: its next one is 4, not the broken 3
        for table in (remote, ref):
            table.lookup(ids, now=9)
            table.apply_gradients(ids, grads)
    assert [(d["snapshots"], d["snapshot_error"]) for d in remote.describe()] == [(5, None), (5, None)]
    assert [p.name for p in list_snapshots(newest.parent)] == ["snap-000000000004", "snap-000000000005"]
    state = ref.export()
    remote.lookup(_batch(10)[0], now=10)  # a rollback on demand brings back the newest snapshots
    reports = remote.restore()
    assert [r["restored"] for r in reports] == [["fallback"], ["fallback"]]
    _assert_same(remote.export(), state)
    remote.drop()
    assert not newest.parent.exists(), "drop removes the table's snapshots"


def test_shutdown_leaves_no_process(cluster_pool, recovery) -> None:
    pids = [recovery.pid(i) for i in range(recovery.num_ps)]
    cluster_pool.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_killed_launcher_leaves_no_orphan(tmp_path) -> None:
    """SIGKILL the trainer process: its PS see end of input on stdin and exit by themselves."""
    script = tmp_path / "launcher.py"
    script.write_text(
        "import os, signal\n"
        "from monolith_ref.distributed import Cluster\n"
        f"cluster = Cluster(1, log_dir={str(tmp_path / 'logs')!r})\n"
        "print(cluster.pid(0), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    pid = int(run.stdout.split()[0])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state == "Z":  # exited; waiting for an init that does not reap
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)  # do not leave it behind either way
    pytest.fail(f"PS process {pid} outlived its launcher by 15 s")
