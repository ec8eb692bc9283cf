"""Snapshots and restore: atomic, checksummed, all-or-nothing (paper section 2.3).

Monolith's parameter servers write snapshots of their tables (daily in production) and a
failed server comes back from its last one. A snapshot is only worth something if it is
*whole*: a process can die at any instruction, so a reader must never see half a snapshot
under a final name, and must notice a file that changed after it was written. This module
gets that from four rules:

1. **Write aside.** Everything goes into a temporary directory ``.tmp-<name>-*`` inside the
   snapshot directory; each file is flushed and fsynced.
2. **Manifest last.** ``manifest.json`` lists every file with its size and SHA-256 (and a
   checksum of itself); it is written, fsynced, and the temporary directory fsynced.
3. **Publish by rename.** The temporary directory is renamed to its final name (one atomic
   step), then the parent directory is fsynced so the rename itself survives a power cut.
4. **Verify before use.** :func:`read_snapshot` checks the manifest, the format version and
   every size and checksum *before* returning anything.

A writer killed at any point leaves either the old set of snapshots or the old set plus a
new complete one, and maybe a ``.tmp-*`` directory that :func:`clean_temp` removes. Old
snapshots are deleted the same way round: renamed to ``.del-*`` first, then removed.

On top of the generic store, :func:`save_trainer` and :func:`restore_trainer` snapshot what
an online trainer needs to resume: both tables, the dense head, the dense optimizer, the log
offsets the state corresponds to, a step counter and a fingerprint of the configuration.
Restore refuses a snapshot that does not fit, and tries everything on fresh copies before
it touches the live model, so a failed restore never leaves a half-loaded model.

Layout of one snapshot::

    <directory>/<name>/manifest.json      format, version, meta, per-file size and sha256
    <directory>/<name>/0000-<key>.npy     one array per file (np.save, no pickles)
    <directory>/<name>/b000-<key>.bin     opaque blobs (e.g. torch.save bytes)

See: book/ch11_fault_tolerance.md
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checks import check_int
from .fsio import fsync_dir, write_synced
from .models import DeepFM
from .tables.base import StateMismatchError
from .tables.sharded_table import ShardedTable

__all__ = [
    "MANIFEST",
    "FORMAT_VERSION",
    "SnapshotError",
    "CorruptSnapshotError",
    "SnapshotVersionError",
    "SnapshotMismatchError",
    "BrokenSnapshotWarning",
    "write_snapshot",
    "read_snapshot",
    "list_snapshots",
    "latest_snapshot",
    "clean_temp",
    "snapshot_name",
    "table_fingerprint",
    "trainer_fingerprint",
    "save_trainer",
    "restore_trainer",
]

#: The on-disk format this module writes and reads.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TMP_PREFIX = ".tmp-"  # a snapshot being written
DEL_PREFIX = ".del-"  # a snapshot being deleted
_FORMAT = "monolith-ref snapshot"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")
_PREFIXES = ("vectors/", "weights/")


# --------------------------------------------------------------------------- errors


class SnapshotError(ValueError):
    """A snapshot that cannot be used. See: book/ch11_fault_tolerance.md"""


class CorruptSnapshotError(SnapshotError):
    """A snapshot with a missing, truncated or altered file, or a bad manifest.

    See: book/ch11_fault_tolerance.md
    """


class SnapshotVersionError(SnapshotError):
    """A snapshot written in another format version. See: book/ch11_fault_tolerance.md"""


class SnapshotMismatchError(SnapshotError):
    """A sound snapshot that does not fit the model it is restored into (dims, seeds,
    optimizers, shapes). See: book/ch11_fault_tolerance.md
    """


class BrokenSnapshotWarning(UserWarning):
    """:func:`latest_snapshot` skipped a snapshot that does not verify.

    See: book/ch11_fault_tolerance.md
    """


# --------------------------------------------------------------------------- small helpers


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _file_stem(i: int, key: str) -> str:
    return f"{i:04d}-{re.sub(r'[^A-Za-z0-9._-]', '_', key)[:80]}"


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"a snapshot name must be 1-200 of A-Z a-z 0-9 . _ - and not start with '.' or '-', "
                         f"got {name!r}")
    return name


def snapshot_name(step: int) -> str:
    """The name of the trainer snapshot after ``step`` batches: ``step-000000000042``.

    Zero-padded, so that name order is step order. See: book/ch11_fault_tolerance.md
    """
    return f"step-{check_int(step, 'step', 0, 10**12):012d}"


# --------------------------------------------------------------------------- the store


def write_snapshot(directory: str | os.PathLike[str], name: str, arrays: Mapping[str, np.ndarray],
                   meta: Mapping[str, Any], blobs: Mapping[str, bytes] | None = None,
                   keep: int | None = None) -> Path:
    """Write ``directory/name/`` atomically and return its path.

    ``arrays`` become ``.npy`` files (no pickles: object arrays are refused), ``blobs`` raw
    files, ``meta`` (JSON-able) goes into the manifest. The four rules of the module doc
    make it all-or-nothing. ``keep``: afterwards delete all but the newest ``keep``
    snapshots (by name order). Bad arguments raise before anything is written; an existing
    snapshot of the same name is never replaced (``FileExistsError``).
    See: book/ch11_fault_tolerance.md
    """
    _check_name(name)
    if keep is not None:
        check_int(keep, "keep (None, or how many snapshots to keep)", low=1)
    files: list[tuple[str, str, str, bytes]] = []  # (section, key, file name, bytes)
    if not isinstance(arrays, Mapping):
        raise TypeError(f"arrays must map names to arrays, got {type(arrays).__name__}")
    for i, (key, value) in enumerate(arrays.items()):
        if not isinstance(key, str) or not key:
            raise TypeError(f"array names must be non-empty strings, got {key!r}")
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise TypeError(f"array {key!r} has dtype {arr.dtype}: snapshots hold no pickled objects")
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        files.append(("arrays", key, _file_stem(i, key) + ".npy", buf.getvalue()))
    for i, (key, value) in enumerate((blobs or {}).items()):
        if not isinstance(key, str) or not key:
            raise TypeError(f"blob names must be non-empty strings, got {key!r}")
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"blob {key!r} must be bytes, got {type(value).__name__}")
        files.append(("blobs", key, "b" + _file_stem(i, key)[1:] + ".bin", bytes(value)))
    try:
        meta_json = json.loads(json.dumps(dict(meta)))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"meta must be JSON-serialisable: {exc}") from None

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    if final.exists():
        raise FileExistsError(f"snapshot {final} exists; snapshots are never overwritten")
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{name}-", dir=root))
    try:
        listing: dict[str, dict[str, dict[str, Any]]] = {"arrays": {}, "blobs": {}}
        for section, key, file, data in files:  # rule 1: every file written aside and fsynced
            write_synced(tmp / file, data)
            listing[section][key] = {"file": file, "bytes": len(data), "sha256": _sha256(data)}
        manifest: dict[str, Any] = {"format": _FORMAT, "version": FORMAT_VERSION, "name": name,
                                    "meta": meta_json, "files": listing}
        manifest["checksum"] = _sha256(_canonical(manifest))
        write_synced(tmp / MANIFEST, json.dumps(manifest, indent=1).encode())  # rule 2: the manifest last
        fsync_dir(tmp)
        os.rename(tmp, final)  # rule 3: publish in one step ...
        fsync_dir(root)  # ... and make the rename durable
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep is not None:
        for old in list_snapshots(root)[:-keep]:
            _delete(old)
    return final


def _delete(path: Path) -> None:
    """Remove a snapshot so that no half-deleted one is ever left under its name."""
    doomed = path.with_name(f"{DEL_PREFIX}{path.name}")
    os.rename(path, doomed)
    fsync_dir(path.parent)
    shutil.rmtree(doomed, ignore_errors=True)


def _load_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise CorruptSnapshotError(f"{path}: no {MANIFEST} (not a snapshot, or an incomplete one)") from None
    except OSError as exc:
        raise CorruptSnapshotError(f"{file}: unreadable ({exc})") from None
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise CorruptSnapshotError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise CorruptSnapshotError(f"{file}: not a {_FORMAT} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise SnapshotVersionError(f"{path}: format version {manifest.get('version')!r}; "
                                   f"this code reads version {FORMAT_VERSION}")
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    if manifest.get("checksum") != _sha256(_canonical(body)):
        raise CorruptSnapshotError(f"{file}: the manifest's checksum does not match its contents (altered)")
    return manifest


def read_snapshot(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, bytes]]:
    """``(arrays, meta, blobs)`` of a snapshot, verified before anything is returned.

    Raises :class:`CorruptSnapshotError` for a missing, truncated or altered file or a bad
    manifest, and :class:`SnapshotVersionError` for another format version.
    See: book/ch11_fault_tolerance.md
    """
    path = Path(path)
    manifest = _load_manifest(path)
    out: dict[str, dict[str, Any]] = {"arrays": {}, "blobs": {}}
    try:
        listing = {s: dict(manifest["files"][s]) for s in ("arrays", "blobs")}
    except (KeyError, TypeError, ValueError):
        raise CorruptSnapshotError(f"{path / MANIFEST}: no file listing") from None
    for section, entries in listing.items():
        for key, entry in entries.items():
            try:
                name, size, digest = str(entry["file"]), int(entry["bytes"]), str(entry["sha256"])
            except (KeyError, TypeError, ValueError):
                raise CorruptSnapshotError(f"{path / MANIFEST}: bad entry for {section[:-1]} {key!r}") from None
            if Path(name).name != name or name in ("", ".", ".."):
                raise CorruptSnapshotError(f"{path / MANIFEST}: file name {name!r} is not inside the snapshot")
            file = path / name
            try:
                data = file.read_bytes()
            except OSError as exc:
                what = f"{section[:-1]} {key!r}"
                raise CorruptSnapshotError(f"{path}: {what}: file {file.name} unreadable ({exc})") from None
            if len(data) != size:
                raise CorruptSnapshotError(f"{file}: {len(data)} bytes, the manifest says {size} (truncated?)")
            if _sha256(data) != digest:
                raise CorruptSnapshotError(f"{file}: SHA-256 mismatch (the file was altered after it was written)")
            if section == "blobs":
                out[section][key] = data
                continue
            try:
                out[section][key] = np.load(io.BytesIO(data), allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise CorruptSnapshotError(f"{file}: not a readable .npy file ({exc})") from None
    return out["arrays"], manifest["meta"], out["blobs"]


def list_snapshots(directory: str | os.PathLike[str]) -> list[Path]:
    """Snapshots under their final names (temporary and deleted ones ignored), oldest first.

    Listed means published, not verified: see :func:`latest_snapshot`.
    See: book/ch11_fault_tolerance.md
    """
    root = Path(directory)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))


def latest_snapshot(directory: str | os.PathLike[str]) -> Path | None:
    """The newest snapshot that verifies, or None. Broken ones are skipped with a
    :class:`BrokenSnapshotWarning` saying why. See: book/ch11_fault_tolerance.md
    """
    for path in reversed(list_snapshots(directory)):
        try:
            read_snapshot(path)
        except SnapshotError as exc:
            warnings.warn(f"skipping snapshot {path.name}: {exc}", BrokenSnapshotWarning, stacklevel=2)
            continue
        return path
    return None


def clean_temp(directory: str | os.PathLike[str]) -> int:
    """Remove what killed writers left behind (``.tmp-*`` and ``.del-*`` directories);
    return how many. Call it when the (single) writer of a directory starts.
    See: book/ch11_fault_tolerance.md
    """
    root = Path(directory)
    if not root.is_dir():
        return 0
    stale = [p for p in root.iterdir() if p.is_dir() and p.name.startswith((TMP_PREFIX, DEL_PREFIX))]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)


# --------------------------------------------------------------------------- trainer snapshots


def _describe(obj: Any) -> Any:
    """A JSON-able description of a config value: dataclasses field by field, with their type."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if is_dataclass(obj) and not isinstance(obj, type):
        return {"type": type(obj).__name__, **{f.name: _describe(getattr(obj, f.name)) for f in fields(obj)}}
    if isinstance(obj, (tuple, list)):
        return [_describe(x) for x in obj]
    return repr(obj)


def table_fingerprint(table: Any) -> dict[str, Any]:
    """What a table's state depends on: kind, dim, seed, TTL, init scale, optimizer, filter
    (and the shard count of a sharded table). See: book/ch11_fault_tolerance.md
    """
    c = table.config
    out = {"type": type(table).__name__, "dim": c.dim, "seed": c.seed, "ttl": c.ttl, "init_scale": c.init_scale,
           "optimizer": _describe(c.optimizer), "filter": _describe(c.filter)}
    if isinstance(table, ShardedTable):
        out["num_shards"] = table.num_shards
    return out


def trainer_fingerprint(model: DeepFM, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Both tables' fingerprints, the head's shape and the dense optimizer's kind, as JSON.

    See: book/ch11_fault_tolerance.md
    """
    head = model.head
    return {
        "vectors": table_fingerprint(model.vectors.table),
        "weights": table_fingerprint(model.weights.table),
        "head": {"num_fields": head.num_fields, "dim": head.dim, "num_dense": head.num_dense,
                 "parameters": {k: list(v.shape) for k, v in head.state_dict().items()}},
        "dense_optimizer": {"type": type(optimizer).__name__,
                            "param_groups": [len(g["params"]) for g in optimizer.param_groups]},
    }


def _differences(snap: Any, live: Any, where: str = "") -> list[str]:
    if isinstance(snap, dict) and isinstance(live, dict):
        out = []
        for k in sorted(set(snap) | set(live), key=str):
            here = f"{where}.{k}" if where else str(k)
            if k not in snap or k not in live:
                out.append(f"{here}: only in the {'snapshot' if k in snap else 'model'}")
            else:
                out += _differences(snap[k], live[k], here)
        return out
    return [] if snap == live else [f"{where}: snapshot has {snap!r}, model has {live!r}"]


def _torch_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _torch_load(data: bytes, what: str) -> Any:
    try:  # weights_only: tensors, numbers, strings, tuples, dicts; never arbitrary objects
        return torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds
        raise CorruptSnapshotError(f"the {what} blob could not be loaded: {exc}") from None


def save_trainer(directory: str | os.PathLike[str], step: int, model: DeepFM, optimizer: torch.optim.Optimizer,
                 offsets: Mapping[tuple[str, int], int], extra_meta: Mapping[str, Any] | None = None,
                 keep: int | None = 3) -> Path:
    """Snapshot everything an online trainer needs to resume, as ``step-<step>``.

    Arrays: each table's ``export()`` under ``vectors/`` and ``weights/`` (rows, optimizer
    state, last-seen times, filter state). Blobs: the head's and the dense optimizer's
    ``state_dict`` (``torch.save``). Meta: ``step``, ``offsets`` (the *next* offset to read
    per (topic, partition): the snapshot holds the effect of every record below them),
    the fingerprint, and ``extra_meta``. No random generator state is saved because the
    training step draws no random numbers (no dropout, no shuffling in the online stage);
    a trainer that does must add its generators' states to ``extra_meta``.
    See: book/ch11_fault_tolerance.md
    """
    if model.vectors.pending or model.weights.pending:
        raise ValueError("the model has queued sparse gradients: snapshot between training steps, not inside one")
    arrays: dict[str, np.ndarray] = {}
    for prefix, emb in zip(_PREFIXES, (model.vectors, model.weights)):
        arrays.update({prefix + k: v for k, v in emb.table.export().items()})
    offs = []
    for where, offset in dict(offsets).items():
        if not (isinstance(where, tuple) and len(where) == 2 and isinstance(where[0], str)):
            raise TypeError(f"offsets keys must be (topic, partition) pairs, got {where!r}")
        offs.append([where[0], int(where[1]), check_int(offset, f"offset for {where}", low=0)])
    meta = {"kind": "trainer", "step": int(step), "offsets": offs,
            "fingerprint": trainer_fingerprint(model, optimizer), "extra": dict(extra_meta or {})}
    blobs = {"head": _torch_bytes(model.head.state_dict()), "optimizer": _torch_bytes(optimizer.state_dict())}
    return write_snapshot(directory, snapshot_name(step), arrays, meta, blobs, keep=keep)


def _scratch_table(table: Any) -> Any:
    """An empty table of the same kind and settings, to try a state on before the live one."""
    if isinstance(table, ShardedTable):  # (deepcopy cannot copy its thread pool)
        return ShardedTable(table.config, table.num_shards, table._factory, threads=1)
    try:
        return type(table)(table.config)
    except TypeError:  # a table with more constructor arguments (e.g. a hashed table's size)
        return copy.deepcopy(table)


def restore_trainer(path: str | os.PathLike[str], model: DeepFM, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Load a trainer snapshot into ``model`` and ``optimizer``; return ``offsets`` (a dict
    ``(topic, partition) -> next offset``), ``step`` and ``meta``.

    All or nothing: the snapshot is verified (:func:`read_snapshot`), its fingerprint
    compared with the model's (:class:`SnapshotMismatchError` naming every difference), and
    every part loaded into fresh copies (tables, head, optimizer) first. Only when all of
    them took it is the live state replaced, with the same states just proven to fit.
    See: book/ch11_fault_tolerance.md
    """
    path = Path(path)
    arrays, meta, blobs = read_snapshot(path)
    if meta.get("kind") != "trainer":
        raise SnapshotMismatchError(f"{path.name} is not a trainer snapshot (kind {meta.get('kind')!r})")
    diffs = _differences(meta.get("fingerprint"), trainer_fingerprint(model, optimizer))
    if diffs:
        raise SnapshotMismatchError(f"snapshot {path.name} does not fit this model: " + "; ".join(diffs))
    if "head" not in blobs or "optimizer" not in blobs:
        raise SnapshotMismatchError(f"snapshot {path.name} lacks the head or optimizer state")
    states = [{k[len(p):]: v for k, v in arrays.items() if k.startswith(p)} for p in _PREFIXES]
    tables = [model.vectors.table, model.weights.table]
    # 1. Everything into fresh copies: any misfit raises here, with the live model untouched.
    for prefix, state, table in zip(_PREFIXES, states, tables):
        try:
            _scratch_table(table).load(state)
        except StateMismatchError as exc:
            raise SnapshotMismatchError(f"snapshot {path.name}: the {prefix[:-1]} table does not fit: {exc}") from None
    head = copy.deepcopy(model.head)
    trial = type(optimizer)(head.parameters(), **optimizer.defaults)
    try:
        head.load_state_dict(_torch_load(blobs["head"], "head"))
        trial.load_state_dict(_torch_load(blobs["optimizer"], "optimizer"))
    except (RuntimeError, ValueError, KeyError) as exc:
        raise SnapshotMismatchError(f"snapshot {path.name}: the dense state does not fit: {exc}") from None
    # 2. The same states into the live objects (loaded afresh: optimizers keep the tensors they get).
    for state, table in zip(states, tables):
        table.load(state)
    model.head.load_state_dict(_torch_load(blobs["head"], "head"))
    optimizer.load_state_dict(_torch_load(blobs["optimizer"], "optimizer"))
    model.vectors.discard_gradients()
    model.weights.discard_gradients()
    offsets = {(str(t), int(p)): int(o) for t, p, o in meta["offsets"]}
    return {"offsets": offsets, "step": int(meta["step"]), "meta": meta}
