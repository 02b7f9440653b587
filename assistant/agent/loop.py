"""Agent v2: plan the question, gather evidence per part, answer each part from its own evidence, compute
from cited numbers, abstain per part.

Shaped for a small model, which does one easy constrained thing well: rules cut the question into parts
(the model is asked only when they cannot name a comparison's items); every part is searched on its own;
the model writes one short cited sentence per part from that part's few best sentences, under a schema
whose citation numbers are an enum of the evidence seen. The one support scorer checks each sentence;
a part without support gets research steps (think -> act -> observe: a new search or a read) within the
step budget, and is said to be not stated when they do not help. Numbers are picked by the model from an
enum of the numbers the passages contain and computed by code in the sandbox, never by the model.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from assistant.agent.citations import key_sentences, render, render_sentence, resolve_citations
from assistant.agent.compute import OperandPick, operand_request, operands_from
from assistant.agent.config import AgentSettings
from assistant.agent.plan import comparison_plan, expects_number, plan_question, single_part
from assistant.agent.prompts import render as render_prompt
from assistant.agent.quantities import SYMBOLS, local_output, program, result_unit
from assistant.agent.records import (
    ABSTAIN_MESSAGE,
    Answer,
    AnswerToken,
    Event,
    Evidence,
    EvidenceFound,
    FinalAnswer,
    Part,
    PartResult,
    Plan,
    PlanMade,
    Sentence,
    Step,
    StepFinished,
    StepStarted,
)
from assistant.agent.replies import json_object
from assistant.agent.tools import Toolbox, ToolResult
from assistant.grounding.support import score_sentences
from index.errors import UserFacingError

if TYPE_CHECKING:
    from assistant.agent.backends import ChatBackend
    from assistant.grounding.base import GroundingChecker
    from assistant.llm.client import Message
    from assistant.sandbox import SandboxLimits
    from index.search import HybridIndex

T = TypeVar("T")
CHARS_PER_TOKEN = 3.5  # conservative for English prose with a BPE vocabulary
RESEARCH_ACTIONS = ("search", "read", "give_up")
# Fragments ("2", "CLIP guidance") say too little for the checker to judge: it scored such dev answers as
# supported when they were wrong. A sentence names what it answers.
MIN_ANSWER_WORDS = 4


class QuestionTooLong(UserFacingError):
    """A question past `agent.max_question_chars`."""


def check_question(question: str, settings: AgentSettings) -> str:
    """The question stripped; a one-line error for an empty or over-long one (before any model starts)."""
    q = question.strip()
    if not q:
        raise QuestionTooLong(
            "empty question: pass it in quotes, e.g. ra ask 'What is classifier-free guidance?'"
        )
    if len(q) > settings.max_question_chars:
        raise QuestionTooLong(
            f"the question has {len(q):,} characters, more than agent.max_question_chars "
            f"({settings.max_question_chars:,}): ask something shorter or raise the limit"
        )
    return q


def part_schema(evidence_ids: Sequence[int]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "text": {"type": "string", "maxLength": 300},
            "citations": {
                "type": "array",
                "minItems": 1,
                "maxItems": 2,
                "items": {"type": "integer", "enum": list(evidence_ids)},
            },
        },
        "required": ["text", "citations"],
        "additionalProperties": False,
    }


def step_schema(actions: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "thought": {"type": "string", "maxLength": 300},
            "action": {"type": "string", "enum": list(actions)},
            "input": {"type": "string", "maxLength": 200},
        },
        "required": ["thought", "action", "input"],
        "additionalProperties": False,
    }


@dataclass(frozen=True, slots=True)
class PartReply:
    text: str
    citations: tuple[int, ...]


def parse_part(raw: str) -> PartReply:
    """A part answer from the model's JSON; ValueError saying what is wrong.

    There is no "found" flag: a 0.5B model set one to false while writing the right answer next to it
    (dev traces), so whether a part is answered is the support scorer's call, not the model's."""
    data = json_object(raw)
    text, cites = data.get("text"), data.get("citations")
    if not isinstance(text, str):
        raise ValueError('"text" must be a string')
    if len(text.split()) < MIN_ANSWER_WORDS:
        raise ValueError(
            f'"text" must be a complete sentence of at least {MIN_ANSWER_WORDS} words, not a fragment'
        )
    if not isinstance(cites, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in cites):
        raise ValueError('"citations" must be a list of sentence numbers')
    return PartReply(text.strip(), tuple(dict.fromkeys(cites)))


def parse_step(raw: str, actions: Sequence[str]) -> tuple[str, str, str]:
    """(thought, action, input) from a research step reply; ValueError saying what is wrong."""
    data = json_object(raw)
    fields = {k: data.get(k) for k in ("thought", "action", "input")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise ValueError('"thought", "action" and "input" must all be strings')
    thought, action, arg = (str(fields[k]) for k in ("thought", "action", "input"))
    if action not in actions:
        raise ValueError(f'"{action}" is not one of the actions')
    if action != "give_up" and not arg.strip():
        raise ValueError(f"the input of {action} is empty")
    return thought, action, arg


def prompt_tokens(messages: Sequence[Message]) -> int:
    """An estimate of a prompt's tokens, erring high (the budget check needs no server round trip)."""
    return int(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN) + 8 * len(messages)


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
        yield from _Run(self, check_question(question, self.settings)).events()


class _Run:
    """State of one question: the ledger (in the toolbox), steps, part results and the clock."""

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
        self.pools: dict[int | None, list[int]] = {}  # evidence ids each part's searches showed, in order

    # -- the run --------------------------------------------------------------------------------------
    def events(self) -> Iterator[Event]:
        plan = yield from self._plan()
        self.plan = plan
        yield PlanMade(plan)
        for part in plan.parts:
            for query in part.queries:
                yield from self._tool(
                    "search",
                    query,
                    part.id,
                    lambda q=query, p=part.id: self.toolbox.search(q, p, planned=True),
                )
        results: list[PartResult] = []
        held: list[str] = []  # not-stated parts wait until some part is answered (else the run abstains)
        for part in plan.parts:
            if part.refers_back and results:
                context = " ".join(r.sentence.text for r in results if r.status == "answered")
                query = f"{part.focus.rstrip('?')} {context}"[:300]
                yield from self._tool(
                    "search",
                    query,
                    part.id,
                    lambda q=query, p=part.id: self.toolbox.search(q, p, planned=True),
                )
            result = yield from self._solve(part)
            results.append(result)
            held.append(render_sentence(result.sentence))
            if result.status == "answered" or "first_token_s" in self.timings:
                self.timings.setdefault("first_token_s", time.perf_counter() - self.t0)
                yield AnswerToken(("" if len(results) == len(held) else " ") + " ".join(held))
                held = []
        yield FinalAnswer(self._compose(results))

    def _plan(self) -> Iterator[Event]:
        made = plan_question(self.question)
        if isinstance(made, Plan):
            return made
        items, _ = yield from self._call(
            "plan", None, made.messages, made.schema, 96, made.parse, "plan_error.md"
        )
        return comparison_plan(self.question, items, "model") if items else single_part(self.question)

    def _tool(
        self, action: str, arg: str, part: int | None, run: Callable[[], ToolResult]
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
        pool = self.pools.setdefault(part, [])
        pool += [e.id for e in result.evidence if e.id not in pool]
        self.steps.append(step)
        yield StepFinished(step)
        if step.new_evidence:
            yield EvidenceFound(part, tuple(self.ledger.items[n] for n in step.new_evidence))
        return result

    def _call(
        self,
        action: str,
        part: int | None,
        messages: list[Message],
        schema: dict[str, Any],
        max_tokens: int,
        parse: Callable[[str], T],
        error_prompt: str,
        extra: dict[str, str] | None = None,
    ) -> Iterator[Event]:
        """One model step under a schema, re-asked with the parse error; returns (value or None, step)."""
        index = len(self.steps)
        yield StepStarted(index, action, part)
        self.model_calls += 1
        step = Step(index, "", action, messages[-1]["content"][-200:], part=part)
        step.prompt_chars = sum(len(m["content"]) for m in messages)
        step.prompt_sha = hashlib.sha256(json.dumps(messages).encode()).hexdigest()[:16]
        value: T | None = None
        convo = list(messages)
        for attempt in range(1, self.cfg.retries + 2):
            step.attempts = attempt
            t = time.perf_counter()
            reply = self.backend.complete(convo, schema, max_tokens=max_tokens)
            step.model_s += time.perf_counter() - t
            step.raw, step.prompt_tokens, step.completion_tokens = (
                reply.text,
                reply.prompt_tokens,
                reply.completion_tokens,
            )
            try:
                value = parse(reply.text)
                step.error = None
                break
            except ValueError as exc:
                step.error = str(exc)
                hint = render_prompt(error_prompt, error=exc, **(extra or {}))
                convo = [
                    *messages,
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": hint},
                ]
        self.timings["model_s"] += step.model_s
        step.observation = step.error or ""
        self.steps.append(step)
        yield StepFinished(step)
        return value, step

    # -- one part -------------------------------------------------------------------------------------
    def _solve(self, part: Part) -> Iterator[Event]:
        if part.kind == "compute":
            result = yield from self._compute(part)
            if result is not None:
                return result
        if part.kind == "snippet":
            result = yield from self._snippet(part)
            if result is not None:
                return result
        return (yield from self._answer_fact(part))

    def _answer_fact(self, part: Part) -> Iterator[Event]:
        draft: Sentence | None = None
        for attempt in range(self.cfg.part_retries + 1):
            lines = self._lines(part)
            if lines and self._budget_left():
                reply, _ = yield from self._call(
                    "answer",
                    part.id,
                    self._part_messages(part, lines),
                    part_schema(sorted({n for n, _ in lines})),
                    self.cfg.part_max_tokens,
                    parse_part,
                    "part_error.md",
                )
                if reply is not None and reply.text:
                    sentence = self._checked(Sentence(reply.text, reply.citations, part=part.id))
                    answers_it = not expects_number(part.focus or self.question) or any(
                        c.isdigit() for c in reply.text
                    )
                    if sentence.citations and answers_it and self._accepted(sentence):
                        return PartResult(part, "answered", sentence)
                    draft = sentence
            if attempt == self.cfg.part_retries or not self._budget_left():
                break
            found_more = yield from self._research(part, lines, draft)
            if not found_more:
                break
        return self._not_stated(part, draft)

    def _research(self, part: Part, lines: list[tuple[int, str]], draft: Sentence | None) -> Iterator[Event]:
        """A think -> act -> observe step for a part without support; True when it found new evidence."""
        tools = "\n".join(render_prompt(f"action_{a}.md") for a in RESEARCH_ACTIONS)
        found = "\n".join(f"[{n}] {s}" for n, s in lines) or render_prompt("research_nothing.md")
        rejected = render_prompt("research_rejected.md", answer=draft.text) if draft else ""
        messages: list[Message] = [
            {"role": "system", "content": render_prompt("research_system.md", tools=tools)},
            {
                "role": "user",
                "content": render_prompt(
                    "research_step.md", question=self._part_question(part), evidence=found, rejected=rejected
                ),
            },
        ]
        parsed, step = yield from self._call(
            "think",
            part.id,
            messages,
            step_schema(RESEARCH_ACTIONS),
            self.cfg.step_max_tokens,
            lambda raw: parse_step(raw, RESEARCH_ACTIONS),
            "step_error.md",
            {"actions": ", ".join(RESEARCH_ACTIONS)},
        )
        if parsed is None:
            return False
        thought, action, arg = parsed
        step.thought, step.input = thought, arg
        if action == "give_up":
            return False
        if action == "read" and not self._known_passage(arg):
            # A small model often writes the action's description instead of a number: read around the
            # passage its draft cited (or the part's best one), which is what a read is for here.
            cited = [n for n in (draft.citations if draft else ()) if self.ledger.items[n].chunk_id]
            pool = [e.id for e in self._pool(part) if e.chunk_id]
            arg = str((cited or pool or [0])[0])
        run = self.toolbox.search if action == "search" else self.toolbox.read
        before = set(self.pools.get(part.id, []))
        result = yield from self._tool(action, arg, part.id, lambda: run(arg, part.id))
        return any(e.id not in before for e in result.evidence)

    def _compute(self, part: Part) -> Iterator[Event]:
        """Operands picked by the model from the passages' numbers, the arithmetic run as code."""
        assert part.operation is not None
        request = operand_request(part, self._lines(part), self.question)
        if request is None or not self._budget_left():
            return None
        pick, _ = yield from self._call(
            "operands", part.id, request.messages, request.schema, 160, request.parse, "operands_error.md"
        )
        if not isinstance(pick, OperandPick):
            return None
        a, b = operands_from(pick, request, part)
        code = program(part.operation, a, b)
        result = None
        if self.cfg.sandbox:
            result = yield from self._tool(
                "python", code, part.id, lambda: self.toolbox.python(code, part.id, (a, b))
            )
        if result is not None and result.evidence:
            computed = result.evidence[0]
        else:  # no sandbox here: the same arithmetic in process (our code over two floats, not the model's)
            output = local_output(part.operation, a, b)
            computed = self.ledger.add_computed(code, output, part=part.id, operands=(a, b), sandboxed=False)
        unit = result_unit(part.operation, a, b)
        text = (
            f"{computed.text}{' ' + unit if unit else ''}, computed as {a.text} ({a.name}) "
            f"{SYMBOLS[part.operation]} {b.text} ({b.name})."
        )
        cites = tuple(dict.fromkeys([a.evidence_id, b.evidence_id, computed.id]))
        sentence = self._checked(Sentence(text, cites, kind="computed", part=part.id))
        return PartResult(part, "answered", sentence) if self._accepted(sentence) else None

    def _snippet(self, part: Part) -> Iterator[Event]:
        """The question asks to run code the documents show: run the best-ranked passage's code block."""
        if not self.cfg.sandbox:
            return None
        for ev in self._pool(part):
            chunk = self.agent.index.get_chunk(ev.chunk_id) if ev.chunk_id else None
            blocks = chunk.meta.get("code", []) if chunk is not None else []
            if not blocks:
                continue
            code = blocks[0]["code"]
            result = yield from self._tool(
                "python", code, part.id, lambda c=code: self.toolbox.python(c, part.id)
            )
            if not result.evidence:
                return None
            run = result.evidence[0]
            first = run.text.strip().splitlines()[0]
            text = f"Running the code block from passage {ev.id} prints: {first}"
            sentence = self._checked(Sentence(text, (ev.id, run.id), kind="computed", part=part.id))
            return PartResult(part, "answered", sentence)
        return None

    # -- helpers --------------------------------------------------------------------------------------
    def _pool(self, part: Part) -> list[Evidence]:
        return [self.ledger.items[n] for n in self.pools.get(part.id, [])]

    def _lines(self, part: Part) -> list[tuple[int, str]]:
        evidence = self._pool(part)
        return key_sentences(
            evidence, part.queries[0] if part.queries else part.question, self.cfg.part_sentences
        )

    def _part_question(self, part: Part) -> str:
        return f"{self.question} (only this part: {part.focus})" if part.focus else self.question

    def _part_messages(self, part: Part, lines: list[tuple[int, str]]) -> list[Message]:
        """A fresh, short prompt; the system text is the same for every part (the server reuses its KV cache)."""
        focus = "\n" + render_prompt("part_focus.md", focus=part.focus) if part.focus else ""
        budget = self.backend.context_tokens - self.cfg.part_max_tokens
        shown = list(lines)
        while True:
            listed = "\n".join(f"[{n}] {s}" for n, s in shown)
            user = render_prompt("part_user.md", evidence=listed, question=self.question, focus=focus)
            messages: list[Message] = [
                {"role": "system", "content": render_prompt("part_system.md")},
                {"role": "user", "content": user},
            ]
            if prompt_tokens(messages) <= budget or len(shown) == 1:
                return messages
            shown.pop()  # the lowest-ranked lines go first; key_sentences keeps passage order

    def _checked(self, sentence: Sentence) -> Sentence:
        t = time.perf_counter()
        kept, _, invalid = resolve_citations([sentence], self.ledger.items)
        self.invalid_citations += invalid
        [scored] = score_sentences(
            self.agent.checker,
            kept,
            self.ledger.items,
            threshold=self.agent.threshold,
            weak_margin=self.agent.weak_margin,
        )
        self.timings["check_s"] += time.perf_counter() - t
        return scored

    def _known_passage(self, ref: str) -> bool:
        ref = ref.strip().strip("[]")
        return ref.isdigit() and int(ref) in self.ledger.items

    def _accepted(self, sentence: Sentence) -> bool:
        """Only a supported sentence stands: accepting weak ones as well (tried, with a check that the
        cited passages name what the part asks about) turned false abstentions into wrong answers and let
        unanswerable questions through on the dev set."""
        if self.agent.checker is None or not self.cfg.abstain_unsupported:
            return bool(sentence.citations)
        return sentence.verdict == "supported"

    def _budget_left(self) -> bool:
        return self.model_calls < self.cfg.max_steps

    def _not_stated(self, part: Part, draft: Sentence | None) -> PartResult:
        text = (
            f"The documents do not answer this part: “{part.focus.rstrip('?') or self.question.rstrip('?')}”."
        )
        return PartResult(part, "not_stated", Sentence(text, (), kind="not_stated", part=part.id), draft)

    # -- the answer -----------------------------------------------------------------------------------
    def _compose(self, results: list[PartResult]) -> Answer:
        answered = [r for r in results if r.status == "answered"]
        sentences = [r.sentence for r in results]
        evidence: dict[int, Evidence] = self.ledger.items
        if not answered:
            reason = (
                "no-evidence" if not evidence else "unsupported" if any(r.draft for r in results) else "model"
            )
            answer = self._finish(ABSTAIN_MESSAGE, abstained=True)
            answer.abstain_reason = reason
            drafts = [r.draft for r in results if r.draft is not None]
            if drafts:  # keep the rejected drafts inspectable
                answer.sentences, answer.citations, _ = resolve_citations(drafts, evidence)
            answer.parts = results
            return answer
        _, citations, _ = resolve_citations(sentences, evidence)
        answer = self._finish(render(sentences), abstained=False)
        answer.sentences, answer.citations, answer.parts = sentences, citations, results
        return answer

    def _finish(self, text: str, *, abstained: bool, error: str | None = None) -> Answer:
        self.timings["total_s"] = time.perf_counter() - self.t0
        return Answer(
            question=self.question,
            text=text,
            abstained=abstained,
            steps=self.steps,
            timings=dict(self.timings),
            error=error,
            abstain_reason="error" if error else None,
            plan=self.plan,
            evidence=list(self.ledger.items.values()),
            invalid_citations=self.invalid_citations,
        )


def final_answer(events: Iterator[Event]) -> Answer:
    """Drain an event stream and return its answer (for callers that do not stream)."""
    answer = None
    for event in events:
        if isinstance(event, FinalAnswer):
            answer = event.answer
    if answer is None:
        raise RuntimeError("the run ended without a final answer")
    return answer
