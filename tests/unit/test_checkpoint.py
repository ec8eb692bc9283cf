"""Snapshots (chapter 11): atomic, checksummed, verified before use; trainer restore is all or nothing."""

from __future__ import annotations

import io
import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from monolith_ref.checkpoint import (
    FORMAT_VERSION,
    MANIFEST,
    BrokenSnapshotWarning,
    CorruptSnapshotError,
    SnapshotError,
    SnapshotMismatchError,
    SnapshotVersionError,
    clean_temp,
    latest_snapshot,
    list_snapshots,
    read_snapshot,
    restore_trainer,
    save_trainer,
    snapshot_name,
    write_snapshot,
)
from monolith_ref.data.synthetic import StreamConfig, synthetic_stream
from monolith_ref.filters import OccurrenceFilter
from monolith_ref.optim import SGD
from monolith_ref.tables import ShardedTable
from monolith_ref.training import ModelConfig, build_deepfm_for, train_step

ARRAYS = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "ids": np.array([1, 2**64 - 1], dtype=np.uint64),
          "empty": np.zeros((0, 5), dtype=np.float32), "flags": np.array([True, False]), "x/y": np.int64(7)}


def _entries(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def _files(snap: Path) -> dict[str, Path]:
    """The snapshot's array and blob files by key."""
    listing = json.loads((snap / MANIFEST).read_text())["files"]
    return {key: snap / e["file"] for section in listing.values() for key, e in section.items()}


# --------------------------------------------------------------------------- the store


def test_round_trip_and_layout(tmp_path) -> None:
    path = write_snapshot(tmp_path, "s1", ARRAYS, {"step": 1, "note": "hi"}, blobs={"raw": b"\x00\x01"})
    assert path == tmp_path / "s1" and _entries(tmp_path) == ["s1"]  # no temp dir left behind
    arrays, meta, blobs = read_snapshot(path)
    assert arrays.keys() == ARRAYS.keys() and meta == {"step": 1, "note": "hi"} and blobs == {"raw": b"\x00\x01"}
    for k, v in ARRAYS.items():
        assert arrays[k].dtype == np.asarray(v).dtype and np.array_equal(arrays[k], v)
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest["version"] == FORMAT_VERSION
    assert all(len(e["sha256"]) == 64 for e in manifest["files"]["arrays"].values())


@settings(max_examples=25)
@given(st.dictionaries(st.text("abc/_", min_size=1, max_size=6),
                       hnp.arrays(st.sampled_from([np.float32, np.float64, np.int8, np.uint64, np.bool_]),
                                  hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
                       max_size=4))
def test_any_arrays_round_trip_bit_exactly(tmp_path_factory, arrays) -> None:
    path = write_snapshot(tmp_path_factory.mktemp("prop"), "s", arrays, {})
    back = read_snapshot(path)[0]
    assert back.keys() == arrays.keys()
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        assert back[k].tobytes() == v.tobytes()  # NaNs included, bit for bit


@pytest.mark.parametrize("kwargs, error, match", [
    ({"name": ".hidden"}, ValueError, "snapshot name"),
    ({"name": "a/b"}, ValueError, "snapshot name"),
    ({"name": ""}, ValueError, "snapshot name"),
    ({"arrays": {"o": np.array([object()])}}, TypeError, "pickled"),
    ({"arrays": {"": np.zeros(1)}}, TypeError, "non-empty"),
    ({"meta": {"f": object()}}, TypeError, "JSON"),
    ({"blobs": {"b": "text"}}, TypeError, "bytes"),
    ({"keep": 0}, ValueError, "keep"),
])
def test_bad_arguments_raise_before_anything_is_written(tmp_path, kwargs, error, match) -> None:
    args = {"name": "s", "arrays": {"a": np.zeros(2)}, "meta": {}, **kwargs}
    with pytest.raises(error, match=match):
        write_snapshot(tmp_path / "snaps", args.pop("name"), args.pop("arrays"), args.pop("meta"), **args)
    assert not (tmp_path / "snaps").exists() or _entries(tmp_path / "snaps") == []


def test_a_snapshot_is_never_overwritten(tmp_path) -> None:
    write_snapshot(tmp_path, "s", {"a": np.zeros(2)}, {"v": 1})
    with pytest.raises(FileExistsError):
        write_snapshot(tmp_path, "s", {"a": np.ones(2)}, {"v": 2})
    assert read_snapshot(tmp_path / "s")[1] == {"v": 1} and _entries(tmp_path) == ["s"]


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch) -> None:
    write_snapshot(tmp_path, "s1", {"a": np.zeros(2)}, {})

    def broken_rename(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", broken_rename)
    with pytest.raises(OSError, match="disk full"):
        write_snapshot(tmp_path, "s2", {"a": np.ones(2)}, {})
    assert _entries(tmp_path) == ["s1"]


def test_every_file_and_both_directories_are_fsynced_before_and_after_the_rename(tmp_path, monkeypatch) -> None:
    events: list[str] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def rename(src, dst) -> None:
        events.append("rename")
        real_rename(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    write_snapshot(tmp_path, "s", {"a": np.zeros(2), "b": np.ones(3)}, {}, blobs={"c": b"x"})
    assert events == ["fsync-file"] * 4 + ["fsync-dir", "rename", "fsync-dir"]  # 3 files + manifest


def test_keep_deletes_the_oldest_by_name(tmp_path) -> None:
    for step in (3, 1, 2, 4):
        write_snapshot(tmp_path, snapshot_name(step), {"a": np.full(2, step)}, {}, keep=2)
    assert [p.name for p in list_snapshots(tmp_path)] == [snapshot_name(3), snapshot_name(4)]
    assert _entries(tmp_path) == [snapshot_name(3), snapshot_name(4)]  # no .del-* left


def test_snapshot_name_sorts_by_step() -> None:
    names = [snapshot_name(s) for s in (0, 9, 10, 123456)]
    assert names == sorted(names) and names[1] == "step-000000000009"
    with pytest.raises(ValueError):
        snapshot_name(-1)


@pytest.fixture
def snap(tmp_path) -> Path:
    return write_snapshot(tmp_path, "s", {"a": np.arange(1000, dtype=np.float32), "b": np.arange(5)}, {"step": 4})


def test_a_flipped_byte_is_refused(snap) -> None:
    file = _files(snap)["a"]
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))
    with pytest.raises(CorruptSnapshotError, match="SHA-256 mismatch"):
        read_snapshot(snap)


def test_a_truncated_file_is_refused(snap) -> None:
    file = _files(snap)["b"]
    file.write_bytes(file.read_bytes()[:-3])
    with pytest.raises(CorruptSnapshotError, match="truncated"):
        read_snapshot(snap)


def test_a_missing_file_or_manifest_is_refused(snap) -> None:
    _files(snap)["b"].unlink()
    with pytest.raises(CorruptSnapshotError, match="unreadable"):
        read_snapshot(snap)
    (snap / MANIFEST).unlink()
    with pytest.raises(CorruptSnapshotError, match="no manifest.json"):
        read_snapshot(snap)


def test_an_altered_or_broken_manifest_is_refused(snap) -> None:
    text = (snap / MANIFEST).read_text()
    (snap / MANIFEST).write_text(text.replace('"step": 4', '"step": 5'))
    with pytest.raises(CorruptSnapshotError, match="checksum"):
        read_snapshot(snap)
    (snap / MANIFEST).write_text(text[: len(text) // 2])
    with pytest.raises(CorruptSnapshotError, match="not valid JSON"):
        read_snapshot(snap)
    manifest = json.loads(text)
    manifest["files"]["arrays"]["a"]["file"] = "../elsewhere.npy"
    (snap / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CorruptSnapshotError):
        read_snapshot(snap)


def test_another_format_version_is_refused(snap) -> None:
    manifest = json.loads((snap / MANIFEST).read_text())
    manifest["version"] = FORMAT_VERSION + 1
    (snap / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SnapshotVersionError, match=f"format version {FORMAT_VERSION + 1}"):
        read_snapshot(snap)
    assert issubclass(SnapshotVersionError, SnapshotError) and issubclass(SnapshotError, ValueError)


def test_temp_dirs_are_ignored_and_cleaned_and_broken_snapshots_skipped(tmp_path) -> None:
    assert list_snapshots(tmp_path / "none") == [] and latest_snapshot(tmp_path / "none") is None
    good = write_snapshot(tmp_path, snapshot_name(1), {"a": np.zeros(3)}, {})
    bad = write_snapshot(tmp_path, snapshot_name(2), {"a": np.zeros(3)}, {})
    (bad / MANIFEST).unlink()
    (tmp_path / ".tmp-step-000000000003-x").mkdir()  # a writer killed half-way
    (tmp_path / ".tmp-step-000000000003-x" / "0000-a.npy").write_bytes(b"half")
    (tmp_path / ".del-step-000000000000").mkdir()  # a deletion killed half-way
    assert list_snapshots(tmp_path) == [good, bad]
    with pytest.warns(BrokenSnapshotWarning, match="step-000000000002"):
        assert latest_snapshot(tmp_path) == good
    assert clean_temp(tmp_path) == 2
    assert _entries(tmp_path) == [good.name, bad.name]


# --------------------------------------------------------------------------- trainer snapshots


@pytest.fixture(scope="module")
def stream():
    return synthetic_stream(StreamConfig(num_users=200, num_items=100, new_items_per_day=10, days=1,
                                         events_per_day=600, seed=1))


def _trainer(stream, config: ModelConfig | None = None, table=None):
    cfg = config or ModelConfig(dim=8, hidden=(16,), seed=3)
    model = build_deepfm_for(stream, cfg, **({"table": table} if table else {}))
    return model, torch.optim.Adam(model.head.parameters(), lr=1e-2)


def _train(model, opt, events, batches: range, size: int = 50) -> None:
    torch.set_num_threads(1)
    for k in batches:
        train_step(model, opt, events[k * size : (k + 1) * size])


def _state(model, opt) -> dict:
    out = {f"v/{k}": v.copy() for k, v in model.vectors.table.export().items()}
    out.update({f"w/{k}": v.copy() for k, v in model.weights.table.export().items()})
    out.update({f"h/{k}": v.clone() for k, v in model.head.state_dict().items()})
    for i, s in opt.state_dict()["state"].items():
        out.update({f"o/{i}/{k}": v.clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()})
    return out


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else np.array_equal(a[k], b[k]) for k in a)


def test_save_and_restore_trainer_continue_bit_identically(tmp_path, stream) -> None:
    model, opt = _trainer(stream)
    _train(model, opt, stream, range(4))
    path = save_trainer(tmp_path, 4, model, opt, {("examples", 0): 200}, extra_meta={"examples": 200})
    saved = _state(model, opt)
    _train(model, opt, stream, range(4, 8))
    after = _state(model, opt)
    assert not _same(saved, after)
    info = restore_trainer(path, model, opt)
    assert info["offsets"] == {("examples", 0): 200} and info["step"] == 4 and info["meta"]["extra"]["examples"] == 200
    assert _same(_state(model, opt), saved)
    _train(model, opt, stream, range(4, 8))  # the same batches again, from the restored state
    assert _same(_state(model, opt), after)
    fresh, fresh_opt = _trainer(stream)  # and into a brand-new trainer
    restore_trainer(path, fresh, fresh_opt)
    assert _same(_state(fresh, fresh_opt), saved)


def test_save_trainer_refuses_a_model_in_the_middle_of_a_step(tmp_path, stream) -> None:
    model, opt = _trainer(stream)
    batch = stream[:10]
    model(batch.fields, int(batch.time[-1]), torch.from_numpy(batch.dense)).sum().backward()
    with pytest.raises(ValueError, match="queued sparse gradients"):
        save_trainer(tmp_path, 1, model, opt, {})
    assert not tmp_path.exists() or _entries(tmp_path) == []


@pytest.mark.parametrize("damage, error", [
    ("flip", CorruptSnapshotError), ("truncate", CorruptSnapshotError), ("version", SnapshotVersionError)])
def test_a_damaged_snapshot_leaves_the_live_trainer_untouched(tmp_path, stream, damage, error) -> None:
    model, opt = _trainer(stream)
    _train(model, opt, stream, range(2))
    path = save_trainer(tmp_path, 2, model, opt, {})
    _train(model, opt, stream, range(2, 4))
    live = _state(model, opt)
    file = _files(path)["weights/embeddings"]  # the second table's file
    if damage == "flip":
        data = bytearray(file.read_bytes())
        data[-1] ^= 0x80
        file.write_bytes(bytes(data))
    elif damage == "truncate":
        file.write_bytes(file.read_bytes()[:-4])
    else:
        manifest = json.loads((path / MANIFEST).read_text())
        manifest["version"] = 0
        (path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(error):
        restore_trainer(path, model, opt)
    assert _same(_state(model, opt), live)


@pytest.mark.parametrize("change, named", [
    ({"dim": 4}, "vectors.dim: snapshot has 8, model has 4"),
    ({"seed": 9}, "vectors.seed"),
    ({"vector_optimizer": SGD(lr=0.1)}, "vectors.optimizer"),
    ({"ttl": 3600}, "weights.ttl"),
    ({"filter": OccurrenceFilter(2)}, "vectors.filter"),
    ({"hidden": (8,)}, "head.parameters"),
])
def test_a_snapshot_of_another_config_is_refused_naming_the_difference(tmp_path, stream, change, named) -> None:
    model, opt = _trainer(stream)
    _train(model, opt, stream, range(1))
    path = save_trainer(tmp_path, 1, model, opt, {})
    other, other_opt = _trainer(stream, replace(ModelConfig(dim=8, hidden=(16,), seed=3), **change))
    _train(other, other_opt, stream, range(1, 2))
    live = _state(other, other_opt)
    with pytest.raises(SnapshotMismatchError, match=named.replace(".", r"\.").replace("(", r"\(")):
        restore_trainer(path, other, other_opt)
    assert _same(_state(other, other_opt), live)


def test_a_sound_snapshot_whose_parts_do_not_fit_changes_nothing(tmp_path, stream) -> None:
    """Checksums pass and the fingerprint matches, but one part does not fit: the weight rows
    have the wrong width, or the head's tensors the wrong shapes. The parts that do fit (the
    vectors, the tables) must not be loaded either."""
    model, opt = _trainer(stream)
    _train(model, opt, stream, range(2))
    arrays, meta, blobs = read_snapshot(save_trainer(tmp_path, 2, model, opt, {}))
    wide = {**arrays, "weights/embeddings": np.zeros((len(arrays["weights/ids"]), 3), dtype=np.float32)}
    bad_table = write_snapshot(tmp_path, snapshot_name(3), wide, meta, blobs)
    buf = io.BytesIO()
    torch.save(_trainer(stream, ModelConfig(dim=8, hidden=(4,), seed=3))[0].head.state_dict(), buf)
    bad_head = write_snapshot(tmp_path, snapshot_name(4), arrays, meta, {**blobs, "head": buf.getvalue()})
    _train(model, opt, stream, range(2, 3))
    live = _state(model, opt)
    with pytest.raises(SnapshotMismatchError, match="weights table does not fit"):
        restore_trainer(bad_table, model, opt)
    assert _same(_state(model, opt), live)
    with pytest.raises(SnapshotMismatchError, match="dense state does not fit"):
        restore_trainer(bad_head, model, opt)
    assert _same(_state(model, opt), live)


def test_sharded_tables_snapshot_and_refuse_another_shard_count(tmp_path, stream) -> None:
    model, opt = _trainer(stream, table=lambda c: ShardedTable(c, num_shards=3, threads=2))
    _train(model, opt, stream, range(3))
    path = save_trainer(tmp_path, 3, model, opt, {})
    saved = _state(model, opt)
    _train(model, opt, stream, range(3, 5))
    restore_trainer(path, model, opt)
    assert _same(_state(model, opt), saved)
    other, other_opt = _trainer(stream, table=lambda c: ShardedTable(c, num_shards=2, threads=1))
    with pytest.raises(SnapshotMismatchError, match="num_shards: snapshot has 3, model has 2"):
        restore_trainer(path, other, other_opt)
