"""Typed records of a run: evidence, steps, citations, the answer, and the events streamed to consumers.

The CLI, the UI and the eval all read the same event stream, so every fact a consumer shows (a step's
timings, a citation's span) lives here once and is serialised by `to_json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from index.documents import DocumentMeta

ABSTAIN_MESSAGE = "The documents do not answer this question."


@dataclass(frozen=True, slots=True)
class Evidence:
    """Something the agent saw, numbered [id]: an index passage, or a computed result of the python tool.

    For passages `start`/`end` are offsets into the document text and `text` is exactly that slice.
    """

    id: int
    kind: Literal["passage", "computed"]
    text: str
    source: str = ""
    page: int | None = None
    start: int | None = None
    end: int | None = None
    chunk_id: str | None = None
    code: str | None = None
    document: DocumentMeta | None = None  # the passage's document (title, authors, year, identifiers)
    line_start: int | None = None  # 1-based line of the document where `text` starts

    def label(self) -> str:
        if self.kind == "computed":
            return "python result"
        return self.source.rsplit("/", 1)[-1] + (f" p.{self.page}" if self.page else "")


@dataclass(frozen=True, slots=True)
class Citation:
    """One [id] of the answer resolved to where it comes from and a verbatim quote of that evidence."""

    id: int
    kind: Literal["passage", "computed"]
    source: str
    page: int | None
    start: int | None
    end: int | None
    quote: str
    chunk_id: str | None
    code: str | None = None
    output: str | None = None
    passage: str = ""  # the whole evidence text the quote lies in (what a reader checks it against)
    passage_start: int | None = None  # document offset of `passage`; the quote is at start - passage_start
    document: DocumentMeta | None = None  # what the source is, for "Title — Authors (year), p. N" and BibTeX
    lines: tuple[int, int] | None = None  # 1-based first and last line of the quote in the document

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.kind == "passage":
            del data["code"], data["output"]
        return data


@dataclass(slots=True)
class Step:
    """One thought-action-observation turn; `model_s` is generation time, `tool_s` the tool's."""

    index: int
    thought: str
    action: str
    input: str
    observation: str = ""
    model_s: float = 0.0
    tool_s: float = 0.0
    attempts: int = 1
    figures: list[bytes] = field(default_factory=list)  # PNGs a python step's code produced (UI shows them)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_s"], data["tool_s"] = round(self.model_s, 3), round(self.tool_s, 3)
        data["figures"] = len(self.figures)  # a count: the PNG bytes do not belong in JSON
        return data


@dataclass(frozen=True, slots=True)
class Sentence:
    """An answer sentence, its citation ids, and (when a grounding checker ran) its support."""

    text: str
    citations: tuple[int, ...]
    support: float | None = None
    verdict: str | None = None  # supported | weak | unsupported

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "citations": list(self.citations),
            "support": self.support,
            "verdict": self.verdict,
        }


@dataclass(slots=True)
class Answer:
    """The final answer. `text` carries [n] markers; `error` is set when the run ended without one."""

    question: str
    text: str
    abstained: bool
    sentences: list[Sentence] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    invalid_citations: int = 0
    steps: list[Step] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    abstain_reason: str | None = None  # model | uncited | unsupported | no-evidence | error

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "abstain_reason": self.abstain_reason,
            "citations": [c.to_json() for c in self.citations],
            "sentences": [s.to_json() for s in self.sentences],
            "invalid_citations": self.invalid_citations,
            "steps": [s.to_json() for s in self.steps],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
        if self.error:
            data["error"] = self.error
        return data


# -- events -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QuestionRewritten:
    """Chat only: the follow-up as the standalone query the agent actually ran."""

    original: str
    standalone: str
    type: Literal["rewritten"] = "rewritten"


@dataclass(frozen=True, slots=True)
class StepStarted:
    index: int
    type: Literal["step_started"] = "step_started"


@dataclass(frozen=True, slots=True)
class StepFinished:
    step: Step
    type: Literal["step_finished"] = "step_finished"


@dataclass(frozen=True, slots=True)
class AnswerToken:
    """A piece of the answer's visible text, in order, [n] markers included."""

    text: str
    type: Literal["answer_token"] = "answer_token"


@dataclass(frozen=True, slots=True)
class FinalAnswer:
    answer: Answer
    type: Literal["final_answer"] = "final_answer"


Event = QuestionRewritten | StepStarted | StepFinished | AnswerToken | FinalAnswer
