# ragops: `make up` runs the platform with the embedded default; `make test` installs what is missing and tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

export RAGOPS_HOME ?= $(CURDIR)/.ragops

# pipefail: a recipe that filters pip's output still fails when pip fails.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# pip warns once per package that a file:// index of the machine's pip configuration lacks (~300 lines per
# install); those lines are dropped, every other warning and error is shown.
PIP_QUIET := 2>&1 | { grep -v "^WARNING: Location 'file://.*' is ignored" || true; }

.PHONY: up test test-fast install dev bench lint clean

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt $(PIP_QUIET)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . $(PIP_QUIET)
	touch $@

$(DEVSTAMP): $(STAMP) requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt $(PIP_QUIET)
	touch $@

install: $(STAMP)
dev: $(DEVSTAMP)

up: install
	bash scripts/up.sh

# Two pytest-xdist workers, one test file at a time each (module fixtures stay whole): much of the suite waits on
# Airflow, subprocesses and sockets, so the second worker fills the first one's waits. PYTEST_WORKERS=0 runs in one
# process. pytest exits 5 when it collected no tests: say so loudly instead of failing CI on an empty selection.
PYTEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)
test: dev
	@$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5)"; exit 0; fi; exit $$rc

# The loop to run while working: everything that needs no Airflow process, browser, Celery or model load (the
# `slow` marker, tests/conftest.py); a model load in it fails the test and names the marker it needs.
test-fast: dev
	@RAGOPS_TEST_FAST=1 $(BIN)/python -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5)"; exit 0; fi; exit $$rc

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/eval.py
	$(BIN)/python bench/hostile.py

clean:
	rm -rf .ragops .pytest_cache
