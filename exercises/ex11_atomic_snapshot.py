"""Exercise 11.1: write a snapshot that a crash can never leave half-written.

A trainer that writes its snapshot in place and is killed half-way (chapter 11,
book/ch11_fault_tolerance.md) leaves a directory that looks like a snapshot and is not one;
worse, it may have overwritten the last good one. The cure is a protocol: write aside,
make every byte durable, publish with one atomic rename, and verify before you trust.
Grade with ``monolith-ref grade 11``: the grader kills your writer with SIGKILL, many times,
at random moments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def atomic_write_snapshot(directory: str | Path, name: str, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as the snapshot ``directory/name`` atomically; return its path.

    Keys of ``arrays`` are simple names (letters, digits, ``_``): store each array as
    ``<key>.npy`` with ``np.save(..., allow_pickle=False)``. Raise ``FileExistsError`` if
    ``directory/name`` exists (snapshots are never overwritten). The protocol:

    1. create ``directory`` if needed, then a temporary directory *inside* it whose name
       starts with ``"."`` (``tempfile.mkdtemp(prefix=".tmp-", dir=directory)``);
    2. write each array file there; ``flush()`` and ``os.fsync()`` each one;
    3. write ``manifest.json`` last: for each key its file name, size in bytes and SHA-256
       (``hashlib.sha256(data).hexdigest()``); flush and fsync it too, then fsync the
       temporary directory (``os.open(path, os.O_RDONLY)``, ``os.fsync``, ``os.close``);
    4. ``os.rename`` the temporary directory to ``directory/name``: the one atomic step;
    5. fsync ``directory``, so that the rename itself is durable.

    Whatever instruction the process dies at, ``directory`` then holds only complete
    snapshots under final names (and maybe a ``.``-named leftover).
    """
    raise NotImplementedError("Exercise 11.1: atomic_write_snapshot is not written yet")


def load_snapshot(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of the snapshot at ``path``, verified before anything is returned.

    Read ``manifest.json``; for every entry read the file's bytes, and check the size and
    the SHA-256 against the manifest; only then parse them (``np.load(io.BytesIO(data),
    allow_pickle=False)``). Raise ``ValueError`` naming the problem for a missing or
    unreadable manifest, a missing file, a wrong size (truncated) or a wrong checksum.
    """
    raise NotImplementedError("Exercise 11.1: load_snapshot is not written yet")
