# Developer entry points. `make run` and `make test` work on a fresh machine
# with Python 3.11+: they create .venv and install everything first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STORE ?= store
MODEL ?= moons
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: setup run test test-fast lint bench

$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]" -e "./clients/python[jax]"
	touch $@

setup: $(VENV)/.installed

# Train the default flow into the local store unless it already contains one,
# then serve it on http://$(HOST):$(PORT) (API docs at /docs). Compiled XLA
# programs are cached in .cache/xla, so the second start compiles less.
run: setup
	@$(BIN)/gaussprobe models show $(MODEL) --store $(STORE) >/dev/null 2>&1 \
		|| $(BIN)/gaussprobe train $(MODEL) --store $(STORE)
	GAUSSPROBE_COMPILATION_CACHE=.cache/xla $(BIN)/gaussprobe serve \
		--store $(STORE) --model $(MODEL) --host $(HOST) --port $(PORT)

# The full suite, slow tests included; this is what CI runs.
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Everything but the tests marked slow (training runs, servers).
test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check flow service clients tests benchmarks
	$(BIN)/ruff format --check flow service clients tests benchmarks

bench: setup
	$(BIN)/python benchmarks/bench_flow.py
