# One entry point for set-up, running and testing. Every target creates what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA_DIR ?= .meterline
PORT ?= 8000

.PHONY: run test lint check system-deps venv clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[server,test]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

run: $(STAMP)
	$(BIN)/meterline quickstart --data-dir $(DATA_DIR) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest -p no:cacheprovider

check: test

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/query.py
	$(BIN)/python bench/ratelimit.py
	$(BIN)/python bench/ratelimit_fairness.py
	$(BIN)/python bench/reports.py

clean:
	rm -rf $(VENV) $(DATA_DIR) .mypy_cache .ruff_cache
