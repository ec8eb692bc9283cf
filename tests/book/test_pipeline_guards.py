"""The build pipeline catches what it claims to catch.

Each test builds a tiny throwaway book in a temporary folder with the real
configuration (_config.yml, book/_ext, book/_static copied in) and the same
jupyter-book flags as `make book` (read from the Makefile), then shows that:

(a) a notebook cell that raises makes the build exit non-zero;
(b) a good book builds with exit 0 and its diagrams render as SVG in Chromium,
    over http and from file://;
(c) a Mermaid syntax error, which the HTML build itself lets through, makes
    the browser check fail;
(d) a Sphinx warning (here a dangling cross-reference) fails the build.

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


@pytest.fixture(scope="module")
def book_factory(repo_root, tmp_path_factory, nbsync_tool, skip_or_fail):
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
            cells = [nbsync_tool.Cell(kind, source) for kind, source in notebook_cells]
            nb = nbsync_tool.build_notebook(cells, "nb")
            (root / "notebooks").mkdir()
            nbsync_tool.write_notebook(nb, root / "notebooks" / "nb.ipynb")
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
