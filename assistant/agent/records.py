"""Typed records of a run: the evidence ledger, the plan, steps, part answers, citations and the answer,
plus the events streamed to consumers.

The CLI, the UI and the eval all read the same records, so every fact a consumer shows (a step's timings,
a citation's span, which part a passage was found for) lives here once and is serialised by `to_json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from assistant.grounding.directives import blank
from index.documents import DocumentMeta
from index.pdf_boxes import Box

ABSTAIN_MESSAGE = "The documents do not answer this question."

Message = dict[str, Any]  # one OpenAI-style chat message: {"role": ..., "content": ...}
EvidenceKind = Literal["passage", "computed"]
# What a part asks for (the model's plan decides; "snippet" is the user's request to run the documents' code).
Asks = Literal["fact", "number", "comparison", "snippet"]
# How a comparison is answered: name the one that wins, yes or no, or each side in its own words.
Relation = Literal["which", "yes_no", "describe"]
Action = Literal["plan", "search", "read", "python", "answer", "check", "think", "relation"]
Verdict = Literal["supported", "weak", "unsupported"]
AbstainReason = Literal["unsupported", "no-evidence", "model"]
SentenceKind = Literal["answer", "computed", "relation", "not_stated"]


@dataclass(frozen=True, slots=True)
class Operand:
    """A number taken from a passage for a computation: `value` is in base units (52K -> 52000)."""

    name: str
    value: float
    text: str  # as the passage writes it, e.g. "363 billion"
    unit: str  # what is counted, e.g. "tokens"; "%" for percentages
    scale: str  # the scale word kept for display ("billion", "K", "")
    evidence_id: int | None  # the passage it is read from; None for a number the question gives

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Evidence:
    """One entry of the run's evidence ledger, numbered [id]: an index passage the agent saw, or the
    result of code run in the sandbox.

    For passages `start`/`end` are offsets into the document text and `text` is exactly that slice. `part`
    and `query` say which part of the plan, and which search, found it (None for the question search).
    """

    id: int
    kind: EvidenceKind
    text: str
    source: str = ""
    page: int | None = None
    start: int | None = None
    end: int | None = None
    chunk_id: str | None = None
    code: str | None = None
    part: int | None = None
    query: str | None = None
    tool: str = "search"
    operands: tuple[Operand, ...] = ()
    sandboxed: bool = True
    document: DocumentMeta | None = None  # the passage's document (title, authors, year, identifiers)
    line_start: int | None = None  # 1-based line of the document where `text` starts
    # The passage split into sentences once (offsets into `text`), reused for prompt lines, quotes and checks.
    sentences: tuple[tuple[int, int], ...] = ()
    # Sentences that address the reader or an AI ("Note to the assistant: ..."): never shown to the model
    # as lines, quoted or scored (grounding/directives.py), kept here so a reader sees they were set aside.
    directives: tuple[tuple[int, int], ...] = ()

    def citable_text(self) -> str:
        """The passage without its directives (blanked, so offsets hold): what can support a claim."""
        return blank(self.text, self.directives) if self.directives else self.text

    def sentence_texts(self) -> list[str]:
        """Each sentence of the passage, whitespace collapsed (a computation is one sentence)."""
        if self.kind == "computed" or not self.sentences:
            return [" ".join(self.text.split())]
        return [t for t in (" ".join(self.text[lo:hi].split()) for lo, hi in self.sentences) if t]

    def label(self) -> str:
        if self.kind == "computed":
            return "python result"
        return self.source.rsplit("/", 1)[-1] + (f" p.{self.page}" if self.page else "")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["operands"] = [o.to_json() for o in self.operands]
        data["document"] = self.document.to_json() if self.document else None
        data.pop("sentences")
        return data


@dataclass(frozen=True, slots=True)
class Citation:
    """One [id] of the answer: the evidence it points to and the verbatim quote in it (`start`/`end` are
    document offsets of the quote for passages). Everything else is read from the evidence record."""

    id: int
    quote: str
    start: int | None
    end: int | None
    evidence: Evidence
    lines: tuple[int, int] | None = None  # 1-based first and last line of the quote in the document
    # the quote on its PDF page(s): (page, x0, y0, x1, y1) in points, origin bottom left; empty otherwise
    boxes: tuple[Box, ...] = ()

    @property
    def kind(self) -> EvidenceKind:
        return self.evidence.kind

    @property
    def source(self) -> str:
        return "python" if self.kind == "computed" else self.evidence.source

    @property
    def page(self) -> int | None:
        return self.evidence.page

    @property
    def chunk_id(self) -> str | None:
        return self.evidence.chunk_id

    @property
    def code(self) -> str | None:
        return self.evidence.code

    @property
    def output(self) -> str | None:
        return self.evidence.text if self.kind == "computed" else None

    @property
    def passage(self) -> str:
        """The whole evidence text the quote lies in (what a reader checks it against)."""
        return self.evidence.text

    @property
    def passage_start(self) -> int | None:
        """Document offset of `passage`; the quote sits at `start - passage_start` inside it."""
        return None if self.kind == "computed" else (self.evidence.start or 0)

    @property
    def document(self) -> DocumentMeta | None:
        """What the source is, for "Title — Authors (year), p. N" and BibTeX."""
        return self.evidence.document

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "source": self.source,
            "page": self.page,
            "start": self.start,
            "end": self.end,
            "quote": self.quote,
            "chunk_id": self.chunk_id,
            "passage": self.passage,
            "passage_start": self.passage_start,
            "part": self.evidence.part,
            "document": self.document.to_json() if self.document else None,
            "lines": list(self.lines) if self.lines else None,
            "boxes": [list(b) for b in self.boxes],
        }
        if self.kind == "computed":
            data["code"], data["output"] = self.code, self.output
            data["operands"] = [o.to_json() for o in self.evidence.operands]
        return data


@dataclass(slots=True)
class Step:
    """One think -> act -> observe turn (or a planning / answering call), with what a trace needs to
    diagnose it: the prompt's size and hash, the raw reply, the parse error, tokens and timings."""

    index: int
    thought: str
    action: Action
    input: str
    observation: str = ""
    part: int | None = None
    model_s: float = 0.0
    tool_s: float = 0.0
    attempts: int = 1
    prompt_chars: int = 0
    prompt_sha: str = ""
    raw: str = ""
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None  # prompt tokens the server took from its KV cache
    new_evidence: tuple[int, ...] = ()
    figures: list[bytes] = field(default_factory=list)  # PNGs a python step's code produced (UI shows them)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_s"], data["tool_s"] = round(self.model_s, 3), round(self.tool_s, 3)
        data["new_evidence"] = list(self.new_evidence)
        data["figures"] = len(self.figures)  # a count: the PNG bytes do not belong in JSON
        return data


@dataclass(frozen=True, slots=True)
class Acceptance:
    """The three signals a drafted sentence is accepted on, and the decision (see grounding/support.py):
    `anchored` (code: its numbers and names occur in what it cites, the question or a computation),
    `support` (the grounding checker) and `self_check` (the answering model's P(yes) that its sentences
    state it)."""

    anchored: bool
    support: float | None
    self_check: float | None
    accepted: bool
    missing: tuple[str, ...] = ()  # the numbers or names that broke anchoring

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"missing": list(self.missing)}


@dataclass(frozen=True, slots=True)
class Sentence:
    """An answer sentence, its citation ids, and (when a grounding checker ran) its support.

    `not_stated` sentences say which part the documents do not cover; they cite nothing and are left out
    of support metrics. `acceptance` holds the signals the agent accepted or rejected the sentence on."""

    text: str
    citations: tuple[int, ...]
    support: float | None = None
    verdict: Verdict | None = None
    kind: SentenceKind = "answer"
    part: int | None = None
    acceptance: Acceptance | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "citations": list(self.citations),
            "support": self.support,
            "verdict": self.verdict,
            "kind": self.kind,
            "part": self.part,
            "acceptance": self.acceptance.to_json() if self.acceptance else None,
        }


@dataclass(frozen=True, slots=True)
class Part:
    """One thing the question asks: its own clause, what it asks for, the searches for it and, for a
    comparison, the compared items and how the answer relates them."""

    id: int
    question: str  # the clause of the question this part answers (the whole question for one part)
    asks: Asks = "fact"
    items: tuple[str, ...] = ()
    relation: Relation | None = None
    queries: tuple[str, ...] = ()
    refers_back: bool = False  # names nothing itself: searched again with the earlier parts' answers
    rule_asks: Asks | None = None  # what cue words alone suggested (measured against the model's decision)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Plan:
    """The question cut into parts; `source` says whether rules or the model made the cut."""

    question: str
    parts: tuple[Part, ...]
    source: Literal["rules", "model"] = "rules"  # "rules" when the model's reply was unusable

    def to_json(self) -> dict[str, Any]:
        return {"question": self.question, "source": self.source, "parts": [p.to_json() for p in self.parts]}


@dataclass(frozen=True, slots=True)
class PartResult:
    """How one part ended: answered with a checked sentence, or not stated by the documents."""

    part: Part
    status: Literal["answered", "not_stated"]
    sentences: tuple[Sentence, ...]  # one per part; a comparison has each side's and the relation
    drafts: tuple[Sentence, ...] = ()  # every rejected draft, kept for diagnosis and acceptance metrics

    @property
    def sentence(self) -> Sentence:
        return self.sentences[-1]

    def to_json(self) -> dict[str, Any]:
        return {
            "part": self.part.id,
            "asks": self.part.asks,
            "status": self.status,
            "sentences": [s.to_json() for s in self.sentences],
            "drafts": [d.to_json() for d in self.drafts],
        }


@dataclass(slots=True)
class Answer:
    """The final answer. `text` carries [n] markers. `evidence` is the ledger: every passage and
    computation the agent saw, cited or not."""

    question: str
    text: str
    abstained: bool
    sentences: list[Sentence] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    invalid_citations: int = 0
    steps: list[Step] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    abstain_reason: AbstainReason | None = None
    plan: Plan | None = None
    parts: list[PartResult] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "abstain_reason": self.abstain_reason,
            "citations": [c.to_json() for c in self.citations],
            "sentences": [s.to_json() for s in self.sentences],
            "parts": [p.to_json() for p in self.parts],
            "plan": self.plan.to_json() if self.plan else None,
            "invalid_citations": self.invalid_citations,
            "steps": [s.to_json() for s in self.steps],
            "evidence": [e.to_json() for e in self.evidence],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
        return data


# -- events -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QuestionRewritten:
    """Chat only: the follow-up as the standalone query the agent actually ran."""

    original: str
    standalone: str
    type: Literal["rewritten"] = "rewritten"


@dataclass(frozen=True, slots=True)
class PlanMade:
    plan: Plan
    type: Literal["plan"] = "plan"


@dataclass(frozen=True, slots=True)
class EvidenceFound:
    """New passages for a part, before the model writes anything (so a reader sees the sources early)."""

    part: int | None
    evidence: tuple[Evidence, ...]
    type: Literal["evidence"] = "evidence"


@dataclass(frozen=True, slots=True)
class StepStarted:
    index: int
    action: Action
    part: int | None = None
    type: Literal["step_started"] = "step_started"


@dataclass(frozen=True, slots=True)
class StepFinished:
    step: Step
    type: Literal["step_finished"] = "step_finished"


@dataclass(frozen=True, slots=True)
class AnswerToken:
    """A piece of the answer's visible text, in order, [n] markers included (one checked part at a time)."""

    text: str
    type: Literal["answer_token"] = "answer_token"


@dataclass(frozen=True, slots=True)
class DraftToken:
    """Words of a part's draft as the model writes them, before any check: shown as "checking", never
    as the answer. A new `draft` number starts a new draft (a re-ask or the next part)."""

    part: int
    draft: int
    text: str
    type: Literal["draft_token"] = "draft_token"


@dataclass(frozen=True, slots=True)
class DraftChecked:
    """The streamed draft's verdict: accepted (its checked form follows as AnswerToken) or replaced."""

    part: int
    draft: int
    accepted: bool
    type: Literal["draft_checked"] = "draft_checked"


@dataclass(frozen=True, slots=True)
class FinalAnswer:
    answer: Answer
    type: Literal["final_answer"] = "final_answer"


Event = (
    QuestionRewritten
    | PlanMade
    | EvidenceFound
    | StepStarted
    | StepFinished
    | DraftToken
    | DraftChecked
    | AnswerToken
    | FinalAnswer
)
