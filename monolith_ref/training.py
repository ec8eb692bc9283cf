"""Training and evaluation loops: the batch stage and the online stage (paper §2.2).

Monolith trains in two stages. The *batch stage* makes passes over stored data, and is used
when a model starts or its architecture changes (:func:`batch_stage`); the *online stage*
then keeps training on the live stream, handing its parameters to serving as it goes (the
paper's Algorithm 1: :func:`online_stage`). This module holds both stages and the pieces they
share: building a DeepFM over two tables (:func:`build_deepfm_for` sizes it for a batch of
events), one training step (dense optimizer plus the tables' sparse optimizers), and
evaluation with serving lookups.

See: book/ch08_deepfm.md
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from tqdm.std import tqdm  # the text bar: tqdm.auto warns in notebooks without ipywidgets

from .checks import check_int, check_number
from .events import Events
from .metrics import auc, log_loss
from .models import DeepFM
from .optim import FTRL, Adagrad, SparseOptimizer
from .tables.base import EmbeddingTable, FilterConfig, TableConfig
from .tables.numba_table import NumbaTable

__all__ = ["ModelConfig", "TrainConfig", "History", "build_deepfm", "build_deepfm_for", "train_step", "predict",
           "evaluate", "train", "batch_stage", "OnlineResult", "online_stage", "fork_trainer"]


@dataclass(frozen=True)
class ModelConfig:
    """What :func:`build_deepfm` builds. The defaults follow Monolith's choice of sparse
    optimizers: Adagrad (initial accumulator 1.0) for vectors, FTRL for per-ID weights.

    See: book/ch08_deepfm.md
    """

    dim: int = 16
    hidden: tuple[int, ...] = (64, 32)
    vector_optimizer: SparseOptimizer = field(default_factory=lambda: Adagrad(lr=0.1, initial_accumulator=1.0))
    weight_optimizer: SparseOptimizer = field(default_factory=lambda: FTRL(alpha=0.05, beta=1.0, initial_accumulator=1e-6))
    init_scale: float = 0.01
    ttl: int | None = None
    filter: FilterConfig | None = None
    seed: int = 0


@dataclass(frozen=True)
class TrainConfig:
    """Batch-stage settings. See: book/ch08_deepfm.md

    ``lr`` is the dense (Adam) learning rate. ``torch_threads`` is PyTorch's intra-op thread
    count during training (restored afterwards): the layers here are small, and on a busy
    2-core machine two threads made a 1024 x 80 linear layer about 50 times slower than one
    (measured while writing chapter 8). ``None`` leaves PyTorch's setting alone.
    """

    batch_size: int = 1024
    epochs: int = 1
    lr: float = 1e-3
    shuffle: bool = False
    seed: int = 0
    progress: bool = True
    torch_threads: int | None = 1

    def __post_init__(self) -> None:
        check_int(self.batch_size, "TrainConfig.batch_size", low=1)
        check_int(self.epochs, "TrainConfig.epochs", low=1)
        check_number(self.lr, "TrainConfig.lr", low=0, low_open=True)


@dataclass
class History:
    """Per-epoch metrics of a training run. See: book/ch08_deepfm.md"""

    epochs: list[dict[str, float]] = field(default_factory=list)

    def series(self, key: str) -> list[float]:
        """One metric over the epochs, e.g. ``history.series("test_auc")``."""
        return [e[key] for e in self.epochs]


TableFactory = Callable[[TableConfig], EmbeddingTable]


def build_deepfm(num_fields: int, num_dense: int = 0, config: ModelConfig | None = None,
                 table: TableFactory = NumbaTable) -> DeepFM:
    """A DeepFM whose vectors and first-order weights live in two tables made by ``table``.

    ``table`` receives a :class:`TableConfig` and returns any protocol table: pass e.g.
    ``lambda c: HashedTable(replace(c, ttl=None), num_rows=...)`` for a hashed baseline.
    See: book/ch08_deepfm.md
    """
    cfg = config or ModelConfig()
    vec = TableConfig(dim=cfg.dim, seed=cfg.seed, ttl=cfg.ttl, init_scale=cfg.init_scale,
                      optimizer=cfg.vector_optimizer, filter=cfg.filter)
    wts = TableConfig(dim=1, seed=(cfg.seed + 1) % 2**64, ttl=cfg.ttl, init_scale=0.0,
                      optimizer=cfg.weight_optimizer, filter=cfg.filter)
    return DeepFM(table(vec), table(wts), num_fields=num_fields, num_dense=num_dense, hidden=cfg.hidden, seed=cfg.seed)


def build_deepfm_for(events: Events, config: ModelConfig | None = None, table: TableFactory = NumbaTable) -> DeepFM:
    """:func:`build_deepfm` sized for ``events``: one field per name in ``events.field_names``
    and as many dense inputs as ``events.dense`` has columns.

    See: book/ch08_deepfm.md
    """
    if not isinstance(events, Events):
        raise TypeError(f"build_deepfm_for needs Events, got {type(events).__name__}")
    return build_deepfm(len(events.field_names), events.dense.shape[1], config, table)


def _dense(events: Events) -> torch.Tensor | None:
    return None if events.dense is None or events.dense.shape[1] == 0 else torch.from_numpy(events.dense)


def train_step(model: DeepFM, optimizer: torch.optim.Optimizer, batch: Events,
               loss_fn: torch.nn.Module | None = None) -> float:
    """One step on one batch: forward (training lookups at the batch's last event time),
    backward, the dense optimizer, then the tables' sparse optimizers. Returns the mean loss.

    The loss is *summed* over the batch (by default), so the gradient an ID's row receives
    does not shrink as the batch grows: a per-row optimizer sees each example's full
    signal, as in Monolith's workers. Adam, on the dense side, is insensitive to that scale.
    See: book/ch08_deepfm.md
    """
    model.train()
    loss_fn = loss_fn or torch.nn.BCEWithLogitsLoss(reduction="sum")
    logits = model(batch.fields, int(batch.time[-1]), _dense(batch))
    loss = loss_fn(logits, torch.from_numpy(batch.label))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    model.apply_sparse_gradients()
    return float(loss.detach()) / len(batch)


@torch.no_grad()
def predict(model: DeepFM, events: Events, batch_size: int = 4096, log_odds_shift: float = 0.0) -> np.ndarray:
    """Click probabilities with serving lookups (no insert; unknown IDs read zeros).

    ``log_odds_shift`` is added to every logit before the sigmoid (chapter 9 uses it for the
    log-odds correction of negative sampling). See: book/ch08_deepfm.md
    """
    model.eval()
    out = np.empty(len(events), dtype=np.float32)
    for start in range(0, len(events), batch_size):
        part = events[start : start + batch_size]
        logits = model(part.fields, int(part.time[-1]), _dense(part)) + log_odds_shift
        out[start : start + len(part)] = torch.sigmoid(logits).numpy()
    return out


def evaluate(model: DeepFM, events: Events, batch_size: int = 4096) -> dict[str, float]:
    """AUC and log loss of the model's serving predictions on ``events``.

    See: book/ch08_deepfm.md
    """
    probs = predict(model, events, batch_size)
    return {"auc": auc(events.label, probs), "logloss": log_loss(events.label, probs)}


def train(model: DeepFM, events: Events, config: TrainConfig | None = None, test: Events | None = None,
          optimizer: torch.optim.Optimizer | None = None, desc: str = "train") -> History:
    """The batch stage: ``config.epochs`` passes over ``events`` (in time order unless
    ``shuffle``), evaluating on ``test`` after each epoch. Returns the :class:`History`.

    See: book/ch08_deepfm.md
    """
    cfg = config or TrainConfig()
    if len(events) == 0:
        raise ValueError("train needs at least one event")
    torch.manual_seed(cfg.seed)
    threads = torch.get_num_threads()
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    try:
        return _train(model, events, cfg, test, optimizer, desc)
    finally:
        torch.set_num_threads(threads)


def _train(model: DeepFM, events: Events, cfg: TrainConfig, test: Events | None,
           optimizer: torch.optim.Optimizer | None, desc: str) -> History:
    opt = optimizer or torch.optim.Adam(model.head.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    history = History()
    for epoch in range(1, cfg.epochs + 1):
        order = rng.permutation(len(events)) if cfg.shuffle else None
        data = events if order is None else events[order]
        losses: list[float] = []
        steps = range(0, len(data), cfg.batch_size)
        bar: Any = tqdm(steps, desc=f"{desc} epoch {epoch}/{cfg.epochs}", disable=not cfg.progress, leave=False)
        for start in bar:
            batch = data[start : start + cfg.batch_size]
            if order is not None:  # a shuffled batch is not in time order: look up at its latest time
                batch = batch[np.argsort(batch.time, kind="stable")]
            losses.append(train_step(model, opt, batch))
        record: dict[str, float] = {"epoch": epoch, "train_loss": float(np.mean(losses)), "examples": len(data)}
        if test is not None and len(test):
            metrics = evaluate(model, test)
            record.update({"test_auc": metrics["auc"], "test_logloss": metrics["logloss"]})
        history.epochs.append(record)
    return history


def batch_stage(events: Events, model_config: ModelConfig | None = None, train_config: TrainConfig | None = None,
                table: TableFactory = NumbaTable, seed: int | None = None) -> tuple[DeepFM, torch.optim.Optimizer]:
    """The batch stage (paper §2.2): a new DeepFM for ``events`` (:func:`build_deepfm_for`)
    trained on them with :func:`train`, and its Adam optimizer (learning rate
    ``train_config.lr``), returned together so that the online stage continues with Adam's
    moments (:func:`online_stage`, :func:`fork_trainer`).

    ``seed``, when given, replaces the seed of both configs (the model's initial weights and
    the training order); ``table`` makes the two tables (as in :func:`build_deepfm`).
    See: book/ch09_streaming.md
    """
    model_cfg = model_config or ModelConfig()
    train_cfg = train_config or TrainConfig()
    if seed is not None:
        model_cfg, train_cfg = replace(model_cfg, seed=seed), replace(train_cfg, seed=seed)
    deepfm = build_deepfm_for(events, model_cfg, table)
    optimizer = torch.optim.Adam(deepfm.head.parameters(), lr=train_cfg.lr)
    train(deepfm, events, train_cfg, optimizer=optimizer, desc="batch stage")
    return deepfm, optimizer


# =========================================================================== the online stage


@dataclass
class OnlineResult:
    """What :func:`online_stage` measured: per shard, the serving model's AUC and log loss
    before it trained on the shard, the shard's time span and size; every prediction in
    order; and the sync reports. See: book/ch09_streaming.md
    """

    shard_auc: list[float] = field(default_factory=list)
    shard_logloss: list[float] = field(default_factory=list)
    shard_start: list[int] = field(default_factory=list)
    shard_end: list[int] = field(default_factory=list)
    shard_size: list[int] = field(default_factory=list)
    probs: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float32))
    times: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    syncs: list[Any] = field(default_factory=list)

    @property
    def mean_auc(self) -> float:
        """The mean of the per-shard AUCs (shards with one class only are skipped)."""
        vals = [a for a in self.shard_auc if np.isfinite(a)]
        return float(np.mean(vals)) if vals else float("nan")

    @property
    def auc(self) -> float:
        """The AUC of every online prediction together (progressive validation)."""
        return auc(self.labels, self.probs)


def fork_trainer(model: DeepFM, optimizer: torch.optim.Optimizer) -> tuple[DeepFM, torch.optim.Optimizer]:
    """An independent copy of a model (tables included) and of its dense optimizer's state.

    ``load_state_dict`` alone would not do: it keeps the very tensors of the original's
    state (Adam's moments), so two copies would keep updating the same buffers.
    See: book/ch09_streaming.md
    """
    twin = copy.deepcopy(model)
    opt = type(optimizer)(twin.head.parameters(), **optimizer.defaults)
    opt.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    return twin, opt


def online_stage(model: DeepFM, shards: list[Events], sync: Any, optimizer: torch.optim.Optimizer | None = None,
                 config: TrainConfig | None = None, learn: bool = True, log_odds_shift: float = 0.0,
                 expire: bool = True, desc: str = "online") -> OnlineResult:
    """The paper's Algorithm 1 after the batch stage. For each shard ``D_i`` in order:

    1. ``sync.sync(t)``: serving parameters <- training parameters (a touched-key delta, and
       the dense head when the sync's ``dense_every`` says so);
    2. evaluate the serving replica on ``D_i`` (``AUC_i``), with ``log_odds_shift``;
    3. if ``learn``, train on ``D_i`` (one pass, in time order).

    ``learn=False`` is the batch-only baseline: serving stays at the batch model (the syncs
    then carry nothing). ``expire``: after training on a shard, expire both tables at the
    shard's last event time (a no-op without a TTL); the next sync carries the removals. ``sync`` is a :class:`~monolith_ref.serving.ParameterSync` for
    ``model``; ``optimizer`` the dense optimizer to continue with (pass the batch stage's,
    so Adam keeps its moments). See: book/ch09_streaming.md
    """
    cfg = config or TrainConfig()
    if not shards:
        raise ValueError("online_stage needs at least one shard")
    opt = optimizer or torch.optim.Adam(model.head.parameters(), lr=cfg.lr)
    threads = torch.get_num_threads()
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    result = OnlineResult()
    probs, labels, times = [], [], []
    try:
        bar: Any = tqdm(shards, desc=desc, disable=not cfg.progress, leave=False)
        for shard in bar:
            if len(shard) == 0:
                continue
            result.syncs.append(sync.sync(int(shard.time[0])))
            p = sync.replica.predict(shard, log_odds_shift)
            has_both = 0 < float(shard.label.sum()) < len(shard)
            result.shard_auc.append(auc(shard.label, p) if has_both else float("nan"))
            result.shard_logloss.append(log_loss(shard.label, p))
            result.shard_start.append(int(shard.time[0]))
            result.shard_end.append(int(shard.time[-1]))
            result.shard_size.append(len(shard))
            probs.append(p)
            labels.append(shard.label)
            times.append(shard.time)
            if learn:
                for start in range(0, len(shard), cfg.batch_size):
                    train_step(model, opt, shard[start : start + cfg.batch_size])
                if expire:
                    model.vectors.table.expire(int(shard.time[-1]))
                    model.weights.table.expire(int(shard.time[-1]))
    finally:
        torch.set_num_threads(threads)
    result.probs = np.concatenate(probs).astype(np.float32)
    result.labels = np.concatenate(labels).astype(np.float32)
    result.times = np.concatenate(times).astype(np.int64)
    return result
