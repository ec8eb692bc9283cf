"""What each exercise asks you to write, and the check that you wrote it.

``GRADED`` names, per exercise module, the functions and methods whose stubs raise
``NotImplementedError``. Before a grader hands your module to its tests (the ``mod`` fixture in
``conftest.py``), :func:`ownership_problems` checks that each of them is your own code:

* a function's code (unwrapped; a Numba dispatcher's ``py_func``) was compiled from your file;
* a method is in its class's own ``__dict__`` (not inherited) and its code comes from your file;
  the class itself is defined in your file;
* the code does not just hand the work to a twin of the same name in the project's other code
  (``monolith_ref``, ``solutions``): a global (or an attribute of one, like
  ``hashing.expected_collision_rate``) that is such a function, or ``super().<name>`` reaching
  one. Library functions (``np.split`` in ``split``) are fine;
* the code does not use the package's version under another name (``TWINS``: calling
  ``fm_interaction`` in ``fm_second_order``, holding an ``OnlineJoiner`` in ``MiniJoiner``).

A re-export (``from monolith_ref.hashing import expected_collision_rate``), an alias
(``_lookup = DictTable._lookup``), an inherited answer (``class TTLDictTable(DictTable): pass``)
or such a wrapper makes every test of its exercise fail. A stub you have not written yet is
yours (it raises ``NotImplementedError`` from your file), so partial work keeps its points.
"""

from __future__ import annotations

import builtins
import dis
import importlib
import inspect
import os
from collections.abc import Iterable, Iterator
from types import CodeType, ModuleType
from typing import Any

#: exercise module -> the names you write (``"Class.method"`` for a method).
GRADED: dict[str, tuple[str, ...]] = {
    "ex02_collisions": ("expected_collision_rate",),
    "ex03_ttl_table": ("TTLDictTable._lookup", "TTLDictTable._apply_gradients", "TTLDictTable._expire"),
    "ex04_cuckoo": ("CuckooMapExercise._place",),
    "ex05_count_min": ("CountMin.__init__", "CountMin.columns", "CountMin.add", "CountMin.estimate",
                       "CountMin.admits"),
    "ex05_expiry": ("expire_entries",),
    "ex06_adagrad": ("adagrad_update",),
    "ex06_numba_lookup": ("lookup_or_insert",),
    "ex07_routing": ("route", "split", "reassemble"),
    "ex08_bridge": ("LookupToTable.forward", "LookupToTable.backward"),
    "ex08_fm": ("fm_second_order",),
    "ex09_joiner": ("MiniJoiner.__init__", "MiniJoiner.add_features", "MiniJoiner.add_action",
                    "MiniJoiner.advance"),
    "ex09_log_odds": ("log_odds_correction", "corrected_probability"),
    "ex10_delta_sync": ("delta_sync",),
    "ex11_atomic_snapshot": ("atomic_write_snapshot", "load_snapshot"),
    "ex12_remote_routing": ("gather_rows",),
    "ex13_auc_gap": ("auc_gap_stats", "interpret"),
}

#: exercise module -> graded function or class -> the package's version of it under another
#: name (dotted paths). A graded function or method whose code uses one of these (calls it,
#: builds it, delegates to it) is not the learner's own code.
TWINS: dict[str, dict[str, tuple[str, ...]]] = {
    "ex03_ttl_table": {"TTLDictTable": ("monolith_ref.tables.DictTable",)},
    "ex04_cuckoo": {"CuckooMapExercise": ("monolith_ref.tables.CuckooMap",)},
    "ex05_count_min": {"CountMin": ("monolith_ref.filters.CountMinSketch",)},
    "ex06_adagrad": {"adagrad_update": ("monolith_ref.optim.Adagrad",)},
    "ex07_routing": {"split": ("monolith_ref.tables.routing.split_by_shard",)},
    "ex08_bridge": {"LookupToTable": ("monolith_ref.torch_bridge.TableLookup",)},
    "ex08_fm": {"fm_second_order": ("monolith_ref.models.fm_interaction",)},
    "ex09_joiner": {"MiniJoiner": ("monolith_ref.streaming.joiner.OnlineJoiner",)},
    "ex11_atomic_snapshot": {"atomic_write_snapshot": ("monolith_ref.checkpoint.write_snapshot",),
                             "load_snapshot": ("monolith_ref.checkpoint.read_snapshot",)},
}

#: Where a twin of a graded name can live: the package, the reference answers, the stubs.
TWIN_PACKAGES = ("monolith_ref", "solutions", "exercises")

_MISSING = object()


def function_of(obj: Any) -> Any:
    """The plain Python function behind ``obj``: through static/class methods, Numba
    dispatchers (``py_func``) and decorators (``__wrapped__``); ``None`` if there is none."""
    for _ in range(10):
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        elif getattr(obj, "py_func", None) is not None:
            obj = obj.py_func
        elif getattr(obj, "__wrapped__", None) is not None:
            try:
                obj = inspect.unwrap(obj)
            except ValueError:  # a cycle of __wrapped__
                return None
        else:
            break
    return obj if isinstance(getattr(obj, "__code__", None), CodeType) else None


def _same_file(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and os.path.realpath(a) == os.path.realpath(b)


def _shown(path: str | None, root: str | None) -> str:
    """``path`` relative to the checkout when it is inside it."""
    if path is None:
        return "no file"
    real = os.path.realpath(path)
    if root is not None:
        rel = os.path.relpath(real, os.path.realpath(root))
        if not rel.startswith(".."):
            return rel
    return real


def _where(obj: Any) -> str:
    """``module.qualname`` of a function or class defined somewhere."""
    fn = function_of(obj)
    name = getattr(obj, "__qualname__", None) or getattr(fn, "__qualname__", None) or repr(obj)
    module = getattr(obj, "__module__", None) or getattr(fn, "__module__", None)
    return f"{module}.{name}" if module else name


def _codes(code: CodeType) -> Iterator[CodeType]:
    """``code`` and every code object nested in it (inner functions, lambdas, comprehensions)."""
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _codes(const)


def _is_own(obj: Any, path: str) -> bool:
    fn = function_of(obj)
    return fn is not None and _same_file(fn.__code__.co_filename, path)


def resolve(dotted: str) -> Any:
    """The object at a dotted path (``package.module.name``, or ``...Class.attr``)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(f"cannot resolve {dotted!r}")


def _twin_in_code(fn: Any, short: str, path: str, cls: type | None, others: tuple[Any, ...] = ()) -> str | None:
    """Where ``fn`` hands its work to a same-named function or method that is not in ``path``, or
    uses one of ``others`` (the package's version under another name)."""
    other_ids = {id(o) for o in others} | {id(function_of(o)) for o in others if function_of(o) is not None}

    def other(obj: Any) -> bool:
        return obj is not _MISSING and (id(obj) in other_ids or (function_of(obj) is not None
                                                                and id(function_of(obj)) in other_ids))

    def foreign(obj: Any) -> bool:
        """A function of the project's own code (not a library's) that is not in ``path``."""
        inner = function_of(obj) if obj is not _MISSING and callable(obj) else None
        home = (getattr(inner, "__module__", None) or "").partition(".")[0]
        return inner is not None and home in TWIN_PACKAGES and not _is_own(obj, path)

    def lookup(name: str) -> Any:
        if name in fn.__globals__:
            return fn.__globals__[name]
        return getattr(builtins, name, _MISSING)

    for cell in fn.__closure__ or ():
        try:
            held = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if getattr(held, "__name__", None) == short and foreign(held):
            return f"only calls {_where(held)}"
        if other(held):
            return f"uses {_where(held)}, the package's version of it"
    for code in _codes(fn.__code__):
        current: Any = _MISSING
        for ins in dis.get_instructions(code):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                current = lookup(ins.argval)
                if ins.argval != short and getattr(current, "__name__", None) == short and foreign(current):
                    return f"only calls {_where(current)}"  # from x import f as _f
                if other(current):
                    return f"uses {_where(current)}, the package's version of it"
            elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and current is not _MISSING:
                try:
                    current = inspect.getattr_static(current, ins.argval)
                except AttributeError:
                    current = _MISSING
                if ins.argval == short and foreign(current):
                    return f"only calls {_where(current)}"  # module.f or Base.f
                if other(current):
                    return f"uses {_where(current)}, the package's version of it"
            else:
                current = _MISSING
        if cls is not None and "super" in code.co_names and short in code.co_names:
            parent = next((vars(base)[short] for base in cls.__mro__[1:] if short in vars(base)), _MISSING)
            if foreign(parent):
                return f"only calls super().{short}, which is {_where(parent)}"
    return None


def ownership_problems(module: ModuleType, names: Iterable[str], root: str | None = None,
                       twins: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """One line per graded name of ``module`` that is not the learner's own code (empty: all are).

    ``twins`` maps a graded function or class to its package versions under other names
    (a :data:`TWINS` entry); ``root`` (the checkout) only shortens the file names shown."""
    others = {key: tuple(resolve(d) for d in dotted) for key, dotted in (twins or {}).items()}
    path = getattr(module, "__file__", None)
    here = _shown(path, root)
    problems: list[str] = []
    seen_classes: dict[str, bool] = {}
    for name in names:
        owner_name, _, method = name.rpartition(".")
        if owner_name:
            cls = getattr(module, owner_name, _MISSING)
            if owner_name not in seen_classes:  # the class itself, checked once
                missing = cls is _MISSING or not inspect.isclass(cls)
                if missing:
                    problems.append(f"{owner_name}: write the class in {here}; it is missing there.")
                elif cls.__module__ != module.__name__:
                    problems.append(f"{owner_name}: write the class in {here}; yours is {_where(cls)}.")
                seen_classes[owner_name] = not missing and cls.__module__ == module.__name__
            if not seen_classes[owner_name]:
                continue
            if method not in vars(cls):
                base = next((b for b in cls.__mro__ if method in vars(b)), None)
                origin = f"yours is inherited from {_where(base)}" if base is not None else "it is missing"
                problems.append(f"{name}: write it in the class {owner_name} in {here}; {origin}.")
                continue
            obj, short = vars(cls)[method], method
        else:
            cls, short = None, name
            obj = getattr(module, name, _MISSING)
            if obj is _MISSING:
                problems.append(f"{name}: write it in {here}; it is missing there.")
                continue
        fn = function_of(obj)
        if fn is None:
            problems.append(f"{name}: write it in {here} as a function; yours is {obj!r}.")
        elif not _same_file(fn.__code__.co_filename, path):
            own_name = fn.__module__ == module.__name__  # then only the file tells where it is from
            source = f", compiled from {_shown(fn.__code__.co_filename, root)}" if own_name else ""
            problems.append(f"{name}: write it in {here}; yours is {_where(obj)}{source}.")
        else:
            twin = _twin_in_code(fn, short, path, cls, others.get(owner_name or name, ()))
            if twin is not None:
                problems.append(f"{name}: write it in {here}; yours {twin}.")
    return problems
