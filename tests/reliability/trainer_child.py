"""The trainer processes that tests/reliability/test_sigkill.py kills and restarts.

Two ways to run it:

* ``python tests/reliability/trainer_child.py SPEC.json``: one trainer in a fresh
  interpreter, built from the spec (:func:`build`); it trains to the end of the log and
  prints ``done <step> <offset> <examples> <digest>``.
* ``python tests/reliability/trainer_child.py --serve SPEC.json``: a fork server. Starting
  Python, PyTorch and Numba costs seconds on a busy machine, so this process pays it once,
  warms the compiled kernels up, prints ``ready``, and then for each line ``<slow fsync
  seconds>`` on stdin forks a child that runs the trainer as above, prints ``pid <pid>``,
  waits for the child and prints ``status <exit code or -signal>``. The test SIGKILLs the
  children: real processes, killed at any instruction, with no chance to clean up. An empty
  line ends the server.

A positive ``slow fsync`` makes every ``os.fsync`` in that child sleep first, which widens
the window in which a kill lands in the middle of writing a snapshot.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monolith_ref.resume import OnlineTrainer
from monolith_ref.streaming.log import Log
from monolith_ref.training import ModelConfig, TrainConfig, build_deepfm, train_step


def build(spec: dict[str, Any], log: Log, **overrides: Any) -> OnlineTrainer:
    """The trainer a spec describes (the test builds its reference run with this too)."""
    model = ModelConfig(dim=spec["dim"], hidden=tuple(spec["hidden"]), seed=spec["seed"])
    train = TrainConfig(batch_size=spec["batch_size"], progress=False, seed=spec["seed"])
    kwargs = {"group": spec["group"], "snapshot_every": spec["snapshot_every"], "keep": spec["keep"], **overrides}
    snapshots = kwargs.pop("snapshots", spec["snapshots"])
    return OnlineTrainer(log, snapshots, model, train, spec["field_names"], spec["dense_names"], **kwargs)


def run(spec: dict[str, Any]) -> None:
    with Log(spec["log"]) as log:
        p = build(spec, log).run()
    print(f"done {p.step} {p.offset} {p.examples} {p.digest}", flush=True)


def _slow_fsync(seconds: float) -> None:
    real = os.fsync

    def fsync(fd: int) -> None:
        time.sleep(seconds)
        real(fd)

    os.fsync = fsync


def _warm_up(spec: dict[str, Any]) -> None:
    """Run every compiled kernel the trainer uses once, so that forked children start warm."""
    from monolith_ref.checkpoint import restore_trainer, save_trainer

    model = build_deepfm(len(spec["field_names"]), len(spec["dense_names"]),
                         ModelConfig(dim=spec["dim"], hidden=tuple(spec["hidden"])))
    opt = torch.optim.Adam(model.head.parameters())
    from monolith_ref.events import Events

    n, f, d = 8, len(spec["field_names"]), len(spec["dense_names"])
    batch = Events(time=np.arange(n, dtype=np.int64), request_id=np.arange(n, dtype=np.uint64), user=None, item=None,
                   fields=np.arange(n * f, dtype=np.uint64).reshape(n, f), field_names=tuple(spec["field_names"]),
                   dense=np.zeros((n, d), dtype=np.float32), label=np.ones(n, dtype=np.float32),
                   dense_names=tuple(spec["dense_names"]))
    train_step(model, opt, batch)
    with tempfile.TemporaryDirectory() as tmp:
        restore_trainer(save_trainer(tmp, 1, model, opt, {("examples", 0): 0}), model, opt)


def serve(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(1)  # no thread pools in the server: forking a process with threads is unsafe
    _warm_up(spec)
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        slow = float(line)
        pid = os.fork()
        if pid == 0:  # the child: train, then leave without running the server's exit handlers
            code = 0
            try:
                if slow > 0:
                    _slow_fsync(slow)
                run(spec)
            except BaseException:  # noqa: BLE001 - report anything, exit non-zero
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(f"status {code}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        run(json.loads(Path(sys.argv[1]).read_text()))
