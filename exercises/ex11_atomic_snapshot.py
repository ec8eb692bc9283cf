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
    """Write ``arrays`` as the snapshot ``directory/name``, crash-proof; return its path.

    The snapshot is a directory holding one ``<key>.npy`` file per array (written with
    ``np.save(..., allow_pickle=False)``; keys are simple names: letters, digits, ``_``) and a
    ``manifest.json`` that lets :func:`load_snapshot` check every file before trusting it
    (what it records is up to you; a size and a SHA-256 per file do the job). Create
    ``directory`` if needed.

    What must hold, whatever instruction the process is killed at:

    * under a final name in ``directory`` there is only ever a complete snapshot: it appears
      whole, in one atomic step, or not at all. Unfinished work may only ever exist inside
      ``directory`` under a name that starts with ``"."`` (readers skip those);
    * a snapshot is never overwritten: raise ``FileExistsError`` if ``directory/name``
      exists, and leave it as it is;
    * the snapshot is durable before it becomes visible (every file's bytes, and the
      directory entries that name them), and its publication is durable before the function
      returns: a power cut afterwards loses nothing;
    * after a call that returns, nothing but the snapshots is left in ``directory``.

    The grader kills writer processes at random moments and loads what they left, and it
    watches your ``os.fsync``, ``os.rename`` and ``os.replace`` calls.

    Hints: ``f.flush()`` hands bytes from Python to the kernel; ``os.fsync(fd)`` from the
    kernel to the disk; a directory is made durable with ``os.fsync`` on a descriptor from
    ``os.open(path, os.O_RDONLY)``. Which file-system operation is atomic on POSIX, and why
    must its source and target be on the same file system? In what order must the steps go so
    that a kill between any two of them is harmless? ``tempfile.mkdtemp`` makes a fresh,
    uniquely named directory.
    """
    raise NotImplementedError("Exercise 11.1: atomic_write_snapshot is not written yet")


def load_snapshot(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of the snapshot at ``path``, checked before anything is returned.

    Return ``{key: array}``, equal in values, dtype and shape to what was written. Raise
    ``ValueError`` naming the problem when the snapshot cannot be trusted: its manifest is
    missing or unreadable, or a file the manifest lists is missing, truncated, longer, or has
    any byte changed. Check the bytes before you parse them (``np.load`` of an
    ``io.BytesIO`` parses bytes you already hold; pass ``allow_pickle=False``).
    """
    raise NotImplementedError("Exercise 11.1: load_snapshot is not written yet")
