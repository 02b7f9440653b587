"""Convert a GGUF model to a Hugging Face safetensors folder; runs with the vLLM venv's python.

Why: vLLM 0.32 cannot load GGUF files, but our packaged models ship only as GGUF. transformers can read a
GGUF (dequantizing it), and its `save_pretrained` writes a folder vLLM loads. Run as a plain script
(`<vllm python> gguf_to_hf.py --gguf F --out DIR`) so that it needs only transformers, gguf and accelerate,
never the project's own dependencies. `vllm_env.hf_dir_for` calls it once per model and caches the result.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16)
    # The weights are dequantized now; without this, save_pretrained would label them as GGUF-quantized
    # and vLLM would refuse the folder.
    model.hf_quantizer = None
    vars(model.config).pop("quantization_config", None)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", type=Path, required=True, help="GGUF file to convert")
    ap.add_argument("--out", type=Path, required=True, help="folder to write (created)")
    args = ap.parse_args()
    convert(args.gguf.resolve(), args.out)


if __name__ == "__main__":
    main()
