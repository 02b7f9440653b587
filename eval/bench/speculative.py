"""Speculative decoding on this machine: decode speed and answer time of the embedded model with a draft
model, with n-gram (prompt lookup) proposals, and without, on the agent's own kind of call.

    python -m eval.bench.speculative --index DIR [--data QA.jsonl] [--limit 8] [--model qwen2.5-coder-1.5b]
                                     [--modes none,draft,ngram] [--out docs/bench/speculative.json]

Each prompt is a real answer call: the question's best passages from the index, cut into numbered
sentences, and the answer schema, at temperature 0. Each mode gets its own server (started, warmed with one
call, then timed). Outputs must be identical to the `none` run: speculative decoding only proposes tokens,
the main model decides every one of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from assistant.agent.loop import stated_schema
from assistant.agent.prompts import render
from assistant.index_access import open_index
from assistant.llm.client import ChatClient
from assistant.llm.llamacpp import LlamaCppServer
from assistant.settings import Settings, load_settings
from eval.bench import write_result
from eval.metrics import percentile

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "qa" / "dev_v2.jsonl"
MAX_TOKENS = 96


def answer_prompts(settings: Settings, questions: list[str]) -> list[list[dict[str, str]]]:
    """One answer call per question: the system prompt, then up to eight numbered evidence sentences."""
    from assistant.grounding.evidence import split_sentences

    index = open_index(settings)
    prompts = []
    for question in questions:
        sentences = [s for hit in index.search(question, k=3) for s in split_sentences(hit.chunk.text)][:8]
        evidence = "\n".join(f"[{n}] {' '.join(s.split())}" for n, s in enumerate(sentences, 1))
        user = render("part_user.md", evidence=evidence, numbers="", question=question, focus="")
        prompts.append(
            [{"role": "system", "content": render("answer_system.md")}, {"role": "user", "content": user}]
        )
    return prompts


def run_mode(settings: Settings, mode: str, prompts: list[list[dict[str, str]]]) -> dict[str, Any]:
    llm = settings.llm.model_copy(update={"speculative": mode})
    with (
        LlamaCppServer.for_settings(llm, settings.cache_dir) as server,
        ChatClient(server.base_url, server.model_name, timeout=600.0) as client,
    ):
        # warm-up: first-call allocations are not decoding
        client.chat(prompts[0], max_tokens=8, json_schema=stated_schema(range(1, 9)))
        rows = []
        for messages in prompts:
            t0 = time.perf_counter()
            result = client.chat(messages, max_tokens=MAX_TOKENS, json_schema=stated_schema(range(1, 9)))
            seconds = time.perf_counter() - t0
            tokens = result.usage.get("completion_tokens", 0)
            rows.append({"seconds": round(seconds, 3), "tokens": tokens, "text": result.text})
            print(json.dumps({"mode": mode, **rows[-1]}), file=sys.stderr, flush=True)
    total_s = sum(r["seconds"] for r in rows)
    return {
        "answer_p50_s": round(percentile([r["seconds"] for r in rows], 50), 3),
        "total_s": round(total_s, 2),
        "tokens_per_s": round(sum(r["tokens"] for r in rows) / total_s, 2),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--model", default=None)
    ap.add_argument("--modes", default="none,draft,ngram")
    ap.add_argument("--out", type=Path, default=Path("docs/bench/speculative.json"))
    args = ap.parse_args(argv)
    settings = load_settings({"index": {"dir": args.index}, "llm": {"model": args.model}})
    items = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()][: args.limit]
    prompts = answer_prompts(settings, [item["question"] for item in items])
    modes = [m.strip() for m in args.modes.split(",")]
    results = {mode: run_mode(settings, mode, prompts) for mode in modes}
    base = results[modes[0]]
    summary = {
        mode: {
            "tokens_per_s": r["tokens_per_s"],
            "answer_p50_s": r["answer_p50_s"],
            "speedup_tokens_per_s": round(r["tokens_per_s"] / base["tokens_per_s"], 3),
            "identical_outputs": sum(
                a["text"] == b["text"] for a, b in zip(r["rows"], base["rows"], strict=True)
            ),
        }
        for mode, r in results.items()
    }
    result = {
        "model": settings.llm.model,
        "draft_model": settings.llm.draft_model,
        "prompts": len(prompts),
        "max_tokens": MAX_TOKENS,
        "summary": summary,
        "detail": {mode: r["rows"] for mode, r in results.items()},
    }
    return write_result(result, args.out, detail="detail")


if __name__ == "__main__":
    main()
