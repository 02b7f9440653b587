"""Chat follow-ups (assistant/agent/chat.py): the subjects code offers, the model's pick checked by code.

The model is the scripted fake, which enforces each request's JSON schema: a rewrite can only pick a
subject that code offered (or "none")."""

from __future__ import annotations

from typing import Any

from fakes import ScriptedBackend, TinyIndex, WordChecker, part_reply, plan_reply, rewrite_reply

from assistant.agent.chat import ChatSession, Exchange, candidates, name_phrases, resolve
from assistant.agent.config import AgentSettings
from assistant.agent.loop import ResearchAgent, final_answer
from assistant.agent.records import Answer, Citation, Evidence, QuestionRewritten
from index.documents import DocumentMeta

DOCS = {
    "docs/bitnet.md": "BitNet is a 1-bit Transformer architecture that trains BitLinear weights from scratch.",
    "docs/bitnet-sizes.md": "The largest BitNet model in the study has 30B parameters.",
    "docs/alpaca.md": "Stanford's Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.",
}
FIRST = "What is BitNet?"
FOLLOW_UP = "How many parameters does that model have in its largest version?"


def cite_first(text: str) -> Any:
    """A part answer citing the first line the prompt offers."""

    def reply(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
        options = schema.get("anyOf") or [schema]
        return part_reply(text, [options[0]["properties"]["citations"]["items"]["enum"][0]])

    return reply


def chat_after_bitnet(
    *rewrite_then: Any, enforce: bool = True
) -> tuple[ChatSession, TinyIndex, ScriptedBackend]:
    """A session whose first turn asked about BitNet and was answered; the script goes on with
    `rewrite_then` (the follow-up's rewrite reply, its plan and answer)."""
    backend = ScriptedBackend(
        [plan_reply("fact"), cite_first("BitNet is a 1-bit Transformer architecture."), *rewrite_then],
        enforce=enforce,
    )
    index = TinyIndex(DOCS)
    cfg = AgentSettings(sandbox=False, self_check=False)
    session = ChatSession(ResearchAgent(backend, index, cfg, checker=WordChecker(), weak_margin=0.2))
    final_answer(session.ask(FIRST))
    return session, index, backend


def test_code_inserts_the_subject_the_model_picked_but_left_out_of_its_question() -> None:
    session, index, backend = chat_after_bitnet(
        rewrite_reply("How many parameters does the model have in its largest version?", refers_to="BitNet"),
        plan_reply("number"),
        cite_first("The largest BitNet model has 30B parameters."),
    )
    events = list(session.ask(FOLLOW_UP))

    [rewritten] = [e for e in events if isinstance(e, QuestionRewritten)]
    assert rewritten.original == FOLLOW_UP and "BitNet" in rewritten.standalone
    assert "parameters" in rewritten.standalone and "largest" in rewritten.standalone
    assert all("BitNet" in q for q in index.queries[1:])  # every search of the follow-up names it
    offered = backend.calls[2][1]["properties"]["refers_to"]["enum"]  # type: ignore[index]
    assert offered[0] == "BitNet" and "none" not in offered  # the message names nothing: it refers back
    assert "30B" in final_answer(events).text


def test_a_rewrite_that_names_the_subject_is_used_as_the_model_wrote_it() -> None:
    standalone = "How many parameters does the largest version of BitNet have?"
    session, _, _ = chat_after_bitnet(
        rewrite_reply(standalone, refers_to="BitNet"),
        plan_reply("number"),
        cite_first("The largest BitNet model has 30B parameters."),
    )
    [rewritten] = [e for e in session.ask(FOLLOW_UP) if isinstance(e, QuestionRewritten)]
    assert rewritten.standalone == standalone


def test_a_reply_that_does_not_ask_the_message_falls_back_to_the_message_with_the_subject() -> None:
    # The model answered instead of rewriting: none of "parameters", "model", "largest", "version" is kept.
    session, _, _ = chat_after_bitnet(
        rewrite_reply("BitNet has 30B.", refers_to="BitNet"),
        plan_reply("number"),
        cite_first("The largest BitNet model has 30B parameters."),
    )
    [rewritten] = [e for e in session.ask(FOLLOW_UP) if isinstance(e, QuestionRewritten)]
    assert rewritten.standalone == "How many parameters does that model have in its largest version (BitNet)?"


def test_a_reply_that_is_not_json_leaves_the_message_as_it_is() -> None:
    session, index, _ = chat_after_bitnet(
        "BitNet is great",  # a server that ignores the schema
        plan_reply("fact"),
        cite_first("Stanford's Alpaca 7B was fine-tuned on 52K demonstrations."),
        enforce=False,
    )
    events = list(session.ask("What was Alpaca 7B fine-tuned on?"))
    assert not any(isinstance(e, QuestionRewritten) for e in events)
    assert index.queries[-1].startswith("What was Alpaca 7B fine-tuned on")


def test_a_message_that_names_its_own_subject_may_refer_to_none() -> None:
    session, _, backend = chat_after_bitnet(
        rewrite_reply("What was Alpaca 7B fine-tuned on?"),
        plan_reply("fact"),
        cite_first("Stanford's Alpaca 7B was fine-tuned on 52K demonstrations."),
    )
    events = list(session.ask("What was Alpaca 7B fine-tuned on?"))
    assert not any(isinstance(e, QuestionRewritten) for e in events)
    assert backend.calls[2][1]["properties"]["refers_to"]["enum"][-1] == "none"  # type: ignore[index]


def test_none_keeps_a_new_subject_without_inserting_an_old_one() -> None:
    message = "What was Alpaca 7B fine-tuned on?"
    assert resolve(rewrite_reply(message), message, ["BitNet"], 0.5).question == message
    picked = resolve(rewrite_reply(message, refers_to="BitNet"), message, ["Alpaca"], 0.5)
    assert picked.referent is None  # a subject code never offered is not trusted


def test_candidates_are_the_names_users_asked_about_then_cited_titles_then_names_in_answers() -> None:
    history = [
        Exchange("What did Stanford's Alpaca 7B learn from?", "52K demonstrations [1].", ("Alpaca notes",)),
        Exchange(
            "Which guidance did GLIDE evaluators prefer?",
            "They preferred classifier-free guidance over CLIP guidance [2].",
            ("Year in Review: Deep Learning Papers in 2023",),
        ),
    ]
    assert candidates(history, "And what did it cost?", 10, 100) == [
        "GLIDE",
        "Stanford's Alpaca 7B",
        "Year in Review: Deep Learning Papers in 2023",
        "Alpaca notes",
        "CLIP",
        "52K",
    ]
    assert candidates(history, "And what did it cost?", 2, 100) == ["GLIDE", "Stanford's Alpaca 7B"]
    assert "Year in Review: Deep Learning Papers in 2023" not in candidates(history, "And?", 10, 20)
    assert "GLIDE" not in candidates(history, "Unlike GLIDE, what did CLIP guidance do?", 10, 100)


def test_name_phrases_keep_multi_word_names_whole_and_stop_at_punctuation() -> None:
    text = "BitNet, by Wang et al., uses BitLinear (a drop-in layer) like the Open X-Embodiment data of Hippocampus's Garden."
    expected = ["BitNet", "Wang", "BitLinear", "Open X-Embodiment", "Hippocampus's Garden"]
    assert name_phrases(text, prose=True) == expected


def test_an_answer_offers_only_capitalised_names_and_a_question_its_lower_case_terms_too() -> None:
    answer = "BitNet uses 1-bit weights and was fine-tuned on instruction-following data."
    assert name_phrases(answer, prose=True) == ["BitNet"]
    assert name_phrases("How does proxy-tuning adjust logits?", prose=False) == ["proxy-tuning"]
    assert name_phrases("Was Alpaca 7B fine-tuned?", prose=False) == ["Alpaca 7B", "fine-tuned"]


def test_an_exchange_keeps_the_titles_its_answer_cited_and_travels_as_json() -> None:
    meta = DocumentMeta(title="BitNet: Scaling 1-bit Transformers")
    evidence = Evidence(1, "passage", "BitNet is a 1-bit Transformer.", "docs/bitnet.md", document=meta)
    answer = Answer(FIRST, "BitNet is a 1-bit Transformer. [1]", False)
    answer.citations = [Citation(1, "BitNet is a 1-bit Transformer.", 0, 30, evidence)] * 2
    exchange = Exchange.of(answer)
    assert exchange.sources == ("BitNet: Scaling 1-bit Transformers",)
    assert Exchange.from_json(exchange.to_json()) == exchange
