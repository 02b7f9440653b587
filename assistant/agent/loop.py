"""Agent v3: the model plans and decides, code computes and checks, every part answered from its own
evidence with citations, or said to be not stated.

The run, for a small model on a CPU (each step is one short call under a JSON schema it cannot break):
1. **Plan** (`plan.py`): one call; for each clause of the question, whether it asks for a fact, a number
   or a comparison (and of which items).
2. **Search** each part (each compared item separately).
3. **Answer** each part from its few best evidence sentences. For a number the model first says whether
   it is written there ("stated") or follows from listed numbers ("computed"); a computation is an
   expression over ids of the evidence's numbers, which code parses, checks (each operand's sentence must
   mention what the model says it measures) and runs in the sandbox (`arithmetic.py`).
4. **Accept** (`grounding/support.py`): a sentence stands when it is anchored (its numbers and names occur
   in what it cites) and the grounding checker or the model's own self-check (a yes/no with the evidence
   still in the server's KV cache, a few tokens) finds it stated. A part without an accepted answer gets
   a research step (search or read) and is otherwise said to be not stated.
5. **Relate** a comparison's sides: code compares their numbers where it can, else the model picks from
   the compared items (or yes/no); a yes/no is answered only when both sides are accepted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import queue
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from assistant.agent import arithmetic as ar
from assistant.agent.citations import (
    content_words,
    key_sentences,
    names,
    render,
    render_sentence,
    resolve_citations,
)
from assistant.agent.config import AgentSettings
from assistant.agent.plan import PlanRequest, is_yes_no, plan_request, rules_plan
from assistant.agent.prompts import StreamedField, json_object
from assistant.agent.prompts import render as render_prompt
from assistant.agent.records import (
    ABSTAIN_MESSAGE,
    Action,
    Answer,
    AnswerToken,
    DraftChecked,
    DraftToken,
    Event,
    Evidence,
    EvidenceFound,
    FinalAnswer,
    Message,
    Operand,
    Part,
    PartResult,
    Plan,
    PlanMade,
    Sentence,
    Step,
    StepFinished,
    StepStarted,
)
from assistant.agent.tools import Toolbox, ToolResult
from assistant.grounding.support import (
    accept,
    anchoring,
    needed_citations,
    score_sentences,
    self_check_decides,
)
from assistant.llm.client import yes_probability
from index.errors import UserFacingError

if TYPE_CHECKING:
    from assistant.agent.backends import ChatBackend, Completion
    from assistant.grounding.base import GroundingChecker
    from assistant.sandbox import SandboxLimits
    from index.search import HybridIndex

T = TypeVar("T")
CHARS_PER_TOKEN = 3.5  # conservative for English prose with a BPE vocabulary
# Fragments ("2", "CLIP guidance") say too little for a checker to judge: a sentence names what it answers.
MIN_ANSWER_WORDS = 4
MAX_CITED = 3  # citations of one sentence, after code adds the passages its names come from
MAX_NUMBERS = 16  # numbers offered for a computation (the best-ranked evidence sentences' first)
PoolKey = tuple[int, int]  # (part id, compared item: 0 for a part that compares nothing)
_MAX = ("higher", "larger", "bigger", "greater", "more", "better", "faster", "longer", "wider", "stronger")
_MIN = ("lower", "smaller", "fewer", "less", "worse", "slower", "shorter", "cheaper", "lighter", "narrower")
_PERCENT_ASKED = re.compile(
    r"\bpercent(?:age)?\b(?!\s+points?)|%|\bshare\b|\bproportion\b|\bfraction\b", re.IGNORECASE
)
# the reply form's placeholders in prompts/answer_system.md ("<one complete sentence ...>"), copied verbatim
_TEMPLATE = re.compile(
    r"<(?:one complete sentence|a number id|what that number|the calculation)", re.IGNORECASE
)
# A year is a date, not a quantity to compute with, unless the question is about years.
_YEAR = re.compile(r"^(?:1[89]|20)\d\d$")
_ABOUT_YEARS = re.compile(r"\byears?\b|\bwhen\b|\bsince\b", re.IGNORECASE)
_CLAUSE_CUT = re.compile(r"[,;:]\s*|\s(?:and|or|while|whereas|but)\s", re.IGNORECASE)
_COMPARATIVE = re.compile(r"\b(" + "|".join(_MAX + _MIN) + r")\b", re.IGNORECASE)


class QuestionTooLong(UserFacingError):
    """A question past `agent.max_question_chars`."""


def check_question(question: str, max_chars: int) -> str:
    """The question stripped; a one-line error for an empty or over-long one (before any model starts)."""
    q = question.strip()
    if not q:
        raise QuestionTooLong(
            "empty question: pass it in quotes, e.g. ra ask 'What is classifier-free guidance?'"
        )
    if len(q) > max_chars:
        raise QuestionTooLong(
            f"the question has {len(q):,} characters, more than agent.max_question_chars "
            f"({max_chars:,}): ask something shorter or raise the limit"
        )
    return q


# -- schemas and replies -------------------------------------------------------------------------------
def stated_schema(evidence_ids: Sequence[int]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "how": {"type": "string", "enum": ["stated"]},
            "text": {"type": "string", "maxLength": 300},
            "citations": {
                "type": "array",
                "minItems": 1,
                "maxItems": 2,
                "items": {"type": "integer", "enum": list(evidence_ids)},
            },
        },
        "required": ["how", "text", "citations"],
        "additionalProperties": False,
    }


def computed_schema(number_ids: Sequence[str], constants: Sequence[str]) -> dict[str, Any]:
    token = "|".join([*number_ids, *constants])
    return {
        "type": "object",
        "properties": {
            "how": {"type": "string", "enum": ["computed"]},
            "operands": {
                "type": "array",
                "minItems": 1,
                "maxItems": 6,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "enum": list(number_ids)},
                        "of": {"type": "string", "maxLength": 60},
                    },
                    "required": ["id", "of"],
                    "additionalProperties": False,
                },
            },
            # the length bound is in the pattern: xgrammar refuses a pattern beside maxLength
            "expression": {"type": "string", "pattern": rf"^(?:{token}|[-+*/^() ]){{1,60}}$"},
        },
        "required": ["how", "operands", "expression"],
        "additionalProperties": False,
    }


def answer_schema(
    evidence_ids: Sequence[int], number_ids: Sequence[str], constants: Sequence[str] = tuple(ar.CONSTANTS)
) -> dict[str, Any]:
    """A part's reply: a stated sentence, or (when numbers are offered) a computation over them."""
    if not number_ids:
        return stated_schema(evidence_ids)
    return {"anyOf": [stated_schema(evidence_ids), computed_schema(number_ids, constants)]}


def allowed_constants(question: str) -> list[str]:
    """The constants a computation for `question` may use: PERCENT only when it asks for a percentage
    or a share (a factor times 100 is a wrong unit, which the 1.5B model wrote for "by what factor")."""
    return [c for c in ar.CONSTANTS if c != "PERCENT" or _PERCENT_ASKED.search(question)]


def step_schema(passage_ids: Sequence[int]) -> dict[str, Any]:
    """A research step: search with a query, read around a passage shown, or give up."""

    def action(name: str, **fields: Any) -> dict[str, Any]:
        props = {
            "thought": {"type": "string", "maxLength": 200},
            "action": {"type": "string", "enum": [name]},
        }
        return {
            "type": "object",
            "properties": props | fields,
            "required": [*props, *fields],
            "additionalProperties": False,
        }

    options = [action("search", query={"type": "string", "minLength": 2, "maxLength": 150})]
    if passage_ids:
        options.append(action("read", passage={"type": "integer", "enum": list(passage_ids)}))
    options.append(action("give_up"))
    return {"anyOf": options}


YES_NO_SCHEMA = {
    "type": "object",
    "properties": {"supported": {"type": "string", "enum": ["yes", "no"]}},
    "required": ["supported"],
    "additionalProperties": False,
}


def choice_schema(choices: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": list(choices)}},
        "required": ["answer"],
        "additionalProperties": False,
    }


@dataclass(frozen=True, slots=True)
class Stated:
    text: str
    citations: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Computed:
    computation: ar.Computation
    names: Mapping[str, str]  # operand id -> what the model says it measures


@dataclass(frozen=True, slots=True)
class Search:
    thought: str
    query: str


@dataclass(frozen=True, slots=True)
class Read:
    thought: str
    passage: int


@dataclass(frozen=True, slots=True)
class GiveUp:
    thought: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """A number offered for a computation: where it is written, read into a value."""

    id: str
    quantity: ar.Quantity
    evidence_id: int | None  # None: the question gives it
    sentence: str


def parse_stated(data: dict[str, Any], question: str) -> Stated:
    text, cites = data.get("text"), data.get("citations")
    if not isinstance(text, str) or len(text.split()) < MIN_ANSWER_WORDS:
        raise ValueError(
            f'"text" must be a complete sentence of at least {MIN_ANSWER_WORDS} words, not a fragment'
        )
    if _TEMPLATE.search(text):
        raise ValueError('"text" copies the reply form: write the answer sentence itself')
    asked = {w.lower() for w in content_words(question)}
    if not is_yes_no(question) and all(w.lower() in asked for w in content_words(text)):
        raise ValueError('"text" only repeats the question: state the answer the sentences give')
    if not isinstance(cites, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in cites):
        raise ValueError('"citations" must be a list of sentence numbers')
    return Stated(text.strip(), tuple(dict.fromkeys(cites)))


def parse_answer(raw: str, numbers: Mapping[str, Candidate], question: str) -> Stated | Computed:
    """A part's reply; ValueError (fed back to the model) when it breaks what the schema cannot express:
    the expression's grammar, an operand that is not used or whose sentence does not mention what the
    model says it measures."""
    data = json_object(raw)
    if data.get("how") != "computed" or not numbers:
        return parse_stated(data, question)
    operands = data.get("operands")
    if not isinstance(operands, list) or not operands:
        raise ValueError('"operands" must list the numbers the expression uses')
    named = {str(o.get("id")): str(o.get("of", "")).strip() for o in operands if isinstance(o, dict)}
    node = ar.parse_expression(str(data.get("expression", "")), set(numbers))
    if set(ar.terms(node)) & set(ar.CONSTANTS) - set(allowed_constants(question)):
        raise ar.ExpressionError("the question does not ask for a percentage: leave out PERCENT")
    if "PERCENT" in ar.terms(node) and any(
        numbers[t].quantity.unit == "%" for t in ar.terms(node) if t in numbers
    ):
        raise ar.ExpressionError("those numbers are already percentages: leave out PERCENT")
    used = [t for t in ar.terms(node) if t in numbers]
    if not used:
        raise ValueError("the expression must use at least one of the listed numbers")
    for key in used:
        if key not in named:
            raise ValueError(f'{key} is used in the expression but not listed in "operands"')
        problem = operand_problem(numbers[key], named[key], question)
        if problem:
            raise ValueError(problem)
    if isinstance(node, ar.Term) and node.name in numbers:  # one number, nothing computed: it is stated
        c = numbers[node.name]
        if c.evidence_id is None:
            raise ValueError(f"{c.id} is given in the question: compute what is asked from it")
        return Stated(f"{named[node.name] or 'The number'}: {c.quantity.text}.", (c.evidence_id,))
    values = {k: numbers[k].quantity.value for k in used}
    value = ar.evaluate(node, values)
    if why := ar.degenerate(node, values) or ar.unit_problem(
        node, {k: numbers[k].quantity.unit for k in used}
    ):
        raise ar.ExpressionError(why)
    ops = {k: _operand(numbers[k], named[k]) for k in used}
    return Computed(ar.Computation(node, ops, value), {k: named[k] for k in used})


def operand_problem(c: Candidate, named: str, question: str) -> str | None:
    """Why the operand cannot be what the model says it measures (None when it can). What it is named for
    must be something the question mentions ("GPU" in a question about SAM's encoder is not). Its sentence must
    mention the thing named: a name in `named` that the question also uses, or, when the model names
    nothing of the question's, one of its content words. And where the sentence lists several of the
    question's names, the operand's own clause must not name only another one ("137B tokens used by BERT
    or 2.2T tokens used by RoBERTa": 2.2T is not BERT's)."""
    if c.evidence_id is None:
        return None
    if named and not _shares_a_word(named, question):
        return f'{c.id} ({c.quantity.text}) is named "{named}", which is nothing the question asks about'
    low = c.sentence.lower()
    asked = [n for n in _names(named) if n.lower() in question.lower()]
    if asked and not any(n.lower() in low for n in asked):
        return f"{c.id} ({c.quantity.text}) comes from a sentence that does not mention {' or '.join(asked)}"
    if asked:
        clause = _clause_of(c).lower()
        others = [n for n in _names(question) if n not in asked and _mentions(clause, n)]
        if others and not any(_mentions(clause, n) for n in asked):
            return f"{c.id} ({c.quantity.text}) is written about {others[0]}, not {' or '.join(asked)}"
    if not asked and named and not any(w.lower() in low for w in re.findall(r"[A-Za-z]{3,}", named)):
        return f"{c.id} ({c.quantity.text}) comes from a sentence that does not mention {named}"
    return None


def _shares_a_word(named: str, question: str) -> bool:
    """`named` and the question have a content word in common (possessives, plurals and the halves of
    hyphenated words aside: "GPUs" and "GPU-hours")."""

    def stems(text: str) -> set[str]:
        words = [part for w in content_words(text) for part in {w, *w.split("-")} if part]
        return {re.sub(r"(?:['’]s|s)$", "", w.lower()) for w in words}

    return bool(stems(named) & stems(question))


def _names(text: str) -> list[str]:
    """Names of a text that are not themselves numbers ("14M" is a quantity, "T5" a name)."""
    return [n for n in names(text, hyphenated=False) if not ar.find_quantities(n)]


def _clause_of(c: Candidate) -> str:
    """The clause of the operand's sentence that holds it (cut at , ; : and "and", "or", "while", "whereas")."""
    start = c.quantity.start
    cuts = [0, *(m.end() for m in _CLAUSE_CUT.finditer(c.sentence)), len(c.sentence)]
    begin = max(x for x in cuts if x <= start)
    end = min((x for x in cuts if x > start), default=len(c.sentence))
    return c.sentence[begin:end]


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name.lower())}(?![\w-]|\.\d)", text) is not None


def _operand(c: Candidate, named: str) -> Operand:
    q = c.quantity
    return Operand(named or c.id, q.value, q.text, q.unit, q.scale, c.evidence_id)


def parse_step(raw: str) -> Search | Read | GiveUp:
    data = json_object(raw)
    thought = str(data.get("thought", ""))
    action = data.get("action")
    if action == "search" and isinstance(data.get("query"), str) and data["query"].strip():
        return Search(thought, data["query"].strip())
    if action == "read" and isinstance(data.get("passage"), int):
        return Read(thought, data["passage"])
    if action == "give_up":
        return GiveUp(thought)
    raise ValueError('"action" must be search (with a "query"), read (with a "passage") or give_up')


def parse_choice(raw: str, choices: Sequence[str]) -> str:
    value = json_object(raw).get("answer")
    if value not in choices:
        raise ValueError(f'"answer" must be one of {", ".join(choices)}')
    return str(value)


def prompt_tokens(messages: Sequence[Message]) -> int:
    """An estimate of a prompt's tokens, erring high (the budget check needs no server round trip)."""
    return int(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN) + 8 * len(messages)


# -- one schema call, re-asked with the parse error ----------------------------------------------------
@dataclass
class Exchange:
    """One model call's outcome after its re-asks: the parsed value (None when every reply was
    invalid), the last raw reply and error, and what a trace needs."""

    value: Any = None
    raw: str = ""
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0
    completion: Completion | None = None


def converse(
    backend: ChatBackend,
    messages: list[Message],
    schema: dict[str, Any],
    max_tokens: int,
    parse: Callable[[str], Any],
    retries: int,
    error_prompt: str,
    *,
    logprobs: bool = False,
    on_text: Callable[[str], None] | None = None,
) -> Exchange:
    """Ask until `parse` accepts a reply, feeding each refusal back. `on_text` sees the first reply's
    pieces as they are written (re-asks are not streamed: the reader already saw a draft fail)."""
    out = Exchange()
    convo = list(messages)
    for attempt in range(1, retries + 2):
        out.attempts = attempt
        t = time.perf_counter()
        streaming = {"on_text": on_text} if on_text is not None and attempt == 1 else {}
        reply = backend.complete(convo, schema, max_tokens=max_tokens, logprobs=logprobs, **streaming)
        out.seconds += time.perf_counter() - t
        out.raw, out.completion = reply.text, reply
        try:
            out.value, out.error = parse(reply.text), None
            return out
        except ValueError as exc:
            out.error = str(exc)
            hint = render_prompt(error_prompt, error=exc)
            convo = [
                *messages,
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": hint},
            ]
    return out


def ask_model(
    backend: ChatBackend,
    messages: list[Message],
    schema: dict[str, Any],
    max_tokens: int,
    parse: Callable[[str], T],
    retries: int,
    error_prompt: str = "plan_error.md",
) -> T | None:
    """One schema call outside a run (the routing benchmark): the parsed value or None."""
    return converse(backend, messages, schema, max_tokens, parse, retries, error_prompt).value


# -- the agent -----------------------------------------------------------------------------------------
class ResearchAgent:
    """Answers one question at a time over `index` with `backend`; `run` yields the events of a run."""

    def __init__(
        self,
        backend: ChatBackend,
        index: HybridIndex,
        settings: AgentSettings,
        *,
        weak_margin: float,
        sandbox_limits: SandboxLimits | None = None,
        checker: GroundingChecker | None = None,
        threshold: float | None = None,
    ) -> None:
        self.backend = backend
        self.index = index
        self.settings = settings
        self.sandbox_limits = sandbox_limits
        self.checker = checker
        self.threshold = threshold
        self.weak_margin = weak_margin

    def run(self, question: str) -> Iterator[Event]:
        yield from _Run(self, check_question(question, self.settings.max_question_chars)).events()


@dataclass
class _Outcome:
    """A part (or one compared item) after answering: the accepted sentence, or None, and the drafts
    that were rejected on the way."""

    sentence: Sentence | None
    drafts: list[Sentence]


class _Run:
    """State of one question: the ledger (in the toolbox), steps, evidence pools and the clock."""

    def __init__(self, agent: ResearchAgent, question: str) -> None:
        self.agent = agent
        self.backend = agent.backend
        self.cfg = agent.settings
        self.question = question
        self.toolbox = Toolbox(
            agent.index,
            k=self.cfg.search_k,
            sandbox=self.cfg.sandbox,
            sandbox_limits=agent.sandbox_limits,
            observation_chars=self.cfg.observation_chars,
        )
        self.ledger = self.toolbox.ledger
        self.steps: list[Step] = []
        self.model_calls = 0
        self.invalid_citations = 0
        self.t0 = time.perf_counter()
        self.timings: dict[str, float] = {"model_s": 0.0, "tools_s": 0.0, "check_s": 0.0}
        self.plan: Plan | None = None
        self.pools: dict[PoolKey, list[int]] = {}  # evidence ids each search showed, in rank order

    # -- the run --------------------------------------------------------------------------------------
    def events(self) -> Iterator[Event]:
        plan = yield from self._plan()
        self.plan = plan
        yield PlanMade(plan)
        for part in plan.parts:
            for side, query in enumerate(part.queries, 1 if part.asks == "comparison" else 0):
                yield from self._search(query, part.id, (part.id, side), planned=True)
        results: list[PartResult] = []
        held: list[str] = []  # not-stated parts wait until some part is answered (else the run abstains)
        for part in plan.parts:
            if part.refers_back and results:
                context = " ".join(s.text for r in results if r.status == "answered" for s in r.sentences)
                query = f"{part.question.rstrip('?')} {context}"[:300]
                yield from self._search(query, part.id, (part.id, 0), planned=True)
            result = yield from self._solve(part)
            results.append(result)
            held.append(" ".join(render_sentence(s) for s in result.sentences))
            if result.status == "answered" or "first_token_s" in self.timings:
                self.timings.setdefault("first_token_s", time.perf_counter() - self.t0)
                yield AnswerToken(("" if len(results) == len(held) else " ") + " ".join(held))
                held = []
        yield FinalAnswer(self._compose(results))

    def _plan(self) -> Iterator[Event]:
        request = plan_request(self.question)
        if not isinstance(request, PlanRequest):
            return request
        ex = yield from self._call(
            "plan",
            None,
            request.messages,
            request.schema,
            self.cfg.plan_max_tokens,
            request.parse,
            "plan_error.md",
        )
        return ex.value if ex.value is not None else rules_plan(self.question)

    def _search(self, query: str, part: int, key: PoolKey, *, planned: bool = False) -> Iterator[Event]:
        result = yield from self._tool(
            "search", query, part, key, lambda: self.toolbox.search(query, part, planned=planned)
        )
        return result

    def _tool(
        self, action: Action, arg: str, part: int | None, key: PoolKey | None, run: Callable[[], ToolResult]
    ) -> Iterator[Event]:
        """Run a tool as a step of its own (observed, timed, its new evidence announced)."""
        index = len(self.steps)
        yield StepStarted(index, action, part)
        known = len(self.ledger)
        t = time.perf_counter()
        result = run()
        step = Step(index, "", action, arg, result.text, part=part, tool_s=time.perf_counter() - t)
        step.new_evidence = tuple(e.id for e in result.evidence if e.id > known)
        step.figures = list(result.figures)
        self.timings["tools_s"] += step.tool_s
        if key is not None:
            pool = self.pools.setdefault(key, [])
            pool += [e.id for e in result.evidence if e.id not in pool]
        self.steps.append(step)
        yield StepFinished(step)
        if step.new_evidence:
            yield EvidenceFound(part, tuple(self.ledger.items[n] for n in step.new_evidence))
        return result

    def _call(
        self,
        action: Action,
        part: int | None,
        messages: list[Message],
        schema: dict[str, Any],
        max_tokens: int,
        parse: Callable[[str], T],
        error_prompt: str,
        *,
        logprobs: bool = False,
        draft: int | None = None,
    ) -> Iterator[Event]:
        """One recorded model step under a schema; returns its `Exchange` (`.value` None when no reply
        parsed). With a `draft` number the reply's "text" is streamed as DraftToken events."""
        index = len(self.steps)
        yield StepStarted(index, action, part)
        self.model_calls += 1
        step = Step(index, "", action, messages[-1]["content"][-200:], part=part)
        step.prompt_chars = sum(len(m["content"]) for m in messages)
        step.prompt_sha = hashlib.sha256(json.dumps(messages).encode()).hexdigest()[:16]
        call = functools.partial(
            converse,
            self.backend,
            messages,
            schema,
            max_tokens,
            parse,
            self.cfg.retries,
            error_prompt,
            logprobs=logprobs,
        )
        if draft is None:
            ex = call()
        else:
            ex = yield from self._streamed(call, part or 0, draft)
        step.attempts, step.model_s, step.raw, step.error = ex.attempts, ex.seconds, ex.raw, ex.error
        if ex.completion is not None:
            c = ex.completion
            step.prompt_tokens, step.completion_tokens, step.cached_tokens = (
                c.prompt_tokens,
                c.completion_tokens,
                c.cached_tokens,
            )
        self.timings["model_s"] += step.model_s
        step.observation = step.error or ""
        self.steps.append(step)
        yield StepFinished(step)
        return ex

    def _streamed(self, call: Callable[..., Exchange], part: int, draft: int) -> Iterator[Event]:
        """Run `call` in a thread and pass the reply's "text" on as it is written; returns the Exchange."""
        pieces: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        field = StreamedField("text")

        def run() -> Exchange:
            try:
                return call(on_text=lambda piece: pieces.put(field.feed(piece)))
            finally:
                pieces.put(None)

        with ThreadPoolExecutor(1, thread_name_prefix="ra-draft") as pool:
            result = pool.submit(run)
            while (text := pieces.get()) is not None:
                if text:
                    self.timings.setdefault("first_draft_s", time.perf_counter() - self.t0)
                    yield DraftToken(part, draft, text)
            return result.result()

    # -- one part -------------------------------------------------------------------------------------
    def _solve(self, part: Part) -> Iterator[Event]:
        if part.asks == "snippet":
            result = yield from self._snippet(part)
            if result is not None:
                return result
        if part.asks == "comparison":
            return (yield from self._compare(part))
        outcome = yield from self._answer(part, (part.id, 0), part.question, numbers=part.asks == "number")
        return self._result(part, outcome)

    def _result(self, part: Part, outcome: _Outcome) -> PartResult:
        if outcome.sentence is not None:
            return PartResult(part, "answered", (outcome.sentence,), tuple(outcome.drafts))
        return PartResult(part, "not_stated", (self._not_stated(part.question),), tuple(outcome.drafts))

    def _answer(self, part: Part, key: PoolKey, focus: str, *, numbers: bool) -> Iterator[Event]:
        """Answer one part (or one compared item) from its pool: draft, check, research if rejected."""
        drafts: list[Sentence] = []
        for attempt in range(self.cfg.part_retries + 1):
            lines = self._lines(key, focus)
            if lines and self._budget_left():
                sentence = yield from self._draft(part, lines, focus, numbers=numbers)
                if sentence is not None:
                    accepted = sentence.acceptance is not None and sentence.acceptance.accepted
                    if accepted or (not self.cfg.abstain_unsupported and sentence.citations):
                        return _Outcome(sentence, drafts)
                    drafts.append(sentence)
            if attempt == self.cfg.part_retries or not self._budget_left():
                break
            found_more = yield from self._research(part, key, focus, lines, drafts[-1] if drafts else None)
            if not found_more:
                break
        return _Outcome(None, drafts)

    def _draft(
        self, part: Part, lines: list[tuple[int, str]], focus: str, *, numbers: bool
    ) -> Iterator[Event]:
        """One answer call (and its self-check): the drafted sentence with its acceptance, or None."""
        offered = self._numbers(lines) if numbers else {}
        messages = self._part_messages(lines, offered, focus)
        schema = answer_schema(sorted({n for n, _ in lines}), list(offered), allowed_constants(self.question))
        # Drafts are streamed until the first checked words are out: a reader waits for nothing else.
        streams = getattr(self.backend, "streams", False) and "first_token_s" not in self.timings
        draft = len(self.steps) if streams else None
        ex = yield from self._call(
            "answer",
            part.id,
            messages,
            schema,
            self.cfg.part_max_tokens,
            lambda raw: parse_answer(raw, offered, self.question),
            "part_error.md",
            draft=draft,
        )
        reply = ex.value
        if reply is None:
            if draft is not None:
                yield DraftChecked(part.id, draft, accepted=False)
            return None
        answered = ex.raw
        if isinstance(reply, Computed):
            sentence = yield from self._computed(part, reply)
        else:
            sentence = self._checked(
                self._recited(Sentence(reply.text, reply.citations, part=part.id), lines)
            )
        check = None
        if self_check_decides(sentence, self.ledger.items, self.question):
            computed = isinstance(reply, Computed)
            check = yield from self._self_check(part, messages, answered, computed=computed)
        acceptance = accept(
            sentence,
            self.ledger.items,
            self.question,
            self_check=check,
            self_threshold=self.cfg.self_check_threshold,
        )
        if draft is not None:
            yield DraftChecked(part.id, draft, acceptance.accepted)
        return replace(sentence, acceptance=acceptance)

    def _self_check(
        self, part: Part, messages: list[Message], answered: str, *, computed: bool
    ) -> Iterator[Event]:
        """The answering model's P(yes) that its cited sentences state its answer. The conversation is the
        answer call's own plus the reply, so the server's KV cache serves it: a few tokens, not a prompt."""
        if not self.cfg.self_check:
            return None
        convo = [
            *messages,
            {"role": "assistant", "content": answered},
            {
                "role": "user",
                "content": render_prompt("check_computed.md" if computed else "check_stated.md"),
            },
        ]
        ex = yield from self._call(
            "check",
            part.id,
            convo,
            YES_NO_SCHEMA,
            self.cfg.check_max_tokens,
            lambda raw: json_object(raw).get("supported"),
            "part_error.md",
            logprobs=True,
        )
        tokens = ex.completion.logprobs if ex.completion is not None else None
        return yes_probability(tokens or [])

    def _computed(self, part: Part, reply: Computed) -> Iterator[Event]:
        """Run the computation in the sandbox (in process only where no sandbox exists) and state it."""
        comp = reply.computation
        code = comp.program()
        operands = tuple(comp.used)
        result = None
        if self.cfg.sandbox:
            result = yield from self._tool(
                "python", code, part.id, None, lambda: self.toolbox.python(code, part.id, operands)
            )
        if result is not None and result.evidence and _same_output(result.evidence[0].text, comp.value):
            computed = result.evidence[0]
        else:  # no sandbox here: the same arithmetic in process (code over the operands, not the model's)
            computed = self.ledger.add_computed(
                code, repr(comp.value), part=part.id, operands=operands, sandboxed=False
            )
        given = "; ".join(
            f"{o.text} {'(given in the question)' if o.evidence_id is None else ''}".strip() + f" = {o.name}"
            for o in comp.used
        )
        exact = ar.exact_text(comp.value / comp.scale()[1])
        rounded = ar.format_number(comp.value / comp.scale()[1])
        text = (
            f"{comp.result_text()}: {comp.shown()}"
            + (f" = {exact}" if exact != rounded else "")
            + f" ({given})."
        )
        cites = tuple(dict.fromkeys([*(o.evidence_id for o in comp.used if o.evidence_id), computed.id]))
        return self._checked(Sentence(text, cites, kind="computed", part=part.id))

    def _compare(self, part: Part) -> Iterator[Event]:
        """Each compared item answered from its own evidence, then related by code or the model."""
        sides: list[Sentence] = []
        drafts: list[Sentence] = []
        missing: list[str] = []
        for side, item in enumerate(part.items, 1):
            focus = render_prompt("part_side.md", question=part.question, item=item)
            outcome = yield from self._answer(part, (part.id, side), focus, numbers=False)
            drafts += outcome.drafts
            if outcome.sentence is None:
                missing.append(item)
            else:
                sides.append(outcome.sentence)
        if not sides:
            return PartResult(part, "not_stated", (self._not_stated(part.question),), tuple(drafts))
        sentences = list(sides)
        if missing:
            sentences.append(self._not_stated(f"{part.question.rstrip('?')}, for {' and '.join(missing)}"))
        elif part.relation in ("which", "yes_no"):
            relation = yield from self._relate(part, sides)
            if relation is not None:
                sentences.append(relation)
        return PartResult(part, "answered", tuple(sentences), tuple(drafts))

    def _relate(self, part: Part, sides: list[Sentence]) -> Iterator[Event]:
        """The relation sentence: code compares one number per side where it can (same unit, a
        comparative in the question, or equality for a yes/no); otherwise the model chooses under an enum
        of the items (or yes/no) from the accepted side sentences."""
        values = [_single_number(s.text) for s in sides]
        cites = tuple(dict.fromkeys(c for s in sides for c in s.citations))
        support = min((s.support for s in sides if s.support is not None), default=None)
        items = list(part.items)
        choice: str | None = None
        if all(values) and len({v.unit for v in values if v}) == 1:  # type: ignore[union-attr]
            nums = [v.value for v in values if v]
            if part.relation == "yes_no":
                choice = "yes" if len(set(nums)) == 1 else "no"
            elif (m := _COMPARATIVE.search(part.question)) and len(set(nums)) == len(nums):
                pick = max if m.group(1).lower() in _MAX else min
                choice = items[nums.index(pick(nums))]
        if choice is None:
            choices = ["yes", "no"] if part.relation == "yes_no" else [*items, "neither"]
            listed = "\n".join(f"- {item}: {s.text}" for item, s in zip(items, sides, strict=False))
            prompt = render_prompt(
                "relation_user.md", question=part.question, sides=listed, choices=", ".join(choices)
            )
            ex = yield from self._call(
                "relation",
                part.id,
                [{"role": "user", "content": prompt}],
                choice_schema(choices),
                self.cfg.check_max_tokens,
                lambda raw: parse_choice(raw, choices),
                "part_error.md",
            )
            choice = ex.value
        if choice is None or choice == "neither":
            return None
        both = " and ".join(items)
        if part.relation == "yes_no":
            text = f"{choice.capitalize()}, going by what the documents state for {both} (above)."
        else:
            text = f"Of {both}, the answer is {choice}."
        return Sentence(text, cites, support=support, verdict=sides[0].verdict, kind="relation", part=part.id)

    def _snippet(self, part: Part) -> Iterator[Event]:
        """The question asks to run code the documents show: run the best-ranked passage's code block."""
        if not self.cfg.sandbox:
            return None
        for ev in self._pool((part.id, 0)):
            chunk = self.agent.index.get_chunk(ev.chunk_id) if ev.chunk_id else None
            blocks = chunk.meta.get("code", []) if chunk is not None else []
            if not blocks:
                continue
            code = blocks[0]["code"]
            result = yield from self._tool(
                "python", code, part.id, None, lambda c=code: self.toolbox.python(c, part.id)
            )
            if not result.evidence:
                return None
            run = result.evidence[0]
            first = run.text.strip().splitlines()[0]
            text = f"Running the code block from passage {ev.id} prints: {first}"
            sentence = self._checked(Sentence(text, (ev.id, run.id), kind="computed", part=part.id))
            return PartResult(part, "answered", (sentence,))
        return None

    def _research(
        self, part: Part, key: PoolKey, focus: str, lines: list[tuple[int, str]], draft: Sentence | None
    ) -> Iterator[Event]:
        """A think -> act -> observe step for a part without an accepted answer; True when it found new
        evidence."""
        tools = "\n".join(render_prompt(f"action_{a}.md") for a in ("search", "read", "give_up"))
        found = "\n".join(f"[{n}] {s}" for n, s in lines) or render_prompt("research_nothing.md")
        rejected = render_prompt("research_rejected.md", answer=draft.text) if draft else ""
        messages: list[Message] = [
            {"role": "system", "content": render_prompt("research_system.md", tools=tools)},
            {
                "role": "user",
                "content": render_prompt(
                    "research_step.md", question=focus, evidence=found, rejected=rejected
                ),
            },
        ]
        readable = sorted({n for n, _ in lines if self.ledger.items[n].chunk_id})
        ex = yield from self._call(
            "think",
            part.id,
            messages,
            step_schema(readable),
            self.cfg.step_max_tokens,
            parse_step,
            "step_error.md",
        )
        step = ex.value
        if step is None or isinstance(step, GiveUp):
            return False
        self.steps[-1].thought = step.thought
        before = set(self.pools.get(key, []))
        if isinstance(step, Search):
            result = yield from self._search(step.query, part.id, key)
        else:
            result = yield from self._tool(
                "read", str(step.passage), part.id, key, lambda: self.toolbox.read(step.passage, part.id)
            )
        return any(e.id not in before for e in result.evidence)

    # -- helpers --------------------------------------------------------------------------------------
    def _pool(self, key: PoolKey) -> list[Evidence]:
        return [self.ledger.items[n] for n in self.pools.get(key, [])]

    def _lines(self, key: PoolKey, focus: str) -> list[tuple[int, str]]:
        return key_sentences(self._pool(key), focus, self.cfg.part_sentences)

    def _numbers(self, lines: list[tuple[int, str]]) -> dict[str, Candidate]:
        """The numbers a computation may use, each occurrence with its own id (phi-1's "1.3B" and
        phi-1.5's "1.3B" are two operands): the question's first (a question that gives numbers means
        them to be used), then the evidence lines' in the order shown."""
        found: dict[str, Candidate] = {}
        for ev_id, sentence in dict.fromkeys([(0, self.question), *lines]):
            for q in ar.find_quantities(sentence):
                if len(found) >= MAX_NUMBERS:
                    return found
                if _YEAR.match(q.text) and not _ABOUT_YEARS.search(self.question):
                    continue
                key = f"q{len(found) + 1}" if ev_id == 0 else f"n{len(found) + 1}"
                found[key] = Candidate(key, q, ev_id or None, sentence)
        return found

    def _part_messages(
        self, lines: list[tuple[int, str]], numbers: Mapping[str, Candidate], focus: str
    ) -> list[Message]:
        """A short prompt; the system text is the same for every part (the server reuses its KV cache)."""
        shown_focus = render_prompt("part_focus.md", focus=focus) if focus != self.question else ""
        listed_numbers = ""
        if numbers:
            listed_numbers = render_prompt(
                "part_numbers.md",
                numbers="\n".join(
                    f"{k} = {c.quantity.text}"
                    + (f" (sentence [{c.evidence_id}])" if c.evidence_id else " (the question)")
                    for k, c in numbers.items()
                ),
            )
        budget = self.backend.context_tokens - self.cfg.part_max_tokens
        shown = list(lines)
        while True:
            evidence = "\n".join(f"[{n}] {s}" for n, s in shown)
            user = render_prompt(
                "part_user.md",
                evidence=evidence,
                numbers=listed_numbers,
                question=self.question,
                focus=shown_focus,
            )
            messages: list[Message] = [
                {"role": "system", "content": render_prompt("answer_system.md")},
                {"role": "user", "content": user},
            ]
            if prompt_tokens(messages) <= budget or len(shown) == 1:
                return messages
            shown.pop()  # the lowest-ranked lines go first (key_sentences puts the best first)

    def _recited(self, sentence: Sentence, lines: list[tuple[int, str]]) -> Sentence:
        """Bookkeeping code can do better than a small model: when a name or number of the sentence is in
        a shown passage it did not cite, that passage is added to its citations (at most MAX_CITED in
        all). A name found in no shown passage stays missing, and anchoring rejects the sentence."""
        cites = list(sentence.citations)  # an unseen number stays, to be dropped and counted later
        missing = anchoring(sentence, self.ledger.items, self.question)
        for ev_id in dict.fromkeys(n for n, _ in lines):
            if not missing or len(cites) >= MAX_CITED:
                break
            if ev_id in cites:
                continue
            fewer = anchoring(replace(sentence, citations=(*cites, ev_id)), self.ledger.items, self.question)
            if len(fewer) < len(missing):
                cites, missing = [*cites, ev_id], fewer
        return replace(sentence, citations=tuple(cites)) if not missing else sentence

    def _checked(self, sentence: Sentence) -> Sentence:
        t = time.perf_counter()
        [kept], _, invalid = resolve_citations([sentence], self.ledger.items)
        self.invalid_citations += invalid
        kept = needed_citations(
            self.agent.checker, kept, self.ledger.items, self.question, threshold=self.agent.threshold
        )
        [scored] = score_sentences(
            self.agent.checker,
            [kept],
            self.ledger.items,
            threshold=self.agent.threshold,
            weak_margin=self.agent.weak_margin,
        )
        self.timings["check_s"] += time.perf_counter() - t
        return scored

    def _budget_left(self) -> bool:
        return self.model_calls < self.cfg.max_steps

    def _not_stated(self, what: str) -> Sentence:
        text = render_prompt("not_stated.md", part=what.rstrip("?") or self.question.rstrip("?"))
        return Sentence(text, (), kind="not_stated")

    # -- the answer -----------------------------------------------------------------------------------
    def _compose(self, results: list[PartResult]) -> Answer:
        answered = [r for r in results if r.status == "answered"]
        sentences = [s for r in results for s in r.sentences]
        evidence: dict[int, Evidence] = self.ledger.items
        self.timings["total_s"] = time.perf_counter() - self.t0
        answer = Answer(
            question=self.question,
            text=ABSTAIN_MESSAGE,
            abstained=not answered,
            steps=self.steps,
            timings=dict(self.timings),
            plan=self.plan,
            parts=results,
            evidence=list(evidence.values()),
            invalid_citations=self.invalid_citations,
        )
        if not answered:
            drafts = [d for r in results for d in r.drafts]
            answer.abstain_reason = "no-evidence" if not evidence else "unsupported" if drafts else "model"
            if drafts:  # keep the rejected drafts inspectable
                answer.sentences, answer.citations, _ = resolve_citations(drafts, evidence)
            return answer
        _, answer.citations, _ = resolve_citations(sentences, evidence)
        answer.text, answer.sentences = render(sentences), sentences
        return answer


def _single_number(text: str) -> ar.Quantity | None:
    """The one digit-written number of a side's sentence (None when it has none or several values)."""
    found = [q for q in ar.find_quantities(text) if q.text[:1].isdigit()]
    values = {q.value for q in found}
    return found[0] if len(values) == 1 else None


def _same_output(output: str, value: float) -> bool:
    """The sandbox printed the value code computed (a mismatch means the program did not run as built)."""
    try:
        return ar.same_value(float(output.strip()), value)
    except ValueError:
        return False


def final_answer(events: Iterator[Event]) -> Answer:
    """Drain an event stream and return its answer (for callers that do not stream)."""
    answer = None
    for event in events:
        if isinstance(event, FinalAnswer):
            answer = event.answer
    if answer is None:
        raise RuntimeError("the run ended without a final answer")
    return answer
