"""The service's wire format: every agent event of a real (scripted) run survives JSON and comes back as
the same typed record, so `ra ask` prints the same through the service as in process; malformed input is
refused, never guessed."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from fakes import StreamingBackend, TinyIndex, WordChecker, computed_reply, part_reply, plan_reply

from assistant.agent.config import AgentSettings
from assistant.agent.loop import ResearchAgent, final_answer
from assistant.agent.records import FinalAnswer, Step
from assistant.service.wire import EVENT_TYPES, decode, decode_event, encode
from index.types import Chunk, SearchHit

DOCS = {
    "docs/yolo.md": "The base YOLO model processes images in real-time at 45 frames per second. "
    "Fast YOLO processes an astounding 155 frames per second.",
    "docs/rwkv.md": "RWKV is a recurrent neural network with transformer-level LLM performance.",
    "docs/retnet.md": "RetNet is a recurrent network that proposes the retention mechanism.",
}


def _line(messages: list[dict[str, Any]], needle: str) -> int:
    for line in messages[-1]["content"].splitlines():
        if needle in line and line.startswith("["):
            return int(line[1 : line.index("]")])
    raise AssertionError(needle)


def _number(messages: list[dict[str, Any]], written: str) -> str:
    for line in messages[-1]["content"].splitlines():
        if " = " in line and line.split(" = ", 1)[1].startswith(written + " "):
            return line.split(" = ", 1)[0]
    raise AssertionError(written)


def _compute(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
    a, b = _number(messages, "155"), _number(messages, "45")
    return computed_reply(
        f"{a} / {b}", **{a: "Fast YOLO frames per second", b: "base YOLO frames per second"}
    )


def rich_run() -> list[Any]:
    """A comparison part, a computed part and streamed drafts: most record types, nested."""
    backend = StreamingBackend(
        [
            plan_reply(["RWKV", "RetNet"], "number"),
            lambda m, s: part_reply(
                "RWKV is a recurrent neural network with transformer-level LLM performance.",
                [_line(m, "RWKV")],
            ),
            lambda m, s: part_reply(
                "RetNet is a recurrent network that proposes the retention mechanism.", [_line(m, "RetNet")]
            ),
            json.dumps({"answer": "RetNet"}),
            _compute,
        ]
    )
    agent = ResearchAgent(
        backend,
        TinyIndex(DOCS),
        AgentSettings(sandbox=False, self_check=False),
        checker=WordChecker(),
        weak_margin=0.2,
    )
    return list(
        agent.run(
            "Which proposes a retention mechanism, RWKV or RetNet, and by what factor is Fast YOLO faster than YOLO?"
        )
    )


def test_every_event_of_a_run_comes_back_as_the_same_record() -> None:
    events = rich_run()
    answer = final_answer(iter(events))
    answer.steps.append(dataclasses.replace(answer.steps[0], figures=[b"\x89PNG\r\n\x1a\n\x00\xff"]))
    assert {type(e).__name__ for e in events} >= {
        "PlanMade",
        "EvidenceFound",
        "StepStarted",
        "StepFinished",
        "DraftToken",
        "DraftChecked",
        "AnswerToken",
        "FinalAnswer",
    }
    assert any(e.kind == "computed" and e.operands for e in answer.evidence)
    for event in events:
        wired = json.loads(json.dumps(encode(event)))
        assert decode_event(wired) == event
    back = decode_event(json.loads(json.dumps(encode(FinalAnswer(answer)))))
    assert back.answer.steps[-1].figures == [b"\x89PNG\r\n\x1a\n\x00\xff"]  # type: ignore[union-attr]
    assert isinstance(back.answer.steps[0], Step) and back.answer.to_json() == answer.to_json()  # type: ignore[union-attr]


def test_search_hits_round_trip() -> None:
    chunk = Chunk("c1", "a.pdf", "A", 3, 0, 5, 1, 1, "hello")
    hits = [SearchHit(chunk, 0.5, 1)]
    assert decode(list[SearchHit], json.loads(json.dumps(encode(hits)))) == hits


@pytest.mark.parametrize(
    "data, message",
    [
        ({"type": "no_such_event"}, "not an agent event"),
        ("just a string", "not an agent event"),
        ({"type": "draft_checked", "part": 1, "draft": 2, "accepted": "yes"}, "expected bool"),
        ({"type": "draft_token", "part": "one", "draft": 2, "text": "x"}, "expected int"),
    ],
)
def test_malformed_events_are_refused(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_event(data)


def test_a_literal_outside_its_choices_is_refused() -> None:
    events = rich_run()
    final = next(e for e in events if isinstance(e, FinalAnswer))
    wired = encode(final)
    wired["answer"]["sentences"][0]["kind"] = "made_up_kind"
    with pytest.raises(ValueError, match="made_up_kind"):
        decode_event(wired)


def test_every_event_type_has_a_wire_name() -> None:
    assert set(EVENT_TYPES) >= {"draft_token", "draft_checked", "answer_token", "final_answer", "plan"}
