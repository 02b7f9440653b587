"""A run as JSON lines, derived from the typed records (never from rendered text).

One line per record, in run order: the question, the plan, every step (with its prompt size and hash, raw
reply, parse error, tokens and timings), every evidence entry, each part's outcome and the answer. `ra ask
--trace FILE` writes it and `ra eval qa` keeps one per question, so a false abstention can be diagnosed
from the files: which part was not stated, what the model drafted, which score the checker gave.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.agent.records import Answer


def trace_records(answer: Answer) -> Iterator[dict[str, Any]]:
    yield {"type": "question", "question": answer.question}
    if answer.plan is not None:
        yield {"type": "plan", **answer.plan.to_json()}
    for step in answer.steps:
        yield {"type": "step", **step.to_json()}
    for ev in answer.evidence:
        yield {"type": "evidence", **ev.to_json()}
    for part in answer.parts:
        yield {"type": "part", **part.to_json()}
    data = answer.to_json()
    for key in ("steps", "evidence", "plan", "parts"):
        data.pop(key)
    yield {"type": "answer", **data}


def write_trace(answer: Answer, path: Path) -> None:
    """Write the trace atomically (a crash leaves the old file or none, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for record in trace_records(answer):
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
