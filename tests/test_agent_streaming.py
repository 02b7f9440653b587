"""Words as they are written: a part's draft streams as DraftToken events before its check ends, the
verdict follows, and only checked words ever reach AnswerToken or the final answer. Also the incremental
JSON field decoder the stream goes through. (The CLI's real streaming is in test_service.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakes import (
    ScriptedBackend,
    StreamingBackend,
    TinyIndex,
    WordChecker,
    part_reply,
    plan_reply,
    step_reply,
)

from assistant.agent.config import AgentSettings
from assistant.agent.loop import ResearchAgent, final_answer
from assistant.agent.prompts import StreamedField
from assistant.agent.records import AnswerToken, DraftChecked, DraftToken, Event, PlanMade

DOCS = {
    "docs/alpaca.md": "Stanford's Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.",
    "docs/yolo.md": "Fast YOLO processes an astounding 155 frames per second.",
}
ALPACA = "How many demonstrations was Stanford's Alpaca 7B fine-tuned on?"
RIGHT = "Alpaca 7B was fine-tuned on 52K instruction-following demonstrations."
WRONG = "Alpaca 7B was fine-tuned on 64K instruction-following demonstrations."


def citing(text: str, needle: str):
    def reply(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
        for line in messages[-1]["content"].splitlines():
            if needle in line and line.startswith("["):
                return part_reply(text, [int(line[1 : line.index("]")])])
        raise AssertionError(f"no line with {needle!r}")

    return reply


def run(backend: ScriptedBackend, question: str = ALPACA, *, self_check: bool = False) -> list[Event]:
    cfg = AgentSettings(sandbox=False, self_check=self_check)
    agent = ResearchAgent(backend, TinyIndex(DOCS), cfg, checker=WordChecker(), weak_margin=0.2)
    return list(agent.run(question))


def test_a_draft_streams_before_its_check_and_the_checked_words_follow() -> None:
    events = run(StreamingBackend([plan_reply("number"), citing(RIGHT, "52K")]))
    drafts = [i for i, e in enumerate(events) if isinstance(e, DraftToken)]
    [verdict] = [i for i, e in enumerate(events) if isinstance(e, DraftChecked)]
    first_answer = next(i for i, e in enumerate(events) if isinstance(e, AnswerToken))
    assert len(drafts) > 3 and max(drafts) < verdict < first_answer  # words came in pieces, before the check
    assert "".join(events[i].text for i in drafts) == RIGHT  # type: ignore[union-attr]
    assert events[verdict].accepted  # type: ignore[union-attr]
    answer = final_answer(iter(events))
    assert (
        answer.sentences[0].text == RIGHT
        and answer.timings["first_draft_s"] <= answer.timings["first_token_s"]
    )


def test_a_rejected_draft_is_marked_replaced_and_never_reaches_the_answer() -> None:
    events = run(
        StreamingBackend([plan_reply("number"), citing(WRONG, "52K"), step_reply("give_up")]),
        self_check=True,
    )
    streamed = "".join(e.text for e in events if isinstance(e, DraftToken))
    assert "64K" in streamed  # the reader saw the draft ...
    [verdict] = [e for e in events if isinstance(e, DraftChecked)]
    assert not verdict.accepted  # ... and was told it was replaced
    answer = final_answer(iter(events))
    checked = "".join(e.text for e in events if isinstance(e, AnswerToken))
    assert answer.abstained and "64K" not in checked and "64K" not in json.dumps(answer.to_json()["answer"])


def test_a_backend_that_cannot_stream_gives_no_drafts() -> None:
    events = run(ScriptedBackend([plan_reply("number"), citing(RIGHT, "52K")]))
    assert not [e for e in events if isinstance(e, DraftToken | DraftChecked)]
    assert final_answer(iter(events)).sentences[0].text == RIGHT


def test_only_the_first_part_streams() -> None:
    question = "How many demonstrations was Alpaca 7B fine-tuned on, and how fast is Fast YOLO?"
    events = run(
        StreamingBackend(
            [
                plan_reply("number", "number"),
                citing(RIGHT, "52K"),
                citing("Fast YOLO processes 155 frames per second.", "155"),
            ]
        ),
        question,
    )
    first = next(e.plan.parts[0].id for e in events if isinstance(e, PlanMade))
    assert {e.part for e in events if isinstance(e, DraftToken)} == {first}
    assert len(final_answer(iter(events)).sentences) == 2


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 7])
def test_the_streamed_field_decodes_escapes_cut_anywhere(cut: int) -> None:
    value = 'Say "52K" \\ then\nnew line — ünïcode \u00e9 and \t tab'
    raw = json.dumps({"how": "stated", "text": value, "citations": [1]}, ensure_ascii=True)
    field = StreamedField("text")
    out = "".join(field.feed(raw[i : i + cut]) for i in range(0, len(raw), cut))
    assert out == value and field.done


def test_the_streamed_field_waits_for_its_key_and_ignores_other_fields() -> None:
    field = StreamedField("text")
    assert field.feed('{"how": "text is not this", ') == ""
    assert field.feed('"text"') == ""
    assert field.feed(' : "ab') == "ab"
    assert field.feed('c", "citations": [1]}') == "c" and field.done
    assert field.feed('"more"') == ""
