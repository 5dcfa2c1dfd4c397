# Two commands do all set-up on a fresh clone:
#   make demo   install the main job's packages from uv.lock into .venv, then materialize the whole
#               chain on the demo region
#   make test   install the same plus the test extras from uv.lock (and Chromium/PostgreSQL from
#               Debian if missing), then lint (ruff, mypy) and run the test suite
#   make test-fast   the tests without IGM, the browser or the CLI (`pytest -m "not slow"`), ~1.5 min
#   make lock   re-resolve every package to its newest allowed version and rewrite uv.lock (upgrading)
# and `make ui` opens the Dagster UI on http://127.0.0.1:3000 over the same instance.
#
# Installs come from uv.lock only (`uv sync --locked`): a fresh clone gets the versions the lock
# names, whatever the registry has published since, and the sync stops if pyproject.toml and the
# lock disagree. uv itself is pinned and lives in .uv/, beside the environment it manages.

PYTHON     ?= python3
UV_VERSION := 0.13.9
VENV       := .venv
BIN        := $(VENV)/bin
UV         := .uv/bin/uv
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export UV_PYTHON_DOWNLOADS := never
export DAGSTER_HOME ?= $(CURDIR)/var/dagster_home
export GLACIER_ASSETS_ROOT := $(CURDIR)

.PHONY: demo test test-fast lint ui env lock clean system-deps

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/python -m pip install --quiet uv==$(UV_VERSION)

# The main job's packages; --inexact keeps the test extras if `make test` installed them.
$(VENV)/.installed-main: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --inexact --python $(PYTHON)
	touch $@

# The main job's packages and the test extras, exactly as locked.
$(VENV)/.installed-test: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra test --python $(PYTHON)
	touch $@ $(VENV)/.installed-main

env: $(VENV)/.installed-main

demo: $(VENV)/.installed-main
	$(BIN)/python -m glacier_assets run

lock: | $(UV)
	$(UV) lock --upgrade --python $(PYTHON)

system-deps:
	./scripts/system-deps

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy

# the suite in TEST_WORKERS processes (pytest-xdist), each test file in one of them, so a module's
# fixtures and the main job's story (test_main_job.py) stay in order; each process builds its own
# demo chain
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test: $(VENV)/.installed-test system-deps lint
	$(PYTEST)

test-fast: $(VENV)/.installed-test
	$(PYTEST) -m "not slow"

ui: $(VENV)/.installed-main
	$(BIN)/python -m glacier_assets ui --port 3000

clean:
	rm -rf var
