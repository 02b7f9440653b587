# Two commands do all the set-up on a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
# Independent set-up steps run side by side (the checker's training on the CPU while vLLM and the Debian
# packages download); the lines of one recipe still run in order.
ifeq ($(MAKELEVEL),0)
MAKEFLAGS += --jobs=4
endif
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# -q and no version check: the first run's output is our own progress lines, not pip's notices.
PIP := $(BIN)/pip install -q --disable-pip-version-check -c constraints.txt
# Editable, without setuptools' "Editable installation" banner (advice about folders named like our
# packages, on every install; its compat and strict modes print their own): a deprecation still shows.
EDITABLE := PYTHONWARNINGS="ignore:Editable installation" $(PIP) -e
SHARED ?= $(or $(RA_SHARED_DIR),../shared)
CORPUS ?= $(SHARED)/corpus $(SHARED)/pdfs
QUESTION ?= How many instruction-following demonstrations was Stanford's Alpaca 7B fine-tuned on?
export RA_SHARED_DIR := $(SHARED)

VLLM_VENV ?= .venv-vllm
PEERS_VENV ?= .venv-peers
# The tests' own model cache (tests/conftest.py reads RA_TEST_CACHE_DIR): the user's cache stays untouched.
TEST_CACHE ?= $(CURDIR)/.cache/research-assistant

.PHONY: install install-dev sandbox-deps system-deps vllm peers peers-bench checker test-checker demo test test-quick lint bench clean

# The product alone (what `make demo` needs); the dev extra (tests, linters, benchmarks) on top of it.
$(BIN)/ra: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(PIP) torch==2.13.0
	$(EDITABLE) .
	touch $@

$(VENV)/.dev-installed: $(BIN)/ra
	$(EDITABLE) '.[dev]'
	touch $@

install: $(BIN)/ra

install-dev: $(VENV)/.dev-installed

# Debian packages (root or sudo; without either a warning says what will not work and the rest goes on).
# bubblewrap: the product's sandbox, so `make demo` installs it too.
sandbox-deps:
	@scripts/install-system-package.sh bwrap bubblewrap "the agent's python tool and \`ra sandbox run\`"

# chromium: only the UI browser test needs it.
system-deps: sandbox-deps
	@scripts/install-system-package.sh chromium chromium "the UI browser test (tests/test_ui_browser.py)"

# vLLM lives in its own venv (its pins clash with ours); on a GPU box: VLLM_PACKAGE=vllm make vllm
vllm: $(VLLM_VENV)/bin/python

$(VLLM_VENV)/bin/python: scripts/install-vllm.sh constraints.txt
	bash scripts/install-vllm.sh $(VLLM_VENV)

# The peers of eval/bench/peers.py (PaperQA2, a LangChain chain) in their own venv, pinned.
peers: $(PEERS_VENV)/.requirements

$(PEERS_VENV)/.requirements: scripts/install-peers.sh eval/bench/peers-requirements.txt constraints.txt
	bash scripts/install-peers.sh $(PEERS_VENV)

# The three systems, and PaperQA2 without evidence summaries, side by side on the dev sets
# (hours on 2 cores; LIMIT=N for the first N questions).
PEERS_OUT ?= .ra/eval/peers
PEERS_SYSTEMS ?= ra,paperqa,paperqa-skip-summary,langchain
peers-bench: install-dev peers
	for data in seeds_dev dev_v2; do \
	  $(BIN)/python -m eval.bench.peers --data $(SHARED)/qa/$$data.jsonl --docs $(CORPUS) \
	    --systems $(PEERS_SYSTEMS) $(if $(LIMIT),--limit $(LIMIT)) --out $(PEERS_OUT)/$$data || exit 1; done

# The local grounding checkers (trained from the packaged MiniLM, minutes on 2 cores; no-ops once built):
# minilm (v1, the default) and align (v2).
checker: install
	@if [ -d "$(SHARED)/bench/faithfulness/train" ]; then \
	  $(BIN)/ra eval train-checker --checker minilm && $(BIN)/ra eval train-checker --checker align; \
	else echo "no training data under $(SHARED): grounding checkers not built (their tests skip)"; fi

# The same checker in the tests' cache (seeded, so it is the same model).
test-checker: install
	@$(MAKE) --no-print-directory checker RA_CACHE_DIR=$(TEST_CACHE)

demo: install sandbox-deps checker
	$(BIN)/ra ingest $(CORPUS)
	$(BIN)/ra search "$(QUESTION)" -k 3
	$(BIN)/ra ask "$(QUESTION)"

test: install-dev system-deps vllm peers test-checker
	$(BIN)/ruff check .
	RA_TEST_CACHE_DIR=$(TEST_CACHE) $(BIN)/pytest -q $(PYTEST_ARGS)

test-quick: install-dev
	RA_TEST_CACHE_DIR=$(TEST_CACHE) $(BIN)/pytest -q -m "not slow"

lint: install-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Benchmarks recorded in docs/benchmarks.md (each prints JSON; some write docs/bench/*.json).
bench: install-dev checker
	$(BIN)/python -m eval.bench.scifact
	$(BIN)/python -m eval.bench.chunk_sizes
	$(BIN)/python -m eval.bench.reingest
	$(BIN)/python -m eval.bench.ann_recall --n 200000
	$(BIN)/python -m eval.bench.scale --n 1000000
	$(BIN)/python -m eval.bench.sandbox_overhead
	$(BIN)/python -m eval.bench.checker
	$(BIN)/ra ingest $(CORPUS)
	$(BIN)/python -m eval.bench.qa_agent --data $(SHARED)/qa/seeds_dev.jsonl --out .ra/eval/bench-dev
	$(BIN)/python -m eval.bench.stages .ra/eval/bench-dev
	$(BIN)/python -m eval.bench.ask_latency --index .ra/index --data $(SHARED)/qa/seeds_dev.jsonl --limit 20 --users 1,2,4
	$(BIN)/python -m eval.bench.injection

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(PEERS_VENV) .ra .pytest_cache .cache
