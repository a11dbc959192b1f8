# Rapport — two commands: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: run test install test-deps lint test-sqlite test-postgres test-browser bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	@mkdir -p var
	$(BIN)/rapport migrate --noinput
	$(BIN)/rapport collectstatic --noinput -v0
	$(BIN)/rapport demo --if-empty
	$(BIN)/rapport run

test: install test-deps lint test-sqlite test-postgres test-browser

test-deps:
	@scripts/install-test-deps.sh

lint: install
	$(BIN)/ruff check src tests bench scripts

test-sqlite: install
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) -m "not browser"

test-postgres: install
	scripts/with-postgres.sh $(BIN)/pytest -q -n $(PYTEST_WORKERS) -m "not browser"

test-browser: install
	$(BIN)/pytest -q -m browser

# Every benchmark at the sizes of its issue's goal, on SQLite (add --postgres by hand; see
# docs/performance.md). Long: the 1,000,000-row runs take many minutes each.
bench: install
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/search.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/visibility.py
	$(BIN)/python bench/gate.py
	$(BIN)/python bench/import.py
	$(BIN)/python bench/export.py
	$(BIN)/python bench/identity.py quality
	$(BIN)/python bench/identity.py speed
	$(BIN)/python bench/identity_realtime.py

clean:
	rm -rf $(VENV) var/*.sqlite3* build *.egg-info
