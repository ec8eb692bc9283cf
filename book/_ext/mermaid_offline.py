"""Offline Mermaid (and MathJax) for the monolith-ref book.

sphinxcontrib-mermaid renders diagrams in the browser and, by default, imports
Mermaid as an ES module from a public CDN. A book that must work without a
network (and from ``file://``, where browsers refuse module imports) needs the
classic bundle served from the book itself. This extension:

1. loads ``sphinxcontrib.mermaid`` (directive, node, HTML visitor) and removes
   its ``install_js`` listener, the one that writes the CDN loader;
2. on every page whose doctree holds a Mermaid node, adds
   ``_static/mermaid/mermaid.min.js`` (copied from ``node_modules`` by
   ``make book``) and ``_static/mermaid-init.js`` (committed);
3. fails the build when a bundle is missing instead of producing a book whose
   diagrams (or equations) silently stay text;
4. drops sphinx-thebe's per-page loader, which carries a CDN address and is
   dead code here (launch buttons are off).

Sphinx 7.4 reverts per-page ``add_js_file`` calls after each page, so the
scripts appear only where they are needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

MERMAID_BUNDLE = "mermaid/mermaid.min.js"
MERMAID_INIT = "mermaid-init.js"
REMOTE_PREFIXES = ("http://", "https://", "//")


def _static_file(app: Sphinx, relpath: str) -> Path | None:
    """Return the first ``html_static_path`` entry that holds ``relpath``."""
    for entry in app.config.html_static_path:
        candidate = Path(app.confdir, entry, relpath)
        if candidate.is_file():
            return candidate
    return None


def _is_html(app: Sphinx) -> bool:
    return getattr(app.builder, "format", None) == "html"


def _check_bundles(app: Sphinx) -> None:
    """builder-inited: the Mermaid bundle must be there before any page is written."""
    if not _is_html(app):
        return
    if _static_file(app, MERMAID_BUNDLE) is None:
        raise ExtensionError(
            f"mermaid_offline: {MERMAID_BUNDLE} not found in html_static_path "
            f"{app.config.html_static_path!r}. It is copied from node_modules by "
            "`make book` (run make book, or npm ci and copy "
            "node_modules/mermaid/dist/mermaid.min.js to book/_static/mermaid/)."
        )
    if _static_file(app, MERMAID_INIT) is None:
        raise ExtensionError(
            f"mermaid_offline: {MERMAID_INIT} not found in html_static_path "
            f"{app.config.html_static_path!r}."
        )


def _drop_thebe_loader(app: Sphinx, env: Any, docnames: list[str]) -> None:
    """env-before-read-docs (after sphinx-thebe): remove its unused page scripts."""
    if not _is_html(app):
        return

    def is_thebe(asset: Any) -> bool:
        filename = str(getattr(asset, "filename", "") or "")
        body = str(getattr(asset, "attributes", {}).get("body", ""))
        return filename.endswith("sphinx-thebe.js") or "THEBE_JS_URL" in body

    js_files = getattr(app.builder, "_js_files", None)
    if isinstance(js_files, list):
        js_files[:] = [asset for asset in js_files if not is_thebe(asset)]
    registry_js = getattr(app.registry, "js_files", None)
    if isinstance(registry_js, list):
        registry_js[:] = [
            (name, attrs)
            for name, attrs in registry_js
            if not (
                str(name or "").endswith("sphinx-thebe.js")
                or "THEBE_JS_URL" in str(attrs.get("body", ""))
            )
        ]


def _page_assets(
    app: Sphinx,
    pagename: str,
    templatename: str,
    context: dict[str, Any],
    doctree: nodes.document | None,
) -> None:
    """html-page-context: add the local Mermaid scripts to pages with diagrams."""
    if not _is_html(app):
        return
    from sphinxcontrib.mermaid import mermaid as mermaid_node

    if doctree is not None and doctree.next_node(mermaid_node) is not None:
        app.add_js_file(MERMAID_BUNDLE, priority=600)
        app.add_js_file(MERMAID_INIT, priority=601)

    # sphinx.ext.mathjax loads MathJax only on pages that have equations (or
    # whose toctree children have some); those pages need the local copy.
    math_domain = app.env.get_domain("math")
    if math_domain.has_equations(pagename):  # type: ignore[attr-defined]
        path = str(app.config.mathjax_path or "")
        if path.startswith(REMOTE_PREFIXES):
            raise ExtensionError(
                f"mermaid_offline: page {pagename!r} loads MathJax from a remote URL "
                f"({path}); the book must work offline. Set mathjax_path to the "
                "local copy (mathjax/tex-mml-chtml.js)."
            )
        if _static_file(app, path) is None:
            raise ExtensionError(
                f"mermaid_offline: the book has equations (page {pagename!r} loads "
                f"MathJax) but {path} is not in html_static_path. `make book` copies "
                "it from node_modules/mathjax/es5, so the mathjax package (3.x) must "
                "be listed in package.json."
            )


def setup(app: Sphinx) -> dict[str, Any]:
    import sphinxcontrib.mermaid as scm

    app.setup_extension("sphinxcontrib.mermaid")
    removed = 0
    for listener in list(app.events.listeners.get("html-page-context", [])):
        if listener.handler is scm.install_js:
            app.disconnect(listener.id)
            removed += 1
    if removed == 0:
        raise ExtensionError(
            "mermaid_offline: sphinxcontrib.mermaid.install_js was not connected to "
            "html-page-context; the installed sphinxcontrib-mermaid changed, so the "
            "CDN loader may still be emitted. Check constraints.txt."
        )

    app.connect("builder-inited", _check_bundles)
    # sphinx-thebe registers its loader at the default priority (500).
    app.connect("env-before-read-docs", _drop_thebe_loader, priority=900)
    app.connect("html-page-context", _page_assets)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
