"""The build pipeline catches what it claims to catch.

Each test builds a tiny throwaway book in a temporary folder with the real
configuration (_config.yml, book/_ext, book/_static copied in) and the same
jupyter-book flags as `make book` (read from the Makefile), then shows that:

(a) a notebook cell that raises makes the build exit non-zero;
(b) a good book builds with exit 0 and its diagrams render as SVG in Chromium,
    over http and from file://;
(c) a Mermaid syntax error, which the HTML build itself lets through, makes
    the browser check fail;
(d) a Sphinx warning (here a dangling cross-reference) fails the build;
(e) diagrams that a notebook draws from live objects (monolith_ref.diagrams, mermaid-py's
    model classes) become {mermaid} directives that render as SVG, like the book's own.

The Mermaid bundle must be in book/_static/mermaid/ (`make book` copies it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

GOOD_DIAGRAM = """flowchart LR
  ids[Feature IDs] --> table{Hash table}
  table -->|hit| row[Embedding row]
  table -->|miss| insert[Insert after admission]
"""

BROKEN_DIAGRAM = """flowchart LR
  A --> B -->
  this is ][ not mermaid
"""


def jb_flags(repo_root: Path) -> list[str]:
    """The flags `make book` passes to jupyter-book build (one source of truth)."""
    match = re.search(r"^JB_FLAGS\s*:?=\s*(.+)$", (repo_root / "Makefile").read_text(), re.M)
    assert match, "JB_FLAGS not found in the Makefile"
    flags = match.group(1).split()
    for required in ("-W", "-n", "--keep-going"):
        assert required in flags, f"`make book` must build with {required}"
    return flags


def percent_source(cells: list[tuple[str, str]]) -> str:
    """A jupytext percent-format source with these (kind, source) cells."""
    parts = []
    for kind, source in cells:
        if kind == "markdown":
            body = "\n".join(f"# {line}" if line else "#" for line in source.split("\n"))
            parts.append(f"# %% [markdown]\n{body}\n")
        else:
            parts.append(f"# %%\n{source}\n")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def book_factory(repo_root, tmp_path_factory, notebooks_tool, skip_or_fail):
    """Return make(pages, notebook_cells) -> path of a fresh tiny book."""
    bundle = repo_root / "book" / "_static" / "mermaid" / "mermaid.min.js"
    if not bundle.is_file():
        skip_or_fail(f"{bundle.relative_to(repo_root)} is missing: run `make book` first")

    def make(name: str, page: str, notebook_cells: list[tuple[str, str]] | None) -> Path:
        root = tmp_path_factory.mktemp(name)
        shutil.copy(repo_root / "_config.yml", root / "_config.yml")
        shutil.copytree(repo_root / "book" / "_ext", root / "book" / "_ext",
                        ignore=shutil.ignore_patterns("__pycache__"))
        # The real static folder, minus the (large, unneeded here) MathJax copy.
        shutil.copytree(repo_root / "book" / "_static", root / "book" / "_static",
                        ignore=shutil.ignore_patterns("mathjax"))
        shutil.copy(repo_root / "book" / "references.bib", root / "book" / "references.bib")  # bibtex_bibfiles
        (root / "book" / "intro.md").write_text(page, encoding="utf-8")
        toc = "format: jb-book\nroot: book/intro\n"
        if notebook_cells is not None:
            # The same path as `make notebooks`: a percent-format source, converted by jupytext.
            nb = notebooks_tool.from_source(percent_source(notebook_cells), "nb")
            (root / "notebooks").mkdir()
            notebooks_tool.write_notebook(nb, root / "notebooks" / "nb.ipynb")
            toc += "chapters:\n  - file: notebooks/nb\n"
        (root / "_toc.yml").write_text(toc, encoding="utf-8")
        return root

    return make


def build(repo_root: Path, book: Path) -> subprocess.CompletedProcess:
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    assert jupyter_book.is_file(), f"{jupyter_book} not found; run inside the project's venv"
    return subprocess.run(
        [str(jupyter_book), "build", str(book), *jb_flags(repo_root)],
        cwd=book,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )


def page_with(diagram: str) -> str:
    return f"# Tiny book\n\nA diagram:\n\n```mermaid\n{diagram}```\n"


def test_failing_notebook_cell_fails_the_build(repo_root, book_factory):
    book = book_factory(
        "failing_nb",
        "# Tiny book\n\nNo diagram here.\n",
        [("markdown", "# A notebook"), ("code", "x = 1\nraise RuntimeError('cell failed on purpose')")],
    )
    result = build(repo_root, book)
    assert result.returncode != 0, result.stdout[-3000:]
    assert "cell failed on purpose" in result.stdout, result.stdout[-3000:]


def test_good_book_builds_and_diagrams_render(repo_root, book_factory, browser_tool, chromium):
    book = book_factory(
        "good",
        page_with(GOOD_DIAGRAM),
        [
            ("markdown", "# A notebook\n\n```mermaid\nsequenceDiagram\n  A->>B: hello\n```"),
            ("code", "from IPython.display import Markdown\n"
                     "Markdown('```{mermaid}\\nflowchart TD\\n  P --> Q\\n```')"),
        ],
    )
    result = build(repo_root, book)
    assert result.returncode == 0, result.stdout[-5000:]
    report = browser_tool.run_checks(book / "_build" / "html", chromium, modes=("http", "file"))
    text = "\n".join(report.lines())
    assert report.ok, text
    assert sorted(report.diagram_pages) == ["book/intro.html", "notebooks/nb.html"], text
    assert len(report.results) == 4, text


def test_mermaid_syntax_error_fails_browser_check(repo_root, book_factory, browser_tool, chromium):
    book = book_factory("broken_mermaid", page_with(BROKEN_DIAGRAM), None)
    result = build(repo_root, book)
    # The HTML build cannot see client-side syntax errors; that is why the browser check exists.
    assert result.returncode == 0, result.stdout[-5000:]
    report = browser_tool.run_checks(book / "_build" / "html", chromium, modes=("http", "file"))
    text = "\n".join(report.lines())
    assert not report.ok, text
    failed = [r for r in report.results if not r.ok]
    assert {r.mode for r in failed} == {"http", "file"}, text
    assert all("syntax error" in r.detail for r in failed), text


def test_sphinx_warning_fails_the_build(repo_root, book_factory):
    book = book_factory("warning", "# Tiny book\n\nSee {ref}`a-label-that-does-not-exist`.\n", None)
    result = build(repo_root, book)
    assert result.returncode != 0, result.stdout[-3000:]
    assert "a-label-that-does-not-exist" in result.stdout, result.stdout[-3000:]


LIVE_DIAGRAMS = """\
import numpy as np
from monolith_ref.diagrams import as_markdown, cuckoo_diagram, pipeline_diagram, shard_diagram
from monolith_ref.streaming.log import Log
from monolith_ref.tables import CuckooMap, DictTable, ShardedTable, TableConfig

m = CuckooMap(capacity=4, seed=0, max_load=1.0, max_kicks=6)
m.record = []
for key in (11, 25, 37, 48):
    start = len(m.record)
    m[key] = key
chain = m.record[start:]
assert any(mv.kind == "kick" for mv in chain)
display(as_markdown(cuckoo_diagram(m, chain)))

log = Log()
for topic, partitions in (("features", 2), ("actions", 2), ("examples", 1)):
    log.create_topic(topic, partitions)
log.append_many("features", [b"f1", b"f2", b"f3"], keys=[b"1", b"2", b"3"])
log.append_many("examples", [b"e1"])
log.commit("joiner", {("features", 0): log.end_offset("features", 0)})
log.commit("trainer", {("examples", 0): 1})
display(as_markdown(pipeline_diagram(log)))

table = ShardedTable(TableConfig(dim=4, seed=0), num_shards=3, shard_factory=DictTable, threads=1)
table.lookup(np.arange(30, dtype=np.uint64), now=0)
as_markdown(shard_diagram(table, ids=[1, 2, 3, 4, 5]))
"""


def test_live_diagrams_from_a_notebook_render(repo_root, book_factory, browser_tool, chromium):
    book = book_factory(
        "live_diagrams",
        "# Tiny book\n\nThe notebook draws three diagrams from live objects.\n",
        [("markdown", "# Live diagrams"), ("code", LIVE_DIAGRAMS)],
    )
    result = build(repo_root, book)
    assert result.returncode == 0, result.stdout[-5000:]
    html = (book / "_build" / "html" / "notebooks" / "nb.html").read_text(encoding="utf-8")
    for needle in ("T0[3]", "consumer group joiner", "shard 2"):
        assert needle in html, needle
    report = browser_tool.run_checks(book / "_build" / "html", chromium, modes=("http", "file"))
    text = "\n".join(report.lines())
    assert report.ok, text
    assert report.diagram_pages == ["notebooks/nb.html"], text
    assert {r.detail for r in report.results} == {"3/3 diagrams rendered as SVG"}, text
