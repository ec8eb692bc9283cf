"""The table protocol: what every embedding table in monolith_ref promises.

Every table (dict, cuckoo, Numba, sharded, remote) implements :class:`EmbeddingTable`, so one
conformance suite tests them all and the slow, readable tables are the oracle for the fast
ones. The rules that make that possible:

* IDs are non-negative 64-bit integers; anything else is refused with a ``ValueError`` that
  names the problem, and a refused call leaves the table exactly as it was.
* Time is passed in (``now``, integer seconds of event time); no table reads the clock.
* A new row's initial values are a pure function of ``(seed, id)`` (:func:`initial_rows`),
  so two implementations that see the same operations hold bit-identical rows.

:class:`TableBase` does the validation and the touched-key bookkeeping once, so that each
table class only writes the part that is really its own.

See: book/ch03_dict_table.md
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .. import checks
from ..checks import check_int, check_number, is_int
from ..hashing import GOLDEN_GAMMA, mix64, splitmix64
from ..optim import SGD, SparseOptimizer

__all__ = [
    "TableError",
    "InvalidIdsError",
    "InvalidGradientsError",
    "InvalidTimeError",
    "StateMismatchError",
    "AdmissionFilter",
    "FilterConfig",
    "TableConfig",
    "EmbeddingTable",
    "TableBase",
    "check_ids",
    "check_grads",
    "check_now",
    "initial_rows",
    "check_row_state",
    "filter_state",
    "filter_from_state",
    "ROW_STATE_KEYS",
]


# --------------------------------------------------------------------------- errors


class TableError(Exception):
    """Base class of the errors a table raises about its IDs, gradients, times and states.

    Each is also the :mod:`monolith_ref.checks` class of its kind (a ``ValueError``), so bad
    input to a table and to the joiner, the log or the store is caught the same way. An
    argument of the wrong Python type (``now=1.5``) raises
    :class:`~monolith_ref.checks.InvalidTypeError`, as everywhere in the package.
    See: book/ch03_dict_table.md
    """


class InvalidIdsError(TableError, checks.InvalidIdsError):
    """IDs that are not a 1-D array of non-negative 64-bit integers. See: book/ch03_dict_table.md"""


class InvalidGradientsError(TableError, checks.InvalidArgumentError):
    """Gradients of the wrong shape or type, or holding NaN or infinity. See: book/ch03_dict_table.md"""


class InvalidTimeError(TableError, checks.InvalidTimeError):
    """A ``now`` outside ``[0, 2**63)`` seconds. See: book/ch03_dict_table.md"""


class StateMismatchError(TableError, checks.InvalidArgumentError):
    """An exported state that does not fit this table (keys, shapes, dtypes, dim). See: book/ch03_dict_table.md"""


# --------------------------------------------------------------------------- filters


@runtime_checkable
class AdmissionFilter(Protocol):
    """Decides when an unseen ID earns a row (paper section 2.1). See: book/ch05_filters.md

    A table calls :meth:`admit` once per training occurrence of an ID it has no row for,
    in batch order, and :meth:`forget` once the ID has a row. Implementations live in
    :mod:`monolith_ref.filters`.
    """

    def admit(self, key: int, now: int) -> bool:
        """Record one occurrence of ``key`` at ``now``; return True if it is admitted now."""
        ...

    def forget(self, key: int) -> None:
        """Drop what the filter holds about ``key`` (it now has a row)."""
        ...

    def expire(self, now: int, ttl: int) -> int:
        """Drop state about IDs unseen for longer than ``ttl``; return how many were dropped."""
        ...

    def export(self) -> dict[str, np.ndarray]:
        """The filter's state as arrays, for snapshots."""
        ...

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Replace the filter's state with an exported one (validated; raises ValueError)."""
        ...

    def memory_bytes(self) -> int:
        """Bytes the filter's state occupies."""
        ...


@runtime_checkable
class FilterConfig(Protocol):
    """A filter's settings; ``build(seed)`` makes a fresh, empty filter. See: book/ch05_filters.md"""

    def build(self, seed: int) -> AdmissionFilter:
        ...


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class TableConfig:
    """Settings shared by every table.

    ``dim``: embedding width. ``seed``: makes initial rows (and any hashing) reproducible.
    ``ttl``: seconds a row may go unseen before :meth:`EmbeddingTable.expire` removes it;
    ``None`` keeps rows forever. ``init_scale``: initial values are uniform in
    ``[-init_scale, init_scale)``. ``optimizer``: the per-row sparse optimizer.
    ``filter``: an admission filter's settings, or ``None`` to admit every ID at once.

    See: book/ch03_dict_table.md
    """

    dim: int
    seed: int = 0
    ttl: int | None = None
    init_scale: float = 0.01
    optimizer: SparseOptimizer = field(default_factory=SGD)
    filter: FilterConfig | None = None

    def __post_init__(self) -> None:
        check_int(self.dim, "TableConfig.dim", low=1)
        check_int(self.seed, "TableConfig.seed", low=0, high=2**64)
        if self.ttl is not None:
            check_int(self.ttl, "TableConfig.ttl (seconds, or None)", low=0)
        if not isinstance(self.init_scale, (int, float)):  # Python numbers only
            raise checks.InvalidTypeError(f"TableConfig.init_scale must be a finite number >= 0, got {self.init_scale!r}")
        check_number(self.init_scale, "TableConfig.init_scale", low=0.0)
        if not isinstance(self.optimizer, SparseOptimizer):
            raise ValueError(f"TableConfig.optimizer must be a sparse optimizer, got {self.optimizer!r}")
        if self.filter is not None and not isinstance(self.filter, FilterConfig):
            raise ValueError(f"TableConfig.filter must be None or a filter config, got {self.filter!r}")

    @property
    def state_width(self) -> int:
        """Float32 optimizer-state values stored beside each row."""
        return self.optimizer.state_width(self.dim)


# --------------------------------------------------------------------------- validation


def check_ids(ids: Any) -> np.ndarray:
    """Return ``ids`` as a 1-D uint64 array, or raise :class:`InvalidIdsError` saying why.

    :func:`monolith_ref.checks.check_ids` with the table's error class: a 1-D array (or
    list) of integers in ``[0, 2**64)``; floats, bools, strings, negative values and
    anything not 1-D are refused. See: book/ch03_dict_table.md
    """
    return checks.check_ids(ids, error=InvalidIdsError)


def check_grads(grads: Any, n: int, dim: int) -> np.ndarray:
    """Return ``grads`` as a float32 ``(n, dim)`` array of finite values, or raise.

    See: book/ch03_dict_table.md
    """
    arr = np.asarray(grads)
    if arr.dtype.kind != "f":
        raise InvalidGradientsError(f"gradients must be floating point, got dtype {arr.dtype}")
    if arr.shape != (n, dim):
        raise InvalidGradientsError(f"gradients must have shape ({n}, {dim}) for {n} IDs, got {arr.shape}")
    with np.errstate(over="ignore"):
        out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        raise InvalidGradientsError("gradients hold NaN or infinity (or overflow float32)")
    return out


def check_now(now: Any) -> int:
    """Return ``now`` as an ``int`` number of seconds in ``[0, 2**63)``, or raise.

    Out of range: :class:`InvalidTimeError`; not an integer:
    :class:`~monolith_ref.checks.InvalidTypeError`. See: book/ch03_dict_table.md
    """
    return checks.check_time(now, "now", low=0, error=InvalidTimeError)


# --------------------------------------------------------------------------- initial rows

_TWO_POW_MINUS_53 = 2.0**-53


def initial_rows(seed: int, ids: np.ndarray, dim: int, scale: float) -> np.ndarray:
    """Initial embeddings, uniform in ``[-scale, scale)``: a pure function of ``(seed, id)``.

    Column ``j`` of an ID's row comes from ``splitmix64(mix64(id, seed) + (j+1) * GOLDEN)``:
    its top 53 bits make a float64 in ``[0, 1)`` that is scaled and rounded to float32. No
    random generator state is involved, so any implementation (Python, NumPy, Numba) that
    follows this recipe draws the same bits. See: book/ch03_dict_table.md
    """
    keys = mix64(np.asarray(ids, dtype=np.uint64).reshape(-1), seed)
    cols = (np.arange(1, dim + 1, dtype=np.uint64) * GOLDEN_GAMMA)[None, :]
    bits = splitmix64((keys[:, None] + cols).reshape(-1)).reshape(keys.shape[0], dim)
    unit = (bits >> np.uint64(11)).astype(np.float64) * _TWO_POW_MINUS_53
    return ((2.0 * unit - 1.0) * float(scale)).astype(np.float32)


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class EmbeddingTable(Protocol):
    """The table protocol (DESIGN.md). See: book/ch03_dict_table.md"""

    config: TableConfig

    def lookup(self, ids: Any, now: int, train: bool = True) -> np.ndarray:
        """float32 ``(n, dim)`` rows; training lookups insert admitted IDs and refresh them."""
        ...

    def apply_gradients(self, ids: Any, grads: Any) -> None:
        """Update rows through the optimizer; repeated IDs accumulate; absent IDs are ignored."""
        ...

    def expire(self, now: int) -> int:
        """Remove rows unseen for longer than the TTL; return how many were removed."""
        ...

    def export(self, ids: Any = None) -> dict[str, np.ndarray]:
        """The table's state (or only the given IDs' rows) as a dict of NumPy arrays."""
        ...

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Replace the whole table with an exported state."""
        ...

    def memory_bytes(self) -> int:
        """Bytes the table's contents occupy."""
        ...

    def touched_ids(self) -> np.ndarray:
        """Sorted uint64 keys whose entries changed since the last :meth:`pop_touched`."""
        ...

    def pop_touched(self) -> np.ndarray:
        """Return :meth:`touched_ids` and start a new round (the delta-sync hand-off)."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, key: object) -> bool: ...


class TableBase(abc.ABC):
    """Validation and touched-key bookkeeping shared by the tables.

    Public methods check their arguments and then call the ``_``-prefixed hook that a
    subclass writes; a hook only ever sees valid input (``ids`` uint64 1-D, ``grads`` float32
    of the right shape, ``now`` an int). Keys whose entries change are recorded with
    :meth:`_touch` and handed out by :meth:`pop_touched` for delta sync (chapter 10).

    A table that keeps its own admission filter (``DictTable``, ``NumbaTable``) builds it into
    ``_filter``; :meth:`export` then adds the filter's state under ``filter/`` keys, and the
    table's ``_load`` validates a loaded state with ``_check_state``. Tables made of other
    tables (sharded, remote) leave ``_filter`` at ``None``: their shards keep the filters.

    See: book/ch03_dict_table.md
    """

    def __init__(self, config: TableConfig) -> None:
        if not isinstance(config, TableConfig):
            raise TypeError(f"a table is built from a TableConfig, got {type(config).__name__}")
        self.config = config
        self._touched: set[int] = set()
        self._filter: AdmissionFilter | None = None

    # ---- the public protocol -------------------------------------------------------

    def lookup(self, ids: Any, now: int, train: bool = True) -> np.ndarray:
        """Rows for ``ids`` at event time ``now``; see :class:`EmbeddingTable`."""
        keys = check_ids(ids)
        t = check_now(now)
        return self._lookup(keys, t, bool(train))

    def apply_gradients(self, ids: Any, grads: Any) -> None:
        """Apply one optimizer step per distinct ID from the summed gradients."""
        keys = check_ids(ids)
        g = check_grads(grads, keys.shape[0], self.config.dim)
        self._apply_gradients(keys, g)

    def expire(self, now: int) -> int:
        """Remove rows unseen for longer than ``config.ttl`` seconds; return the count."""
        t = check_now(now)
        if self.config.ttl is None:
            return 0
        return self._expire(t)

    def export(self, ids: Any = None) -> dict[str, np.ndarray]:
        """All rows (or the present ones among ``ids``) as arrays, sorted by key; a full export
        also holds the admission filter's state (``filter/`` keys)."""
        if ids is not None:
            return self._export(check_ids(ids))
        return {**self._export(None), **filter_state(self._filter)}

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Replace the table's contents; a state that does not fit raises and changes nothing."""
        if not isinstance(state, dict):
            raise StateMismatchError(f"state must be a dict of arrays, got {type(state).__name__}")
        self._load(state)

    def contains(self, ids: Any) -> np.ndarray:
        """Boolean mask: which of ``ids`` have a row."""
        keys = check_ids(ids)
        return np.array([self._has(int(k)) for k in keys.tolist()], dtype=bool)

    def __contains__(self, key: object) -> bool:
        if not is_int(key) or not 0 <= int(key) < 2**64:  # type: ignore[call-overload]
            return False
        return self._has(int(key))  # type: ignore[call-overload]

    def touched_ids(self) -> np.ndarray:
        """Sorted uint64 keys changed (inserted, updated, refreshed, removed) since the last pop."""
        return np.array(sorted(self._touched), dtype=np.uint64)

    def pop_touched(self) -> np.ndarray:
        """Return :meth:`touched_ids` and forget them."""
        out = self.touched_ids()
        self._touched.clear()
        return out

    def _touch(self, key: int) -> None:
        self._touched.add(key)

    # ---- the admission filter --------------------------------------------------------

    @property
    def admission_filter(self) -> AdmissionFilter | None:
        """The admission filter this table keeps (``None``: every ID is admitted at once, or
        the filters live in the shards). See: book/ch05_filters.md"""
        return self._filter

    @contextmanager
    def filter_bypassed(self) -> Iterator[None]:
        """Inside the ``with`` block every unseen ID gets a row at once; the admission filter is
        set aside, neither asked nor changed, and is back afterwards.

        For loading IDs known to be resident (the benchmarks' set-up), never for training.
        See: book/ch06_numba.md
        """
        if self._filter is None and self.config.filter is not None:
            raise TableError(f"{type(self).__name__} does not keep its admission filter itself, so it cannot "
                             "set it aside; bypass the filter where it is kept")
        saved, self._filter = self._filter, None
        try:
            yield
        finally:
            self._filter = saved

    def _check_state(self, state: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], AdmissionFilter | None]:
        """A loaded state's rows (:func:`check_row_state`) and a fresh filter holding its
        ``filter/`` part (:func:`filter_from_state`), both validated before the table changes."""
        rows = check_row_state(state, self.config)
        return rows, filter_from_state(self.config, state)

    # ---- what each table writes ----------------------------------------------------

    @abc.abstractmethod
    def _lookup(self, ids: np.ndarray, now: int, train: bool) -> np.ndarray: ...

    @abc.abstractmethod
    def _apply_gradients(self, ids: np.ndarray, grads: np.ndarray) -> None: ...

    @abc.abstractmethod
    def _expire(self, now: int) -> int: ...

    @abc.abstractmethod
    def _export(self, ids: np.ndarray | None) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def _load(self, state: dict[str, np.ndarray]) -> None: ...

    @abc.abstractmethod
    def _has(self, key: int) -> bool: ...

    @abc.abstractmethod
    def memory_bytes(self) -> int: ...

    @abc.abstractmethod
    def __len__(self) -> int: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.config.dim}, rows={len(self)})"


# --------------------------------------------------------------------------- row states


ROW_STATE_KEYS = ("ids", "embeddings", "opt_state", "last_seen")


def check_row_state(state: dict[str, np.ndarray], config: TableConfig) -> dict[str, np.ndarray]:
    """Validate an exported row state (collisionless tables) against ``config``; return it typed.

    Keys: ``ids`` uint64 (n,) strictly increasing; ``embeddings`` float32 (n, dim), finite;
    ``opt_state`` float32 (n, state_width); ``last_seen`` int64 (n,), >= 0.
    See: book/ch03_dict_table.md
    """
    missing = [k for k in ROW_STATE_KEYS if k not in state]
    if missing:
        raise StateMismatchError(f"state is missing {missing}; expected keys {list(ROW_STATE_KEYS)}")
    try:
        ids = check_ids(state["ids"])
    except InvalidIdsError as exc:
        raise StateMismatchError(f"state['ids']: {exc}") from None
    n, dim, width = ids.shape[0], config.dim, config.state_width
    emb = np.asarray(state["embeddings"])
    opt = np.asarray(state["opt_state"])
    seen = np.asarray(state["last_seen"])
    if emb.dtype != np.float32 or emb.shape != (n, dim):
        raise StateMismatchError(f"state['embeddings'] must be float32 ({n}, {dim}), got {emb.dtype} {emb.shape}")
    if opt.dtype != np.float32 or opt.shape != (n, width):
        raise StateMismatchError(f"state['opt_state'] must be float32 ({n}, {width}), got {opt.dtype} {opt.shape}")
    if seen.dtype != np.int64 or seen.shape != (n,):
        raise StateMismatchError(f"state['last_seen'] must be int64 ({n},), got {seen.dtype} {seen.shape}")
    if n > 1 and not (ids[1:] > ids[:-1]).all():
        raise StateMismatchError("state['ids'] must be strictly increasing (sorted, no duplicates)")
    if not np.isfinite(emb).all() or not np.isfinite(opt).all():
        raise StateMismatchError("state holds NaN or infinity")
    if n and seen.min() < 0:
        raise StateMismatchError("state['last_seen'] must be >= 0")
    return {"ids": ids, "embeddings": emb, "opt_state": opt, "last_seen": seen}


FILTER_PREFIX = "filter/"


def filter_state(flt: AdmissionFilter | None) -> dict[str, np.ndarray]:
    """A filter's exported arrays under ``filter/`` keys, for a table's full export (or {}).

    See: book/ch05_filters.md
    """
    if flt is None:
        return {}
    return {FILTER_PREFIX + k: v for k, v in flt.export().items()}


def filter_from_state(config: TableConfig, state: dict[str, np.ndarray]) -> AdmissionFilter | None:
    """A fresh filter for ``config`` loaded from the ``filter/`` keys of ``state`` (validated).

    Tables call it before changing anything, so a bad filter state leaves them untouched.
    See: book/ch05_filters.md
    """
    if config.filter is None:
        return None
    flt = config.filter.build(config.seed)
    flt.load({k[len(FILTER_PREFIX):]: v for k, v in state.items() if k.startswith(FILTER_PREFIX)})
    return flt
