"""Exercise 11.1 (solution): write a snapshot that a crash can never leave half-written.

See exercises/ex11_atomic_snapshot.py for the spec and book/ch11_fault_tolerance.md for the idea.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_snapshot(directory: str | Path, name: str, arrays: dict[str, np.ndarray]) -> Path:
    """Aside, durable, manifest last, one rename, then the directory."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    if final.exists():
        raise FileExistsError(f"snapshot {final} exists")
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    manifest = {}
    for key, arr in arrays.items():
        buf = io.BytesIO()
        np.save(buf, np.asarray(arr), allow_pickle=False)
        data = buf.getvalue()
        _write(tmp / f"{key}.npy", data)
        manifest[key] = {"file": f"{key}.npy", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    _write(tmp / "manifest.json", json.dumps(manifest).encode())
    _fsync_dir(tmp)
    os.rename(tmp, final)
    _fsync_dir(root)
    return final


def load_snapshot(path: str | Path) -> dict[str, np.ndarray]:
    """Check every size and checksum, then parse."""
    path = Path(path)
    try:
        manifest = json.loads((path / "manifest.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: no readable manifest ({exc})") from None
    out = {}
    for key, entry in manifest.items():
        try:
            data = (path / entry["file"]).read_bytes()
        except OSError as exc:
            raise ValueError(f"{path}: array {key!r} is missing ({exc})") from None
        if len(data) != entry["bytes"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ValueError(f"{path}: array {key!r} is truncated or altered")
        out[key] = np.load(io.BytesIO(data), allow_pickle=False)
    return out
