# envwatch — every target bootstraps its own virtual environment (.venv) from uv.lock.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
BOOT := .venv-boot
UV := $(BOOT)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
DURATION ?= 60

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

test: venv ## the whole test suite (integration tests start real services themselves)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv ## only the tests that need no service
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

test-integration: venv ## only the tests against real mosquitto, Tansu and VictoriaMetrics
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
