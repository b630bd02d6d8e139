# tipbox: `make run` to try it, `make test` to check it. GNU make; needs only Python 3.11+
# and Node 20 (npm) on the machine. Everything else goes into .venv/ and node_modules/.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
VENV_STAMP := $(VENV)/.tipbox-installed
NPM_STAMP := node_modules/.tipbox-installed
VENDOR := tipbox/source/static/vendor
VENDOR_STAMP := $(VENDOR)/manifest.json

# Browsers come from the system (Debian's chromium and firefox-esr), never from Playwright.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup venv npm static translations run lint test test-sqlite test-postgres bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV_STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("tipbox needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The browser script: tipbox/source/js bundled with libsodium.js by esbuild, plus the
# self-test vectors cut from tests/vectors, with their SRI hashes in manifest.json.
$(VENDOR_STAMP): $(NPM_STAMP) $(VENV_STAMP) scripts/vendor_static.py \
		$(wildcard tipbox/source/js/*.mjs) $(wildcard tests/vectors/*.json)
	$(PY) scripts/vendor_static.py

venv: $(VENV_STAMP) ## create .venv and install tipbox with its dev tools

npm: $(NPM_STAMP) ## install the browser dependencies (npm ci)

static: $(VENDOR_STAMP) ## bundle the source app's browser script (esbuild), with SRI hashes

# Each app's catalogues (source, journalist): .po files are committed, .mo files are built
# from them. scripts/translations.py extracts, updates and checks them (see its docstring).
SOURCE_TRANSLATIONS := tipbox/source/translations
JOURNALIST_TRANSLATIONS := journalist_ui/translations
MO_FILES := $(patsubst %.po,%.mo,$(wildcard $(SOURCE_TRANSLATIONS)/*/LC_MESSAGES/messages.po \
	$(JOURNALIST_TRANSLATIONS)/*/LC_MESSAGES/messages.po))

$(SOURCE_TRANSLATIONS)/%/LC_MESSAGES/messages.mo: $(SOURCE_TRANSLATIONS)/%/LC_MESSAGES/messages.po | $(VENV_STAMP)
	$(BIN)/pybabel compile --statistics -i $< -o $@ -l $*

$(JOURNALIST_TRANSLATIONS)/%/LC_MESSAGES/messages.mo: $(JOURNALIST_TRANSLATIONS)/%/LC_MESSAGES/messages.po | $(VENV_STAMP)
	$(BIN)/pybabel compile --statistics -i $< -o $@ -l $*

translations: $(MO_FILES) ## compile both apps' translations (.po -> .mo)

setup: venv static translations ## everything `make run` and `make test` need

run: setup ## make a throwaway demo instance and serve it on 127.0.0.1:8080 and :8081
	$(BIN)/tipbox demo

# Every check runs, so one failure does not hide the others; the target fails if any did.
LINTERS := "ruff check ." "ruff format --check ." "mypy --strict" "lint-imports --no-cache"

lint: venv ## ruff, ruff format, mypy --strict and the import rules
	@status=0; for linter in $(LINTERS); do \
		echo "== $$linter"; \
		$(BIN)/$$linter || status=1; \
	done; exit $$status

# The suite reads TIPBOX_TEST_DATABASE_URL itself; the SQLite run must not see it. The
# PostgreSQL run leaves out the SQLite cases the SQLite run has just run (tests/conftest.py).
test-sqlite: setup
	env -u TIPBOX_TEST_DATABASE_URL $(PY) -m pytest

test-postgres: setup
	@if [ -n "$${TIPBOX_TEST_DATABASE_URL:-}" ]; then \
		echo "pytest on $${TIPBOX_TEST_DATABASE_URL%%@*}@..."; \
		TIPBOX_TEST_POSTGRES_ONLY=1 $(PY) -m pytest; \
	else \
		echo "TIPBOX_TEST_DATABASE_URL is not set: skipping the PostgreSQL run"; \
	fi

test: ## lint, then the suite on SQLite, then on PostgreSQL if TIPBOX_TEST_DATABASE_URL is set
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

# python -m benchmarks runs each module of the benchmarks package (files named _*.py are
# helpers) in a process of its own and prints one table of every figure; BENCH_ARGS=--full
# for full sizes, or names to run only some (BENCH_ARGS="flood source"). docs/benchmarks.md.
bench: setup ## run every benchmark (--quick), then one table of their figures (BENCH_ARGS=--full)
	$(PY) -m benchmarks $(BENCH_ARGS)

clean: ## remove what `make static` made, and the tool caches (not .venv or node_modules)
	rm -rf $(VENDOR) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
