# envwatch — every target bootstraps its own virtual environment (.venv) from uv.lock.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
BOOT := .venv-boot
UV := $(BOOT)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
DURATION ?= 60
# Debian packages of the integration tests: installed by `make services` where root or
# passwordless sudo allows; ENVWATCH_NO_INSTALL=1 turns that off (the tests then skip).
PACKAGES := .ci/packages.txt

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-unit test-integration lint format typecheck bench check clean services

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --quiet
	@touch $@

venv: $(VENV)/.synced ## create/refresh .venv from uv.lock (the exact tested versions)

demo: venv ## run the pipeline on the embedded default (Tansu + mosquitto/amqtt, in-process worker)
	$(VENV)/bin/envwatch demo --duration $(DURATION)

# Installs what .ci/packages.txt lists and dpkg does not have. Never fails outside CI: without
# root/sudo, apt-get or network the integration tests that need a package skip with the reason.
services: ## install the Debian packages of the integration tests (.ci/packages.txt) if root or passwordless sudo; ENVWATCH_NO_INSTALL=1 skips
	@missing="$$(for p in $$(grep -Ev '^[[:space:]]*(#|$$)' $(PACKAGES)); do \
	    dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || echo "$$p"; \
	  done | xargs)"; \
	[ -n "$$missing" ] || exit 0; \
	skip="the tests that need them are skipped (install: sudo apt-get install $$missing)"; \
	if [ -n "$${ENVWATCH_NO_INSTALL:-}" ]; then echo "services: missing $$missing, not installed (ENVWATCH_NO_INSTALL): $$skip"; exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then echo "services: missing $$missing and no apt-get: $$skip"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "services: missing $$missing; not root and no passwordless sudo: $$skip"; exit 0; fi; \
	echo "services: installing $$missing (from $(PACKAGES); ENVWATCH_NO_INSTALL=1 turns this off)"; \
	if timeout 300 $$sudo apt-get update -qq && \
	   timeout 1200 $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; then \
	  if command -v systemctl >/dev/null 2>&1; then $$sudo systemctl stop mosquitto >/dev/null 2>&1 || true; fi; \
	else \
	  case "$${CI:-}" in 1|true|yes) echo "services: could not install $$missing (CI=true: that fails)"; exit 1;; esac; \
	  echo "services: could not install $$missing: $$skip"; \
	fi

test: venv services ## the whole test suite (integration tests start real services themselves)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv ## only the tests that need no service
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

test-integration: venv services ## only the tests against real mosquitto, Tansu and VictoriaMetrics
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

lint: venv ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: venv ## mypy (strict on rules/ and alerts/)
	$(VENV)/bin/mypy

bench: venv ## benchmarks; each prints its figures and ratios measured side by side in one run
	$(PY) -m bench $(BENCH_ARGS)

check: lint typecheck test ## everything CI checks

clean: ## remove the virtual environments and caches
	rm -rf $(VENV) $(BOOT) .pytest_cache .mypy_cache .ruff_cache var
