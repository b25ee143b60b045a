# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing and installs what it needs (Debian packages too
# when apt-get is there and we are root).  `make lint`, `make fmt`, `make typecheck`
# are for people.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
# pytest-xdist: one worker per core (PYTEST_WORKERS=3 on 2 cores ran the suite in gaps
# where tests wait, but on a loaded machine two latency tests failed: not the default).
# worksteal: each worker starts on a contiguous share of the tests (a module's fixtures
# set up once, not on every worker) and an idle one takes tests from the busiest's tail.
PYTEST_WORKERS ?= auto

.PHONY: demo test lint fmt typecheck system-deps bench clean

$(BIN)/python:
	@bash scripts/bootstrap.sh venv "$(PYTHON)" "$(VENV)"

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

demo: $(STAMP)
	$(BIN)/inferwatch demo $(ARGS)

system-deps:
	@bash scripts/bootstrap.sh system

test: $(STAMP) system-deps lint typecheck
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal --durations=10 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache inferwatch-demo
