"""This project as a peers-harness worker: `ra ingest` into the run's folder, then `ra ask` semantics (the
configured agent, grounding checker and sandbox) with the LLM being the shared local server. Runs in the
project's `.venv`; its "cannot answer" form is the answer's own `abstained` flag.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from protocol import Reply, Setup, file_label, serve


class Assistant:
    def __init__(self, setup: Setup) -> None:
        from assistant.agent.factory import ready_agent
        from assistant.index_access import index_config
        from assistant.settings import load_settings
        from index.ingest import ingest_paths

        self.settings = load_settings(
            {
                "index": {"dir": Path(setup["state_dir"]) / "index"},
                "llm": {"url": setup["llm_url"], "model": setup["llm_model"]},
            }
        )
        ingest_paths([Path(p) for p in setup["docs"]], self.settings.index.dir, index_config(self.settings))
        self._stack = contextlib.ExitStack()
        self.agent = self._stack.enter_context(ready_agent(self.settings))

    def ask(self, question: str) -> Reply:
        from assistant.agent.loop import final_answer

        answer = final_answer(self.agent.run(question))
        citations = [
            {"document": file_label(c.source), "page": c.page, "quote": c.quote}
            for c in answer.citations
            if c.kind != "computed"  # a computation's output is not a document passage
        ]
        return {"answer": answer.text, "citations": citations, "abstained": answer.abstained}


def build(setup: Setup) -> tuple[Assistant, dict[str, Any]]:
    system = Assistant(setup)
    s = system.settings
    return system, {
        "retrieval": s.retrieval.model_dump(mode="json"),
        "checker": s.grounding.checker,
        "chunking": s.index.chunking.model_dump(mode="json"),
    }


if __name__ == "__main__":
    serve(build)
