"""A resumable online trainer: training from the log that survives being killed.

The trainer reads joined examples from the log's ``examples`` topic and trains on them. To
survive a crash it needs two things that this module ties together:

* **Batches defined by the log, not by the process.** Batch ``k`` is the records at offsets
  ``[k*B, (k+1)*B)``. Where a batch starts is stored in the snapshot, so a restarted
  trainer cuts exactly the batches the dead one would have cut. (At the end of the log the
  last batch may be shorter; ``partial=False`` waits for a full one instead, which keeps the
  boundaries at multiples of ``B`` while the log is still growing.)
* **The snapshot is the source of truth.** Every ``snapshot_every`` batches the trainer
  writes a snapshot (:func:`~monolith_ref.checkpoint.save_trainer`) holding the model *and*
  the next offset to read. Only after the snapshot is durable does it commit that offset to
  its consumer group; the commit is for observers (lag, dashboards). On start, it restores
  the newest snapshot that verifies and seeks to that snapshot's offset, whatever the group
  committed; with no snapshot it starts at offset 0 with a fresh, seeded model.

So a trainer killed at any instruction resumes from a state that is exactly "the effect of
every record below offset o", and re-reads from ``o``: no record is lost, none is applied
twice. With ``snapshot_every=1`` a killed-and-resumed run ends bit-identical to an
uninterrupted one. With ``snapshot_every=k`` up to ``k`` batches' *work* is lost and done
again: the redone batches are re-applied to the restored state, so the end state is still
identical. "Loss bounded by the interval" here means lost work (time), not lost data, because
the log replays. Contrast experiment E6 (:mod:`monolith_ref.experiments.faults`): there a
parameter server restores its last snapshot and the updates since are *not* replayed, so
the model really loses them.

The snapshot meta also records how many examples were trained and an order-sensitive
digest of their request IDs (:func:`request_digest`), so a test can prove exactly-once.

See: book/ch11_fault_tolerance.md
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checks import check_int
from .checkpoint import (SnapshotMismatchError, clean_temp, latest_snapshot, list_snapshots, restore_trainer,
                         save_trainer)
from .models import DeepFM
from .streaming.codec import decode_examples
from .streaming.log import Consumer, Log
from .streaming.pipeline import EXAMPLES
from .tables.numba_table import NumbaTable
from .training import ModelConfig, TableFactory, TrainConfig, build_deepfm, train_step

__all__ = ["EMPTY_DIGEST", "request_digest", "TrainerProgress", "OnlineTrainer"]

EMPTY_DIGEST = "0" * 32


def request_digest(previous: str, request_ids: np.ndarray) -> str:
    """Chain one batch's request IDs onto a running digest: ``blake2b(previous || ids)``.

    Order-sensitive and cheap; equal digests after two runs mean the same requests were
    trained in the same batches in the same order (start from ``"0" * 32``).
    See: book/ch11_fault_tolerance.md
    """
    ids = np.ascontiguousarray(request_ids, dtype="<u8")
    return hashlib.blake2b(bytes.fromhex(previous) + ids.tobytes(), digest_size=16).hexdigest()


@dataclass
class TrainerProgress:
    """Where a trainer stands: batches trained (``step``), the next offset to read, examples
    trained, the request digest, and what happened in this process (batches trained,
    snapshots written, the snapshot it resumed from). See: book/ch11_fault_tolerance.md
    """

    step: int = 0
    offset: int = 0
    examples: int = 0
    digest: str = EMPTY_DIGEST
    batches_run: int = 0
    snapshots_written: int = 0
    resumed_from: str | None = None


def _set_aside(path: Path) -> Path:
    """Rename a broken snapshot to ``.corrupt-<name>[-n]``: kept for a post-mortem, out of the way."""
    n = 0
    while True:
        target = path.with_name(f".corrupt-{path.name}" + (f"-{n}" if n else ""))
        if not target.exists():
            path.rename(target)
            return target
        n += 1


class OnlineTrainer:
    """Trains a DeepFM from the log's ``examples`` topic (one partition), resumably.

    ``field_names``/``dense_names``: the examples' schema (the log holds bytes only).
    ``batch_size``: records per batch (default ``train_config.batch_size``).
    ``snapshot_every``: batches between snapshots; ``keep``: snapshots kept on disk.
    ``table``: the table factory for :func:`~monolith_ref.training.build_deepfm`.
    Construction restores the newest good snapshot in ``snapshot_dir`` (snapshots newer than
    it that do not verify are set aside as ``.corrupt-<name>``); :meth:`run` trains.
    One trainer per ``snapshot_dir`` at a time. See: book/ch11_fault_tolerance.md
    """

    def __init__(self, log: Log, snapshot_dir: str | os.PathLike[str], model_config: ModelConfig,
                 train_config: TrainConfig, field_names: Sequence[str], dense_names: Sequence[str] = (),
                 group: str = "trainer", batch_size: int | None = None, snapshot_every: int = 1,
                 keep: int = 3, topic: str = EXAMPLES, table: TableFactory = NumbaTable) -> None:
        self.snapshot_every = check_int(snapshot_every, "snapshot_every", low=1)
        self.keep = check_int(keep, "keep", low=1)
        self.batch_size = check_int(train_config.batch_size if batch_size is None else batch_size, "batch_size", low=1)
        self.log, self.topic, self.group = log, topic, group
        self.snapshot_dir = Path(snapshot_dir)
        self.train_config = train_config
        self.field_names, self.dense_names = tuple(field_names), tuple(dense_names)
        self.consumer = Consumer(log, group, [topic])
        if self.consumer.assignment() != [(topic, 0)]:
            raise ValueError(f"OnlineTrainer reads a one-partition topic; {topic!r} has {log.topics()[topic]}")
        self.model: DeepFM = build_deepfm(len(self.field_names), len(self.dense_names), model_config, table)
        self.optimizer = torch.optim.Adam(self.model.head.parameters(), lr=train_config.lr)
        self.progress = TrainerProgress()
        self._saved_step: int | None = None  # the step of the newest snapshot on disk
        self._resume()

    def _resume(self) -> None:
        clean_temp(self.snapshot_dir)  # what a writer killed mid-snapshot left behind
        path = latest_snapshot(self.snapshot_dir)  # warns about each broken snapshot it skips
        for newer in list_snapshots(self.snapshot_dir):
            if path is None or newer.name > path.name:  # broken, and in the way of the next names
                _set_aside(newer)
        if path is not None:
            info = restore_trainer(path, self.model, self.optimizer)
            extra = info["meta"]["extra"]
            if (self.topic, 0) not in info["offsets"] or not {"examples", "digest"} <= set(extra):
                raise SnapshotMismatchError(f"snapshot {path.name} was not written by an OnlineTrainer of "
                                            f"topic {self.topic!r} (offsets {info['offsets']})")
            self.progress = TrainerProgress(step=info["step"], offset=info["offsets"][(self.topic, 0)],
                                            examples=int(extra["examples"]), digest=str(extra["digest"]),
                                            resumed_from=path.name)
            self._saved_step = info["step"]
        # The snapshot's offset (or 0 with none), whatever the group committed: the commit is for observers.
        self.consumer.seek(self.topic, 0, self.progress.offset)

    def _snapshot(self) -> None:
        p = self.progress
        save_trainer(self.snapshot_dir, p.step, self.model, self.optimizer, {(self.topic, 0): p.offset},
                     extra_meta={"examples": p.examples, "digest": p.digest, "batch_size": self.batch_size},
                     keep=self.keep)
        p.snapshots_written += 1
        self._saved_step = p.step
        self.consumer.commit({(self.topic, 0): p.offset})  # only once the snapshot is durable

    @contextmanager
    def _torch_threads(self) -> Iterator[None]:
        """PyTorch's intra-op threads as the train config says (one: fast here, and deterministic)."""
        want, had = self.train_config.torch_threads, torch.get_num_threads()
        if want is None or want == had:
            yield
            return
        torch.set_num_threads(want)
        try:
            yield
        finally:
            torch.set_num_threads(had)

    def train_batch(self, partial: bool = True) -> int:
        """Train on the next batch; return its size (0: nothing to train).

        A batch is the next ``batch_size`` records, or what is left at the end of the log;
        ``partial=False`` trains only full batches, so that batch ``k`` is always offsets
        ``[k*B, (k+1)*B)`` even while the log is still growing. Snapshots (then commits)
        when the step count reaches a multiple of ``snapshot_every``.
        """
        if not partial and self.log.end_offset(self.topic, 0) - self.consumer.position(self.topic, 0) < self.batch_size:
            return 0
        records = self.consumer.poll(self.batch_size)
        if not records:
            return 0
        events = decode_examples([r.value for r in records], self.field_names, self.dense_names).events
        batch = events[np.argsort(events.time, kind="stable")]  # look up at the batch's latest event time
        with self._torch_threads():
            train_step(self.model, self.optimizer, batch)
        now = int(batch.time[-1])
        self.model.vectors.table.expire(now)  # a no-op without a TTL
        self.model.weights.table.expire(now)
        p = self.progress
        p.step, p.offset = p.step + 1, records[-1].offset + 1
        p.examples += len(records)
        p.digest = request_digest(p.digest, events.request_id)  # in log order
        p.batches_run += 1
        if p.step % self.snapshot_every == 0:
            self._snapshot()
        return len(records)

    def run(self, max_batches: int | None = None, partial: bool = True) -> TrainerProgress:
        """Train until the end of the log (or ``max_batches`` batches; ``partial``: see
        :meth:`train_batch`), then snapshot the final state unless the newest snapshot
        already holds it. Returns :attr:`progress`.
        """
        with self._torch_threads():
            done = 0
            while max_batches is None or done < max_batches:
                if not self.train_batch(partial):
                    break
                done += 1
            if self.progress.step != self._saved_step and self.progress.step > 0:
                self._snapshot()
        return self.progress
