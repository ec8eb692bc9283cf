"""notebooks/NAME.ipynb must match its source notebooks/src/NAME.py (tools/nbsync.py).

The first tests check the tool itself on temporary files, so this module means
something even before any notebook exists; the last one checks the real pairs.
"""

from __future__ import annotations

import json
import subprocess
import sys

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
        [sys.executable, str(repo_root / "tools" / "nbsync.py"), *map(str, args)],
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


def test_parse_percent_format(nbsync_tool):
    cells = nbsync_tool.parse_source(SOURCE)
    assert [c.kind for c in cells] == ["markdown", "code", "code", "markdown"]
    assert cells[0].source == "# Title\n\nSome *prose*."
    assert cells[1].source == "x = 6 * 7\nx"
    assert cells[2].tags == ["hide-input"]
    assert cells[3].source.startswith("```mermaid\nflowchart LR")


@pytest.mark.parametrize(
    "bad",
    [
        "x = 1\n# %%\ny = 2\n",                # code before the first marker
        "# %% [markdown]\nnot a comment\n",     # markdown line without '# '
        "# %% something odd\nx = 1\n",          # unreadable marker text
        "# %% tags=[1, 2]\nx = 1\n",            # tags not strings
        "\n\n",                                 # no cells
    ],
)
def test_parse_rejects_ambiguous_sources(nbsync_tool, bad):
    with pytest.raises(nbsync_tool.SourceError):
        nbsync_tool.parse_source(bad)


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


def test_failed_execution_leaves_notebook_unchanged(repo_root, pair):
    src, out = pair
    assert run_tool(repo_root, "--no-exec", "--src-dir", src, "--out-dir", out).returncode == 0
    before = (out / "demo.ipynb").read_bytes()
    (src / "demo.py").write_text(SOURCE + "\n# %%\nraise ValueError('boom')\n", encoding="utf-8")
    result = run_tool(repo_root, "--src-dir", src, "--out-dir", out)
    assert result.returncode == 1 and "boom" in result.stdout
    assert (out / "demo.ipynb").read_bytes() == before


def test_real_notebooks_match_their_sources(repo_root, nbsync_tool):
    problems = nbsync_tool.check(repo_root / "notebooks" / "src", repo_root / "notebooks", None)
    assert not problems, "\n".join(problems)
