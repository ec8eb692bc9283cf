"""The graders grade the learner's code: copies of someone else's answer score 0 points.

For every exercise this test builds, in a temporary folder, the cheats a learner could try
(each kind is one importable package with one file per exercise it applies to):

* ``reexport_solution``: ``from solutions.exNN import *``;
* ``rebuilt_solution``: the solution's code objects wrapped in new functions (re-``njit``-ed);
* ``reexport_package``: the solution's file, but the names with a same-named function in
  ``monolith_ref`` re-exported from there (``from monolith_ref.hashing import ...``);
* ``wrapper_module`` / ``wrapper_alias``: the same, as a thin wrapper calling the package's
  twin (``hashing.expected_collision_rate(...)``, or ``_twin(...)`` after ``import ... as _twin``);
* ``subclass_solution``: ``class C(C): pass`` on the solution's class;
* ``subclass_package``: the solution's bases, no body (``class TTLDictTable(DictTable): pass``);
* ``alias_solution`` / ``alias_package``: the graded methods aliased from the solution's class,
  or from the package base that has them (``_lookup = DictTable._lookup``);
* ``wrapper_method`` / ``super_method``: methods that only call ``Base.m(self, ...)`` or
  ``super().m(...)`` of a package base;
* ``delegate_other``: code that hands the work to the package's version under another name
  (``graded.TWINS``: ``fm_interaction`` for ``fm_second_order``, an ``OnlineJoiner`` held by
  ``MiniJoiner``, ...);

then grades each package with ``monolith_ref.grading.grade`` (the grader's own scoring) and
asserts 0 points for every exercise it covers, each failing with the ownership message. The
same run grades the solutions (full marks), the untouched stubs (0), and ``partial``: stub files
with only the first graded name written, which keep the points of the tests they pass.

The table of graded names lives in ``tests/exercises/graded.py``; this file checks it against
the stubs. No test here carries a ``points`` marker: none counts in the score table.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (ROOT / "exercises").glob("ex*.py"))
PACKAGE = ROOT / "monolith_ref"


def _load_graded() -> ModuleType:
    """``tests/exercises/graded.py``, loaded from its file (``exercises`` is the learner's package)."""
    spec = importlib.util.spec_from_file_location("_exercise_graded_names", ROOT / "tests" / "exercises" / "graded.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


graded = _load_graded()
GRADED: dict[str, tuple[str, ...]] = graded.GRADED
TWINS: dict[str, dict[str, tuple[str, ...]]] = graded.TWINS


def exercise_id(name: str) -> str:
    text = (ROOT / "tests" / "exercises" / f"test_{name}.py").read_text()
    match = re.search(r"pytest\.mark\.exercise\(\s*[\"']([\d.]+)[\"']", text)
    assert match, f"no exercise marker in the grader of {name}"
    return match.group(1)


def stub_names(name: str) -> list[str]:
    """``f`` and ``Class.method`` for every function of the stub whose body raises NotImplementedError."""
    tree = ast.parse((ROOT / "exercises" / f"{name}.py").read_text())
    found = []

    def raises(fn: ast.FunctionDef) -> bool:
        return any(isinstance(s, ast.Raise) and "NotImplementedError" in ast.unparse(s) for s in fn.body)

    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and raises(node):
            found.append(node.name)
        elif isinstance(node, ast.ClassDef):
            found += [f"{node.name}.{f.name}" for f in node.body if isinstance(f, ast.FunctionDef) and raises(f)]
    return found


def _resolve(module: ModuleType, dotted: str) -> object:
    obj: object = module
    for part in dotted.split("."):
        obj = vars(obj)[part] if isinstance(obj, type) else getattr(obj, part)
    return obj


# ------------------------------------------------------------------------------- the table


def test_every_exercise_has_its_graded_names() -> None:
    assert sorted(GRADED) == MODULES, "tests/exercises/graded.py must list exactly the exercise modules"
    for name in MODULES:
        assert list(GRADED[name]) == stub_names(name), (
            f"GRADED[{name!r}] must name the stub's NotImplementedError functions, in file order")
        stub = importlib.import_module(f"exercises.{name}")
        solution = importlib.import_module(f"solutions.{name}")
        for dotted in GRADED[name]:
            for module in (stub, solution):
                assert graded.function_of(_resolve(module, dotted)) is not None, f"{module.__name__}.{dotted}"
    for name, twins in TWINS.items():
        assert name in GRADED, f"TWINS names an unknown exercise module {name!r}"
        for key, paths in twins.items():
            assert key in {n.split(".")[0] for n in GRADED[name]}, f"TWINS[{name!r}]: {key!r} is not graded"
            for path in paths:
                assert path.startswith("monolith_ref.") and callable(graded.resolve(path)), path


@pytest.mark.parametrize("impl", ["exercises", "solutions"])
def test_stubs_and_solutions_are_their_own_code(impl: str) -> None:
    for name in MODULES:
        module = importlib.import_module(f"{impl}.{name}")
        assert graded.ownership_problems(module, GRADED[name], str(ROOT), TWINS.get(name)) == [], f"{impl}.{name}"


DELEGATIONS = {  # hand-written: the package's version under another name, through an instance or a call
    "ex05_count_min": '''
        from monolith_ref.filters import CountMinSketch


        class CountMin:
            def __init__(self, width, depth, seed=0):
                self.width, self.depth, self.seed = width, depth, seed
                self.inner = CountMinSketch(1, width, depth, seed)
                self.counters = self.inner.counters

            def columns(self, key):
                return self.inner.columns(key)

            def add(self, key, count=1):
                for _ in range(count):
                    self.inner.admit(key, 0)

            def estimate(self, key):
                return self.inner.estimate(key)

            def admits(self, key, threshold):
                return self.estimate(key) >= threshold
        ''',
    "ex06_adagrad": '''
        from monolith_ref import optim


        def adagrad_update(row, acc, grad, lr, eps=1e-10):
            optim.Adagrad(lr=lr, initial_accumulator=0.0, eps=eps).step(row, acc, grad)
        ''',
    "ex08_fm": '''
        from monolith_ref.models import fm_interaction as pairwise


        def fm_second_order(emb):
            return (lambda e: pairwise(e))(emb)
        ''',
    "ex09_joiner": '''
        from monolith_ref.streaming.joiner import JoinerConfig, OnlineJoiner


        class MiniJoiner:
            def __init__(self, window):
                self.inner = OnlineJoiner(JoinerConfig(window=window))

            def add_features(self, request_id, time, now):
                return self.inner.add_features(request_id, time, b"", now)

            def add_action(self, request_id, now):
                return self.inner.add_action(request_id, now, now)

            def advance(self, now):
                return self.inner.advance(now)
        ''',
}


@pytest.mark.parametrize("name", sorted(DELEGATIONS))
def test_using_the_package_version_under_another_name_is_caught(name: str, tmp_path: Path) -> None:
    package = tmp_path / "delegating"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / f"{name}.py").write_text(textwrap.dedent(DELEGATIONS[name]))
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(f"delegating.{name}")
        problems = graded.ownership_problems(module, GRADED[name], str(ROOT), TWINS.get(name))
    finally:
        sys.path.remove(str(tmp_path))
        for key in [k for k in sys.modules if k == "delegating" or k.startswith("delegating.")]:
            del sys.modules[key]
    assert problems and all("the package's version of it" in p for p in problems), problems


# ------------------------------------------------------------------------------ the cheats


def _package_functions() -> dict[str, list[str]]:
    """Module-level public function name -> the package modules that define one of that name."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                found.setdefault(node.name, []).append(".".join(parts))
    return found


def _function_twin(fname: str, functions: dict[str, list[str]]) -> str | None:
    """The package module whose ``fname`` is importable (the first of those that define one)."""
    for module in functions.get(fname, []):
        if callable(getattr(importlib.import_module(module), fname, None)):
            return module
    return None


def _method_twin(cls: type, method: str) -> type | None:
    """The package base of ``cls`` that defines ``method`` (what an alias or subclass inherits)."""
    return next((b for b in cls.__mro__[1:] if b.__module__.startswith("monolith_ref") and method in vars(b)), None)


def _replace_defs(stub_text: str, solution_text: str, names: set[str]) -> str:
    """The stub's text with the functions/methods ``names`` replaced by the solution's source."""

    def spans(text: str) -> dict[str, tuple[int, int]]:
        out = {}
        for node in ast.parse(text).body:
            nodes = [(node.name, node)] if isinstance(node, ast.FunctionDef) else []
            if isinstance(node, ast.ClassDef):
                nodes = [(f"{node.name}.{f.name}", f) for f in node.body if isinstance(f, ast.FunctionDef)]
            for dotted, fn in nodes:
                start = min([fn.lineno] + [d.lineno for d in fn.decorator_list])
                out[dotted] = (start - 1, fn.end_lineno)
        return out

    stub_lines, sol_lines = stub_text.splitlines(), solution_text.splitlines()
    stub_spans, sol_spans = spans(stub_text), spans(solution_text)
    for dotted in sorted(names, key=lambda d: -stub_spans[d][0]):  # bottom up: earlier spans stay valid
        a, b = stub_spans[dotted]
        c, d = sol_spans[dotted]
        stub_lines[a:b] = sol_lines[c:d]
    return "\n".join(stub_lines) + "\n"


def build_cheats(base: Path) -> dict[str, dict[str, str]]:
    """Write one package per kind of cheat under ``base``; return kind -> {module: exercise id}."""
    functions = _package_functions()
    files: dict[str, dict[str, str]] = {}
    for name in MODULES:
        solution = importlib.import_module(f"solutions.{name}")
        sol_text = (ROOT / "solutions" / f"{name}.py").read_text()
        names = GRADED[name]
        tops = sorted({n.split(".")[0] for n in names})
        plain = [n for n in names if "." not in n]
        classes = sorted({n.split(".")[0] for n in names if "." in n})
        methods = {c: [n.split(".")[1] for n in names if n.startswith(c + ".")] for c in classes}

        def put(kind: str, text: str, module: str = name) -> None:
            files.setdefault(kind, {})[module] = text

        put("reexport_solution", f"from solutions.{name} import *  # noqa: F403\n"
                                 f"from solutions.{name} import {', '.join(tops)}  # noqa: F401\n")
        if plain:
            put("rebuilt_solution", textwrap.dedent(f"""\
                import types

                from numba import njit

                import solutions.{name} as _sol
                from solutions.{name} import *  # noqa: F403


                def _rebuild(obj):
                    fn = getattr(obj, "py_func", obj)
                    new = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
                    new.__kwdefaults__ = fn.__kwdefaults__
                    return njit(new) if hasattr(obj, "py_func") else new
                """) + "".join(f"\n{f} = _rebuild(_sol.{f})\n" for f in plain))
        twins = {f: t for f in plain if (t := _function_twin(f, functions)) is not None}
        if twins:
            put("reexport_package", sol_text + "".join(f"\nfrom {t} import {f}  # noqa: E402,F811\n"
                                                       for f, t in twins.items()))
            put("wrapper_module", sol_text + "".join(
                f"\nimport {t} as _twin_{i}  # noqa: E402\n\n\ndef {f}(*args, **kwargs):  # noqa: F811\n"
                f"    return _twin_{i}.{f}(*args, **kwargs)\n" for i, (f, t) in enumerate(twins.items())))
            put("wrapper_alias", sol_text + "".join(
                f"\nfrom {t} import {f} as _twin_{i}  # noqa: E402\n\n\ndef {f}(*args, **kwargs):  # noqa: F811\n"
                f"    return _twin_{i}(*args, **kwargs)\n" for i, (f, t) in enumerate(twins.items())))
        if classes:
            head = "".join(f"from solutions.{name} import {c} as _Sol_{c}\n" for c in classes)
            rest = "".join(f"from solutions.{name} import {f}  # noqa: F401\n" for f in plain)
            put("subclass_solution", f"from solutions.{name} import *  # noqa: F403\n"
                + "".join(f"\n\nclass {c}({c}):  # noqa: F405\n    pass\n" for c in classes))
            put("alias_solution", head + rest + "".join(
                f"\n\nclass {c}(*_Sol_{c}.__bases__):\n"
                + "".join(f"    {m} = _Sol_{c}.__dict__[{m!r}]\n" for m in methods[c]) for c in classes))
            bases = {(c, m): _method_twin(getattr(solution, c), m) for c in classes for m in methods[c]}
            if any(bases.values()):
                twin_imports = "".join(f"from {b.__module__} import {b.__qualname__} as _Twin_{b.__qualname__}\n"
                                       for b in {b for b in bases.values() if b is not None})

                def body(c: str, line: str) -> str:
                    out = []
                    for m in methods[c]:
                        b = bases[(c, m)]
                        out.append(line.format(m=m, twin=f"_Twin_{b.__qualname__}") if b is not None
                                   else f"    {m} = _Sol_{c}.__dict__[{m!r}]\n")
                    return "".join(out)

                put("subclass_package", head + rest + "".join(
                    f"\n\nclass {c}(*_Sol_{c}.__bases__):\n    pass\n" for c in classes))
                put("alias_package", head + rest + twin_imports + "".join(
                    f"\n\nclass {c}(*_Sol_{c}.__bases__):\n" + body(c, "    {m} = {twin}.__dict__[{m!r}]\n")
                    for c in classes))
                put("wrapper_method", head + rest + twin_imports + "".join(
                    f"\n\nclass {c}(*_Sol_{c}.__bases__):\n" + body(
                        c, "    def {m}(self, *args, **kwargs):\n        return {twin}.{m}(self, *args, **kwargs)\n")
                    for c in classes))
                put("super_method", head + rest + "".join(
                    f"\n\nclass {c}(*_Sol_{c}.__bases__):\n" + body(
                        c, "    def {m}(self, *args, **kwargs):\n        return super().{m}(*args, **kwargs)\n")
                    for c in classes))
        for key, paths in TWINS.get(name, {}).items():
            home, _, twin = paths[0].rpartition(".")
            other = f"_Other_{key}"
            twin_import = f"from {home} import {twin} as {other}\n"
            if key in plain:  # a function: call the package's version (a function or a class) with its arguments
                files.setdefault("delegate_other", {}).setdefault(name, sol_text)
                files["delegate_other"][name] += (f"\n{twin_import}\n\ndef {key}(*args, **kwargs):  # noqa: F811\n"
                                                  f"    return {other}(*args, **kwargs)\n")
                continue
            lines = [f"from solutions.{name} import {key} as _Sol\n", twin_import,
                     f"\n\nclass {key}(*_Sol.__bases__):\n"]
            for m in methods[key]:
                if m == "__init__":  # hold an instance of the package's class and hand every call to it
                    lines.append(f"    def __init__(self, *args, **kwargs):\n"
                                 f"        self._inner = {other}.__new__({other})\n")
                elif isinstance(vars(getattr(solution, key))[m], staticmethod):
                    lines.append(f"    @staticmethod\n    def {m}(*args, **kwargs):\n"
                                 f"        return {other}.{m}(*args, **kwargs)\n")
                elif "__init__" in methods[key]:
                    lines.append(f"    def {m}(self, *args, **kwargs):\n"
                                 f"        return getattr(self._inner, {m!r})(*args, **kwargs)\n")
                else:
                    lines.append(f"    def {m}(self, *args, **kwargs):\n"
                                 f"        return {other}.{m}(self, *args, **kwargs)\n")
            put("delegate_other", "".join(lines))
        if len(names) > 1:
            stub_text = (ROOT / "exercises" / f"{name}.py").read_text()
            put("partial", _replace_defs(stub_text, sol_text, {names[0]}))
    kinds: dict[str, dict[str, str]] = {}
    for kind, modules in files.items():
        package = base / f"cheat_{kind}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        for module, text in modules.items():
            (package / f"{module}.py").write_text(text)
        kinds[kind] = {module: exercise_id(module) for module in modules}
    return kinds


RUNNER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from monolith_ref.grading import grade

    root, base, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    sys.path.insert(0, base)
    results = {}
    for impl in sys.argv[4:]:
        scores = grade(impl=impl, root=root, output="none")
        results[impl] = {s.exercise: [s.earned, s.possible, s.first_failure, s.error] for s in scores}
    out.write_text(json.dumps(results))
""")


def run_grades(base: Path, impls: list[str], root: Path = ROOT) -> dict[str, dict[str, list]]:
    """Grade each package of ``impls`` (importable from ``base``) in one fresh interpreter."""
    out = base / "grades.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(base), str(root), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", RUNNER, str(root), str(base), str(out), *impls],
                         cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(out.read_text())


OWNERSHIP = "Not your own code, so 0 points"  # the mod fixture's message (tests/exercises/conftest.py)


def test_every_cheat_scores_zero_and_the_solutions_full_marks(tmp_path: Path) -> None:
    kinds = build_cheats(tmp_path / "cheats")
    covered = {m for modules in kinds.values() for m in modules}
    assert covered == set(MODULES), "every exercise must get at least one cheat"
    for kind in ("reexport_solution", "rebuilt_solution", "reexport_package", "subclass_solution",
                 "subclass_package", "alias_solution", "alias_package", "wrapper_module", "super_method",
                 "delegate_other"):
        assert kinds.get(kind), f"no exercise got the cheat {kind}"
    grades = run_grades(tmp_path / "cheats", ["solutions", "exercises"] + [f"cheat_{k}" for k in kinds])

    solutions, stubs = grades["solutions"], grades["exercises"]
    assert len(solutions) == len(MODULES) and all(e == p > 0 for e, p, _, _ in solutions.values()), solutions
    assert all(e == 0 and p > 0 for e, p, _, _ in stubs.values()), stubs
    wrong = []
    for kind, modules in kinds.items():
        scores = grades[f"cheat_{kind}"]
        for module, exercise in modules.items():
            earned, possible, why, error = scores[exercise]
            assert error is None and possible == solutions[exercise][1], (kind, module, scores[exercise])
            if kind == "partial":  # own code, part of it still a stub: no ownership complaint
                if OWNERSHIP in why or earned == possible:
                    wrong.append(f"{kind}/{module}: {earned}/{possible}: {why}")
            elif earned != 0 or OWNERSHIP not in why:
                wrong.append(f"{kind}/{module}: {earned}/{possible}: {why}")
    assert not wrong, "\n".join(wrong)
    partial = grades["cheat_partial"]
    assert sum(partial[e][0] for e in kinds["partial"].values()) > 0, "partial work must keep its points"
    assert partial[exercise_id("ex07_routing")][0] >= 2, "route written, split and reassemble stubs: route's points"
