# One entry point for set-up, running and testing. Every target creates what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The dashboard's browser modules (uPlot) come from npm by lockfile, into a git-ignored
# node_modules inside the package, and ship in the wheel from there.
FRONTEND := src/meterline/dashboard/frontend
FRONTEND_STAMP := $(FRONTEND)/node_modules/.installed-stamp
DATA_DIR ?= .meterline
PORT ?= 8000

.PHONY: run test lint check system-deps venv frontend clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[server,test]'
	touch $(STAMP)

$(FRONTEND_STAMP): $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	command -v npm >/dev/null 2>&1 || bash scripts/install-system-deps.sh
	cd $(FRONTEND) && npm ci --no-audit --no-fund --loglevel=error
	touch $(FRONTEND_STAMP)

frontend: $(FRONTEND_STAMP)

venv: $(STAMP) $(FRONTEND_STAMP)

system-deps:
	bash scripts/install-system-deps.sh

run: $(STAMP) $(FRONTEND_STAMP)
	$(BIN)/meterline quickstart --data-dir $(DATA_DIR) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

test: $(STAMP) system-deps $(FRONTEND_STAMP) lint
	$(BIN)/python -m pytest -p no:cacheprovider

check: test

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/query.py
	$(BIN)/python bench/ratelimit.py
	$(BIN)/python bench/ratelimit_fairness.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/dashboard.py

clean:
	rm -rf $(VENV) $(DATA_DIR) .mypy_cache .ruff_cache $(FRONTEND)/node_modules
