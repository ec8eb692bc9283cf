"""Kill the online trainer with SIGKILL, again and again; the end state must not notice.

A small synthetic stream goes through the pipeline into an on-disk log (fsync on). Then a
trainer process (tests/reliability/trainer_child.py) trains from the log with a snapshot
after every batch, and this test kills it with SIGKILL at seeded random moments (after a
random number of snapshots, plus a random fraction of a batch; some of them while a
snapshot is being written, with fsync slowed down to make that window wide), restarting it
each time until it finishes. The result must be bit-identical to an uninterrupted run:
every table array, every head parameter, the number of examples and the order-sensitive
digest of the request IDs (no example lost, none applied twice).

The killed processes are children forked from a warm server process (starting Python,
PyTorch and Numba costs seconds here); the final run uses a fresh interpreter.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from monolith_ref.checkpoint import TMP_PREFIX, DEL_PREFIX, list_snapshots, read_snapshot
from monolith_ref.data.synthetic import StreamConfig, synthetic_stream
from monolith_ref.resume import EMPTY_DIGEST, request_digest
from monolith_ref.streaming.codec import decode_examples
from monolith_ref.streaming.joiner import JoinerConfig, OnlineJoiner
from monolith_ref.streaming.log import Log
from monolith_ref.streaming.pipeline import EXAMPLES, run_pipeline
from monolith_ref.streaming.simulate import ArrivalConfig, arrivals

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("trainer_child.py")
KILLS = 25
MIDWRITE_EVERY = 6  # every 6th kill slows fsync down and aims at a snapshot being written
SEED = 20240611


def _child_module() -> Any:
    spec = importlib.util.spec_from_file_location("trainer_child", CHILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Any]:
    """A log of ~3,000 joined examples on disk, and the trainer's spec."""
    root = tmp_path_factory.mktemp("sigkill")
    events = synthetic_stream(StreamConfig(num_users=300, num_items=200, new_items_per_day=20, days=2,
                                           events_per_day=1500, seed=3))
    with Log(root / "log", fsync=True) as log, OnlineJoiner(JoinerConfig(window=1800)) as joiner:
        run_pipeline(events, arrivals(events, ArrivalConfig(seed=3)), joiner, log)
    spec = {"log": str(root / "log"), "snapshots": str(root / "snapshots"), "dim": 8, "hidden": [16], "seed": 5,
            "batch_size": 20, "snapshot_every": 1, "keep": 3, "group": "online",
            "field_names": list(events.field_names), "dense_names": list(events.dense_names)}
    (root / "spec.json").write_text(json.dumps(spec))
    return {"root": root, "spec": spec, "spec_path": root / "spec.json"}


class Server:
    """The fork server of trainer_child.py, with its stdout read by a thread into a queue."""

    def __init__(self, spec_path: Path, stderr: Path) -> None:
        self._err = open(stderr, "w")
        self.proc = subprocess.Popen([sys.executable, str(CHILD), "--serve", str(spec_path)], cwd=ROOT, env=_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.line(120) == "ready"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("eof")

    def line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from the trainer server in {timeout} s") from None

    def start(self, slow_fsync: float = 0.0) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{slow_fsync}\n")
        self.proc.stdin.flush()
        word, pid = self.line(30).split()
        assert word == "pid", word
        return int(pid)

    def wait(self, timeout: float = 60) -> tuple[int, list[str]]:
        """The child's exit status (-9 for SIGKILL) and what it printed."""
        printed = []
        while True:
            line = self.line(timeout)
            if line.startswith("status "):
                return int(line.split()[1]), printed
            assert line != "eof", "the trainer server died"
            printed.append(line)

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._err.close()


def _top_step(snapshots: Path) -> int:
    names = [p.name for p in list_snapshots(snapshots)]
    return int(max(names).split("-")[1]) if names else 0


def _wait_for(condition, proc_done, timeout: float = 60) -> bool:
    """Poll ``condition`` every millisecond; False if the child finished first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc_done():
            return False
        assert time.monotonic() < deadline, "the trainer made no progress"
        time.sleep(0.001)
    return True


def _committed(spec: dict[str, Any]) -> int:
    file = Path(spec["log"]) / "__offsets__" / f"{spec['group']}.json"
    return json.loads(file.read_text())[EXAMPLES]["0"] if file.exists() else 0


def _leftovers(snaps: Path) -> set[str]:
    """What killed writers left: temporary and half-deleted snapshot directories."""
    if not snaps.exists():
        return set()
    return {p.name for p in snaps.iterdir() if p.name.startswith((TMP_PREFIX, DEL_PREFIX))}


def _check_after_kill(spec: dict[str, Any], stats: Counter, stale: set[str]) -> None:
    """Every snapshot under a final name verifies; note what the kill interrupted (leftovers
    that were not there before this child started)."""
    snaps = Path(spec["snapshots"])
    new = _leftovers(snaps) - stale
    if any(n.startswith(TMP_PREFIX) for n in new):
        stats["mid-snapshot-write (temp dir left)"] += 1
    if any(n.startswith(DEL_PREFIX) for n in new):
        stats["mid-prune (.del dir left)"] += 1
    offsets = [read_snapshot(p)[1]["offsets"][0][2] for p in list_snapshots(snaps)]  # raises if one is partial
    newest = max(offsets, default=0)
    committed = _committed(spec)
    assert committed <= newest, "a commit ran ahead of the snapshot it belongs to"
    if committed < newest:
        stats["after snapshot, before commit"] += 1


def _reference(spec: dict[str, Any], tmp: Path) -> Any:
    """The uninterrupted run, in this process (one snapshot at the end)."""
    child = _child_module()
    with Log(spec["log"]) as log:
        trainer = child.build(spec, log, snapshots=str(tmp / "reference"), group="reference", snapshot_every=10**6)
        trainer.run()
    return trainer


def _state(trainer: Any) -> dict[str, Any]:
    """Every array and tensor of a trainer: both tables, the head, Adam's moments and steps."""
    m = trainer.model
    out: dict[str, Any] = {f"vectors/{k}": v for k, v in m.vectors.table.export().items()}
    out.update({f"weights/{k}": v for k, v in m.weights.table.export().items()})
    out.update({f"head/{k}": v for k, v in m.head.state_dict().items()})
    for i, state in trainer.optimizer.state_dict()["state"].items():
        out.update({f"adam/{i}/{k}": v for k, v in state.items()})
    return out


def _digest_from_log(spec: dict[str, Any]) -> tuple[int, str]:
    """Examples and digest computed straight from the log, batch by batch."""
    digest, n = EMPTY_DIGEST, 0
    with Log(spec["log"]) as log:
        end = log.end_offset(EXAMPLES, 0)
        for start in range(0, end, spec["batch_size"]):
            recs = log.read(EXAMPLES, 0, start, spec["batch_size"])
            ev = decode_examples([r.value for r in recs], spec["field_names"], spec["dense_names"]).events
            digest, n = request_digest(digest, ev.request_id), n + len(recs)
    return n, digest


def test_sigkilled_trainer_resumes_bit_identical(world, tmp_path) -> None:
    spec, snaps = world["spec"], Path(world["spec"]["snapshots"])
    rng = random.Random(SEED)
    stats: Counter = Counter()
    started = time.perf_counter()
    server = Server(world["spec_path"], tmp_path / "server.err")
    try:
        kills = 0
        while kills < KILLS:
            midwrite = kills % MIDWRITE_EVERY == MIDWRITE_EVERY - 1
            top, stale = _top_step(snaps), _leftovers(snaps)
            pid = server.start(slow_fsync=0.02 if midwrite else 0.0)
            done = lambda: not server.lines.empty()  # noqa: E731 - the child printed: it finished
            if midwrite:  # wait for a snapshot being written, then kill inside the (slowed) write
                alive = _wait_for(lambda: any(n.startswith(TMP_PREFIX) for n in _leftovers(snaps) - stale), done)
                time.sleep(rng.uniform(0.0, 0.1))
            else:  # after 0-3 new snapshots, plus up to a few batches' time
                target = top + rng.randint(0, 3)
                alive = _wait_for(lambda: _top_step(snaps) >= target, done)
                time.sleep(rng.uniform(0.0, 0.08))
            if alive:
                os.kill(pid, signal.SIGKILL)
            status, printed = server.wait()
            assert status == -signal.SIGKILL, (
                f"the trainer exited with {status} after {kills} kills (printed {printed}); if it finished, "
                f"make the log longer\n{(tmp_path / 'server.err').read_text()}")
            kills += 1
            stats["kills"] += 1
            if midwrite:
                stats["aimed at a snapshot write"] += 1
            _check_after_kill(spec, stats, stale)
    finally:
        server.close()
    forked = time.perf_counter() - started

    # The final run in a fresh interpreter: nothing is inherited from the server.
    cold = [sys.executable, str(CHILD), str(world["spec_path"])]
    final = subprocess.run(cold, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    _, step, offset, examples, digest = final.stdout.split()

    reference = _reference(spec, tmp_path)
    with Log(spec["log"]) as log:
        end = log.end_offset(EXAMPLES, 0)
        resumed = _child_module().build(spec, log)  # restores the killed runs' final snapshot
        assert log.committed(spec["group"], EXAMPLES, 0) == end
    n_log, digest_log = _digest_from_log(spec)
    ref = reference.progress
    assert (int(step), int(offset), int(examples), digest) == (ref.step, end, n_log, digest_log)
    assert (ref.examples, ref.digest) == (n_log, digest_log)
    assert (resumed.progress.step, resumed.progress.examples, resumed.progress.digest) == (ref.step, ref.examples,
                                                                                          ref.digest)
    a, b = _state(reference), _state(resumed)
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        same = torch.equal(x, y) if isinstance(x, torch.Tensor) else np.array_equal(np.asarray(x), np.asarray(y))
        assert same, f"{key} differs after {stats['kills']} kills"
    assert not [p for p in snaps.iterdir() if p.name.startswith((TMP_PREFIX, DEL_PREFIX))], "leftovers not cleaned"
    assert stats["kills"] >= 20
    assert stats["mid-snapshot-write (temp dir left)"] >= stats["aimed at a snapshot write"] >= 1
    print(f"\nSIGKILL: {dict(stats)}; {ref.step} batches, {end} examples; forked part {forked:.1f} s")
