"""The PS side without RPC: the registry, snapshots every N operations, restore, and the wire format.

:class:`PSServer` is plain Python, so these tests run in this process and take milliseconds;
what RPC adds is tested with real processes in the other files.
"""

from __future__ import annotations

import numpy as np
import pytest

from monolith_ref.checkpoint import list_snapshots
from monolith_ref.distributed import PSServer, TableNotFoundError
from monolith_ref.distributed import ps as ps_module
from monolith_ref.distributed.group import ps_name, ps_names
from monolith_ref.distributed.snapshots import check_table_id, config_from_json, config_to_json
from monolith_ref.distributed.wire import MIN_BYTES, WireArray, pack, unpack
from monolith_ref.filters import CountMinFilter, OccurrenceFilter, ProbabilisticFilter
from monolith_ref.optim import FTRL, SGD, Adagrad
from monolith_ref.tables import StateMismatchError, TableConfig

CFG = TableConfig(dim=3, seed=9, ttl=50, optimizer=Adagrad(lr=0.2), filter=OccurrenceFilter(threshold=2))


def test_config_json_round_trip() -> None:
    for opt in (SGD(lr=0.3), Adagrad(lr=0.1, initial_accumulator=0.5), FTRL(alpha=0.2, l1=0.1)):
        for flt in (None, OccurrenceFilter(3), CountMinFilter(2, width=8, depth=2), ProbabilisticFilter(3, "proportional")):
            cfg = TableConfig(dim=5, seed=2**64 - 1, ttl=None, init_scale=0.5, optimizer=opt, filter=flt)
            assert config_from_json(config_to_json(cfg)) == cfg


def test_table_ids_and_names_are_checked() -> None:
    assert check_table_id("user_emb-2.v1") == "user_emb-2.v1"
    for bad in ("", ".hidden", "-x", "a/b", "x" * 101, None, 3):
        with pytest.raises(ValueError, match="table id"):
            check_table_id(bad)
    assert ps_names(3) == ["ps0", "ps1", "ps2"] and ps_name(4) == "ps4"
    with pytest.raises(ValueError):
        ps_names(0)


def test_wire_round_trip_keeps_dtype_shape_and_values() -> None:
    rng = np.random.default_rng(0)
    big = rng.normal(size=(MIN_BYTES // 4 + 1, 2)).astype(np.float32)
    obj = {"ids": np.array([2**64 - 1, 0], dtype=np.uint64), "rows": big, "mask": np.ones(MIN_BYTES, dtype=bool),
           "empty": np.empty((0, 7), dtype=np.float32), "nested": [(big[:, 0].astype(np.uint64), 5)], "x": "s"}
    packed = pack(obj)
    assert isinstance(packed["rows"], WireArray) and isinstance(packed["mask"], WireArray)
    assert isinstance(packed["ids"], np.ndarray)  # small arrays are just pickled
    back = unpack(packed)
    for key in ("ids", "rows", "mask", "empty"):
        assert back[key].dtype == obj[key].dtype and back[key].shape == obj[key].shape
        assert np.array_equal(back[key], obj[key])
    assert np.array_equal(back["nested"][0][0], obj["nested"][0][0]) and back["nested"][0][1] == 5
    wide = np.arange(4 * MIN_BYTES, dtype=np.uint64).reshape(-1, 4)[:, ::2]  # not contiguous
    assert np.array_equal(unpack(pack(wide)), wide)


def test_registry_create_drop_and_errors() -> None:
    srv = PSServer(index=1)
    srv.create("t", CFG, "numba", 1, 2)
    assert srv.tables() == ["t"] and srv.describe("t")["shard"] == 1
    with pytest.raises(ValueError, match="already exists on ps1"):
        srv.create("t", CFG)
    with pytest.raises(ValueError, match="unknown table kind"):
        srv.create("u", CFG, "nope")
    with pytest.raises(ValueError, match="shard"):
        srv.create("u", CFG, "numba", 2, 2)
    srv.drop("t")
    with pytest.raises(TableNotFoundError, match="no table 't' on ps1"):
        srv.lookup("t", np.array([1], dtype=np.uint64), 0)


def test_serve_turns_exceptions_into_failures(monkeypatch) -> None:
    srv = PSServer(index=0)
    monkeypatch.setattr(ps_module, "_SERVER", srv)
    out = ps_module.serve("lookup", "missing", np.array([1], dtype=np.uint64), 0, True)
    assert isinstance(out, ps_module.Failure) and isinstance(out.error, TableNotFoundError) and out.ps == "ps0"
    assert isinstance(ps_module.serve("__init__").error, ValueError)  # only the listed operations
    ps_module.serve("create", "t", CFG, "dict", 0, 1)
    bad = ps_module.serve("load", "t", {"ids": np.array([2, 1], dtype=np.uint64)})
    assert isinstance(bad.error, StateMismatchError)


def _train(srv: PSServer, table_id: str, steps: range) -> None:
    for step in steps:
        ids = np.array([1, 2, 3, 2, 7 + step], dtype=np.uint64)
        srv.lookup(table_id, ids, step)
        srv.apply_gradients(table_id, ids, np.full((5, CFG.dim), 0.1 * (step + 1), dtype=np.float32))


def test_snapshots_every_n_operations_and_restore(tmp_path) -> None:
    srv = PSServer(index=2, snapshot_dir=tmp_path, snapshot_every=3, snapshot_keep=2)
    srv.create("t", CFG, "numba", 0, 1)
    mirror = PSServer(index=2)
    mirror.create("t", CFG, "numba", 0, 1)
    _train(srv, "t", range(3))  # 6 operations: snapshots after 3 and 6
    _train(mirror, "t", range(3))
    at_six = mirror.export("t")
    _train(srv, "t", range(3, 4))  # 8 operations: no new snapshot
    folder = tmp_path / "ps2" / "t"
    assert [p.name for p in list_snapshots(folder)] == ["snap-000000000001", "snap-000000000002"]
    assert srv.describe("t")["ops"] == 8 and srv.describe("t")["snapshots"] == 2

    back = PSServer(index=2, snapshot_dir=tmp_path)
    report = back.restore()
    assert report == {"restored": ["t"], "skipped": {}}
    got = back.export("t")
    assert got.keys() == at_six.keys() and all(np.array_equal(got[k], at_six[k]) for k in got)
    assert back.describe("t")["ops"] == 6 and back.describe("t")["snapshots"] == 2
    srv.snapshot("t")  # on demand; keep=2 deletes the oldest
    assert [p.name for p in list_snapshots(folder)] == ["snap-000000000002", "snap-000000000003"]
    srv.drop("t")
    assert not folder.exists()


def test_staged_load_changes_nothing_until_commit() -> None:
    srv = PSServer(index=0)
    srv.create("t", CFG, "numba", 0, 1)
    _train(srv, "t", range(2))
    before = srv.export("t")
    other = PSServer(index=0)
    other.create("t", CFG, "numba", 0, 1)
    other.lookup("t", np.array([40, 40, 41], dtype=np.uint64), 0)
    srv.stage_load("t", other.export("t"))
    assert all(np.array_equal(srv.export("t")[k], before[k]) for k in before)
    with pytest.raises(StateMismatchError):
        srv.stage_load("t", {k: v for k, v in before.items() if k != "last_seen"})
    srv.stage_load("t", other.export("t"))
    srv.commit_load("t")
    assert srv.export("t")["ids"].tolist() == [40]
    with pytest.raises(RuntimeError, match="no staged state"):
        srv.commit_load("t")


def test_the_torch_internals_that_rejoining_needs_are_there() -> None:
    """A process re-joins an RPC group after resetting two private torch counters (see group.py)."""
    import torch.distributed.rpc as rpc
    from torch.distributed.rpc import api

    assert isinstance(rpc._init_counter, int)
    assert isinstance(api._all_gather_sequence_id, dict) and hasattr(api._all_gather_sequence_id_to_states, "clear")
    assert hasattr(api, "_all_gather_dict_lock") and callable(api._is_current_rpc_agent_set)


def test_a_failed_periodic_snapshot_is_reported_not_raised(tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the snapshot folder should be")
    srv = PSServer(index=0, snapshot_dir=blocker, snapshot_every=1)
    srv.create("t", CFG, "dict", 0, 1)
    srv.lookup("t", np.array([5, 5], dtype=np.uint64), 0)  # the lookup itself works
    assert srv.size("t") == 1
    assert "after 1 operations" in srv.describe("t")["snapshot_error"]
    with pytest.raises(OSError):
        srv.snapshot("t")  # asked for, it raises
