"""The ReAct loop: search first, then model steps under a JSON schema, then a separate cited answer.

Shaped for small models: the question itself is searched before the first step (saves a step); each step
is constrained to {thought, action, input} with the actions as an enum, so the format cannot derail; the
final answer is its own constrained generation whose citation numbers are an enum of the evidence seen,
which makes an invalid citation impossible on servers that enforce schemas (and dropped+counted elsewhere).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assistant.agent.citations import key_sentences, parse_sentences, render, resolve_citations, visible_text
from assistant.agent.config import AgentSettings
from assistant.agent.prompts import prompt_text
from assistant.agent.prompts import render as render_prompt
from assistant.agent.records import (
    ABSTAIN_MESSAGE,
    Answer,
    AnswerToken,
    Event,
    Evidence,
    FinalAnswer,
    Sentence,
    Step,
    StepFinished,
    StepStarted,
)
from assistant.agent.tools import ALREADY_SEARCHED, Toolbox, normalise_query
from assistant.grounding.base import judge
from assistant.llm.client import Message

if TYPE_CHECKING:
    from assistant.agent.backends import ChatBackend
    from assistant.grounding.base import GroundingChecker
    from assistant.sandbox import SandboxLimits
    from index.search import HybridIndex

CHARS_PER_TOKEN = 3.5  # conservative for English prose with a BPE vocabulary
_SHORT_OBSERVATION = 240  # what an old observation is cut to when the prompt is over budget


def step_schema(actions: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "thought": {"type": "string"},
            "action": {"type": "string", "enum": list(actions)},
            "input": {"type": "string"},
        },
        "required": ["thought", "action", "input"],
        "additionalProperties": False,
    }


def answer_schema(evidence_ids: Sequence[int]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "abstain": {"type": "boolean"},
            "sentences": {
                "type": "array",
                "maxItems": 4,
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "citations": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 3,
                            "items": {"type": "integer", "enum": list(evidence_ids)},
                        },
                    },
                    "required": ["text", "citations"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["abstain", "sentences"],
        "additionalProperties": False,
    }


def parse_step(raw: str, actions: Sequence[str]) -> tuple[str, str, str]:
    """(thought, action, input) from a model reply; raises ValueError saying what is wrong."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"it is not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("it is not a JSON object")
    fields = {k: data.get(k) for k in ("thought", "action", "input")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise ValueError('"thought", "action" and "input" must all be strings')
    if fields["action"] not in actions:
        raise ValueError(f'"{fields["action"]}" is not a tool')
    if fields["action"] != "finish" and not fields["input"].strip():
        raise ValueError(f"the input of {fields['action']} is empty")
    return fields["thought"], fields["action"], fields["input"]


@dataclass
class _Turn:
    """A transcript message; observations are the ones shortened first when the prompt is too long."""

    message: Message
    observation: bool = False


def _tokens(messages: Sequence[Message]) -> int:
    return int(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN)


class ResearchAgent:
    """Answers one question at a time over `index` with `backend`; `run` yields the events of a run."""

    def __init__(
        self,
        backend: ChatBackend,
        index: HybridIndex,
        settings: AgentSettings | None = None,
        sandbox_limits: SandboxLimits | None = None,
        checker: GroundingChecker | None = None,
        weak_margin: float = 0.15,
    ) -> None:
        self.backend = backend
        self.index = index
        self.settings = settings or AgentSettings()
        self.sandbox_limits = sandbox_limits
        self.checker = checker
        self.weak_margin = weak_margin

    def run(self, question: str) -> Iterator[Event]:
        run = _Run(self, question)
        yield from run.events()


class _Run:
    """State of one question: transcript, steps, evidence and the clock."""

    def __init__(self, agent: ResearchAgent, question: str) -> None:
        self.agent = agent
        self.backend = agent.backend
        self.cfg = agent.settings
        self.question = question.strip()
        self.toolbox = Toolbox(
            agent.index,
            k=self.cfg.search_k,
            sandbox=self.cfg.sandbox,
            sandbox_limits=agent.sandbox_limits,
            observation_chars=self.cfg.observation_chars,
        )
        self.tools = self.toolbox.tools()
        self.actions = list(self.tools)
        self.steps: list[Step] = []
        self.t0 = time.perf_counter()
        self.timings: dict[str, float] = {"model_s": 0.0, "tools_s": 0.0}
        tool_lines = "\n".join(f"- {name}: {t.description}" for name, t in self.tools.items())
        system = render_prompt("react_system.md", tools=tool_lines, max_steps=self.cfg.max_steps)
        self.turns = [_Turn({"role": "system", "content": system})]

    # -- the run --------------------------------------------------------------------------------------
    def events(self) -> Iterator[Event]:
        # The question is searched before the first model step. Its passages go into the question
        # message rather than a scripted assistant turn, which a small model would only imitate.
        first = Step(0, prompt_text("first_thought.md"), "search", self.question)
        yield StepStarted(0)
        self._run_tool(first)
        question = render_prompt(
            "react_question.md",
            question=self.question,
            observation=first.observation,
            max_steps=self.cfg.max_steps,
        )
        self.turns.append(_Turn({"role": "user", "content": question}, observation=True))
        yield StepFinished(first)
        notes = ""
        repeats = 0
        done: set[tuple[str, str]] = set()
        for index in range(1, self.cfg.max_steps + 1):
            yield StepStarted(index)
            step, error = self._decide(index)
            if error is not None:
                yield FinalAnswer(self._finish(ABSTAIN_MESSAGE, abstained=True, error=error))
                return
            assert step is not None
            if step.action == "finish":
                notes = step.input
                self.steps.append(step)
                yield StepFinished(step)
                break
            key = (step.action, normalise_query(step.input))
            repeated = key in done
            done.add(key)
            self._act(step, repeated)
            yield StepFinished(step)
            # A model that repeats a step it was told it already took is stuck: answer instead.
            repeats = repeats + 1 if repeated or step.observation.startswith(ALREADY_SEARCHED) else 0
            if repeats == 2:
                break
        yield from self._answer(notes)

    def _run_tool(self, step: Step) -> None:
        t = time.perf_counter()
        step.observation = str(self.tools[step.action].invoke(step.input))
        step.figures, self.toolbox.figures = self.toolbox.figures, []
        step.tool_s = time.perf_counter() - t
        self.timings["tools_s"] += step.tool_s
        self.steps.append(step)

    def _act(self, step: Step, repeated: bool = False) -> None:
        """Run the step's tool (unless it repeats an earlier step) and append step and observation
        to the transcript."""
        if repeated and step.action != "search":  # the search tool answers repeats itself
            step.observation = prompt_text("repeated_step.md")
            self.steps.append(step)
        else:
            self._run_tool(step)
        reply = json.dumps({"thought": step.thought, "action": step.action, "input": step.input})
        observation = render_prompt(
            "observation.md",
            observation=step.observation,
            step=step.index + 1,
            max_steps=self.cfg.max_steps,
            question=self.question,
        )
        self.turns.append(_Turn({"role": "assistant", "content": reply}))
        self.turns.append(_Turn({"role": "user", "content": observation}, observation=True))

    def _decide(self, index: int) -> tuple[Step | None, str | None]:
        """Ask for the next step, re-asking with the parse error after invalid replies."""
        schema = step_schema(self.actions)
        feedback: list[Message] = []
        error = ""
        for attempt in range(1, self.cfg.retries + 2):
            t = time.perf_counter()
            messages = self._fit(self.cfg.step_max_tokens) + feedback
            raw = self.backend.complete(messages, schema, max_tokens=self.cfg.step_max_tokens)
            model_s = time.perf_counter() - t
            self.timings["model_s"] += model_s
            try:
                thought, action, arg = parse_step(raw, self.actions)
            except ValueError as exc:
                error = str(exc)
                hint = render_prompt("format_error.md", error=error, actions=", ".join(self.actions))
                feedback = [{"role": "assistant", "content": raw}, {"role": "user", "content": hint}]
                continue
            return Step(index, thought, action, arg, model_s=model_s, attempts=attempt), None
        attempts = self.cfg.retries + 1
        return None, (
            f"the model gave no valid step after {attempts} attempts (last problem: {error}); "
            "try again, rephrase the question or use a larger model"
        )

    def _fit(self, reserve: int) -> list[Message]:
        """The transcript within the token budget (less `reserve` for the reply); the oldest
        observations are shortened first."""
        messages = [dict(t.message) for t in self.turns]
        budget = self.cfg.context_tokens - reserve
        for i, turn in enumerate(self.turns):
            if _tokens(messages) <= budget:
                break
            if turn.observation:
                text = turn.message["content"]
                messages[i]["content"] = text[:_SHORT_OBSERVATION] + " … (shortened)"
        return messages

    # -- the answer -----------------------------------------------------------------------------------
    def _answer(self, notes: str) -> Iterator[Event]:
        evidence = self.toolbox.evidence.items
        if not evidence:
            answer = self._finish(ABSTAIN_MESSAGE, abstained=True)
            answer.abstain_reason = "no-evidence"
            yield FinalAnswer(answer)
            return
        messages = self._answer_messages(list(evidence.values()), notes)
        schema = answer_schema(list(evidence))
        t = time.perf_counter()
        error = ""
        for _ in range(self.cfg.retries + 1):
            raw = ""
            shown = ""
            for delta in self.backend.stream(messages, schema, max_tokens=self.cfg.answer_max_tokens):
                raw += delta
                now = visible_text(raw)
                if now != shown:
                    self.timings.setdefault("first_token_s", time.perf_counter() - self.t0)
                    yield AnswerToken(now[len(_common_prefix(shown, now)) :])
                    shown = now
            try:
                data = json.loads(raw)
                sentences = parse_sentences(data)
                abstain = bool(data.get("abstain"))
            except ValueError as exc:
                error = f"it is not valid ({exc})"
                messages = [
                    *messages,
                    {"role": "assistant", "content": raw},
                    {"role": "user", "content": render_prompt("answer_error.md", error=error)},
                ]
                continue
            self.timings["answer_s"] = time.perf_counter() - t
            yield FinalAnswer(self._cited(sentences, abstain, evidence))
            return
        message = f"the model gave no valid answer after {self.cfg.retries + 1} attempts ({error}); try again"
        yield FinalAnswer(self._finish(ABSTAIN_MESSAGE, abstained=True, error=message))

    def _answer_messages(self, evidence: list[Evidence], notes: str) -> list[Message]:
        """A fresh, short prompt: the evidence sentences closest to the question, not the transcript,
        since a small model answers better from a few focused lines."""
        lines = key_sentences(evidence, self.question, self.cfg.answer_sentences)
        listed = "\n".join(f"[{ev_id}] {sentence}" for ev_id, sentence in lines)
        user = render_prompt("answer_user.md", evidence=listed, notes=notes or "none", question=self.question)
        return [
            {"role": "system", "content": prompt_text("answer_system.md")},
            {"role": "user", "content": user},
        ]

    def _cited(self, sentences: list[Sentence], abstain: bool, evidence: dict[int, Evidence]) -> Answer:
        kept, citations, invalid = resolve_citations(sentences, evidence)
        reason = "model" if abstain else "uncited" if not citations else None
        if reason is None and self.agent.checker is not None:
            kept = self._checked(kept, evidence)
            if self.cfg.abstain_unsupported and not any(s.verdict == "supported" for s in kept):
                reason = "unsupported"
        if reason is not None:
            # An answer that cites nothing, or none of whose sentences its citations support (weak support
            # is how small models' guesses from a nearby passage score), is not grounded: abstain.
            answer = self._finish(ABSTAIN_MESSAGE, abstained=True)
            answer.abstain_reason = reason
            if reason == "unsupported":  # keep the rejected draft inspectable
                answer.sentences, answer.citations = kept, citations
        else:
            answer = self._finish(render(kept), abstained=False)
            answer.sentences, answer.citations = kept, citations
        answer.invalid_citations = invalid
        return answer

    def _checked(self, sentences: list[Sentence], evidence: dict[int, Evidence]) -> list[Sentence]:
        """Each sentence with its support by the evidence it cites, joined (ALCE's citation recall)."""
        assert self.agent.checker is not None
        t = time.perf_counter()
        pairs = [("\n\n".join(evidence[n].text for n in s.citations), s.text) for s in sentences]
        verdicts = judge(self.agent.checker, pairs, self.agent.weak_margin)
        self.timings["check_s"] = time.perf_counter() - t
        return [
            Sentence(s.text, s.citations, round(v.score, 4), v.verdict)
            for s, v in zip(sentences, verdicts, strict=True)
        ]

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
        )


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


def final_answer(events: Iterator[Event]) -> Answer:
    """Drain an event stream and return its answer (for callers that do not stream)."""
    answer = None
    for event in events:
        if isinstance(event, FinalAnswer):
            answer = event.answer
    if answer is None:
        raise RuntimeError("the run ended without a final answer")
    return answer
