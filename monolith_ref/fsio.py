"""Durable file writes: the two fsync rules every on-disk structure here follows.

A write reaches the disk only after ``fsync`` on the file; a file's *name* (a create, a
rename, a delete) reaches the disk only after ``fsync`` on its directory. The log (chapter 9)
and the snapshots (chapter 11) both build on these two helpers.

See: book/ch11_fault_tolerance.md
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir", "write_synced", "atomic_write"]


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make the names in ``directory`` durable (creates, renames, deletes).

    See: book/ch11_fault_tolerance.md
    """
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: str | os.PathLike, data: bytes, mode: str = "xb", fsync: bool = True) -> None:
    """Write ``data`` to a file and (with ``fsync``) wait until it is on disk.

    ``mode`` ``"xb"`` refuses to overwrite an existing file. See: book/ch11_fault_tolerance.md
    """
    with open(path, mode) as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def atomic_write(path: str | os.PathLike, data: bytes, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` all at once: a temporary file, synced, renamed over
    ``path``, then the directory synced. A crash leaves the old file or the new one.

    See: book/ch11_fault_tolerance.md
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write_synced(tmp, data, "wb", fsync)
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)
