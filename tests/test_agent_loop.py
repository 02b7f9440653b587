"""Agent v3 logic with a scripted model that enforces the JSON schema of every request (tests/fakes.py)
over a tiny in-memory index; test_agent_cli.py and test_agent_real.py cover the real model and index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakes import (
    SchemaViolation,
    ScriptedBackend,
    TinyIndex,
    WordChecker,
    check_reply,
    computed_reply,
    part_reply,
    plan_reply,
    request_kind,
    step_reply,
)

from assistant.agent.config import AgentSettings
from assistant.agent.loop import (
    QuestionTooLong,
    ResearchAgent,
    answer_schema,
    final_answer,
    prompt_tokens,
    step_schema,
)
from assistant.agent.records import AnswerToken, EvidenceFound, PlanMade
from assistant.agent.trace import write_trace

DOCS = {
    "docs/alpaca.md": "Stanford's Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.",
    "docs/selfinstruct.md": "The Self-Instruct seed pool holds 175 human-written instructions.",
    "docs/yolo.md": "The base YOLO model processes images in real-time at 45 frames per second. "
    "Fast YOLO processes an astounding 155 frames per second.",
    "docs/bloomberg.md": "BloombergGPT was trained on 363 billion tokens from finance data and 345 billion "
    "tokens from a general dataset.",
    "docs/rwkv.md": "RWKV is a recurrent neural network with transformer-level LLM performance.",
    "docs/retnet.md": "RetNet is a recurrent network that proposes the retention mechanism.",
    "docs/survey.md": "The survey counts 12 layers in BERT-base.",
    "docs/blog.md": "The blog post also counts 12 layers in BERT-base.",
}
ALPACA = "How many demonstrations was Stanford's Alpaca 7B fine-tuned on?"


def agent_for(replies: list[Any], *, checker: Any = "words", **settings: Any):
    backend = ScriptedBackend(replies)
    index = TinyIndex(DOCS)
    cfg = AgentSettings(**{"sandbox": False, "self_check": False, **settings})
    judge = WordChecker() if checker == "words" else checker
    agent = ResearchAgent(backend, index, cfg, checker=judge, weak_margin=0.2)
    return agent, backend, index


def line_id(messages: list[dict[str, Any]], source_text: str) -> int:
    """The number the prompt gave the line that contains `source_text` (as a model would read it)."""
    for message in reversed(messages):  # a re-ask ends with the error: the lines are further up
        for line in message["content"].splitlines():
            if source_text in line and line.startswith("["):
                return int(line[1 : line.index("]")])
    raise AssertionError(f"no line with {source_text!r} in the prompt")


def number_id(messages: list[dict[str, Any]], written: str) -> str:
    """The id the prompt's number list gave the number written `written`."""
    for message in reversed(messages):
        for line in message["content"].splitlines():
            if line.split(" = ", 1)[-1].startswith(written + " ") and " = " in line:
                return line.split(" = ", 1)[0]
    raise AssertionError(f"no number {written!r} listed")


def answering(text: str, cite_line: str):
    """A reply that cites the prompt line holding `cite_line`, whatever number the run gave it."""
    return lambda messages, schema: part_reply(text, [line_id(messages, cite_line)])


def computing(expression: str, **operands: tuple[str, str]):
    """A computation naming numbers by how they are written: operands = {"a": ("155", "Fast YOLO")}."""

    def reply(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
        ids = {key: number_id(messages, written) for key, (written, _) in operands.items()}
        expr = expression
        for key, real in ids.items():
            expr = expr.replace(key, real)
        return computed_reply(expr, **{ids[k]: of for k, (_, of) in operands.items()})

    return reply


# -- the fake itself -------------------------------------------------------------------------------------
def test_the_scripted_backend_rejects_a_reply_outside_the_schema() -> None:
    backend = ScriptedBackend([part_reply("Alpaca was tuned on data.", [9])])
    with pytest.raises(SchemaViolation):
        backend.complete([{"role": "user", "content": "q"}], answer_schema([1, 2], []), max_tokens=10)
    loose = ScriptedBackend([computed_reply("n1 + 7", n1="x")])
    with pytest.raises(SchemaViolation):  # the expression grammar is in the schema too
        loose.complete([{"role": "user", "content": "q"}], answer_schema([1], ["n1"]), max_tokens=10)


# -- planning ----------------------------------------------------------------------------------------
def test_the_model_plans_each_clause_and_each_part_is_answered_from_its_own_passages() -> None:
    agent, backend, index = agent_for(
        [
            plan_reply("number", "number"),
            answering("The seed pool holds 175 human-written instructions.", "175"),
            answering("Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.", "52K"),
        ]
    )
    events = list(
        agent.run(
            "How many human-written instructions does the Self-Instruct seed pool hold, and how many "
            "demonstrations was Stanford's Alpaca 7B fine-tuned on?"
        )
    )
    [plan] = [e.plan for e in events if isinstance(e, PlanMade)]
    answer = final_answer(iter(events))
    assert plan.source == "model" and [p.asks for p in plan.parts] == ["number", "number"]
    assert [p.status for p in answer.parts] == ["answered", "answered"]
    assert {c.source for c in answer.citations} == {"docs/selfinstruct.md", "docs/alpaca.md"}
    assert "Self-Instruct" in index.queries[0] and "Alpaca" not in index.queries[0]
    assert "Answer only this: how many demonstrations" in backend.calls[2][0][-1]["content"]
    assert {e.part for e in answer.evidence} == {1, 2}


def test_comparison_items_must_be_written_in_the_question_and_an_unusable_plan_falls_back_to_rules() -> None:
    invented = plan_reply(["GPT-4", "Claude"])
    agent, backend, _ = agent_for(
        [invented, invented, invented, answering("RWKV is a recurrent neural network.", "RWKV is")]
    )
    answer = final_answer(agent.run("How does RWKV differ from RetNet?"))
    assert answer.plan is not None and answer.plan.source == "rules"
    assert answer.plan.parts[0].asks == "fact"  # rules know no items to compare
    assert "copied exactly from the question" in backend.calls[1][0][-1]["content"]  # the error fed back


@pytest.mark.parametrize(
    "question",
    [
        "Which guidance did evaluators prefer for photorealism and caption similarity?",
        "What top-1 and top-5 error rates did AlexNet reach?",
        "Which LLM powered FunSearch, and which model family is it based on?",
    ],
)
def test_a_model_comparison_in_a_clause_whose_words_compare_nothing_is_a_plain_part(question: str) -> None:
    from assistant.agent.plan import parse_plan, split_clauses

    clauses = split_clauses(question)
    items = {"photorealism": ["photorealism", "caption similarity"], "What": ["top-1", "top-5"]}
    picked = next((v for k, v in items.items() if k in question), ["LLM", "model family"])
    plan = parse_plan(plan_reply(*[picked] * len(clauses)), question, clauses)
    assert all(p.asks != "comparison" for p in plan.parts)


def test_a_comparison_of_things_the_question_does_not_set_side_by_side_is_a_plain_part() -> None:
    agent, backend, _ = agent_for(
        [
            plan_reply(["dataset", "Alpaca 7B"]),
            answering("Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.", "52K"),
        ]
    )
    answer = final_answer(agent.run("On what dataset was Alpaca 7B fine-tuned?"))
    assert answer.plan is not None and answer.plan.source == "model"
    assert [(p.asks, p.items) for p in answer.plan.parts] == [("fact", ())]
    assert len(backend.calls) == 2  # no re-ask: nothing in the question compares


def test_a_statement_before_the_question_is_its_context_not_a_part() -> None:
    from assistant.agent.plan import split_clauses

    assert len(split_clauses("Alpaca is a small model; how many demonstrations was it tuned on?")) == 1
    assert len(split_clauses("Add up the three scores. What do you get?")) == 1
    assert split_clauses("What does RWKV replace, and how many GPUs trained it?") == [
        "What does RWKV replace?",
        "how many GPUs trained it?",
    ]


# -- comparisons ---------------------------------------------------------------------------------------
def test_a_request_to_run_code_beside_another_question_keeps_both_parts() -> None:
    """The snippet clause is a snippet part, the other clause is planned by the model, in question order
    (before, the whole question was one snippet part and the other question was lost)."""
    from assistant.agent.plan import PlanRequest, plan_request, rules_plan

    for question, kinds in [
        ("What does the snippet in the DPO section print, and what does DPO train on?", ["snippet", "fact"]),
        ("When was the Marlow bridge completed, and what does the code in its report print?", ["number", "snippet"]),
    ]:  # fmt: skip
        request = plan_request(question)
        assert isinstance(request, PlanRequest)
        assert (
            request.schema["properties"]["parts"]["minItems"] == 1
        )  # only the clause that asks the documents
        plan = request.parse(plan_reply("number" if kinds[0] == "number" else "fact"))
        assert [p.asks for p in plan.parts] == kinds and [p.id for p in plan.parts] == [1, 2]
        assert [p.asks for p in rules_plan(question).parts][kinds.index("snippet")] == "snippet"
    whole = plan_request("Run the snippet in the DPO section: what does it print?")
    assert not isinstance(whole, PlanRequest) and [p.asks for p in whole.parts] == ["snippet"]


def test_a_comparison_answers_each_item_from_its_own_search_and_the_model_names_the_winner() -> None:
    agent, backend, index = agent_for(
        [
            plan_reply(["RWKV", "RetNet"]),
            answering("RWKV is a recurrent neural network with transformer-level LLM performance.", "RWKV"),
            answering("RetNet is a recurrent network that proposes the retention mechanism.", "RetNet"),
            json.dumps({"answer": "RetNet"}),
        ]
    )
    answer = final_answer(agent.run("Which proposes a retention mechanism, RWKV or RetNet?"))
    [part] = answer.parts
    assert part.part.relation == "which" and [s.kind for s in part.sentences] == [
        "answer",
        "answer",
        "relation",
    ]
    assert index.queries[0].startswith("RWKV") and index.queries[1].startswith("RetNet")
    assert "(answer only for RWKV)" in backend.calls[1][0][-1]["content"]
    assert part.sentences[-1].text == "Of RWKV and RetNet, the answer is RetNet."
    assert set(part.sentences[-1].citations) == {*part.sentences[0].citations, *part.sentences[1].citations}


def test_a_yes_no_comparison_is_decided_by_code_when_each_side_states_one_number() -> None:
    agent, backend, _ = agent_for(
        [
            plan_reply(["the survey", "the blog post"]),
            answering("The survey counts 12 layers in BERT-base.", "survey counts"),
            answering("The blog post also counts 12 layers in BERT-base.", "blog post"),
        ]
    )
    answer = final_answer(
        agent.run("Do the survey and the blog post agree on how many layers BERT-base has?")
    )
    assert answer.parts[0].sentences[-1].text.startswith("Yes,")
    assert len(backend.calls) == 3  # no relation call: code compared 12 with 12
    assert {c.source for c in answer.citations} == {"docs/survey.md", "docs/blog.md"}


def test_a_yes_no_is_not_answered_when_one_side_is_not_stated() -> None:
    agent, _, _ = agent_for(
        [
            plan_reply(["the survey", "the blog post"]),
            answering("The survey counts 12 layers in BERT-base.", "survey counts"),
            answering("The blog post says BERT-base is trained by Alpaca 7B.", "blog post"),  # unanchored
            step_reply("give_up"),
        ]
    )
    answer = final_answer(
        agent.run("Do the survey and the blog post agree on how many layers BERT-base has?")
    )
    texts = [s.text for s in answer.parts[0].sentences]
    assert not any(t.startswith(("Yes", "No")) for t in texts)
    assert texts[-1].endswith("for blog post”.") and answer.parts[0].sentences[-1].kind == "not_stated"


# -- computation ---------------------------------------------------------------------------------------
def test_a_ratio_is_computed_by_code_from_cited_operands_never_by_the_model() -> None:
    agent, _, _ = agent_for(
        [
            plan_reply("number"),
            computing(
                "a / b", a=("155", "Fast YOLO frames per second"), b=("45", "base YOLO frames per second")
            ),
        ]
    )
    answer = final_answer(agent.run("By what factor is Fast YOLO faster than the base YOLO model?"))
    [sentence] = answer.sentences
    assert sentence.kind == "computed" and sentence.text.startswith("3.44 times: 155 ÷ 45 = 3.44444")
    computed = next(e for e in answer.evidence if e.kind == "computed")
    assert [o.text for o in computed.operands] == ["155", "45"]
    assert {o.evidence_id for o in computed.operands} <= set(sentence.citations)
    assert sentence.acceptance is not None and sentence.acceptance.accepted


def test_an_operand_from_a_sentence_about_something_else_is_refused_with_the_reason() -> None:
    agent, backend, _ = agent_for(
        [
            plan_reply("number"),
            computing("a + b", a=("363 billion", "Alpaca 7B demonstrations"), b=("52K", "Alpaca 7B demos")),
            computing("a", a=("52K", "Alpaca 7B demonstrations")),
        ]
    )
    answer = final_answer(
        agent.run("How many demonstrations was Alpaca 7B tuned on, in total, with BloombergGPT?")
    )
    assert "does not mention Alpaca" in backend.calls[2][0][-1]["content"]
    [sentence] = answer.sentences  # a "computation" of one number is the number stated, cited
    assert sentence.kind == "answer" and sentence.text == "Alpaca 7B demonstrations: 52K."
    assert answer.citations[0].source == "docs/alpaca.md"


def test_division_by_zero_is_an_error_fed_back_not_an_answer() -> None:
    agent, backend, _ = agent_for(
        [
            plan_reply("number"),
            computing("a / (b - b)", a=("155", "Fast YOLO"), b=("45", "YOLO")),
            computing("a / (b - b)", a=("155", "Fast YOLO"), b=("45", "YOLO")),
            computing("a / (b - b)", a=("155", "Fast YOLO"), b=("45", "YOLO")),
            step_reply("give_up"),
        ]
    )
    answer = final_answer(agent.run("By what factor is Fast YOLO faster than the base YOLO model?"))
    assert answer.abstained and "divides by zero" in backend.calls[2][0][-1]["content"]


def test_a_sum_keeps_the_operands_scale() -> None:
    agent, _, _ = agent_for(
        [
            plan_reply("number"),
            computing(
                "a + b", a=("363 billion", "BloombergGPT finance"), b=("345 billion", "BloombergGPT general")
            ),
        ]
    )
    answer = final_answer(agent.run("How many tokens was BloombergGPT trained on in total?"))
    assert answer.sentences[0].text.startswith("708 billion tokens: 363 billion + 345 billion")


# -- acceptance and research ------------------------------------------------------------------------------
def test_the_self_check_rescues_a_draft_the_checker_rejects_and_anchoring_stops_a_wrong_one() -> None:
    paraphrase = "Alpaca 7B learned from 52K demos written to follow instructions."  # checker: too few words
    agent, _, _ = agent_for(
        [plan_reply("number"), answering(paraphrase, "52K"), check_reply("yes", 0.8)], self_check=True
    )
    answer = final_answer(agent.run(ALPACA))
    [s] = answer.sentences
    assert s.verdict != "supported" and s.acceptance is not None and s.acceptance.accepted
    assert s.acceptance.self_check == pytest.approx(0.8)
    wrong = "Alpaca 7B was fine-tuned on 64K instruction-following demonstrations."
    agent, backend, _ = agent_for(
        [plan_reply("number"), answering(wrong, "52K"), step_reply("give_up")], self_check=True
    )
    answer = final_answer(agent.run(ALPACA))
    assert [request_kind(schema) for _, schema in backend.calls] == ["plan", "answer", "step"]  # no check
    assert answer.abstained and answer.parts[0].drafts[0].acceptance.missing == ("64K",)  # type: ignore[union-attr]


def test_a_research_step_finds_what_the_first_search_missed() -> None:
    agent, _, index = agent_for(
        [
            plan_reply("fact"),
            lambda m, schema: part_reply("The paper proposes the Zorblax engine.", [1]),  # not anchored
            step_reply("search", "retention mechanism RetNet"),
            answering("RetNet is a recurrent network that proposes the retention mechanism.", "retention"),
        ],
        search_k=1,
    )
    answer = final_answer(agent.run("What does the paper on Kepler propose?"))
    assert index.queries[-1] == "retention mechanism RetNet"
    assert not answer.abstained and answer.steps[-1].action == "answer"


def test_a_part_the_documents_do_not_cover_is_named_while_the_other_is_answered() -> None:
    agent, _, _ = agent_for(
        [
            plan_reply("number", "fact"),
            answering("Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.", "52K"),
            answering("The seed pool was written by Kepler astronomers in 2031.", "175"),  # unanchored
            step_reply("give_up"),
        ]
    )
    answer = final_answer(
        agent.run("How many demonstrations was Alpaca 7B fine-tuned on, and who wrote the Kepler seed pool?")
    )
    assert [p.status for p in answer.parts] == ["answered", "not_stated"]
    assert not answer.abstained and "do not answer this part" in answer.text
    assert "Kepler" in answer.parts[1].drafts[0].text


def test_invalid_replies_are_re_asked_with_the_error_and_then_the_part_is_not_stated() -> None:
    fragment = part_reply("52K", [1])
    agent, backend, _ = agent_for([plan_reply("number"), fragment, fragment, fragment, step_reply("give_up")])
    answer = final_answer(agent.run(ALPACA))
    assert answer.abstained and answer.steps[2].attempts == 3
    assert "complete sentence" in backend.calls[2][0][-1]["content"]


# -- limits, events, traces -------------------------------------------------------------------------------
def test_an_over_long_question_is_refused_before_any_model_call() -> None:
    agent, backend, _ = agent_for([])
    with pytest.raises(QuestionTooLong, match="max_question_chars"):
        list(agent.run("why? " * 1000))
    assert backend.calls == []


def test_the_part_prompt_is_cut_to_the_models_context() -> None:
    backend = ScriptedBackend(
        [plan_reply("fact"), lambda m, s: part_reply("Alpaca was tuned on demonstrations.", [1])],
        context_tokens=1000,
    )
    docs = {f"d{i}.md": f"Alpaca detail {i}: " + "words " * 60 + "." for i in range(8)}
    cfg = AgentSettings(sandbox=False, search_k=8, self_check=False)
    final_answer(
        ResearchAgent(backend, TinyIndex(docs), cfg, weak_margin=0.2).run("What Alpaca detail is there?")
    )
    messages = backend.calls[1][0]
    assert prompt_tokens(messages) <= 1000 - cfg.part_max_tokens
    assert 1 <= messages[-1]["content"].count("\n[") < 7  # lines were dropped to fit, not all of them


def test_sources_are_announced_before_the_answer_and_the_trace_keeps_every_step(tmp_path: Path) -> None:
    agent, _, _ = agent_for(
        [
            plan_reply("number"),
            answering("Alpaca 7B was fine-tuned on 52K demonstrations.", "52K"),
        ],
        self_check=True,
    )
    events = list(agent.run(ALPACA))
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("EvidenceFound") < kinds.index("AnswerToken")
    assert next(e for e in events if isinstance(e, EvidenceFound)).evidence[0].query == ALPACA.rstrip("?")
    answer = final_answer(iter(events))
    # the checker supports the sentence: a self-check could not change that, so none is asked
    assert [s.action for s in answer.steps] == ["plan", "search", "answer"]
    path = tmp_path / "run.jsonl"
    write_trace(answer, path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    answer_step = next(r for r in records if r["type"] == "step" and r["action"] == "answer")
    assert json.loads(answer_step["raw"])["how"] == "stated" and len(answer_step["prompt_sha"]) == 16
    assert answer_step["prompt_tokens"] > 0 and records[-1]["type"] == "answer"
    assert sum(isinstance(e, AnswerToken) for e in events) == 1


def test_without_a_checker_or_self_check_anchoring_alone_decides() -> None:
    agent, _, _ = agent_for(
        [plan_reply("number"), answering("Alpaca 7B was fine-tuned on 52K demonstrations.", "52K")],
        checker=None,
    )
    answer = final_answer(agent.run(ALPACA))
    assert not answer.abstained and answer.sentences[0].verdict is None


def test_the_research_step_schema_offers_read_only_for_passages_shown() -> None:
    kinds = [o["properties"]["action"]["enum"][0] for o in step_schema([3, 4])["anyOf"]]
    assert kinds == ["search", "read", "give_up"]
    assert [o["properties"]["action"]["enum"][0] for o in step_schema([])["anyOf"]] == ["search", "give_up"]


def test_a_langchain_chat_model_can_answer_and_the_tools_work_as_langchain_tools() -> None:
    from langchain_core.language_models import FakeListChatModel

    from assistant.agent.backends import LangChainBackend
    from assistant.agent.tools import Toolbox

    model = FakeListChatModel(
        responses=[plan_reply("number"), part_reply("Alpaca 7B was fine-tuned on 52K demonstrations.", [1])]
    )
    backend = LangChainBackend(model, context_tokens=4096)
    cfg = AgentSettings(sandbox=False, self_check=False)
    answer = final_answer(ResearchAgent(backend, TinyIndex(DOCS), cfg, weak_margin=0.2).run(ALPACA))
    assert answer.text == "Alpaca 7B was fine-tuned on 52K demonstrations. [1]"
    tools = Toolbox(TinyIndex(DOCS), k=2, sandbox=False).langchain_tools()
    assert sorted(tools) == ["read", "search"]  # no python without the sandbox
    assert "Stanford's Alpaca 7B" in tools["search"].invoke("Alpaca demonstrations")


def test_code_adds_the_passage_a_names_number_comes_from_when_the_model_cites_too_little() -> None:
    both = "BloombergGPT was trained on 363 billion finance tokens, like Fast YOLO's 155 frames."
    agent, _, _ = agent_for([plan_reply("fact"), answering(both, "BloombergGPT")], checker=None, search_k=8)
    answer = final_answer(agent.run("What were BloombergGPT and Fast YOLO measured at?"))
    [sentence] = answer.sentences
    assert {c.source for c in answer.citations} == {"docs/bloomberg.md", "docs/yolo.md"}
    assert sentence.acceptance is not None and sentence.acceptance.anchored


def test_a_sentence_that_only_repeats_the_question_is_re_asked() -> None:
    agent, backend, _ = agent_for(
        [
            plan_reply("fact"),
            answering("Stanford's Alpaca 7B was fine-tuned on demonstrations", "52K"),
            answering("Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.", "52K"),
        ]
    )
    answer = final_answer(agent.run("On what demonstrations was Stanford's Alpaca 7B fine-tuned?"))
    assert "only repeats the question" in backend.calls[2][0][-1]["content"]
    assert "52K" in answer.text


def test_percent_is_offered_only_when_the_question_asks_for_a_percentage() -> None:
    from assistant.agent.loop import allowed_constants

    for asks_percent in (
        "What percentage of the datasets did FLAN win?",
        "What share of all trajectories are expand sessions?",
        "Give the proportion of layers that are frozen.",
        "By how much, in percent, did accuracy rise?",
        "What fraction of GPT-3's footprint did OPT need?",
    ):
        assert "PERCENT" in allowed_constants(asks_percent), asks_percent
    for asks_other in (
        "By what factor is Fast YOLO faster than YOLO?",
        "How many percentage points higher is BEiT than DeiT?",
        "How many times more tokens did RoBERTa see?",
        "What is the gap, in percentage points, between the two?",
    ):
        assert "PERCENT" not in allowed_constants(asks_other), asks_other
    schema = answer_schema([1], ["n1", "n2"], allowed_constants("By what factor is it faster?"))
    backend = ScriptedBackend([computed_reply("n1 / n2 * PERCENT", n1="a", n2="b")])
    with pytest.raises(SchemaViolation):
        backend.complete([{"role": "user", "content": "q"}], schema, max_tokens=10)


@pytest.mark.parametrize(
    ("sentence", "written", "named", "question", "ok"),
    [
        # several compared names in one sentence: the operand's clause decides
        (
            "The approximately 137B tokens used by BERT or the 2.2T tokens used by RoBERTa.",
            "2.2T",
            "BERT",
            "RoBERTa vs BERT?",
            False,
        ),
        (
            "The approximately 137B tokens used by BERT or the 2.2T tokens used by RoBERTa.",
            "2.2T",
            "RoBERTa",
            "RoBERTa vs BERT?",
            True,
        ),
        (
            "Gains of 5.7% on QA (RACE), and 1.5% on entailment (MultiNLI).",
            "1.5%",
            "MultiNLI",
            "RACE and MultiNLI?",
            True,
        ),
        (
            "Gains of 5.7% on QA (RACE), and 1.5% on entailment (MultiNLI).",
            "5.7%",
            "MultiNLI",
            "RACE and MultiNLI?",
            False,
        ),
        (
            "phi-1 (1.3B parameters), phi-1.5 (1.3B parameters) and phi-2 (2.7B parameters).",
            "2.7B",
            "phi-2",
            "phi-1, phi-1.5 and phi-2?",
            True,
        ),
        (
            "LLaMA-Adapter V2 adds 14M parameters, LLaMA-Adapter 1.2M.",
            "14M",
            "LLaMA-Adapter V2",
            "From 1.2M to 14M in LLaMA-Adapter V2?",
            True,
        ),
        # one name: the sentence must mention it
        ("The base YOLO model runs at 45 frames per second.", "45", "SSD", "SSD or YOLO?", False),
        ("The base YOLO model runs at 45 frames per second.", "45", "base YOLO", "Fast YOLO vs YOLO?", True),
        ("Trained for a week on eight GPUs.", "eight", "the number of GPUs", "How many GPU-hours?", True),
        ("Trained for a week on eight GPUs.", "eight", "the number of layers", "How many layers?", False),
        # named for something the question does not ask about
        ("It runs at 83% on a 1080 GPU.", "1080", "GPU", "How often does SAM's image encoder run?", False),
    ],
)
def test_an_operand_must_come_from_a_sentence_about_what_the_model_says_it_measures(
    sentence: str, written: str, named: str, question: str, ok: bool
) -> None:
    from assistant.agent import arithmetic as ar
    from assistant.agent.loop import Candidate, operand_problem

    [q] = [q for q in ar.find_quantities(sentence) if q.text == written][:1]
    problem = operand_problem(Candidate("n1", q, 1, sentence), named, question)
    assert (problem is None) == ok, problem


@pytest.mark.parametrize(
    ("text", "question", "refused"),
    [
        (
            "SpanBERT masks contiguous spans instead of random tokens.",
            "SpanBERT masks contiguous spans instead of random tokens. What extra objective does it add?",
            "only repeats the question",
        ),
        (
            "Prefix-tuning tunes a smaller share of a model's parameters.",
            "Which tunes a smaller share of a model's parameters: prefix-tuning or BitFit?",
            "only repeats the question",
        ),
        (
            "T5 was pre-trained on the unlabeled C4 dataset.",
            "On what unlabeled dataset was T5 pre-trained?",
            None,
        ),
        ("RWKV is a recurrent network.", "Is RWKV a recurrent network?", None),  # a yes/no answer restates it
        (
            "<one complete sentence that answers exactly what is asked>",
            "What did FLAN win?",
            "copies the reply",
        ),
    ],
)
def test_an_echo_of_the_question_or_of_the_reply_form_is_not_an_answer(
    text: str, question: str, refused: str | None
) -> None:
    from assistant.agent.loop import parse_stated

    if refused is not None:
        with pytest.raises(ValueError, match=refused):
            parse_stated({"text": text, "citations": [1]}, question)
    else:
        assert parse_stated({"text": text, "citations": [1]}, question).text == text


def test_a_year_is_not_offered_as_an_operand_unless_the_question_is_about_years() -> None:
    docs = {"docs/rnn.md": "In 2011 the RNN was trained for five days on 8 GPUs."}
    seen: list[str] = []

    def reply(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
        seen.append(messages[-1]["content"])
        return part_reply("The RNN was trained for five days on 8 GPUs.", [1])

    for question in (
        "How many GPU-hours did the RNN training take?",
        "How many years ago was the RNN trained?",
    ):
        backend = ScriptedBackend([plan_reply("number"), reply])
        cfg = AgentSettings(sandbox=False, self_check=False)
        final_answer(ResearchAgent(backend, TinyIndex(docs), cfg, weak_margin=0.2).run(question))
    assert "= 2011" not in seen[0] and "= 8 " in seen[0]
    assert "= 2011" in seen[1]


@pytest.mark.parametrize(
    ("items", "question", "compared"),
    [
        (["LoRA", "adapters"], "How does LoRA differ from adapters at inference time?", True),
        (["prefix-tuning", "BitFit"], "Which tunes fewer parameters: prefix-tuning or BitFit?", True),
        (["GPT-2", "BERT"], "Is GPT-2 deeper than BERT?", True),
        (["the survey", "the blog"], "Do the survey and the blog agree on the date?", True),
        (["SimCLR", "BYOL"], "How does SimCLR compare with BYOL on ImageNet?", True),
        (["unlabeled dataset", "T5"], "On what unlabeled dataset was T5 pre-trained?", False),
        (["Twitter/X", "proprietary LLM"], "Which proprietary LLM is credited to Twitter/X?", False),
        (["RoBERTa", "BERT"], "By what factor did RoBERTa's pre-training token count exceed BERT's?", False),
    ],
)
def test_compared_things_must_be_set_side_by_side_in_the_question(
    items: list[str], question: str, compared: bool
) -> None:
    from assistant.agent.plan import side_by_side

    assert side_by_side(items, question) == compared
