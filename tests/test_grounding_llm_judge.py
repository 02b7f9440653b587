"""The LLM judge: P(yes) from token logprobs, fallbacks, prompt contents; (slow) the real embedded model."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from assistant.grounding.llm_judge import (
    JUDGE_SCHEMA,
    LLMJudge,
    calibration_file,
    parse_verdict,
    read_calibrated_threshold,
    write_calibrated_threshold,
    yes_probability,
)
from assistant.llm.client import ChatResult, TokenLogprob


def answer_tokens(word: str, top: dict[str, float]) -> list[TokenLogprob]:
    """The tokens of {"supported": "<word>"} as llama.cpp returns them, alternatives on the answer token."""
    return [
        TokenLogprob('{"', -0.01),
        TokenLogprob("supported", -0.01),
        TokenLogprob('":', -0.01),
        TokenLogprob(' "', -0.02),
        TokenLogprob(word, top[word], top),
        TokenLogprob('"}', -0.01),
    ]


class FakeClient:
    """Records requests; answers with a fixed reply and optional logprobs."""

    model = "fake-model"

    def __init__(self, text: str, logprobs: list[TokenLogprob] | None) -> None:
        self.text, self.logprobs = text, logprobs
        self.requests: list[dict[str, Any]] = []

    def chat(self, messages: list[dict[str, str]], **kwargs: Any) -> ChatResult:
        self.requests.append({"messages": messages, **kwargs})
        return ChatResult(self.text, {}, "stop", self.logprobs if kwargs.get("logprobs") else None)


def test_yes_probability_is_the_yes_mass_against_no_at_the_answer_token() -> None:
    top = {"yes": math.log(0.6), "Yes": math.log(0.15), "no": math.log(0.2), "maybe": math.log(0.05)}
    p = yes_probability(answer_tokens("yes", top))
    assert p == pytest.approx(0.75 / 0.95)


def test_yes_probability_when_the_model_said_no() -> None:
    top = {"no": math.log(0.9), "yes": math.log(0.1)}
    assert yes_probability(answer_tokens("no", top)) == pytest.approx(0.1)


def test_without_alternatives_the_chosen_token_alone_decides() -> None:
    assert yes_probability([TokenLogprob("yes", math.log(0.8))]) == pytest.approx(1.0)
    assert yes_probability([TokenLogprob('"no', math.log(0.8))]) == pytest.approx(0.0)
    assert yes_probability([TokenLogprob("{", 0.0), TokenLogprob("maybe", -0.1)]) is None


def test_parse_verdict_reads_the_json_answer_and_fails_closed() -> None:
    assert parse_verdict('{"supported": "yes"}') == 1.0
    assert parse_verdict('{"supported": "no"}') == 0.0
    assert parse_verdict("I think so") == 0.0
    assert parse_verdict('["yes"]') == 0.0


def test_judge_scores_from_logprobs_with_a_constrained_request() -> None:
    top = {"yes": math.log(0.3), "no": math.log(0.7)}
    client = FakeClient('{"supported": "yes"}', answer_tokens("yes", top))
    judge = LLMJudge(client, threshold=0.4)  # type: ignore[arg-type]
    [score] = judge.scores([("Paris is the capital of France.", "Paris is in France.")])
    assert score == pytest.approx(0.3)  # the graded probability, not the 1.0 of the text
    request = client.requests[0]
    assert request["json_schema"] == JUDGE_SCHEMA
    assert JUDGE_SCHEMA["properties"]["supported"]["enum"] == ["yes", "no"]
    assert request["logprobs"] is True
    prompt = request["messages"][-1]["content"]
    assert "Paris is the capital of France." in prompt
    assert "Claim: Paris is in France." in prompt
    assert "$" not in prompt  # every placeholder filled


def test_judge_falls_back_to_the_answer_text_without_logprobs() -> None:
    judge = LLMJudge(FakeClient('{"supported": "no"}', None))  # type: ignore[arg-type]
    assert judge.scores([("e", "c")]) == [0.0]
    judge = LLMJudge(FakeClient('{"supported": "yes"}', []))  # type: ignore[arg-type]
    assert judge.scores([("e", "c")]) == [1.0]


def test_long_evidence_is_cut_to_the_budget_keeping_the_relevant_sentence() -> None:
    client = FakeClient('{"supported": "yes"}', None)
    judge = LLMJudge(client, max_evidence_chars=500)  # type: ignore[arg-type]
    filler = " ".join(f"Filler sentence {i} about gardening." for i in range(300))
    judge.scores([(filler + " The bridge opened in 1932. " + filler, "The bridge opened in 1932.")])
    prompt = client.requests[0]["messages"][-1]["content"]
    assert "The bridge opened in 1932." in prompt
    assert len(prompt) < 500 + 1000  # evidence budget plus the instructions


def test_calibrated_threshold_round_trip(tmp_path: Any) -> None:
    assert read_calibrated_threshold(tmp_path, "org/model:q4") is None
    path = write_calibrated_threshold(tmp_path, "org/model:q4", 0.83, {"n": 40})
    assert path == calibration_file(tmp_path, "org/model:q4")
    assert "/" not in path.name
    assert read_calibrated_threshold(tmp_path, "org/model:q4") == 0.83
    assert json.loads(path.read_text())["n"] == 40


@pytest.mark.slow
@pytest.mark.integration
def test_real_embedded_model_returns_graded_probabilities() -> None:
    """The packaged Qwen2.5-Coder-0.5B through llama.cpp: logprobs come back and give a probability."""
    from assistant.agent.factory import open_backend
    from assistant.settings import load_settings

    pairs = [
        (
            "The Eiffel Tower is in Paris. It was completed in 1889.",
            "The Eiffel Tower was completed in 1889.",
        ),
        ("The Eiffel Tower is in Paris. It was completed in 1889.", "The Eiffel Tower is in Rome."),
    ]
    with open_backend(load_settings({"llm": {"context_size": 2048}})) as backend:
        judge = LLMJudge(backend.client)
        result = backend.client.chat(
            [{"role": "user", "content": "Reply yes."}],
            json_schema=JUDGE_SCHEMA,
            max_tokens=16,
            logprobs=True,
            top_logprobs=5,
        )
        supported, contradicted = judge.scores(pairs)
    assert json.loads(result.text)["supported"] in ("yes", "no")
    assert result.logprobs, "the server returned no logprobs"
    assert yes_probability(result.logprobs) is not None
    assert 0.0 <= contradicted < supported <= 1.0
