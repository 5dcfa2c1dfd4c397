# Two commands do all set-up on a fresh clone:
#   make demo   create .venv if absent, then materialize the whole chain on the demo region
#   make test   create .venv if absent (and install Chromium/PostgreSQL from Debian if missing),
#               then lint (ruff, mypy) and run the test suite
#   make test-fast   the tests without IGM, the browser or the CLI (`pytest -m "not slow"`), ~1.5 min
# and `make ui` opens the Dagster UI on http://127.0.0.1:3000 over the same instance.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/var/dagster_home
export GLACIER_ASSETS_ROOT := $(CURDIR)

.PHONY: demo test test-fast lint ui env clean system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade uv
	$(BIN)/uv pip install --python $(BIN)/python -e '.[test]'
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m glacier_assets run

system-deps:
	./scripts/system-deps

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

ui: $(STAMP)
	$(BIN)/python -m glacier_assets ui --port 3000

clean:
	rm -rf var
