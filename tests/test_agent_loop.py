"""The ReAct loop with scripted LangChain fake chat models over a tiny in-memory index.

The index stand-in implements the three calls the tools make (search, neighbours, document_text) with word
overlap, so these tests need no embedding model; test_agent_cli.py covers a real ingested index.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from langchain_core.language_models import FakeListChatModel

from assistant.agent.backends import LangChainBackend
from assistant.agent.chat import ChatSession
from assistant.agent.config import AgentSettings
from assistant.agent.loop import ResearchAgent, answer_schema, final_answer, step_schema
from assistant.agent.records import ABSTAIN_MESSAGE, AnswerToken, FinalAnswer, QuestionRewritten
from assistant.agent.tools import Toolbox
from assistant.sandbox import SandboxResult
from index.types import Chunk, SearchHit

DOCS = {
    "docs/glide.md": "GLIDE compares two guidance strategies. Human evaluators preferred classifier-free "
    "guidance for photorealism and caption similarity. CLIP guidance was preferred less often.",
    "docs/alpaca.md": "Alpaca is a small model. Stanford's Alpaca 7B was fine-tuned on 52K "
    "instruction-following demonstrations. It cost little to train.",
}


class TinyIndex:
    """Each document is one chunk whose span is the whole document text."""

    def __init__(self) -> None:
        self.chunks = [
            Chunk(f"c{i}", src, src, None, 0, len(text), 1, 1, text)
            for i, (src, text) in enumerate(DOCS.items())
        ]
        self.queries: list[str] = []

    def search(self, query: str, k: int | None = None, mode: Any = None) -> list[SearchHit]:
        self.queries.append(query)
        words = set(re.findall(r"\w+", query.lower()))
        scored = [(len(words & set(re.findall(r"\w+", c.text.lower()))), c) for c in self.chunks]
        ranked = [c for s, c in sorted(scored, key=lambda sc: -sc[0]) if s > 0][: k or 5]
        return [SearchHit(c, 1.0, i + 1) for i, c in enumerate(ranked)]

    def neighbours(self, chunk_id: str, before: int = 1, after: int = 1) -> list[Chunk]:
        return [c for c in self.chunks if c.chunk_id == chunk_id]

    def document_text(self, source: str) -> str | None:
        return DOCS.get(source)

    def document(self, source: str) -> None:
        return None  # no bibliographic metadata: sources are named by their path


def step(action: str, arg: str, thought: str = "ok") -> str:
    return json.dumps({"thought": thought, "action": action, "input": arg})


def answer(*sentences: tuple[str, list[int]], abstain: bool = False) -> str:
    return json.dumps({"abstain": abstain, "sentences": [{"text": t, "citations": c} for t, c in sentences]})


def make_agent(replies: list[str], checker: Any = None, **settings: Any) -> tuple[ResearchAgent, TinyIndex]:
    index = TinyIndex()
    model = FakeListChatModel(responses=replies)
    cfg = AgentSettings(**{"sandbox": False, **settings})
    agent = ResearchAgent(RecordingBackend(model), index, cfg, checker=checker, weak_margin=0.2)  # type: ignore[arg-type]
    return agent, index


class WordChecker:
    """Scores a claim by the share of its words found in the evidence (a stand-in for the NLI model)."""

    name = "words"
    threshold = 0.8

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def scores(self, pairs: Any) -> list[float]:
        self.pairs += pairs
        out = []
        for evidence, claim in pairs:
            words = re.findall(r"\w+", claim.lower())
            out.append(sum(w in evidence.lower() for w in words) / max(len(words), 1))
        return out


class RecordingBackend(LangChainBackend):
    """Remembers every prompt, so tests can check what the model was told."""

    def __init__(self, model: FakeListChatModel) -> None:
        super().__init__(model)
        self.prompts: list[list[dict[str, Any]]] = []

    def complete(self, messages: Any, json_schema: Any = None, *, max_tokens: int = 512) -> str:
        self.prompts.append(list(messages))
        return super().complete(messages, json_schema, max_tokens=max_tokens)


def test_first_search_runs_the_question_and_the_answer_is_cited_with_exact_spans() -> None:
    question = "Which guidance did human evaluators prefer in GLIDE?"
    agent, index = make_agent(
        [step("finish", "classifier-free"), answer(("Evaluators preferred classifier-free guidance.", [1]))]
    )
    events = list(agent.run(question))
    result = final_answer(iter(events))

    assert index.queries[0] == question
    assert not result.abstained and result.text == "Evaluators preferred classifier-free guidance. [1]"
    [cite] = result.citations
    doc = DOCS[cite.source]
    assert cite.source == "docs/glide.md" and cite.chunk_id == "c0"
    assert doc[cite.start : cite.end] == cite.quote
    assert "classifier-free" in cite.quote and "CLIP guidance was preferred" not in cite.quote
    streamed = "".join(e.text for e in events if isinstance(e, AnswerToken))
    assert streamed == result.text


def test_invalid_steps_are_retried_with_the_error_fed_back() -> None:
    agent, _ = make_agent(
        [
            "not json at all",
            step("browse", "x"),
            step("finish", ""),
            answer(("Alpaca 7B was fine-tuned on 52K demonstrations.", [1])),
        ]
    )
    result = final_answer(agent.run("How many demonstrations was Alpaca 7B fine-tuned on?"))

    finish = result.steps[-1]
    assert finish.action == "finish" and finish.attempts == 3
    prompts = agent.backend.prompts  # type: ignore[attr-defined]
    assert "not JSON" in prompts[1][-1]["content"]
    assert '"browse" is not a tool' in prompts[2][-1]["content"]
    assert "52K" in result.text and result.error is None


def test_retry_exhaustion_ends_the_run_with_a_clear_message() -> None:
    agent, _ = make_agent(["{", "[]", '{"thought": 1}'], retries=2)
    result = final_answer(agent.run("What did evaluators prefer?"))

    assert result.abstained and result.text == ABSTAIN_MESSAGE
    assert result.error is not None and "no valid step after 3 attempts" in result.error


def test_step_limit_forces_the_answer() -> None:
    searches = [step("search", f"guidance strategy {i}") for i in range(2)]
    agent, index = make_agent(
        [*searches, answer(("Classifier-free guidance was preferred.", [1]))], max_steps=2
    )
    result = final_answer(agent.run("Which guidance was preferred?"))

    assert [s.action for s in result.steps] == ["search", "search", "search"]
    assert len(index.queries) == 3  # the question itself, then one search per allowed model step
    assert not result.abstained


def test_repeated_search_is_not_run_again() -> None:
    question = "Which guidance did evaluators prefer?"
    agent, index = make_agent(
        [step("search", "  which GUIDANCE did evaluators prefer "), step("finish", ""), answer(abstain=True)]
    )
    result = final_answer(agent.run(question))

    assert index.queries == [question]
    assert "already ran" in result.steps[1].observation


def test_citations_of_unseen_evidence_are_dropped_and_counted() -> None:
    agent, _ = make_agent(
        [step("finish", ""), answer(("Evaluators preferred classifier-free guidance.", [1, 7, 9]))]
    )
    result = final_answer(agent.run("Which guidance did evaluators prefer?"))

    assert result.invalid_citations == 2
    assert [c.id for c in result.citations] == [1]
    assert result.text.endswith("[1]")


def test_abstains_when_the_model_abstains_or_cites_nothing_valid() -> None:
    agent, _ = make_agent([step("finish", ""), answer(abstain=True)])
    result = final_answer(agent.run("What context window does the GLIDE model support?"))
    assert result.abstained and result.text == ABSTAIN_MESSAGE and not result.citations

    agent, _ = make_agent([step("finish", ""), answer(("Claude 3 supports 200K tokens.", [42]))])
    result = final_answer(agent.run("What context window does the GLIDE model support?"))
    assert result.abstained and result.invalid_citations == 1


def test_no_evidence_abstains_without_asking_for_an_answer() -> None:
    agent, _ = make_agent([step("finish", "")])
    result = final_answer(agent.run("zebra quokka"))
    assert result.abstained and result.steps[0].observation == "No passages matched."


def test_read_accepts_a_passage_number_and_a_span() -> None:
    agent, _ = make_agent(
        [
            step("read", "[1]"),
            step("read", "docs/alpaca.md#20-60"),
            step("finish", ""),
            answer(("Alpaca 7B used 52K demonstrations.", [2])),
        ]
    )
    result = final_answer(agent.run("Alpaca demonstrations"))

    assert "[1] alpaca.md" in result.steps[1].observation
    assert "[2] alpaca.md" in result.steps[2].observation
    [cite] = result.citations
    assert DOCS["docs/alpaca.md"][cite.start : cite.end] == cite.quote and "52K" in cite.quote


def test_old_observations_are_shortened_to_fit_the_budget() -> None:
    agent, _ = make_agent(
        [step("search", "Alpaca 7B"), step("finish", ""), answer(abstain=True)],
        context_tokens=512,
        step_max_tokens=300,
    )
    run_events = agent.run("GLIDE guidance evaluators photorealism")
    result = final_answer(run_events)
    assert len(result.steps) == 3  # the run went through with a prompt far over the budget


def test_python_is_offered_only_when_the_sandbox_is_enabled() -> None:
    index = TinyIndex()
    assert "python" in Toolbox(index, sandbox=True).tools()  # type: ignore[arg-type]
    assert "python" not in Toolbox(index, sandbox=False).tools()  # type: ignore[arg-type]
    assert (
        "python"
        not in step_schema(list(Toolbox(index, sandbox=False).tools()))["properties"]["action"]["enum"]
    )  # type: ignore[arg-type]


def test_a_computed_result_is_cited_with_its_code_and_output(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    def fake_run(code: str, limits: object) -> SandboxResult:
        ran.append(code)
        return SandboxResult("3.4\n", "", 0, False, None, 0.01, False)

    monkeypatch.setattr("assistant.agent.tools.run_python", fake_run)
    agent, _ = make_agent(
        [
            step("python", "print(155 / 45)"),
            step("finish", ""),
            answer(("Fast YOLO is 3.4 times faster.", [3])),
        ],
        sandbox=True,
    )
    result = final_answer(agent.run("How many times faster is GLIDE than Alpaca?"))

    assert ran == ["print(155 / 45)"]
    [cite] = result.citations
    assert (cite.kind, cite.code, cite.output, cite.quote) == ("computed", "print(155 / 45)", "3.4", "3.4")


def test_answer_schema_limits_citations_to_the_evidence_seen() -> None:
    cites = answer_schema([1, 2, 5])["properties"]["sentences"]["items"]["properties"]["citations"]
    assert cites["items"]["enum"] == [1, 2, 5]


def test_chat_rewrites_a_follow_up_into_a_standalone_question() -> None:
    replies = [
        step("finish", ""),
        answer(("Alpaca 7B was fine-tuned on 52K demonstrations.", [1])),
        json.dumps({"query": "Which model was Alpaca 7B fine-tuned from?"}),
        step("finish", ""),
        answer(abstain=True),
    ]
    agent, index = make_agent(replies)
    session = ChatSession(agent)
    first = final_answer(session.ask("How many demonstrations was Alpaca 7B trained on?"))
    events = list(session.ask("and which model was it fine-tuned from?"))

    assert "52K" in first.text
    [rewritten] = [e for e in events if isinstance(e, QuestionRewritten)]
    assert rewritten.standalone == "Which model was Alpaca 7B fine-tuned from?"
    assert index.queries[-1] == rewritten.standalone
    assert isinstance(events[-1], FinalAnswer) and len(session.history) == 2
    session.new()
    assert session.history == []


@pytest.mark.parametrize("bad", ["", "not json", '{"other": "x"}'])
def test_chat_keeps_the_message_when_the_rewrite_is_unusable(bad: str) -> None:
    agent, _ = make_agent([bad])
    session = ChatSession(agent, history=[("q", "a")])
    assert session.rewrite("and the other one?") == "and the other one?"


def test_a_model_stuck_on_repeated_searches_is_moved_on_to_the_answer() -> None:
    question = "Which guidance did evaluators prefer?"
    paraphrase = step("search", "which guidance did the evaluators prefer")  # near-duplicate of the question
    agent, index = make_agent(
        [paraphrase, paraphrase, answer(("Classifier-free guidance.", [1]))], max_steps=6
    )
    result = final_answer(agent.run(question))

    assert index.queries == [question]
    assert [s.action for s in result.steps] == ["search", "search", "search"]
    assert not result.abstained


def test_a_repeated_read_is_not_run_again() -> None:
    agent, _ = make_agent([step("read", "1"), step("read", "[1]"), step("finish", ""), answer(abstain=True)])
    result = final_answer(agent.run("Which guidance did evaluators prefer?"))

    first, second = result.steps[1], result.steps[2]
    assert "[1] glide.md" in first.observation and "already took exactly this step" in second.observation


def test_checker_scores_each_sentence_against_its_cited_passages() -> None:
    checker = WordChecker()
    agent, _ = make_agent(
        [step("finish", "x"), answer(("human evaluators preferred classifier-free guidance", [1]))],
        checker=checker,
    )
    result = final_answer(agent.run("Which guidance did human evaluators prefer in GLIDE?"))
    assert not result.abstained
    [sentence] = result.sentences
    assert sentence.verdict == "supported" and sentence.support is not None and sentence.support >= 0.8
    evidence, claim = checker.pairs[0]
    assert claim == sentence.text and evidence == DOCS["docs/glide.md"]
    assert result.to_json()["sentences"][0]["verdict"] == "supported"


def test_an_answer_its_citations_do_not_support_becomes_an_abstention_with_the_draft_kept() -> None:
    draft = "Claude three supports two hundred thousand tokens of context"
    agent, _ = make_agent([step("finish", "x"), answer((draft, [1]))], checker=WordChecker())
    result = final_answer(agent.run("Which guidance did human evaluators prefer in GLIDE?"))
    assert result.abstained and result.abstain_reason == "unsupported"
    assert result.text == ABSTAIN_MESSAGE
    assert [s.verdict for s in result.sentences] == ["unsupported"]


def test_an_answer_with_only_weakly_supported_sentences_abstains() -> None:
    draft = "human evaluators preferred CLIP guidance for speed and cost"  # 7 of 9 words: weak
    agent, _ = make_agent([step("finish", "x"), answer((draft, [1]))], checker=WordChecker())
    result = final_answer(agent.run("Which guidance did human evaluators prefer in GLIDE?"))
    assert [s.verdict for s in result.sentences] == ["weak"]
    assert result.abstained and result.abstain_reason == "unsupported"


def test_one_supported_sentence_lets_the_answer_stand_with_its_weak_ones() -> None:
    weak = "human evaluators preferred CLIP guidance for speed and cost"
    agent, _ = make_agent(
        [
            step("finish", "x"),
            answer(("Stanford's Alpaca 7B was fine-tuned on 52K demonstrations.", [2]), (weak, [1])),
        ],
        checker=WordChecker(),
    )
    result = final_answer(
        agent.run("Which guidance did human evaluators prefer, and what was Alpaca tuned on?")
    )
    assert not result.abstained
    assert [s.verdict for s in result.sentences] == ["supported", "weak"]


def test_unsupported_answers_are_kept_when_abstention_by_checker_is_off() -> None:
    draft = "Claude three supports two hundred thousand tokens of context"
    agent, _ = make_agent(
        [step("finish", "x"), answer((draft, [1]))], checker=WordChecker(), abstain_unsupported=False
    )
    result = final_answer(agent.run("Which guidance did human evaluators prefer in GLIDE?"))
    assert not result.abstained and result.sentences[0].verdict == "unsupported"
