# Two commands do all the set-up on a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt
SHARED ?= $(or $(RA_SHARED_DIR),../shared)
CORPUS ?= $(SHARED)/corpus $(SHARED)/pdfs
QUESTION ?= Which guidance strategy did human evaluators prefer in GLIDE?
export RA_SHARED_DIR := $(SHARED)

.PHONY: install system-deps demo test test-quick lint bench clean

$(BIN)/ra: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev]'
	touch $@

install: $(BIN)/ra

# Debian packages the tests need (bubblewrap for the sandbox); root or sudo.
system-deps:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq bubblewrap; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq bubblewrap; fi; }

demo: install
	$(BIN)/ra ingest $(CORPUS)
	$(BIN)/ra search "$(QUESTION)" -k 3

test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest -q

test-quick: install
	$(BIN)/pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m eval.bench.run_all

clean:
	rm -rf $(VENV) .ra .pytest_cache
