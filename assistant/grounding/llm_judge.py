"""An LLM as the grounding checker: a yes/no question under a JSON schema, P(yes) from token logprobs.

The answer is constrained to {"supported": "yes" | "no"} so any OpenAI-compatible server (llama.cpp,
vLLM) can only emit one of the two words. Where the server returns logprobs, the probability is the mass
of "yes" against "no" at the answer token, a graded score that can be thresholded and calibrated like
the local checker's; without logprobs the score is 1.0 or 0.0. A model's P(yes) is rarely centred on 0.5
(small models say "yes" readily), so a threshold calibrated per model is stored next to the other
checkers' and used when present.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from assistant.agent.prompts import render
from assistant.grounding.evidence import fit_evidence
from assistant.llm.client import ChatClient, yes_probability

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"supported": {"type": "string", "enum": ["yes", "no"]}},
    "required": ["supported"],
    "additionalProperties": False,
}
MAX_EVIDENCE_CHARS = 6000  # ~1,700 tokens: fits any context window and keeps a CPU judge near seconds
DEFAULT_THRESHOLD = 0.5
CALIBRATION_DIR = "llm-judge"


def calibration_file(cache_dir: Path, model: str) -> Path:
    """Where the calibrated threshold of the judge with `model` is kept."""
    safe = re.sub(r"[^\w.-]+", "_", model)
    return Path(cache_dir) / "checkers" / CALIBRATION_DIR / f"{safe}.json"


def read_calibrated_threshold(cache_dir: Path, model: str) -> float | None:
    path = calibration_file(cache_dir, model)
    return float(json.loads(path.read_text())["threshold"]) if path.is_file() else None


def write_calibrated_threshold(cache_dir: Path, model: str, threshold: float, details: dict) -> Path:
    path = calibration_file(cache_dir, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model": model, "threshold": threshold, **details}, indent=2) + "\n")
    return path


def parse_verdict(text: str) -> float:
    """1.0 for a "yes" reply, else 0.0: an unreadable reply has not confirmed support."""
    try:
        answer = json.loads(text).get("supported")
    except (ValueError, AttributeError):
        return 0.0
    return 1.0 if answer == "yes" else 0.0


class LLMJudge:
    """Grounding checker backed by the chat model behind `client`; one request per pair."""

    name = "llm"

    def __init__(
        self,
        client: ChatClient,
        threshold: float = DEFAULT_THRESHOLD,
        max_evidence_chars: int = MAX_EVIDENCE_CHARS,
    ) -> None:
        self.client = client
        self.threshold = threshold
        self.max_evidence_chars = max_evidence_chars

    def score(self, evidence: str, claim: str) -> float:
        prompt = render(
            "grounding_judge.md", evidence=fit_evidence(evidence, claim, self.max_evidence_chars), claim=claim
        )
        result = self.client.chat(
            [{"role": "user", "content": prompt}],
            json_schema=JUDGE_SCHEMA,
            max_tokens=16,
            temperature=0.0,
            logprobs=True,
            top_logprobs=10,
        )
        probability = yes_probability(result.logprobs or [])
        return parse_verdict(result.text) if probability is None else probability

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [self.score(evidence, claim) for evidence, claim in pairs]
