"""The README's torchrun example runs: a trainer and two parameter servers on loopback, under torchrun.

Each test starts torchrun in its own process group on a free port of 127.0.0.1, with small
sizes, and kills the whole group if it runs past its time. See
monolith_ref/distributed/torchrun_example.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import monolith_ref.distributed.torchrun_example as example

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--steps", "60", "--batch", "64", "--ids", "500", "--snapshot-every", "20", "--checkpoint-every", "20",
         "--log-every", "20", "--timeout", "60"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _torchrun(*args: str, cwd: Path, limit: float = 240.0) -> subprocess.CompletedProcess[str]:
    torchrun = Path(sys.executable).with_name("torchrun")
    launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    cmd = [*launcher, "--nproc-per-node", "3", "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
           *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and every rank it started
        out, _ = proc.communicate()
        pytest.fail(f"torchrun ran past {limit:.0f} s:\n{out[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def _snapshots(folder: Path) -> list[str]:
    return sorted(str(p.parent.relative_to(folder)) for p in folder.glob("*/*/manifest.json")) + sorted(
        str(p.parent.relative_to(folder)) for p in folder.glob("*/*/*/manifest.json"))


def test_the_example_trains_and_writes_snapshots(tmp_path: Path) -> None:
    run = _torchrun("-m", "monolith_ref.distributed.torchrun_example", "--snapshot-dir", "snaps", *SMALL,
                    cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "trainer: attempt 0, created table 'user' on ['ps0', 'ps1']" in run.stdout, run.stdout[-4000:]
    assert "trainer: done, 60 steps" in run.stdout, run.stdout[-4000:]
    snaps = _snapshots(tmp_path / "snaps")
    for folder in ("ps0/user/snap-", "ps1/user/snap-", "trainer/step-000000000060"):
        assert any(s.startswith(folder) for s in snaps), snaps
    assert len([s for s in snaps if s.startswith("ps0/")]) == 2  # --snapshot-keep 2


def test_a_restart_restores_the_servers_and_reattaches_the_trainer(tmp_path: Path) -> None:
    script = str(Path(example.__file__).resolve())  # the file-path form of the command, this time
    run = _torchrun("--max-restarts", "1", script, "--snapshot-dir", str(tmp_path / "snaps"), "--fail-at-step", "30",
                    *SMALL, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "a simulated failure at step 30" in run.stdout
    assert "ps0: restored ['user']" in run.stdout and "ps1: restored ['user']" in run.stdout, run.stdout[-4000:]
    assert "trainer: attempt 1, attached to table 'user' on ['ps0', 'ps1'], starting at step 20" in run.stdout
    assert "trainer: done, 60 steps" in run.stdout


def test_outside_torchrun_it_says_how_to_start_it(capsys, monkeypatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert example.main([]) == 2
    assert "start it with torchrun" in capsys.readouterr().err


def test_only_a_restart_restores() -> None:
    args = example.build_parser().parse_args(["--snapshot-dir", "d", "--snapshot-every", "7"])
    first = example.ps_argv(args, restarted=False)
    assert first[:4] == ["--snapshot-dir", "d", "--snapshot-every", "7"] and "--restore" not in first
    assert example.ps_argv(args, restarted=True)[-1] == "--restore"
