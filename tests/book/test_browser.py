"""The built book, opened in headless Chromium over http and from file://.

Needs `make book` first (`make test` builds the book before running pytest).
"""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_built_book_renders_offline(repo_root, browser_tool, chromium, skip_or_fail):
    html = repo_root / "_build" / "html"
    if not (html / "index.html").is_file():
        skip_or_fail(f"no built book in {html}: run `make book` first")
    report = browser_tool.run_checks(html, chromium, modes=("http", "file"))
    text = "\n".join(report.lines())
    print(text)
    assert report.diagram_pages, f"the built book has no page with a Mermaid diagram\n{text}"
    assert not report.external, f"pages load assets from other hosts\n{text}"
    assert report.ok, text
    # Both ways of reading the book were exercised for every diagram page.
    checked = {(r.page, r.mode) for r in report.results}
    for page in report.diagram_pages:
        assert {(page, "http"), (page, "file")} <= checked, page


def test_every_image_of_the_built_book_exists(repo_root, skip_or_fail):
    """A glued figure that was never written to disk leaves an <img> with no file behind it."""
    import re
    from urllib.parse import unquote

    html = repo_root / "_build" / "html"
    if not (html / "index.html").is_file():
        skip_or_fail(f"no built book in {html}: run `make book` first")
    missing, seen = [], 0
    for page in html.rglob("*.html"):
        for src in re.findall(r'<img[^>]*?\ssrc="([^"]+)"', page.read_text(encoding="utf-8")):
            if src.startswith(("data:", "http:", "https:", "//")):
                continue
            seen += 1
            if not (page.parent / unquote(src.split("#")[0].split("?")[0])).is_file():
                missing.append(f"{page.relative_to(html)}: {src}")
    assert seen > 0, "the built book has no images at all"
    assert not missing, "images referenced but not written:\n" + "\n".join(missing)
