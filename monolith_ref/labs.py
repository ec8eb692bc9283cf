"""What the labs (the chapters' companion notebooks) need, so a lab is prose, calls and plots.

Every lab glues its numbers into the book, times things, measures bytes per row, and checks
that two tables hold the same state. Those steps live here, once, tested:

* :func:`glue_many` and :func:`glue_fields` glue many named values in one call (MyST-NB's
  ``glue(name, value, display=False)`` for each), :func:`glue_figure` a figure;
* :func:`seconds`, :func:`best_of`, :func:`timed_rounds` and :func:`median_ratio` time;
* :func:`traced_bytes_per_row` measures memory with ``tracemalloc``;
* :func:`compare_states` compares two ``export()`` dicts; :func:`run_table_program` drives
  tables through the same lookups, gradient steps and expiry.

MyST-NB (the book extra) is imported only when something is glued, so the package works
without it.

See: book/preface.md
"""

from __future__ import annotations

import dataclasses
import time
import tracemalloc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .checks import check_int

__all__ = [
    "as_python",
    "glue_many",
    "glue_fields",
    "glue_figure",
    "seconds",
    "best_of",
    "timed_rounds",
    "median_ratio",
    "traced_bytes_per_row",
    "StateDiff",
    "compare_states",
    "run_table_program",
]


# ---- gluing ---------------------------------------------------------------------------------


def as_python(value: Any) -> Any:
    """A NumPy scalar (or 0-d array) as the Python ``bool``, ``int`` or ``float`` it holds.

    The labs glue Python numbers (``int(...)``, ``float(...)``): a glued value is shown as its
    ``repr``, and NumPy 2 writes ``np.float64(0.5)`` where Python writes ``0.5``. Anything
    else is returned unchanged. See: book/preface.md
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _glue(name: str, value: Any, display: bool) -> None:
    from myst_nb import glue  # the book extra; imported here so the package works without it

    glue(name, value, display=display)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a glue name must be a non-empty string, got {name!r}")
    return name


def glue_many(values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
    """Glue every name and value (``display=False``), NumPy scalars as Python numbers.

    ``glue_many(rows=n, load=lf)`` does what ``glue("rows", n, display=False)`` and
    ``glue("load", lf, display=False)`` do; a mapping carries names that are not Python
    identifiers. All names are checked before anything is glued. See: book/preface.md
    """
    if values is not None and not isinstance(values, Mapping):
        raise TypeError(f"give a mapping of names to values, got {type(values).__name__}")
    items = {**(values or {}), **more}
    for name in items:
        _check_name(name)
    for name, value in items.items():
        _glue(name, as_python(value), display=False)


def _field(result: Any, name: str) -> Any:
    if isinstance(result, Mapping):
        if name not in result:
            raise KeyError(f"{name!r} is not a key of the result (keys: {sorted(map(str, result))})")
        return result[name]
    if not hasattr(result, name):
        raise AttributeError(f"{type(result).__name__} has no field {name!r}")
    return getattr(result, name)


def _all_fields(result: Any) -> list[str]:
    if isinstance(result, Mapping):
        return list(result)
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return [f.name for f in dataclasses.fields(result)]
    raise TypeError(f"name the fields to glue of a {type(result).__name__} (names=...)")


def glue_fields(prefix: str, result: Any, names: Iterable[str] | Mapping[str, str] | None = None,
                cast: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Glue fields of a result as ``prefix + name`` (``display=False``); return what was glued.

    ``result`` is a mapping (its keys) or an object (its attributes; a dataclass's fields
    by default). ``names`` picks fields (default: all of a mapping or dataclass); a mapping
    ``{glue suffix: field}`` renames them. ``cast`` (e.g. ``int``) converts each value, as a
    lab's ``glue(f"st_{k}", int(v), display=False)`` does; without it NumPy scalars become
    Python numbers (:func:`as_python`). Every field is read before anything is glued.
    See: book/preface.md
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string, got {prefix!r}")
    if names is None:
        pairs = [(n, n) for n in _all_fields(result)]
    elif isinstance(names, Mapping):
        pairs = list(names.items())
    elif isinstance(names, str):
        raise TypeError("names must be a collection of field names, not one string")
    else:
        pairs = [(n, n) for n in names]
    convert = as_python if cast is None else cast
    glued = {_check_name(prefix + suffix): convert(_field(result, name)) for suffix, name in pairs}
    for name, value in glued.items():
        _glue(name, value, display=False)
    return glued


def glue_figure(name: str, fig: Any) -> None:
    """Glue a Matplotlib figure (displayed here too, so its image file exists), then close it.

    See: book/preface.md
    """
    _glue(_check_name(name), fig, display=True)
    import matplotlib.pyplot as plt

    plt.close(fig)


# ---- timing ---------------------------------------------------------------------------------


def seconds(fn: Callable[[], Any]) -> float:
    """Wall-clock seconds of one call of ``fn()`` (``time.perf_counter``). See: book/ch03_dict_table.md"""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """The fastest of ``repeats`` timed calls of ``fn()``, after ``warmup`` untimed calls.

    The minimum is the run least disturbed by the rest of the machine; the warm-up keeps
    compilation (Numba) and first-touch costs out. See: book/ch06_numba.md
    """
    repeats = check_int(repeats, "repeats", low=1)
    for _ in range(check_int(warmup, "warmup", low=0)):
        fn()
    return min(seconds(fn) for _ in range(repeats))


def timed_rounds(rounds: int, **contenders: Callable[[], Any]) -> dict[str, np.ndarray]:
    """Time each contender once per round, taking turns; seconds per round for each.

    Interleaving makes a busy machine slow every contender alike, so the per-round ratios
    are steadier than ratios of separate runs. See: book/ch03_dict_table.md
    """
    rounds = check_int(rounds, "rounds", low=1)
    if not contenders:
        raise ValueError("give at least one contender, e.g. timed_rounds(5, dict=fill_dict)")
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            times[name].append(seconds(fn))
    return {name: np.array(t) for name, t in times.items()}


def median_ratio(numerator: Callable[[], Any], denominator: Callable[[], Any], rounds: int = 3) -> float:
    """The median over ``rounds`` of ``seconds(numerator) / seconds(denominator)``, timed in turns.

    ``median_ratio(slow, fast)`` is how many times longer ``slow`` takes. See: book/ch03_dict_table.md
    """
    t = timed_rounds(rounds, numerator=numerator, denominator=denominator)
    return float(np.median(t["numerator"] / t["denominator"]))


# ---- memory ---------------------------------------------------------------------------------


def traced_bytes_per_row(table: Any, ids: Any, now: int = 0) -> float:
    """Bytes Python's allocator hands out per ID while ``table`` inserts ``ids`` (``tracemalloc``).

    One training lookup of ``ids`` (give distinct IDs the table does not hold yet), then
    ``pop_touched()`` so the touched-key set, bookkeeping rather than rows, is not counted.
    A second opinion on ``memory_bytes()``, which adds up sizes instead of measuring.
    See: book/ch03_dict_table.md
    """
    keys = np.asarray(ids)
    if keys.ndim != 1 or keys.size == 0:
        raise ValueError(f"ids must be a non-empty 1-d array, got shape {keys.shape}")
    if tracemalloc.is_tracing():
        raise RuntimeError("tracemalloc is already tracing: stop it first (this helper starts and stops it)")
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        table.lookup(ids, now=now)
        table.pop_touched()
        used = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    return used / keys.size


# ---- table states ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StateDiff:
    """How two states (``export()`` dicts, or any dicts of arrays) differ.

    ``only_a`` / ``only_b``: keys in one state only; ``differ``: keys whose arrays are not
    equal (value, shape or dtype); ``max_abs_diff``: for each of those with the same shape,
    the largest absolute difference (in float64). See: book/ch03_dict_table.md
    """

    only_a: tuple[str, ...] = ()
    only_b: tuple[str, ...] = ()
    differ: tuple[str, ...] = ()
    max_abs_diff: dict[str, float] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        """Same keys, and every array equal bit for bit with the same dtype."""
        return not (self.only_a or self.only_b or self.differ)

    def describe(self) -> str:
        """One line for a lab's output."""
        if self.identical:
            return "identical"
        parts = []
        if self.only_a:
            parts.append(f"only in the first: {', '.join(self.only_a)}")
        if self.only_b:
            parts.append(f"only in the second: {', '.join(self.only_b)}")
        for key in self.differ:
            gap = self.max_abs_diff.get(key)
            parts.append(f"{key} differs" + ("" if gap is None else f" (max |a - b| = {gap:.3g})"))
        return "; ".join(parts)


def _array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def compare_states(a: Mapping[str, Any], b: Mapping[str, Any]) -> StateDiff:
    """Compare two states key by key: which arrays differ, and by how much at most.

    Arrays (or tensors) are equal when they have the same shape, the same dtype and equal
    values (``np.array_equal``: a NaN equals nothing). See: book/ch03_dict_table.md
    """
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        raise TypeError("compare_states takes two mappings of names to arrays (e.g. table.export())")
    differ, gaps = [], {}
    for key in (k for k in a if k in b):
        x, y = _array(a[key]), _array(b[key])
        if x.dtype == y.dtype and np.array_equal(x, y):
            continue
        differ.append(str(key))
        if x.shape == y.shape and x.size and x.dtype.kind in "biuf" and y.dtype.kind in "biuf":
            gaps[str(key)] = float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))))
    return StateDiff(tuple(str(k) for k in a if k not in b), tuple(str(k) for k in b if k not in a),
                     tuple(differ), gaps)


def run_table_program(tables: Sequence[Any], stream: Any, batches: int, grad_seed: int, *,
                      time_step: int = 1, expire_every: int | None = None, serve: int = 0) -> bool:
    """Drive every table through the same program; True if their training lookups all agreed.

    ``stream`` is split into ``batches`` (``np.array_split``). At step ``s`` (time
    ``now = time_step * s``) each table does a training lookup of the batch, a serving
    lookup of its first ``serve`` IDs (if ``serve``), and applies gradients drawn from
    ``np.random.default_rng(grad_seed)`` (standard normal, ``float32``, one draw per
    batch shared by all tables); every ``expire_every`` steps (at steps ``expire_every - 1,
    2 * expire_every - 1, ...``) it expires at ``now``. The tables must share ``dim``.
    Compare their ``export()`` afterwards with :func:`compare_states`.
    See: book/ch03_dict_table.md
    """
    if not tables:
        raise ValueError("give at least one table")
    dims = {t.config.dim for t in tables}
    if len(dims) != 1:
        raise ValueError(f"the tables must share one dim, got {sorted(dims)}")
    batches = check_int(batches, "batches", low=1)
    if expire_every is not None:
        expire_every = check_int(expire_every, "expire_every", low=1)
    serve = check_int(serve, "serve", low=0)
    dim = dims.pop()
    rng = np.random.default_rng(grad_seed)
    agreed = True
    for step, batch in enumerate(np.array_split(np.asarray(stream), batches)):
        now = time_step * step
        grads = rng.normal(size=(batch.size, dim)).astype(np.float32)
        rows = [table.lookup(batch, now=now) for table in tables]  # all first: compared before any step
        agreed &= all(np.array_equal(rows[0], r) for r in rows[1:])
        for table in tables:
            if serve:
                table.lookup(batch[:serve], now=now, train=False)
            table.apply_gradients(batch, grads)
            if expire_every is not None and step % expire_every == expire_every - 1:
                table.expire(now)
    return agreed
