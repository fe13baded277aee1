# Two commands set everything up on a fresh machine:
#   make run   - create .venv if needed, run the whole pipeline on MovieLens-100K, print metrics
#   make test  - same set-up plus test extras, then the test suite
#   make test-fast - the unit and data tests only (no pipeline, nothing marked slow)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first: a CPU wheel of exactly this version is on disk; any other spec pulls GBs of CUDA.
TORCH := torch==2.13.0

# The quiet, offline environment (telemetry off, no model hub) from its one list, recause.environment, for the
# tools make starts itself; `recause` commands and the tests set it on their own. Expanded when a recipe runs.
QUIET = $(shell $(BIN)/python -c 'from recause.environment import QUIET_ENVIRONMENT as q; print(" ".join(f"{k}={v}" for k, v in q.items()))')

.PHONY: run test test-fast repro params server serve api clean-venv help

# Operate it: `make server` in one terminal, `make serve` in another (Ctrl-C stops serve, then server).
# Both use this project's PREFECT_HOME (SQLite there) unless PREFECT_API_DATABASE_CONNECTION_URL is set.
PREFECT_PORT ?= 4200
export PREFECT_HOME ?= $(CURDIR)/.prefect

help:
	@echo "make run   - set up .venv and run the pipeline on MovieLens-100K (prints the metrics table)"
	@echo "make test  - set up .venv with test extras and run the test suite"
	@echo "make test-fast - the unit and data tests only (under 2 minutes)"
	@echo "make repro - the same DAG with plain 'dvc repro' (no Prefect)"
	@echo "make server - a Prefect server (UI) on http://127.0.0.1:4200"
	@echo "make serve  - register and serve the deployments: pipeline, evaluate, retrain (weekly)"
	@echo "make api   - serve the champion over HTTP on http://127.0.0.1:8000 (docs at /docs; after make run)"

run: $(VENV)/.installed
	$(BIN)/recause run

# pytest-xdist: one worker per core, the tests of one xdist_group on one worker. pytest-randomly shuffles
# the order; the header prints its seed (replay an order: --randomly-seed=N; keep file order: -p no:randomly).
PYTEST_PARALLEL := -n auto --dist loadgroup

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not slow" tests/code tests/data

repro: $(VENV)/.installed
	env $(QUIET) PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

server: $(VENV)/.installed
	env $(QUIET) PREFECT_SERVER_API_HOST=127.0.0.1 PREFECT_SERVER_API_PORT=$(PREFECT_PORT) \
		$(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

serve: $(VENV)/.installed
	PREFECT_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api $(BIN)/recause serve $(if $(PROFILE),--profile $(PROFILE))

api: $(VENV)/.installed
	$(BIN)/recause api

params: $(VENV)/.installed
	$(BIN)/recause params

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

clean-venv:
	rm -rf $(VENV)
