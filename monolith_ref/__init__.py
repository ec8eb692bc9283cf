"""monolith_ref: a readable reference implementation of ByteDance's Monolith.

One namespace for the reader: ``import monolith_ref as mr`` gives the names the chapters and
labs use, whichever module defines them (as ``d2l`` does for its book):

- tables and their settings: ``mr.DictTable``, ``mr.CuckooTable``, ``mr.NumbaTable``,
  ``mr.ShardedTable``, ``mr.HashedTable``, ``mr.QRHashedTable``, ``mr.TableConfig``, ``mr.route``;
- admission filters and sparse optimizers: ``mr.OccurrenceFilter``, ``mr.CountMinFilter``,
  ``mr.ProbabilisticFilter``, ``mr.SGD``, ``mr.Adagrad``, ``mr.FTRL``;
- the event schema and data: ``mr.Events``, ``mr.field_ids``, ``mr.synthetic_stream``,
  ``mr.StreamConfig``, ``mr.zipf_ids``, ``mr.load_movielens``, ``mr.auc``, ``mr.log_loss``;
- the model and training: ``mr.DeepFM``, ``mr.ModelConfig``, ``mr.TrainConfig``,
  ``mr.build_deepfm_for``, ``mr.batch_stage``, ``mr.online_stage``, ``mr.train``;
- the pipeline pieces: ``mr.Log``, ``mr.OnlineJoiner``, ``mr.run_pipeline``, ``mr.ServingReplica``,
  ``mr.ParameterSync``, ``mr.OnlineTrainer``, ``mr.Cluster``, ``mr.RemoteTable``;
- the modules themselves: ``mr.kernels``, ``mr.hashing``, ``mr.experiments``, ``mr.labs``,
  ``mr.diagrams``, ...

Names that need PyTorch (the model, training, serving, snapshots, the parameter servers, the
experiments) are imported on first use, so ``import monolith_ref`` stays quick for the table
chapters. Each name is documented once, in the module that defines it.

See: book/preface.md
"""

from __future__ import annotations

import importlib
from typing import Any

from . import checks, data, events, filters, hashing, metrics, optim, tables
from .data import StreamConfig, load_criteo, load_movielens, synthetic_stream, zipf_ids, zipf_probabilities
from .events import SECONDS_PER_DAY, SECONDS_PER_HOUR, Events, field_ids
from .filters import CountMinFilter, OccurrenceFilter, ProbabilisticFilter
from .metrics import auc, log_loss
from .optim import FTRL, SGD, Adagrad
from .tables import (CuckooMap, CuckooTable, DictTable, EmbeddingTable, FilterConfig, HashedTable, NumbaTable,
                     QRHashedTable, ShardedTable, TableConfig, initial_rows)
from .tables.routing import merge_states, route, route_key, split_by_shard, split_state

__version__ = "0.1.0"

# Modules loaded on first use (``mr.training``), and names re-exported from them (``mr.DeepFM``).
_LAZY_MODULES = ("bench", "checkpoint", "diagrams", "distributed", "experiments", "kernels", "labs", "models",
                 "resume", "serving", "streaming", "torch_bridge", "training")
_LAZY_NAMES = {
    "models": ("DeepFM",),
    "training": ("ModelConfig", "TrainConfig", "batch_stage", "build_deepfm", "build_deepfm_for", "evaluate",
                 "fork_trainer", "online_stage", "predict", "train", "train_step"),
    "torch_bridge": ("TableEmbedding", "reference_embedding"),
    "streaming": ("ACTIONS", "EXAMPLES", "FEATURES", "ArrivalConfig", "Consumer", "JoinerConfig", "Log",
                  "OnlineJoiner", "Producer", "arrivals", "run_pipeline"),
    "serving": ("ParameterSync", "ServingReplica", "replica_for"),
    "checkpoint": ("restore_trainer", "save_trainer"),
    "resume": ("OnlineTrainer",),
    "distributed": ("Cluster", "RemoteTable"),
}
_HOME = {name: module for module, names in _LAZY_NAMES.items() for name in names}

__all__ = [
    "Adagrad", "CountMinFilter", "CuckooMap", "CuckooTable", "DictTable", "EmbeddingTable", "Events", "FTRL",
    "FilterConfig", "HashedTable", "NumbaTable", "OccurrenceFilter", "ProbabilisticFilter", "QRHashedTable",
    "SECONDS_PER_DAY", "SECONDS_PER_HOUR", "SGD", "ShardedTable", "StreamConfig", "TableConfig", "__version__",
    "auc", "checks", "data", "events", "field_ids", "filters", "hashing", "initial_rows", "load_criteo",
    "load_movielens", "log_loss", "merge_states", "metrics", "optim", "route", "route_key", "split_by_shard", "split_state", "synthetic_stream",
    "tables", "zipf_ids", "zipf_probabilities",
    *_LAZY_MODULES, *_HOME,
]


def __getattr__(name: str) -> Any:
    """Import a PyTorch-backed module, or a name from one, on first use (PEP 562)."""
    if name in _LAZY_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
    elif name in _HOME:
        module = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = module
    return module


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
