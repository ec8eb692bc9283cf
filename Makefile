# monolith-ref: build the book and run every test layer.
#
#   make book       build the book into _build/html (every notebook executed;
#                   any notebook error or Sphinx warning fails the build)
#   make test       set up, build the book, then run all test layers
#   make notebooks  regenerate notebooks/*.ipynb from notebooks/src/*.py, executed (NB=name: one)
#   make clean      remove build outputs and copied JavaScript bundles
#
# Set-up steps run only when their inputs change (stamp files): the virtual
# environment when pyproject.toml or constraints.txt change, `npm ci` when
# package.json or package-lock.json change.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.monolith-ref-installed
NPM_STAMP := node_modules/.monolith-ref-npm-ci

STATIC := book/_static
MERMAID_SRC := node_modules/mermaid/dist/mermaid.min.js
MERMAID_DST := $(STATIC)/mermaid/mermaid.min.js
MATHJAX_SRC := node_modules/mathjax/es5
MATHJAX_DST := $(STATIC)/mathjax

# Warnings are errors (-W), missing references are reported (-n), and with
# --keep-going every warning is listed before the build fails. --all re-reads
# every page, so a second build cannot pass by skipping pages whose warnings
# were already printed (and so every notebook is executed every time).
JB_FLAGS := --all -W -n --keep-going

# Tools run from the virtual environment; kernels started by notebooks find
# the same interpreter first on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: help book test notebooks clean setup venv npm assets chromium

help:
	@sed -n '3,8p' Makefile | sed 's/^# \{0,1\}//'

# ---------------------------------------------------------------- set-up ---

$(VENV_STAMP): pyproject.toml constraints.txt
	@if [ ! -x "$(BIN)/python" ]; then \
	  echo "==> creating $(VENV) with $(PYTHON)"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	@echo "==> installing monolith-ref[book,test,bench] into $(VENV) (pins: constraints.txt)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test,bench]"
	@touch $@

venv: $(VENV_STAMP)

$(NPM_STAMP): package.json package-lock.json
	@echo "==> npm ci (JavaScript bundles for the book)"
	npm ci --no-audit --no-fund
	@touch $@

npm: $(NPM_STAMP)

# Copy the browser bundles into the book's static folder (both are gitignored).
assets: $(NPM_STAMP)
	@mkdir -p $(dir $(MERMAID_DST))
	@cmp -s $(MERMAID_SRC) $(MERMAID_DST) || { cp $(MERMAID_SRC) $(MERMAID_DST); echo "==> copied $(MERMAID_SRC) -> $(MERMAID_DST)"; }
	@if [ -d $(MATHJAX_SRC) ]; then \
	  if ! cmp -s $(MATHJAX_SRC)/tex-mml-chtml.js $(MATHJAX_DST)/tex-mml-chtml.js; then \
	    rm -rf $(MATHJAX_DST); cp -r $(MATHJAX_SRC) $(MATHJAX_DST); \
	    echo "==> copied $(MATHJAX_SRC) -> $(MATHJAX_DST)"; \
	  fi; \
	fi

setup: venv assets

# Debian's chromium for the browser test. Installed only when missing and we
# are root; otherwise the browser test skips locally and fails under CI=true.
chromium:
	@if [ -x "$${CHROMIUM:-/usr/bin/chromium}" ] || command -v chromium >/dev/null 2>&1; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "==> installing chromium (apt-get)"; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "NOTE: chromium is not installed and this is not root, so it cannot be"; \
	  echo "      installed here (as root: apt-get install -y chromium)."; \
	  echo "      The browser test will be skipped (and fail when CI=true)."; \
	fi

# ------------------------------------------------------------------ book ---

book: setup
	@echo "==> jupyter-book build . $(JB_FLAGS)"
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "==> built: _build/html/index.html"

# ----------------------------------------------------------------- tests ---

# Every layer runs even when an earlier one fails; the summary lists each
# layer's result and time, and the target fails if any layer failed. A pytest
# run that collects no tests exits 5, which counts as a failure.
test: setup chromium
	@summary=$$(mktemp); failed=0; \
	layer() { \
	  local name="$$1"; shift; \
	  echo; echo "==> [$$name] $$*"; \
	  local t0=$$(date +%s) rc=0; \
	  "$$@" || rc=$$?; \
	  local dt=$$(( $$(date +%s) - t0 )); \
	  if [ $$rc -eq 0 ]; then status=ok; else status="FAILED (exit $$rc)"; failed=1; fi; \
	  printf '  %-28s %-18s %4ss\n' "$$name" "$$status" "$$dt" >> "$$summary"; \
	}; \
	layer "book build" $(MAKE) --no-print-directory book; \
	layer "package tests" $(BIN)/python -m pytest tests --ignore=tests/book; \
	layer "book + browser tests" $(BIN)/python -m pytest tests/book; \
	layer "notebooks (nbval)" $(BIN)/python -m pytest --nbval-lax --nbval-current-env notebooks/; \
	echo; echo "==> summary"; cat "$$summary"; rm -f "$$summary"; \
	if [ $$failed -ne 0 ]; then echo "==> make test: FAILED"; exit 1; fi; \
	echo "==> make test: all layers passed"

# ------------------------------------------------------------- notebooks ---

# One notebook: make notebooks NB=ch03_dict_table
notebooks: venv
	$(BIN)/python tools/notebooks.py $(NB)

# ----------------------------------------------------------------- clean ---

clean:
	rm -rf _build $(STATIC)/mermaid $(MATHJAX_DST)
