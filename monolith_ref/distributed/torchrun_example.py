"""A complete torchrun job: one trainer and N parameter servers, with snapshots and restarts.

Run it on one machine (3 processes: the trainer and 2 parameter servers) with::

    torchrun --nproc-per-node 3 --master-addr 127.0.0.1 --master-port 29500 \\
        -m monolith_ref.distributed.torchrun_example --snapshot-dir snapshots --steps 200

(or give torchrun this file's path instead of ``-m monolith_ref.distributed.torchrun_example``).
torchrun starts the same program on every rank and sets ``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``; so :func:`main` branches on ``RANK``:

* **rank 0 is the trainer** (RPC name ``"trainer"``): it joins the group
  (:func:`~monolith_ref.distributed.connect_trainer`), puts an embedding table on the
  parameter servers (:class:`~monolith_ref.distributed.RemoteTable`, table id ``"user"``),
  trains a small click model on it, and leaves (:func:`~monolith_ref.distributed.cluster.disconnect_trainer`),
  which lets every parameter server leave too: the job ends with exit code 0 everywhere.
* **ranks 1..N are parameter servers** ``ps0`` .. ``ps{N-1}``: each runs what
  ``monolith-ref ps`` runs, :func:`~monolith_ref.distributed.ps.main_ps`, with the snapshot
  options given explicitly (``main_ps([])`` would take no snapshots at all).

**Restarts.** With ``torchrun --max-restarts K`` a failure of any process restarts the
whole group, and torchrun counts the attempts in ``TORCHELASTIC_RESTART_COUNT``. On a
restart (count > 0) the parameter servers start with ``--restore`` (each loads its newest
snapshot before joining) and the trainer attaches to the table that is already there
(``RemoteTable(..., attach=True)``) and resumes from its own last checkpoint. On the first
attempt neither happens: the servers start empty and the trainer creates the table (so a
snapshot folder left by an earlier job is not read; give each job its own folder).
``--fail-at-step S`` makes the trainer crash at step ``S`` of the first attempt, to watch
that happen.

**The snapshot folder** (``--snapshot-dir``) holds, per parameter server and table, the
shard snapshots that server writes by itself every ``--snapshot-every`` changing
operations (lookups for training, gradient steps; paper §2.3), and the trainer's own
checkpoints (its dense weights and step) every ``--checkpoint-every`` steps, the newest
``--snapshot-keep`` of each::

    <snapshot-dir>/ps0/user/snap-000000000007/manifest.json, *.npy   shard 0 of table "user"
    <snapshot-dir>/ps1/user/snap-000000000007/...                    shard 1
    <snapshot-dir>/trainer/step-000000000100/manifest.json, *.npy    the trainer: w, b, step

Each snapshot is a folder written atomically with checksums (:mod:`monolith_ref.checkpoint`).
The servers snapshot on their own schedule, so after a restart the rows and the trainer's
weights come from nearby but not identical moments, as in Monolith, which accepts losing a
little training on a failure. At the end the trainer has every server snapshot once more.

**Addresses.** On loopback (127.0.0.1, the default) the RPC transports use ``lo`` by
themselves. On several machines set ``TP_SOCKET_IFNAME`` and ``GLOO_SOCKET_IFNAME`` to the
interface that reaches the others and run ``torchrun --nnodes M --node-rank i --master-addr
<node 0's address> ...``; torchrun's own rendezvous store listens on every interface of the
node it runs on, so run such jobs on a network you trust.

See: book/ch12_distributed.md
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from monolith_ref.checkpoint import latest_snapshot, read_snapshot, snapshot_name, write_snapshot
from monolith_ref.distributed import RemoteTable, connect_trainer, disconnect_trainer, main_ps
from monolith_ref.optim import Adagrad
from monolith_ref.tables import TableConfig

__all__ = ["TABLE_ID", "build_parser", "restart_count", "ps_argv", "train", "main"]

#: The id of the example's table on every parameter server (a folder name in the snapshots).
TABLE_ID = "user"


def build_parser() -> argparse.ArgumentParser:
    """The example's options (the same on every rank). See: book/ch12_distributed.md"""
    p = argparse.ArgumentParser(prog="torchrun ... -m monolith_ref.distributed.torchrun_example",
                                description="A trainer (rank 0) and parameter servers (ranks 1..N) under torchrun.")
    p.add_argument("--snapshot-dir", type=Path, default=Path("snapshots"),
                   help="where the parameter servers and the trainer write their snapshots (default: snapshots)")
    p.add_argument("--snapshot-every", type=int, default=50,
                   help="each parameter server snapshots a table every N changing operations (default 50)")
    p.add_argument("--snapshot-keep", type=int, default=2, help="snapshots kept per table and for the trainer")
    p.add_argument("--checkpoint-every", type=int, default=50, help="the trainer checkpoints every N steps")
    p.add_argument("--steps", type=int, default=200, help="training steps (default 200)")
    p.add_argument("--batch", type=int, default=256, help="IDs per step (default 256)")
    p.add_argument("--ids", type=int, default=5000, help="distinct user IDs in the stream (default 5000)")
    p.add_argument("--dim", type=int, default=16, help="embedding width (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the table and the stream")
    p.add_argument("--log-every", type=int, default=50, help="print the loss every N steps")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the group and for one call")
    p.add_argument("--fail-at-step", type=int, default=None,
                   help="crash the trainer at this step of the first attempt (to try --max-restarts)")
    return p


def restart_count() -> int:
    """How many times torchrun restarted this group (``TORCHELASTIC_RESTART_COUNT``; 0 outside torchrun).

    See: book/ch12_distributed.md
    """
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT") or 0)


def ps_argv(args: argparse.Namespace, restarted: bool) -> list[str]:
    """The command line a parameter-server rank gives :func:`~monolith_ref.distributed.ps.main_ps`.

    Rank, world size, address and port come from torchrun's variables; the snapshot options
    are explicit; ``--restore`` only on a restart. See: book/ch12_distributed.md
    """
    argv = ["--snapshot-dir", str(args.snapshot_dir), "--snapshot-every", str(args.snapshot_every),
            "--snapshot-keep", str(args.snapshot_keep), "--timeout", str(args.timeout)]
    return argv + (["--restore"] if restarted else [])


def _batch(rng: np.random.Generator, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the stream: user IDs (a few users are much more active) and their clicks."""
    ids = (rng.zipf(1.3, args.batch) % args.ids + 1).astype(np.uint64)
    clicks = (ids % 3 == 0).astype(np.float64)  # what the model has to learn, one user at a time
    return ids, clicks


def _load_checkpoint(folder: Path) -> tuple[int, np.ndarray, float] | None:
    """The trainer's last ``(step, w, b)`` under ``folder``, or None if it wrote none."""
    path = latest_snapshot(folder) if folder.is_dir() else None
    if path is None:
        return None
    arrays, meta, _ = read_snapshot(path)
    return int(meta["step"]), np.asarray(arrays["w"], dtype=np.float64), float(meta["b"])


def train(table: RemoteTable, args: argparse.Namespace, start: int, w: np.ndarray, b: float) -> float:
    """Train a logistic click model on ``table`` from step ``start``; return the last logged loss.

    The embedding rows live on the parameter servers (Adagrad, per row); the dense weights
    ``w`` (one per embedding dimension) and the bias ``b`` stay here, updated by plain SGD.
    See: book/ch12_distributed.md
    """
    folder = args.snapshot_dir / "trainer"
    loss = float("nan")
    for step in range(start, args.steps):
        rng = np.random.default_rng([args.seed, step])  # the same batch for a step, whatever the restarts
        ids, clicks = _batch(rng, args)
        rows = table.lookup(ids, now=step).astype(np.float64)
        p = 1.0 / (1.0 + np.exp(-(rows @ w + b)))
        err = p - clicks  # d(log loss)/d(logit)
        table.apply_gradients(ids, (err[:, None] * w[None, :]).astype(np.float32))
        w = w - 0.1 * rows.T @ err / len(ids)
        b = b - 0.1 * float(err.mean())
        done = step + 1
        if done % args.log_every == 0 or done == args.steps:
            eps = 1e-7
            loss = float(-np.mean(clicks * np.log(p + eps) + (1 - clicks) * np.log(1 - p + eps)))
            print(f"trainer: step {done}  log loss {loss:.4f}  rows {len(table)}", flush=True)
        if done % args.checkpoint_every == 0 or done == args.steps:
            write_snapshot(folder, snapshot_name(done), {"w": w}, {"step": done, "b": b}, keep=args.snapshot_keep)
        if args.fail_at_step is not None and done == args.fail_at_step and restart_count() == 0:
            raise RuntimeError(f"trainer: a simulated failure at step {done} (--fail-at-step)")
    return loss


def _run_trainer(args: argparse.Namespace, world_size: int) -> int:
    addr = os.environ.get("MASTER_ADDR") or "127.0.0.1"
    port = int(os.environ.get("MASTER_PORT") or 29500)
    again = restart_count() > 0
    names = connect_trainer(world_size, addr, port, timeout=args.timeout)
    try:
        config = TableConfig(dim=args.dim, seed=args.seed, optimizer=Adagrad(lr=0.1))
        table = RemoteTable(config, names, table_id=TABLE_ID, attach=again, timeout=args.timeout)
        start, w, b = 0, np.random.default_rng(args.seed).normal(0.0, 1.0, args.dim), 0.0
        if again:  # resume from the trainer's last checkpoint, if it wrote one
            start, w, b = _load_checkpoint(args.snapshot_dir / "trainer") or (start, w, b)
        print(f"trainer: attempt {restart_count()}, {'attached to' if again else 'created'} table {TABLE_ID!r} "
              f"on {list(names)}, starting at step {start}", flush=True)
        loss = train(table, args, start, w, b)
        paths = table.snapshot()  # one more snapshot of every shard, now
        print(f"trainer: done, {args.steps} steps, log loss {loss:.4f}, {len(table)} rows, "
              f"{len(paths)} final shard snapshots under {args.snapshot_dir}", flush=True)
    except BaseException:
        disconnect_trainer(graceful=False)  # the others are told by torchrun, which stops the group
        raise
    disconnect_trainer()  # graceful: waits until every parameter server leaves too
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run this rank's part: the trainer on rank 0, a parameter server on ranks 1..N.

    See: book/ch12_distributed.md
    """
    args = build_parser().parse_args(argv)
    if not os.environ.get("RANK") or not os.environ.get("WORLD_SIZE"):
        print("torchrun_example: RANK and WORLD_SIZE are not set; start it with torchrun "
              "(torchrun --nproc-per-node 3 -m monolith_ref.distributed.torchrun_example)", file=sys.stderr)
        return 2
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if world_size < 2:
        print("torchrun_example: needs at least 2 processes (a trainer and a parameter server)", file=sys.stderr)
        return 2
    if rank == 0:
        return _run_trainer(args, world_size)
    return int(main_ps(ps_argv(args, restarted=restart_count() > 0)))


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as `python -m monolith_ref.distributed` does: torch's teardown is slow, and nothing is left
