/*
 * Render the book's Mermaid diagrams with the local classic bundle
 * (_static/mermaid/mermaid.min.js, loaded just before this file on pages that
 * have a diagram). sphinxcontrib-mermaid writes each diagram as
 *   <pre class="mermaid">...escaped source...</pre>
 * A plain <script> (not an ES module) works over http and from file:// alike.
 */
(function () {
  "use strict";

  var SELECTOR = "pre.mermaid";

  function isDark() {
    return document.documentElement.getAttribute("data-theme") === "dark";
  }

  function addStyle() {
    var style = document.createElement("style");
    style.textContent =
      "pre.mermaid{background:transparent;border:none;box-shadow:none;" +
      "text-align:center;white-space:pre;}" +
      "pre.mermaid>svg{max-width:100%;height:auto;}";
    document.head.appendChild(style);
  }

  function render(theme) {
    var nodes = document.querySelectorAll(SELECTOR);
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      if (!el.hasAttribute("data-source")) {
        el.setAttribute("data-source", el.innerHTML);
      } else {
        // Re-render (theme switch): restore the original text first.
        el.innerHTML = el.getAttribute("data-source");
        el.removeAttribute("data-processed");
      }
    }
    window.mermaid.initialize({
      startOnLoad: false,
      securityLevel: "strict",
      theme: theme,
    });
    return window.mermaid.run({ querySelector: SELECTOR }).catch(function (err) {
      // Mermaid has already drawn its error diagram into the page.
      console.error("Mermaid could not render a diagram:", err);
    });
  }

  function start() {
    if (typeof window.mermaid === "undefined") {
      console.error("mermaid-init.js: the Mermaid bundle was not loaded.");
      return;
    }
    addStyle();
    var current = isDark() ? "dark" : "default";
    var queue = render(current);
    new MutationObserver(function () {
      var wanted = isDark() ? "dark" : "default";
      if (wanted !== current) {
        current = wanted;
        queue = queue.then(function () {
          return render(wanted);
        });
      }
    }).observe(document.documentElement, {
      attributes: true,
      attributeFilter: ["data-theme"],
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
