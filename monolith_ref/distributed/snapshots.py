"""Per-PS table snapshots: what a parameter server writes so that it can come back.

Each PS snapshots its own shard of each table, on its own (paper §2.3: a failed PS recovers
from its last snapshot while the others keep their state). The layout is one folder per PS
and table, holding the snapshots of :mod:`monolith_ref.checkpoint` (atomic, checksummed)::

    <snapshot_dir>/ps<k>/<table_id>/snap-000000000007/manifest.json, *.npy

A snapshot holds the table's ``export()`` (rows, optimizer state, last-seen times, filter
state) and, in its meta, everything needed to rebuild the table with no help from the
trainer: the :class:`~monolith_ref.tables.TableConfig` as JSON (:func:`config_to_json`),
the table kind, the shard it is and of how many, and the operation count it was taken at.

See: book/ch12_distributed.md
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_name
from ..checkpoint import SnapshotError, SnapshotMismatchError, clean_temp, list_snapshots, read_snapshot, write_snapshot
from ..filters import CountMinFilter, OccurrenceFilter, ProbabilisticFilter
from ..optim import FTRL, SGD, Adagrad
from ..tables.base import TableConfig

__all__ = ["KIND", "check_table_id", "config_to_json", "config_from_json", "table_dir", "next_seq", "save_table",
           "load_latest_table"]

#: ``meta["kind"]`` of a PS table snapshot.
KIND = "ps-table"
_TABLE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
_SNAP = re.compile(r"snap-(\d{12})")
_CLASSES = {cls.__name__: cls for cls in (SGD, Adagrad, FTRL, OccurrenceFilter, CountMinFilter, ProbabilisticFilter)}


def check_table_id(table_id: Any) -> str:
    """Return ``table_id`` if it is 1-100 of ``A-Z a-z 0-9 . _ -`` not starting with ``.`` or ``-``.

    Table ids name folders on every PS, so nothing else is allowed. See: book/ch12_distributed.md
    """
    return check_name(table_id, "table id", _TABLE_ID, "1-100 of A-Z a-z 0-9 . _ - not starting with '.' or '-'")


def _part_to_json(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    if type(obj).__name__ not in _CLASSES or not dataclasses.is_dataclass(obj):
        raise TypeError(f"cannot describe {obj!r} in a snapshot; known kinds: {sorted(_CLASSES)}")
    return {"type": type(obj).__name__, **dataclasses.asdict(obj)}


def _part_from_json(data: Any) -> Any:
    if data is None:
        return None
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in _CLASSES:
        raise SnapshotMismatchError(f"unknown optimizer or filter in a snapshot: {data!r}")
    return _CLASSES[kind](**{k: v for k, v in data.items() if k != "type"})


def config_to_json(config: TableConfig) -> dict[str, Any]:
    """A :class:`TableConfig` as plain JSON values (optimizer and filter by class name and fields).

    See: book/ch12_distributed.md
    """
    return {"dim": int(config.dim), "seed": int(config.seed), "ttl": config.ttl,
            "init_scale": float(config.init_scale), "optimizer": _part_to_json(config.optimizer),
            "filter": _part_to_json(config.filter)}


def config_from_json(data: dict[str, Any]) -> TableConfig:
    """The :class:`TableConfig` that :func:`config_to_json` described. See: book/ch12_distributed.md"""
    try:
        return TableConfig(dim=data["dim"], seed=data["seed"], ttl=data["ttl"], init_scale=data["init_scale"],
                           optimizer=_part_from_json(data["optimizer"]), filter=_part_from_json(data["filter"]))
    except (KeyError, TypeError, AttributeError) as exc:
        raise SnapshotMismatchError(f"a snapshot's table config is unreadable: {exc}") from None


def table_dir(snapshot_dir: str | Path, ps_index: int, table_id: str) -> Path:
    """The folder that holds PS ``ps_index``'s snapshots of ``table_id``. See: book/ch12_distributed.md"""
    return Path(snapshot_dir) / f"ps{int(ps_index)}" / check_table_id(table_id)


def next_seq(directory: str | Path) -> int:
    """One more than the highest snapshot number in ``directory`` (1 if there is none).

    Snapshots are never overwritten, so a PS restored from an older snapshot must not reuse
    the number of a newer (broken) one. See: book/ch12_distributed.md
    """
    numbers = [int(m.group(1)) for p in list_snapshots(directory) if (m := _SNAP.fullmatch(p.name))]
    return max(numbers, default=0) + 1


def save_table(directory: str | Path, seq: int, table: Any, meta: dict[str, Any], keep: int | None = 2) -> Path:
    """Write snapshot number ``seq`` of ``table`` into ``directory`` (``snap-<seq>``); keep the newest ``keep``.

    ``meta`` must hold ``table_id``, ``factory``, ``shard``, ``num_shards`` and ``ops``; the
    config is added here. See: book/ch12_distributed.md
    """
    full = {"kind": KIND, "config": config_to_json(table.config), "seq": int(seq), **meta}
    return write_snapshot(directory, f"snap-{int(seq):012d}", table.export(), full, keep=keep)


def load_latest_table(directory: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any], TableConfig, list[str]]:
    """The newest snapshot in ``directory`` that verifies: ``(state, meta, config, skipped)``.

    ``skipped`` says why newer snapshots were passed over (corrupt, another version). Raises
    :class:`FileNotFoundError` when no snapshot verifies. See: book/ch12_distributed.md
    """
    clean_temp(directory)  # what a writer killed mid-snapshot left behind
    skipped = []
    for path in reversed(list_snapshots(directory)):
        try:
            state, meta, _ = read_snapshot(path)
            if meta.get("kind") != KIND:
                raise SnapshotMismatchError(f"kind {meta.get('kind')!r}, expected {KIND!r}")
            return state, meta, config_from_json(meta["config"]), skipped
        except (SnapshotError, KeyError) as exc:
            skipped.append(f"{path.name}: {exc}")
    raise FileNotFoundError(f"no usable snapshot in {directory}" + (f" ({'; '.join(skipped)})" if skipped else ""))
