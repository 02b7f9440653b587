"""PaperQA2 (`paper-qa`) through its `Docs` API, as a peers-harness worker.

Settings: PaperQA2's own `fast` preset (evidence_k 5, 3 sources, short summaries, no JSON summaries, no
metadata look-ups), with the LLM and the summary LLM both the shared local server, configured as its
README's "Locally Hosted" llama.cpp example does (LiteLLM `openai/` route, local `api_base`, temperature
0.1, frequency_penalty 1.5, max_tokens 512), and the embedding the same
MiniLM through its `st-<path>` sentence-transformers route; PDFs are read as text (no vision model here). Each file is added with an explicit docname
and citation (its file name), so adding calls no model. Its "cannot answer" form is its own sentinel,
`paperqa.prompts.CANNOT_ANSWER_PHRASE`. A cited passage is the context PaperQA2 shows for a key: its
evidence summary (the chunk itself in the `paperqa-skip-summary` system, `evidence_skip_summary`). Runs in `.venv-peers`.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import re
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-list fetch: offline
sys.path.insert(0, str(Path(__file__).parent))
from protocol import Cited, Reply, Setup, file_label, serve

PAGES = re.compile(r" pages (\d+)")


class PaperQA:
    def __init__(self, setup: Setup, skip_summary: bool) -> None:
        from paperqa import Docs, Settings
        from paperqa.settings import MultimodalOptions

        route = f"openai/{setup['llm_model']}"
        params = {  # PaperQA2's README, "Locally Hosted" (llama.cpp), plus our server and the budget
            "model": route,
            "api_base": setup["llm_url"],
            "api_key": "sk-no-key-required",
            "temperature": 0.1,
            "frequency_penalty": 1.5,
            "max_tokens": 512,
            "timeout": setup["budget_s"],
        }
        llm_config = {"model_list": [{"model_name": route, "litellm_params": params}]}
        self.settings = Settings.from_name("fast")
        self.settings.llm = self.settings.summary_llm = route
        self.settings.llm_config = self.settings.summary_llm_config = llm_config
        self.settings.embedding = f"st-{setup['embedding_model']}"
        # text-only PDF reads: the default enriches page images with a vision LLM (gpt-4o), which the
        # local text model is not
        self.settings.parsing.multimodal = MultimodalOptions.OFF
        self.settings.answer.max_concurrent_requests = 1  # one local server on two cores
        self.settings.answer.evidence_skip_summary = skip_summary
        self.budget_s = setup["budget_s"]
        self.docs = Docs()
        self.names: dict[str, str] = {}
        for path in setup["docs"]:
            name = file_label(path)
            docname = re.sub(r"\W", "_", Path(name).stem)
            self.names[docname] = name
            asyncio.run(self.docs.aadd(path, citation=name, docname=docname, settings=self.settings))
        with open(Path(setup["state_dir"]) / "docs.pkl", "wb") as f:
            pickle.dump(self.docs, f)  # PaperQA2's documented way to keep a Docs

    def ask(self, question: str) -> Reply:
        from paperqa.prompts import CANNOT_ANSWER_PHRASE

        session = asyncio.run(
            asyncio.wait_for(self.docs.aquery(question, settings=self.settings), self.budget_s)
        )
        used = [c for c in session.contexts if c.id in session.used_contexts]
        return {
            "answer": session.answer,
            "citations": [self._cited(c) for c in used],
            "abstained": CANNOT_ANSWER_PHRASE.casefold() in session.answer.casefold(),
        }

    def _cited(self, context: Any) -> Cited:
        page = PAGES.search(context.text.name)
        return {
            "document": self.names.get(context.text.doc.docname, context.text.doc.docname),
            "page": int(page.group(1)) if page else None,
            "quote": context.context,
        }


def build(setup: Setup) -> tuple[PaperQA, dict[str, Any]]:
    skip = bool(setup["options"].get("skip_summary"))
    system = PaperQA(setup, skip)
    answer = system.settings.answer
    return system, {
        "preset": "fast",
        "embedding": "st-MiniLM (the shared one)",
        "evidence_k": answer.evidence_k,
        "answer_max_sources": answer.answer_max_sources,
        "evidence_skip_summary": answer.evidence_skip_summary,
        "multimodal": "off",
        "chunk_chars": system.settings.parsing.reader_config.get("chunk_chars")
        if isinstance(system.settings.parsing.reader_config, dict)
        else None,
    }


if __name__ == "__main__":
    serve(build)
