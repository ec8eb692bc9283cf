#!/usr/bin/env python3
"""Open the built book in headless Chromium and check what only a browser can.

Checks, over http (a local server on 127.0.0.1) and from file:// URLs:

* every Mermaid diagram (``<pre class="mermaid">``) became an ``<svg>``, and no
  page shows Mermaid's "Syntax error in text" diagram;
* every equation (``class="math"``) was typeset by the book's own MathJax;

and, without a browser, that no built page loads a script, stylesheet or other
asset from another host (``http://``, ``https://`` or ``//`` URLs), so the book
works offline.

A book with no diagram pages at all fails too (the diagrams are part of the
book, so zero means something went wrong).

Usage:
    python tools/check_book_browser.py [--html-dir _build/html] [--mode both]

Exit status: 0 all checks passed, 1 a check failed, 2 the check could not run
(no built book, no Chromium).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HTML = ROOT / "_build" / "html"
SYNTAX_ERROR = "Syntax error in text"
REMOTE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
CSS_REMOTE = re.compile(r"""(?:@import\s+|url\(\s*)["']?\s*((?:https?:)?//[^"')\s]+)""", re.IGNORECASE)
MODULE_IMPORT = re.compile(r"""\bimport\b[^"';]*?["']((?:https?:)?//[^"']+)["']|\bimport\(\s*["']((?:https?:)?//[^"']+)["']""")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--allow-file-access-from-files",
]


# ------------------------------------------------------------------ parsing --


class _AssetParser(HTMLParser):
    """Collect asset URLs (what the browser fetches by itself) and inline code."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.assets: list[str] = []
        self.inline_scripts: list[str] = []
        self.inline_styles: list[str] = []
        self._in: str | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "script":
            if a.get("src"):
                self.assets.append(a["src"])
            else:
                self._in, self._buffer = "script", []
        elif tag == "style":
            self._in, self._buffer = "style", []
        elif tag == "link":
            rel = a.get("rel", "").lower()
            if a.get("href") and any(
                r in rel for r in ("stylesheet", "preload", "modulepreload", "icon", "manifest", "prefetch")
            ):
                self.assets.append(a["href"])
        elif tag in ("img", "iframe", "audio", "video", "source", "embed", "track"):
            if a.get("src"):
                self.assets.append(a["src"])
        elif tag == "object" and a.get("data"):
            self.assets.append(a["data"])
        if a.get("style"):
            self.inline_styles.append(a["style"])

    def handle_data(self, data: str) -> None:
        if self._in:
            self._buffer.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._in == tag:
            text = "".join(self._buffer)
            (self.inline_scripts if tag == "script" else self.inline_styles).append(text)
            self._in = None


def external_assets(html: str) -> list[str]:
    """URLs on another host that this page would load by itself."""
    parser = _AssetParser()
    parser.feed(html)
    found = [u for u in parser.assets if REMOTE.match(u)]
    for script in parser.inline_scripts:
        for match in MODULE_IMPORT.finditer(script):
            found.append(match.group(1) or match.group(2))
    for style in parser.inline_styles:
        found.extend(m.group(1) for m in CSS_REMOTE.finditer(style))
    return found


class _RenderParser(HTMLParser):
    """Count diagram and equation containers in a (rendered) DOM dump."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.diagrams = 0
        self.diagrams_svg = 0
        self.diagram_errors = 0
        self.maths = 0
        self.maths_typeset = 0
        self._stack: list[tuple[str, str | None]] = []  # (tag, role) role: diagram/math
        self._seen_svg: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        classes = a.get("class", "").split()
        role = None
        if tag == "pre" and "mermaid" in classes:
            role = "diagram"
            self.diagrams += 1
        elif tag in ("span", "div") and "math" in classes and not self._inside("math"):
            role = "math"
            self.maths += 1
        if tag == "svg" and self._seen_svg and self._inside("diagram"):
            self._seen_svg[-1] = True
            if a.get("aria-roledescription") == "error":
                self.diagram_errors += 1
        if tag == "mjx-container" and self._seen_svg and self._inside("math"):
            self._seen_svg[-1] = True
        if tag in _VOID:
            return
        self._stack.append((tag, role))
        if role:
            self._seen_svg.append(False)

    def _inside(self, role: str) -> bool:
        return any(r == role for _, r in self._stack)

    def handle_endtag(self, tag: str) -> None:
        # Close up to the matching tag (tolerates unclosed elements).
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                for _, role in reversed(self._stack[index:]):
                    if role:
                        done = self._seen_svg.pop()
                        if done and role == "diagram":
                            self.diagrams_svg += 1
                        elif done and role == "math":
                            self.maths_typeset += 1
                del self._stack[index:]
                return


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def count_source(html: str) -> tuple[int, int]:
    """(diagrams, equations) in a built page, before any script ran."""
    parser = _RenderParser()
    parser.feed(html)
    return parser.diagrams, parser.maths


# ------------------------------------------------------------------ browser --


def find_chromium(explicit: str | None = None) -> str | None:
    for candidate in (explicit, os.environ.get("CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def dump_dom(chromium: str, url: str, budget_ms: int, timeout_s: float) -> tuple[str, str]:
    """Load ``url`` headless and return (rendered DOM, stderr)."""
    with tempfile.TemporaryDirectory(prefix="book-chromium-") as profile:
        cmd = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            url,
        ]
        proc = subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return proc.stdout, proc.stderr


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class LocalServer:
    """A threaded static server for the built book on 127.0.0.1 and a free port."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, relpath: str) -> str:
        return f"http://127.0.0.1:{self.port}/{relpath}"


# ------------------------------------------------------------------- checks --


@dataclass
class PageResult:
    page: str
    mode: str
    ok: bool
    detail: str


@dataclass
class Report:
    html_dir: Path
    pages_total: int = 0
    diagram_pages: list[str] = field(default_factory=list)
    math_pages: list[str] = field(default_factory=list)
    external: dict[str, list[str]] = field(default_factory=dict)
    results: list[PageResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.errors
            and not self.external
            and bool(self.diagram_pages)
            and all(r.ok for r in self.results)
        )

    def lines(self) -> list[str]:
        out = [
            f"book: {self.html_dir} ({self.pages_total} pages, "
            f"{len(self.diagram_pages)} with diagrams, {len(self.math_pages)} with equations)"
        ]
        for page, urls in sorted(self.external.items()):
            for url in urls:
                out.append(f"FAIL  static  {page}: loads an asset from another host: {url}")
        if not self.external:
            out.append("ok    static  no page loads a script, stylesheet or asset from another host")
        for r in sorted(self.results, key=lambda r: (r.page, r.mode)):
            out.append(f"{'ok  ' if r.ok else 'FAIL'}  {r.mode:<6}  {r.page}: {r.detail}")
        if not self.diagram_pages:
            out.append("FAIL  book has no page with a Mermaid diagram")
        out.extend(f"FAIL  {e}" for e in self.errors)
        out.append("browser check: " + ("PASSED" if self.ok else "FAILED"))
        return out


def check_page(chromium: str, url: str, page: str, mode: str, expected: tuple[int, int],
               budget_ms: int, timeout_s: float) -> PageResult:
    want_diagrams, want_maths = expected
    try:
        dom, _stderr = dump_dom(chromium, url, budget_ms, timeout_s)
    except subprocess.TimeoutExpired:
        return PageResult(page, mode, False, f"chromium timed out after {timeout_s:.0f}s")
    except RuntimeError as exc:
        return PageResult(page, mode, False, str(exc))
    parser = _RenderParser()
    parser.feed(dom)
    problems = []
    if parser.diagrams != want_diagrams:
        problems.append(f"{parser.diagrams} diagram elements in the DOM, {want_diagrams} in the page")
    if parser.diagrams_svg < parser.diagrams:
        problems.append(f"only {parser.diagrams_svg}/{parser.diagrams} diagrams became <svg>")
    if SYNTAX_ERROR in dom or parser.diagram_errors:
        problems.append(f"Mermaid reports a syntax error ({max(parser.diagram_errors, 1)} diagram(s))")
    if want_maths and parser.maths_typeset < parser.maths:
        problems.append(f"only {parser.maths_typeset}/{parser.maths} equations typeset by MathJax")
    if problems:
        return PageResult(page, mode, False, "; ".join(problems))
    parts = []
    if want_diagrams:
        parts.append(f"{parser.diagrams_svg}/{want_diagrams} diagrams rendered as SVG")
    if want_maths:
        parts.append(f"{parser.maths_typeset}/{want_maths} equations typeset")
    return PageResult(page, mode, True, ", ".join(parts))


def run_checks(html_dir: Path, chromium: str | None, modes: tuple[str, ...] = ("http", "file"),
               budget_ms: int = 15000, timeout_s: float = 90.0, jobs: int = 2) -> Report:
    html_dir = html_dir.resolve()
    report = Report(html_dir)
    pages = sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.relative_to(html_dir).parts)
    report.pages_total = len(pages)
    if not pages:
        report.errors.append(f"no HTML pages under {html_dir}")
        return report

    expected: dict[str, tuple[int, int]] = {}
    for path in pages:
        rel = path.relative_to(html_dir).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        urls = external_assets(text)
        if urls:
            report.external[rel] = urls
        diagrams, maths = count_source(text)
        if diagrams:
            report.diagram_pages.append(rel)
        if maths:
            report.math_pages.append(rel)
        if diagrams or maths:
            expected[rel] = (diagrams, maths)

    if not expected:
        return report
    if chromium is None:
        report.errors.append("chromium not found (apt-get install -y chromium, or set CHROMIUM)")
        return report

    with LocalServer(html_dir) as server, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = []
        for rel, counts in sorted(expected.items()):
            for mode in modes:
                url = server.url(rel) if mode == "http" else (html_dir / rel).as_uri()
                futures.append(pool.submit(check_page, chromium, url, rel, mode, counts, budget_ms, timeout_s))
        report.results = [f.result() for f in futures]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the built book in headless Chromium.")
    parser.add_argument("--html-dir", type=Path, default=DEFAULT_HTML)
    parser.add_argument("--chromium", default=None, help="browser binary (default: $CHROMIUM, /usr/bin/chromium)")
    parser.add_argument("--mode", choices=("http", "file", "both"), default="both")
    parser.add_argument("--budget-ms", type=int, default=15000, help="--virtual-time-budget per page")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per browser run")
    parser.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    args = parser.parse_args(argv)

    if not (args.html_dir / "index.html").is_file() and not any(args.html_dir.glob("*.html")):
        print(f"check_book_browser: no built book in {args.html_dir}; run `make book` first", file=sys.stderr)
        return 2
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("check_book_browser: chromium not found (apt-get install -y chromium)", file=sys.stderr)
        return 2
    modes = ("http", "file") if args.mode == "both" else (args.mode,)
    report = run_checks(args.html_dir, chromium, modes, args.budget_ms, args.timeout, args.jobs)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
