#!/usr/bin/env bash
# Install the peers of eval/bench/peers.py (PaperQA2 and a LangChain RAG chain) into their own venv:
#   scripts/install-peers.sh [VENV_DIR]   (default .venv-peers)
#
# Why a separate venv: the peers pin their own LLM clients (LiteLLM, langchain-openai) and must not shape
# the product's dependencies. The harness reaches them only through worker processes. Pinned by
# eval/bench/peers-requirements.txt, torch by constraints.txt (the local CPU build). After this, the
# peers run offline: the model is the local server, the embedding the packaged MiniLM.
# Idempotent: does nothing when the venv already has the pinned set.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/.venv-peers}"
python="${PYTHON:-python3}"
requirements="$repo/eval/bench/peers-requirements.txt"
stamp="$venv/.requirements"

if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then
    echo "peers already installed in $venv"
    exit 0
fi

"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -c "$repo/constraints.txt" torch==2.13.0 -r "$requirements"
LITELLM_LOCAL_MODEL_COST_MAP=True "$venv/bin/python" -c "import paperqa, langchain_classic, langchain_openai, sentence_transformers, faiss"
cp "$requirements" "$stamp"
echo "peers installed in $venv"
