# ragops: `make up` runs the platform with the embedded default; `make test` installs what is missing and tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

export RAGOPS_HOME ?= $(CURDIR)/.ragops

.PHONY: up test install dev bench lint clean

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(DEVSTAMP): $(STAMP) requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

install: $(STAMP)
dev: $(DEVSTAMP)

up: install
	bash scripts/up.sh

# pytest exits 5 when it collected no tests: say so loudly instead of failing CI on an empty selection.
test: dev
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5)"; exit 0; fi; exit $$rc

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/eval.py
	$(BIN)/python bench/hostile.py

clean:
	rm -rf .ragops .pytest_cache
