# Two commands do all the set-up on a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt
SHARED ?= $(or $(RA_SHARED_DIR),../shared)
CORPUS ?= $(SHARED)/corpus $(SHARED)/pdfs
QUESTION ?= How many instruction-following demonstrations was Stanford's Alpaca 7B fine-tuned on?
export RA_SHARED_DIR := $(SHARED)

VLLM_VENV ?= .venv-vllm

.PHONY: install system-deps vllm checker demo test test-quick lint bench clean

$(BIN)/ra: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev]'
	touch $@

install: $(BIN)/ra

# Debian packages the tests need (bubblewrap for the sandbox, chromium for the UI browser test); root or sudo.
system-deps:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq bubblewrap; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq bubblewrap; fi; }
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

# vLLM lives in its own venv (its pins clash with ours); on a GPU box: VLLM_PACKAGE=vllm make vllm
vllm: $(VLLM_VENV)/bin/python

$(VLLM_VENV)/bin/python: scripts/install-vllm.sh constraints.txt
	bash scripts/install-vllm.sh $(VLLM_VENV)

# The local grounding checkers (trained from the packaged MiniLM, minutes on 2 cores; no-ops once built):
# minilm (v1, the default) and align (v2).
checker: install
	@if [ -d "$(SHARED)/bench/faithfulness/train" ]; then \
	  $(BIN)/ra eval train-checker --checker minilm && $(BIN)/ra eval train-checker --checker align; \
	else echo "no training data under $(SHARED): grounding checkers not built (their tests skip)"; fi

demo: install checker
	$(BIN)/ra ingest $(CORPUS)
	$(BIN)/ra search "$(QUESTION)" -k 3
	$(BIN)/ra ask "$(QUESTION)"

test: install system-deps vllm checker
	$(BIN)/ruff check .
	$(BIN)/pytest -q

test-quick: install
	$(BIN)/pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Benchmarks recorded in docs/benchmarks.md (each prints JSON; some write docs/bench/*.json).
bench: install checker
	$(BIN)/python -m eval.bench.scifact
	$(BIN)/python -m eval.bench.chunk_sizes
	$(BIN)/python -m eval.bench.reingest
	$(BIN)/python -m eval.bench.ann_recall --n 200000
	$(BIN)/python -m eval.bench.scale --n 1000000
	$(BIN)/python -m eval.bench.sandbox_overhead
	$(BIN)/python -m eval.bench.checker
	$(BIN)/ra ingest $(CORPUS)
	$(BIN)/python -m eval.bench.qa_agent --data $(SHARED)/qa/seeds_dev.jsonl

clean:
	rm -rf $(VENV) $(VLLM_VENV) .ra .pytest_cache
