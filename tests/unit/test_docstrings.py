"""Every public class and function names the chapter that explains it (house rule)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import monolith_ref

ROOT = Path(__file__).resolve().parents[2]
SEE = re.compile(r"See: (book/[\w./-]+\.md)")


def _public_objects():
    for info in pkgutil.walk_packages(monolith_ref.__path__, "monolith_ref."):
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", obj


def test_every_public_name_has_a_docstring_naming_an_existing_chapter() -> None:
    missing, dangling, seen = [], [], 0
    for qualname, obj in _public_objects():
        seen += 1
        refs = SEE.findall(inspect.getdoc(obj) or "")
        if not refs:
            missing.append(qualname)
        dangling += [f"{qualname} -> {r}" for r in refs if not (ROOT / r).is_file()]
    assert seen > 150  # the walk really found the package
    assert not missing, f"no 'See: book/...' in the docstring of: {missing}"
    assert not dangling, f"docstrings naming chapters that do not exist: {dangling}"


def test_every_module_is_in_the_api_reference() -> None:
    page = (ROOT / "book" / "appendix_api.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"automodule:: ([\w.]+)", page))
    modules = {info.name for info in pkgutil.walk_packages(monolith_ref.__path__, "monolith_ref.")
               if not info.name.endswith("__main__")} | {"monolith_ref"}
    assert not modules - listed, f"modules missing from book/appendix_api.md: {sorted(modules - listed)}"
