"""Agent v2 logic with a scripted model that enforces the JSON schema of every request (tests/fakes.py)
over a tiny in-memory index; test_agent_cli.py and test_agent_real.py cover the real model and index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakes import SchemaViolation, ScriptedBackend, TinyIndex, WordChecker, part_reply, step_reply

from assistant.agent.chat import ChatSession
from assistant.agent.config import AgentSettings
from assistant.agent.loop import QuestionTooLong, ResearchAgent, final_answer, part_schema, step_schema
from assistant.agent.records import ABSTAIN_MESSAGE, AnswerToken, EvidenceFound, PlanMade, QuestionRewritten
from assistant.agent.trace import write_trace

DOCS = {
    "docs/alpaca.md": "Stanford's Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.",
    "docs/selfinstruct.md": "The Self-Instruct seed pool holds 175 human-written instructions.",
    "docs/yolo.md": "The base YOLO model processes images in real-time at 45 frames per second. "
    "Fast YOLO processes an astounding 155 frames per second.",
    "docs/bloomberg.md": "BloombergGPT was trained on 363 billion tokens from finance data and 345 billion "
    "tokens from a general dataset.",
    "docs/rwkv.md": "RWKV is a recurrent neural network with transformer-level LLM performance.",
    "docs/retnet.md": "RetNet proposes the retention mechanism with parallel and recurrent forms.",
}


def agent_for(replies: list[Any], *, checker: Any = "words", enforce: bool = True, **settings: Any):
    backend = ScriptedBackend(replies, enforce=enforce)
    index = TinyIndex(DOCS)
    cfg = AgentSettings(**{"sandbox": False, **settings})
    judge = WordChecker() if checker == "words" else checker
    agent = ResearchAgent(backend, index, cfg, checker=judge, weak_margin=0.2)
    return agent, backend, index


def evidence_id(messages: list[dict[str, Any]], source_text: str) -> int:
    """The number the prompt gave the line that contains `source_text` (as a model would read it)."""
    for message in reversed(messages):  # a re-ask ends with the error: the lines are further up
        for line in message["content"].splitlines():
            if source_text in line and line.startswith("["):
                return int(line[1 : line.index("]")])
    raise AssertionError(f"no line with {source_text!r} in the prompt")


def answering(text: str, cite_line: str):
    """A reply that cites the prompt line holding `cite_line`, whatever number the run gave it."""
    return lambda messages, schema: part_reply(text, [evidence_id(messages, cite_line)])


# -- the fake itself -------------------------------------------------------------------------------------
def test_the_scripted_backend_rejects_a_reply_outside_the_schema() -> None:
    backend = ScriptedBackend([part_reply("x", [9])])
    with pytest.raises(SchemaViolation):
        backend.complete([{"role": "user", "content": "q"}], part_schema([1, 2]), max_tokens=10)


# -- planning ----------------------------------------------------------------------------------------
def test_a_single_fact_question_is_one_part_and_asks_the_model_once() -> None:
    agent, backend, _index = agent_for([answering("Alpaca 7B was fine-tuned on 52K demonstrations.", "52K")])
    events = list(agent.run("How many demonstrations was Stanford's Alpaca 7B fine-tuned on?"))
    [plan] = [e.plan for e in events if isinstance(e, PlanMade)]
    answer = final_answer(iter(events))
    assert len(plan.parts) == 1 and plan.source == "rules"
    assert len(backend.calls) == 1  # no planning call
    assert not answer.abstained and "52K" in answer.text and answer.citations[0].source == "docs/alpaca.md"


def test_each_clause_of_a_two_part_question_is_searched_and_answered_from_its_own_passages() -> None:
    agent, backend, index = agent_for(
        [
            answering("The seed pool holds 175 human-written instructions.", "175"),
            answering("Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.", "52K"),
        ]
    )
    answer = final_answer(
        agent.run(
            "How many human-written instructions does the Self-Instruct seed pool hold, and how many "
            "demonstrations was Stanford's Alpaca 7B fine-tuned on?"
        )
    )
    assert [p.status for p in answer.parts] == ["answered", "answered"]
    assert "175" in answer.text and "52K" in answer.text
    assert {c.source for c in answer.citations} == {"docs/selfinstruct.md", "docs/alpaca.md"}
    # each part was searched with its own clause, and each answer prompt names its part
    assert any("Self-Instruct" in q and "52K" not in q for q in index.queries[:1])
    assert "Answer only this part: How many human-written" in backend.calls[0][0][-1]["content"]
    assert "Answer only this part: how many demonstrations" in backend.calls[1][0][-1]["content"]
    # the ledger says which part each passage was found for
    assert {e.part for e in answer.evidence} == {1, 2}


def test_a_comparison_gets_one_part_per_item_and_cites_both_sides() -> None:
    agent, _backend, _ = agent_for(
        [
            answering(
                "RWKV is a recurrent neural network with transformer-level LLM performance.", "RWKV is"
            ),
            answering("RetNet proposes the retention mechanism with parallel and recurrent forms.", "RetNet"),
        ]
    )
    answer = final_answer(
        agent.run("RWKV and RetNet are both recurrent models. How does each one's pitch differ?")
    )
    assert [p.part.focus for p in answer.parts] == [
        "what the documents say about RWKV",
        "what the documents say about RetNet",
    ]
    assert {c.source for c in answer.citations} == {"docs/rwkv.md", "docs/retnet.md"}
    assert "retention" in answer.text


def test_the_model_names_comparison_items_only_from_the_question() -> None:
    invented = json.dumps({"items": ["GPT-4", "Claude"]})
    named = json.dumps({"items": ["RWKV", "RetNet"]})
    agent, _backend, _ = agent_for(
        [
            invented,
            named,
            answering(
                "RWKV is a recurrent neural network with transformer-level LLM performance.", "RWKV is"
            ),
            answering("RetNet proposes the retention mechanism with parallel and recurrent forms.", "RetNet"),
        ]
    )
    answer = final_answer(agent.run("In what way do RWKV's and RetNet's designs contrast?"))
    plan_step = answer.steps[0]
    assert plan_step.action == "plan" and plan_step.attempts == 2 and plan_step.error is None
    assert answer.plan is not None and answer.plan.source == "model" and len(answer.plan.parts) == 2


# -- per-part abstention -------------------------------------------------------------------------------
def test_a_part_the_documents_do_not_cover_is_named_while_the_other_is_answered() -> None:
    agent, _backend, _ = agent_for(
        [
            answering("Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.", "52K"),
            answering("Claude 3 models support 200K frames per second.", "Fast YOLO"),  # not what it says
            step_reply("give_up", ""),
        ]
    )
    answer = final_answer(
        agent.run(
            "How many demonstrations was Stanford's Alpaca 7B fine-tuned on, and how many frames per second do "
            "Claude 3 models support?"
        )
    )
    assert not answer.abstained
    assert [p.status for p in answer.parts] == ["answered", "not_stated"]
    assert answer.parts[1].draft is not None and "200K" in answer.parts[1].draft.text
    assert "52K" in answer.text and "200K" not in answer.text
    assert (
        "The documents do not answer this part: “how many frames per second do Claude 3 models support”"
        in answer.text
    )
    [not_stated] = [s for s in answer.sentences if s.kind == "not_stated"]
    assert not_stated.citations == () and not_stated.verdict is None


def test_the_whole_answer_abstains_only_when_no_part_is_supported() -> None:
    agent, _, _ = agent_for(
        [
            answering("Mamba is five times faster.", "YOLO"),
            step_reply("search", "Mamba throughput factor"),  # finds nothing new: the part ends not stated
        ]
    )
    events = list(agent.run("By what factor does Mamba improve frames per second?"))
    answer = final_answer(iter(events))
    assert answer.abstained and answer.text == ABSTAIN_MESSAGE and answer.abstain_reason == "unsupported"
    assert not [
        e for e in events if isinstance(e, AnswerToken)
    ]  # nothing was streamed that is then retracted
    assert [s.action for s in answer.steps] == ["search", "answer", "think", "search"]
    assert answer.sentences[0].text == "Mamba is five times faster."  # the rejected draft stays inspectable


def test_a_research_step_finds_what_the_first_search_missed() -> None:
    agent, _backend, index = agent_for(
        [
            answering("It is not stated anywhere.", "RWKV"),  # unsupported: a research step follows
            step_reply("search", "BloombergGPT finance tokens", thought="the answer is about tokens"),
            answering("BloombergGPT was trained on 363 billion tokens from finance data.", "363 billion"),
        ],
        search_k=1,
    )
    answer = final_answer(agent.run("How large is RWKV's recurrent corpus?"))
    assert not answer.abstained and "363 billion" in answer.text
    think = next(s for s in answer.steps if s.action == "think")
    assert think.thought == "the answer is about tokens" and think.input == "BloombergGPT finance tokens"
    assert index.queries[-1] == "BloombergGPT finance tokens"


def test_research_cannot_run_code_a_document_asks_for() -> None:
    """The research step offers search, read and give_up: python is not an action the model can take."""
    assert step_schema(["search", "read", "give_up"])["properties"]["action"]["enum"] == [
        "search",
        "read",
        "give_up",
    ]
    agent, _backend, _ = agent_for(
        [
            answering("Nothing about it here.", "RWKV"),
            step_reply("python", "import os; os.system('touch /tmp/pwned')"),
            step_reply("python", "print(1)"),
            step_reply("python", "print(1)"),
        ],
        enforce=False,  # a server that ignores schemas: the agent's own validation must refuse
    )
    answer = final_answer(agent.run("What does RWKV say?"))
    assert "python" not in [s.action for s in answer.steps]
    think = next(s for s in answer.steps if s.action == "think")
    assert think.attempts == 3 and "not one of the actions" in (think.error or "")


def test_invalid_replies_are_re_asked_with_the_error_and_then_the_part_is_not_stated() -> None:
    agent, backend, _ = agent_for(["not json", '{"text": 3}', "[]"], enforce=False, part_retries=0)
    answer = final_answer(agent.run("How many demonstrations was Alpaca 7B fine-tuned on?"))
    step = next(s for s in answer.steps if s.action == "answer")
    assert step.attempts == 3 and step.error == "it is not a JSON object"
    assert "not valid" in backend.calls[1][0][-1]["content"]  # the parse error was fed back
    assert answer.abstained and answer.abstain_reason == "model"


# -- computation ---------------------------------------------------------------------------------------
def pick(a: str, b: str, a_name: str = "A", b_name: str = "B") -> str:
    return json.dumps({"a": {"name": a_name, "number": a}, "b": {"name": b_name, "number": b}})


def test_a_ratio_is_computed_by_code_from_cited_operands_never_by_the_model() -> None:
    agent, backend, _ = agent_for([pick("45", "155", "base YOLO fps", "Fast YOLO fps")])
    answer = final_answer(
        agent.run("How many times more frames per second does Fast YOLO process than the base YOLO model?")
    )
    [sentence] = answer.sentences
    assert sentence.kind == "computed" and sentence.verdict == "supported"
    assert answer.text.startswith(
        "3.444 times, computed as 155 (Fast YOLO fps) ÷ 45 (base YOLO fps)."
    )  # swapped: >1
    computed = next(c for c in answer.citations if c.kind == "computed")
    assert "a = 155.0" in (computed.code or "") and computed.output == "3.444"
    passage = next(c for c in answer.citations if c.kind == "passage")
    assert "155" in passage.passage and "45" in passage.passage
    # the enum offered only numbers the passages contain
    schema = backend.calls[0][1]
    assert set(schema["properties"]["a"]["properties"]["number"]["enum"]) >= {"45", "155"}


def test_a_sum_keeps_the_operands_scale() -> None:
    agent, _, _ = agent_for([pick("363 billion", "345 billion", "finance tokens", "general tokens")])
    answer = final_answer(
        agent.run("How many training tokens did BloombergGPT see in total, both datasets combined?")
    )
    assert answer.text.startswith(
        "708 billion tokens, computed as 363 billion (finance tokens) + 345 billion"
    )


def test_a_computation_without_two_numbers_falls_back_to_a_cited_sentence() -> None:
    agent, _backend, _ = agent_for(
        [answering("RWKV is a recurrent neural network.", "RWKV"), step_reply("give_up", "")]
    )
    answer = final_answer(agent.run("How many times more efficient is RWKV?"))
    assert [s.action for s in answer.steps][:2] == [
        "search",
        "answer",
    ]  # no operands step: one number at most
    assert answer.sentences[0].kind == "answer"


# -- limits, budget, events, traces -------------------------------------------------------------------
def test_an_over_long_question_is_refused_before_any_model_call() -> None:
    agent, backend, _ = agent_for([])
    with pytest.raises(QuestionTooLong, match="max_question_chars"):
        list(agent.run("why? " * 1000))
    assert backend.calls == []


def test_the_part_prompt_is_cut_to_the_models_context() -> None:
    backend = ScriptedBackend(
        [lambda m, s: part_reply("Alpaca was tuned on 52K demonstrations.", [1])], context_tokens=600
    )
    docs = {f"d{i}.md": f"Alpaca detail {i}: " + "words " * 60 + "." for i in range(8)}
    agent = ResearchAgent(backend, TinyIndex(docs), AgentSettings(sandbox=False, search_k=8), weak_margin=0.2)
    final_answer(agent.run("What Alpaca detail is there?"))
    messages = backend.calls[0][0]
    from assistant.agent.loop import prompt_tokens

    assert prompt_tokens(messages) <= 600 - AgentSettings().part_max_tokens
    assert 1 <= messages[-1]["content"].count("\n[") < 7  # lines were dropped to fit, not all of them


def test_sources_are_announced_before_the_model_writes_and_the_trace_keeps_every_step(tmp_path: Path) -> None:
    agent, _, _ = agent_for([answering("Alpaca 7B was fine-tuned on 52K demonstrations.", "52K")])
    events = list(agent.run("How many demonstrations was Stanford's Alpaca 7B fine-tuned on?"))
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("EvidenceFound") < kinds.index("AnswerToken")
    found = next(e for e in events if isinstance(e, EvidenceFound))
    assert found.evidence[0].query == "How many demonstrations was Stanford's Alpaca 7B fine-tuned on?"
    answer = final_answer(iter(events))
    path = tmp_path / "run.jsonl"
    write_trace(answer, path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    steps = [r for r in records if r["type"] == "step"]
    answer_step = next(s for s in steps if s["action"] == "answer")
    assert answer_step["raw"].startswith('{"text": ') and len(answer_step["prompt_sha"]) == 16
    assert answer_step["prompt_tokens"] > 0 and answer_step["prompt_chars"] > 0
    assert next(r["type"] for r in records) == "question" and records[-1]["type"] == "answer"
    assert any(r["type"] == "evidence" and r["source"] == "docs/alpaca.md" for r in records)


def test_without_a_checker_a_cited_part_stands() -> None:
    agent, _, _ = agent_for(
        [answering("Alpaca 7B was fine-tuned on 52K demonstrations.", "52K")], checker=None
    )
    answer = final_answer(agent.run("How many demonstrations was Stanford's Alpaca 7B fine-tuned on?"))
    assert not answer.abstained and answer.sentences[0].verdict is None


def test_chat_rewrites_a_follow_up_into_a_standalone_question() -> None:
    rewrite = json.dumps({"query": "How many demonstrations was Alpaca 7B fine-tuned on?"})
    agent, _, _ = agent_for(
        [
            answering("Alpaca 7B was fine-tuned on 52K demonstrations.", "52K"),
            rewrite,
            answering("Alpaca 7B was fine-tuned on 52K demonstrations.", "52K"),
        ]
    )
    session = ChatSession(agent)
    final_answer(session.ask("What was Alpaca 7B fine-tuned on?"))
    events = list(session.ask("how many of them?"))
    [rewritten] = [e for e in events if isinstance(e, QuestionRewritten)]
    assert rewritten.standalone == "How many demonstrations was Alpaca 7B fine-tuned on?"
    assert len(session.history) == 2


# -- LangChain ----------------------------------------------------------------------------------------
def test_a_langchain_chat_model_can_answer_and_the_tools_work_as_langchain_tools() -> None:
    from langchain_core.language_models import FakeListChatModel

    from assistant.agent.backends import LangChainBackend
    from assistant.agent.tools import Toolbox

    model = FakeListChatModel(responses=[part_reply("Alpaca 7B was fine-tuned on 52K demonstrations.", [1])])
    backend = LangChainBackend(model, context_tokens=4096)
    agent = ResearchAgent(backend, TinyIndex(DOCS), AgentSettings(sandbox=False), weak_margin=0.2)
    answer = final_answer(agent.run("How many demonstrations was Stanford's Alpaca 7B fine-tuned on?"))
    assert answer.text == "Alpaca 7B was fine-tuned on 52K demonstrations. [1]"

    tools = Toolbox(TinyIndex(DOCS), k=2, sandbox=False).langchain_tools()
    assert sorted(tools) == ["read", "search"]  # no python without the sandbox
    assert "[1] alpaca.md: Stanford's Alpaca 7B" in tools["search"].invoke("Alpaca demonstrations")
    assert "Stanford's Alpaca 7B" in tools["read"].invoke("1")


def test_a_weakly_supported_part_is_not_stated() -> None:
    # WordChecker: 0.8 supported, 0.6-0.8 weak. 7 of 9 words in the passage: weak.
    weak = "Fast YOLO processes 155 frames per second, truly astonishing."
    agent, _, _ = agent_for([answering(weak, "Fast YOLO"), step_reply("give_up", "")])
    answer = final_answer(agent.run("How many frames does Fast YOLO process per second?"))
    assert answer.abstained and answer.sentences[0].verdict == "weak"


def test_a_quantity_question_is_not_answered_by_a_sentence_without_a_number() -> None:
    from assistant.agent.plan import expects_number

    assert expects_number("How many GPU-hours were needed?") and expects_number(
        "At roughly what batch size did it stop?"
    )
    assert not expects_number("Which guidance did evaluators prefer?")
    supported_but_numberless = "Stanford's Alpaca was fine-tuned on instruction-following demonstrations."
    agent, _, _ = agent_for([answering(supported_but_numberless, "52K"), step_reply("give_up", "")])
    answer = final_answer(agent.run("How many demonstrations was Stanford's Alpaca 7B fine-tuned on?"))
    assert answer.abstained and answer.sentences[0].verdict == "supported"  # supported, yet no answer


def test_a_fragment_is_re_asked_as_a_complete_sentence() -> None:
    agent, backend, _ = agent_for(
        [answering("52K", "52K"), answering("Alpaca 7B was fine-tuned on 52K demonstrations.", "52K")]
    )
    answer = final_answer(agent.run("How many demonstrations was Stanford's Alpaca 7B fine-tuned on?"))
    assert not answer.abstained and answer.steps[1].attempts == 2
    assert "complete sentence" in backend.calls[1][0][-1]["content"]
