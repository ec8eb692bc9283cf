"""The package's shape: no borrowed private names, and imports that flow one way.

Two rules from issue 12 and docs/STYLE.md ("one of each", "fast operations are a public
module"): a module never imports an underscore name from another module of the package (what
others build on is public and documented), and the package's import graph has no cycle, counting
every import statement in a module (top level, inside functions, and under ``TYPE_CHECKING``).
The labs, the exercises, the solutions and the benchmarks are held to the first rule too: they
use the package's public names.

See: book/appendix_api.md
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "monolith_ref"
CLIENTS = [ROOT / "notebooks" / "src", ROOT / "exercises", ROOT / "solutions", ROOT / "benchmarks", ROOT / "tools"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = package_modules()


def resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` reads from."""
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name) for every import in a file; name is None for ``import x``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    current = module_name(path) if path.is_relative_to(PACKAGE) else ""
    is_package = path.name == "__init__.py"
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = resolve(node, current, is_package)
            found += [(node.lineno, source, alias.name) for alias in node.names]
    return found


def targets(source: str, name: str | None) -> list[str]:
    """The package modules an import statement loads (the submodule when a name is one)."""
    if name is not None and f"{source}.{name}" in MODULES:
        return [f"{source}.{name}"]
    return [source] if source in MODULES else []


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def in_package(source: str) -> bool:
    return source == "monolith_ref" or source.startswith("monolith_ref.")


def module_aliases(tree: ast.AST, current: str, is_package: bool) -> dict[str, str]:
    """Local names bound to a module of the package (``import monolith_ref.x as m``, ``from . import x``)."""
    known = set(MODULES) | {"monolith_ref"}
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if in_package(alias.name):
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else "monolith_ref"
        elif isinstance(node, ast.ImportFrom):
            source = resolve(node, current, is_package)
            for alias in node.names:
                if f"{source}.{alias.name}" in known:
                    aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
    return aliases


def private_imports(paths: list[Path]) -> list[str]:
    """Imports of, and attribute reads of, another package module's underscore names."""
    bad = []
    for path in paths:
        here = module_name(path) if path.is_relative_to(PACKAGE) else str(path.relative_to(ROOT))
        for line, source, name in imports_of(path):
            if not in_package(source):
                continue
            dotted = source.split(".") + ([name] if name and name != "*" else [])
            if any(is_private(part) for part in dotted) and source != here:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {source} import {name}")
        tree = ast.parse(path.read_text(), filename=str(path))
        aliases = module_aliases(tree, here, path.name == "__init__.py")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and is_private(node.attr):
                base = node.value
                chain = []
                while isinstance(base, ast.Attribute):
                    chain.insert(0, base.attr)
                    base = base.value
                if isinstance(base, ast.Name) and base.id in aliases:
                    target = ".".join([aliases[base.id]] + chain)
                    if target != here:
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {target}.{node.attr}")
    return bad


def test_no_module_of_the_package_imports_a_private_name():
    bad = private_imports(list(MODULES.values()))
    assert not bad, "imports of underscore names from another module:\n" + "\n".join(bad)


def test_labs_exercises_and_benchmarks_use_public_names_only():
    files = [p for folder in CLIENTS if folder.exists() for p in sorted(folder.rglob("*.py"))]
    assert files, "no client files found"
    bad = private_imports(files)
    assert not bad, "imports of underscore names of monolith_ref:\n" + "\n".join(bad)


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod, path in MODULES.items():
        for _, source, name in imports_of(path):
            for target in targets(source, name):
                if target != mod:
                    graph[mod].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules, or None (iterative three-colour DFS)."""
    colour = {m: 0 for m in graph}
    for start in sorted(graph):
        if colour[start]:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            for child in children:
                if colour[child] == 1:
                    return path[path.index(child):] + [child]
                if colour[child] == 0:
                    colour[child] = 1
                    path.append(child)
                    stack.append((child, iter(sorted(graph[child]))))
                    break
            else:
                colour[node] = 2
                path.pop()
                stack.pop()
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert sum(map(len, graph.values())) > 50, "the import graph looks empty: is the parser right?"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("code, private", [("from monolith_ref.tables.numba_table import _find", True),
                                          ("from monolith_ref.kernels import find", False),
                                          ("from monolith_ref import __version__", False),
                                          ("import monolith_ref._secret", True),
                                          ("import monolith_ref.tables.numba_table as nt\nnt._find", True),
                                          ("from monolith_ref.tables import numba_table\nnumba_table._find", True),
                                          ("import monolith_ref as mr\nmr.tables.numba_table._find", True),
                                          ("import monolith_ref as mr\nmr.kernels.find", False)])
def test_the_private_import_rule_is_what_it_says(tmp_path, code, private):
    f = tmp_path / "lab.py"
    f.write_text(code + "\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert bool(private_imports([f])) is private
    finally:
        ROOT = saved


def readme_layers() -> list[list[str]]:
    """The module map in the README, top line first: the names on each line."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## The package's architecture", 1)[1]
    block = section.split("```\n", 2)[1]
    return [[n.strip() for n in line.split("  ", 1)[0].split(",")] for line in block.splitlines() if line.strip()]


def test_the_readme_module_map_matches_the_imports():
    layers = readme_layers()
    level = {name: len(layers) - i for i, names in enumerate(layers) for name in names}
    tops = {m.split(".")[1] for m in MODULES if m.count(".") >= 1}
    assert not tops - set(level), f"modules missing from the README's module map: {sorted(tops - set(level))}"
    upward = []
    for mod, deps in import_graph().items():
        if mod.count(".") < 1:
            continue
        for dep in deps:
            if dep.count(".") < 1:
                continue
            a, b = mod.split(".")[1], dep.split(".")[1]
            if a != b and level[b] > level[a]:
                upward.append(f"{mod} imports {dep}, which the README's map puts above it")
    assert not upward, "\n".join(sorted(upward))
