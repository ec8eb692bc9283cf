"""Grader for Exercise 11.1: an atomic, checksummed snapshot that survives SIGKILL."""

from __future__ import annotations

import inspect
import os
import queue
import random
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conformance.explain import raises

pytestmark = pytest.mark.exercise("11.1", title="Atomic snapshots")

ROOT = Path(__file__).resolve().parents[2]
KILLS = 10


def expected(i: int) -> dict[str, np.ndarray]:
    """What the writer process writes as snapshot number ``i`` (its source is sent to it)."""
    return {"big": np.full(200_000, i, dtype=np.float32), "ids": np.arange(1000, dtype=np.uint64) * np.uint64(i),
            "flag": np.array([i % 2 == 0])}


WRITER = textwrap.dedent("""
    import importlib, os, sys, time
    import numpy as np
    real_fsync = os.fsync
    def slow_fsync(fd):  # a slow disk: it widens the window in which a kill lands mid-write
        time.sleep(0.003)
        real_fsync(fd)
    os.fsync = slow_fsync
""") + inspect.getsource(expected) + textwrap.dedent("""
    mod = importlib.import_module(sys.argv[1])
    directory, i = sys.argv[2], int(sys.argv[3])
    while True:
        mod.atomic_write_snapshot(directory, f"snap-{i:04d}", expected(i))
        print(i, flush=True)
        i += 1
""")


def _arrays() -> dict[str, np.ndarray]:
    return {"emb": np.arange(24, dtype=np.float32).reshape(6, 4), "ids": np.array([3, 2**64 - 1], dtype=np.uint64),
            "seen": np.array([-5, 7], dtype=np.int64), "empty": np.zeros((0, 4), dtype=np.float32)}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.points(2)
def test_round_trip_and_nothing_left_over(mod, tmp_path) -> None:
    path = mod.atomic_write_snapshot(tmp_path / "snaps", "s1", _arrays())
    assert Path(path) == tmp_path / "snaps" / "s1", (
        f"atomic_write_snapshot(root, 's1', ...) must return root/s1, got {path}")
    assert _same(mod.load_snapshot(path), _arrays()), (
        "load_snapshot(atomic_write_snapshot(...)) must give back the same arrays: names, dtypes and values "
        "(float32, uint64 up to 2**64 - 1, int64, an empty (0, 4) array)")
    left = sorted(p.name for p in (tmp_path / "snaps").iterdir())
    assert left == ["s1"], (
        f"after one write the root must hold only 's1' (the temporary directory is gone), holds {left}")


@pytest.mark.points(2)
def test_load_rejects_damaged_snapshots(mod, tmp_path) -> None:
    good = Path(mod.atomic_write_snapshot(tmp_path / "snaps", "s1", _arrays()))
    damages = []
    for file in sorted(good.glob("*.npy")):
        damages += [(file.name, "flip"), (file.name, "truncate"), (file.name, "delete")]
    damages.append(("manifest.json", "delete"))
    assert len(damages) == 3 * len(_arrays()) + 1, (
        f"one .npy file per array, please: {len(_arrays())} arrays, found {len(damages) // 3} .npy files")
    for i, (name, how) in enumerate(damages):
        copy = tmp_path / f"copy{i}"
        shutil.copytree(good, copy)
        file = copy / name
        data = bytearray(file.read_bytes())
        if how == "flip":
            data[len(data) // 2] ^= 0x10
            file.write_bytes(bytes(data))
        elif how == "truncate":
            file.write_bytes(bytes(data[:-2]))
        else:
            file.unlink()
        damage = {"flip": "had one bit flipped", "truncate": "lost its last 2 bytes", "delete": "was deleted"}[how]
        with raises(ValueError, f"load_snapshot of a snapshot whose {name} {damage} must refuse it"):
            mod.load_snapshot(copy)
    assert _same(mod.load_snapshot(good), _arrays()), "the undamaged snapshot must still load the same arrays"


@pytest.mark.points(2)
def test_the_durability_protocol(mod, tmp_path, monkeypatch) -> None:
    events: list[tuple] = []
    real_fsync, real_rename, real_replace = os.fsync, os.rename, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"))
        real_fsync(fd)

    def rename(src, dst) -> None:
        events.append(("rename", Path(src), Path(dst)))
        real_rename(src, dst)

    def replace(src, dst) -> None:
        events.append(("rename", Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "replace", replace)
    root = tmp_path / "snaps"
    final = Path(mod.atomic_write_snapshot(root, "s1", _arrays()))
    publish = [i for i, e in enumerate(events) if e[0] == "rename" and e[2] == final]
    assert len(publish) == 1, f"expected one rename onto {final}, saw {events}"
    at = publish[0]
    _, src, _ = events[at]
    assert src.parent == root and src.name.startswith("."), f"the temporary directory {src} must be .-named in {root}"
    before, after = events[:at], events[at + 1 :]
    assert before.count(("fsync", "file")) >= len(_arrays()) + 1, "fsync every array file and the manifest first"
    assert ("fsync", "dir") in before, "fsync the temporary directory before the rename"
    assert ("fsync", "dir") in after, "fsync the parent directory after the rename"
    with raises(FileExistsError, "atomic_write_snapshot onto an existing snapshot name must refuse to replace it"):
        mod.atomic_write_snapshot(root, "s1", {"other": np.zeros(3)})
    monkeypatch.undo()
    assert _same(mod.load_snapshot(final), _arrays()), "the refused second write must leave 's1' as it was"


def _lines(proc: subprocess.Popen) -> queue.Queue:
    q: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            q.put(line.strip())
        q.put(None)

    threading.Thread(target=read, daemon=True).start()
    return q


def _check(mod, directory: Path, last_done: int) -> int:
    """Every snapshot under a final name is complete and right; the last reported one exists."""
    finals = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    indices = [int(p.name.split("-")[1]) for p in finals]
    assert indices == list(range(1, len(indices) + 1)), f"snapshots went missing: {[p.name for p in finals]}"
    assert last_done in indices, f"snap-{last_done:04d} was written (the function returned) but is gone"
    for p, i in zip(finals, indices):
        try:
            got = mod.load_snapshot(p)
        except ValueError as exc:
            raise AssertionError(f"{p.name} is visible under its final name but does not load: {exc}") from None
        assert _same(got, expected(i)), f"{p.name} holds the wrong data"
    return max(indices)


@pytest.mark.points(4)
def test_sigkill_never_leaves_a_partial_snapshot(mod, tmp_path) -> None:
    rng = random.Random(1101)
    directory = tmp_path / "snaps"
    next_index, last_done = 1, 0
    for _ in range(KILLS):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, mod.__name__, str(directory), str(next_index)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = _lines(proc)
        try:
            for _ in range(rng.randint(1, 3)):  # let it finish 1-3 snapshots ...
                line = lines.get(timeout=60)
                if line is None:
                    raise AssertionError(f"the writer died on its own:\n{proc.stderr.read()}")
                last_done = int(line)
            time.sleep(rng.uniform(0.0, 0.03))  # ... then kill it somewhere in the next one
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        while (line := lines.get(timeout=30)) is not None:  # snapshots it reported before it died
            last_done = int(line)
        assert proc.returncode == -signal.SIGKILL, (
            f"set-up: the writer should die of SIGKILL, exit code {proc.returncode}")
        next_index = _check(mod, directory, last_done) + 1
    assert last_done >= KILLS, f"set-up: {KILLS} kills should see at least {KILLS} snapshots written, saw {last_done}"
