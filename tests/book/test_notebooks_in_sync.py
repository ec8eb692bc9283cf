"""notebooks/NAME.ipynb must match its source notebooks/src/NAME.py (jupytext, tools/notebooks.py).

The first tests check the tool on temporary files: conversion, execution, normalisation,
and that the check reports every kind of drift (on a copy of a real lab too). The last one
checks the real pairs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

SOURCE = """\
# %% [markdown]
# # Title
#
# Some *prose*.

# %%
x = 6 * 7
x

# %% tags=["hide-input"]
print("hello")

# %% [markdown]
# ```mermaid
# flowchart LR
#   A --> B
# ```
"""


def run_tool(repo_root, *args):
    return subprocess.run(
        [sys.executable, str(repo_root / "tools" / "notebooks.py"), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture()
def pair(tmp_path):
    src, out = tmp_path / "src", tmp_path
    src.mkdir()
    (src / "demo.py").write_text(SOURCE, encoding="utf-8")
    return src, out


def test_jupytext_reads_the_percent_format(notebooks_tool):
    nb = notebooks_tool.from_source(SOURCE, "demo")
    cells = notebooks_tool.cells_of(nb)
    assert [c.kind for c in cells] == ["markdown", "code", "code", "markdown"]
    assert cells[0].source == "# Title\n\nSome *prose*."
    assert cells[1].source == "x = 6 * 7\nx"
    assert cells[2].tags == ("hide-input",)
    assert cells[3].source.startswith("```mermaid\nflowchart LR")
    # Only what the book reads is kept: no jupytext round-trip metadata, deterministic ids.
    assert [c.id for c in nb.cells] == ["demo-000", "demo-001", "demo-002", "demo-003"]
    assert all(set(c.metadata) <= {"tags"} for c in nb.cells)
    assert set(nb.metadata) == {"kernelspec", "language_info"}


def test_convert_execute_and_check(repo_root, pair):
    src, out = pair
    result = run_tool(repo_root, "--src-dir", src, "--out-dir", out)
    assert result.returncode == 0, result.stdout
    nb = json.loads((out / "demo.ipynb").read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code[0]["outputs"][0]["data"]["text/plain"] == ["42"]
    assert code[1]["outputs"][0]["text"] == ["hello\n"]
    assert code[1]["metadata"] == {"tags": ["hide-input"]}
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["metadata"]["language_info"]["name"] == "python"
    for cell in nb["cells"]:
        assert "execution" not in cell["metadata"]
    assert [c["id"] for c in nb["cells"]] == ["demo-000", "demo-001", "demo-002", "demo-003"]

    assert run_tool(repo_root, "--check", "--src-dir", src, "--out-dir", out).returncode == 0


def test_one_notebook_by_name(repo_root, pair):
    src, out = pair
    (src / "other.py").write_text("# %%\n1\n", encoding="utf-8")
    result = run_tool(repo_root, "--no-exec", "other", "--src-dir", src, "--out-dir", out)
    assert result.returncode == 0, result.stdout
    assert (out / "other.ipynb").is_file() and not (out / "demo.ipynb").exists()
    assert run_tool(repo_root, "--no-exec", "missing", "--src-dir", src, "--out-dir", out).returncode == 2


def test_conversion_is_deterministic(repo_root, pair):
    src, out = pair
    assert run_tool(repo_root, "--no-exec", "--src-dir", src, "--out-dir", out).returncode == 0
    first = (out / "demo.ipynb").read_bytes()
    assert run_tool(repo_root, "--no-exec", "--src-dir", src, "--out-dir", out).returncode == 0
    assert (out / "demo.ipynb").read_bytes() == first


def test_check_detects_drift(repo_root, pair):
    src, out = pair
    assert run_tool(repo_root, "--no-exec", "--src-dir", src, "--out-dir", out).returncode == 0
    check = ("--check", "--src-dir", src, "--out-dir", out)
    assert run_tool(repo_root, *check).returncode == 0

    # Source edited, notebook not regenerated.
    (src / "demo.py").write_text(SOURCE.replace("6 * 7", "6 * 9"), encoding="utf-8")
    result = run_tool(repo_root, *check)
    assert result.returncode == 1 and "demo" in result.stdout and "6 * 9" in result.stdout

    # Notebook without a source, and source without a notebook.
    (src / "demo.py").write_text(SOURCE, encoding="utf-8")
    (out / "orphan.ipynb").write_bytes((out / "demo.ipynb").read_bytes())
    (src / "fresh.py").write_text("# %%\n1\n", encoding="utf-8")
    result = run_tool(repo_root, *check)
    assert result.returncode == 1
    assert "orphan" in result.stdout and "fresh" in result.stdout


def _edit_code(nb):
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.source += "\nprint('edited in the notebook')"
    return "edited in the notebook"


def _edit_markdown(nb):
    cell = next(c for c in nb.cells if c.cell_type == "markdown")
    cell.source = cell.source.replace("Lab", "Notebook", 1) + "\n\nA new paragraph."
    return "cell 0"


def _drop_tag(nb):
    cell = next(c for c in nb.cells if c.metadata.get("tags"))
    cell.metadata["tags"] = []
    return "tags"


def _change_kind(nb):
    index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
    nb.cells[index] = nbformat.v4.new_code_cell(nb.cells[index].source, id=nb.cells[index].id)
    return "code in the notebook, markdown in the source"


def _delete_cell(nb):
    del nb.cells[-1]
    return "cells in the notebook"


@pytest.mark.parametrize("edit", [_edit_code, _edit_markdown, _drop_tag, _change_kind, _delete_cell])
def test_check_reports_a_modified_copy_of_a_real_lab(repo_root, notebooks_tool, tmp_path, edit):
    """A real lab's source and its notebook, copied to tmp_path; the notebook is then changed."""
    src_dir, out_dir = tmp_path / "src", tmp_path / "out"
    src_dir.mkdir()
    out_dir.mkdir()
    source = repo_root / "notebooks" / "src" / "ch04_cuckoo.py"
    (src_dir / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    nb = notebooks_tool.from_source(source.read_text(encoding="utf-8"), "ch04_cuckoo")
    target = out_dir / "ch04_cuckoo.ipynb"
    notebooks_tool.write_notebook(nb, target)
    assert notebooks_tool.check(src_dir, out_dir) == []

    # Outputs, ids and other metadata are not what the check compares: changing them is no drift.
    nb = nbformat.read(target, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="any output\n")]
    nb.cells[1].metadata["scrolled"] = True
    notebooks_tool.write_notebook(nb, target)
    assert notebooks_tool.check(src_dir, out_dir) == []

    expected = edit(nb)
    notebooks_tool.write_notebook(nb, target)
    problems = notebooks_tool.check(src_dir, out_dir)
    assert len(problems) == 1 and "ch04_cuckoo: out of sync" in problems[0], problems
    assert expected in problems[0], problems


def test_failed_execution_leaves_notebook_unchanged(repo_root, pair):
    src, out = pair
    assert run_tool(repo_root, "--no-exec", "--src-dir", src, "--out-dir", out).returncode == 0
    before = (out / "demo.ipynb").read_bytes()
    (src / "demo.py").write_text(SOURCE + "\n# %%\nraise ValueError('boom')\n", encoding="utf-8")
    result = run_tool(repo_root, "--src-dir", src, "--out-dir", out)
    assert result.returncode == 1 and "boom" in result.stdout
    assert (out / "demo.ipynb").read_bytes() == before


def test_real_notebooks_match_their_sources(repo_root, notebooks_tool):
    problems = notebooks_tool.check(repo_root / "notebooks" / "src", repo_root / "notebooks")
    assert not problems, "\n".join(problems)
