"""`ra ask` (one cited answer, streamed) and `ra chat` (a conversation with history)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from assistant.agent.records import (
    Answer,
    AnswerToken,
    DraftChecked,
    DraftToken,
    Event,
    Evidence,
    EvidenceFound,
    FinalAnswer,
    PlanMade,
    QuestionRewritten,
    Step,
    StepFinished,
    StepStarted,
)
from assistant.cli.common import console, fail, note, out, print_json, warn
from assistant.cli.index_cmds import CollectionOpt, IndexOpt, JsonOpt
from assistant.cli.sources import citations_bibtex, source_line
from assistant.cli.terminal import terminal_safe
from assistant.settings import Settings, load_settings
from index.documents import display_path
from index.errors import UserFacingError

LLMOpt = Annotated[
    str | None, typer.Option("--llm", help="model for the embedded server: packaged name, .gguf or hub id")
]
URLOpt = Annotated[
    str | None, typer.Option("--llm-url", help="OpenAI-compatible server URL, e.g. from `ra serve`")
]
CheckerOpt = Annotated[
    str | None,
    typer.Option("--checker", help="grounding checker for support badges: minilm, align, llm or none"),
]
BibtexOpt = Annotated[bool, typer.Option("--bibtex", help="also print BibTeX entries of the cited documents")]
TraceOpt = Annotated[
    Path | None,
    typer.Option("--trace", help="write the run as JSON lines (plan, steps, evidence, parts) to this file"),
]
NoServiceOpt = Annotated[
    bool,
    typer.Option("--no-service", help="answer in this process even when the resident service runs"),
]
StepsOpt = Annotated[
    bool, typer.Option("--steps", help="print each step (thought, action, observation, timings) on stderr")
]


def register(app: typer.Typer) -> None:
    app.command()(ask)
    app.command()(chat)


def ask(
    question: Annotated[str, typer.Argument(help="the question, in quotes")],
    index: IndexOpt = None,
    llm: LLMOpt = None,
    llm_url: URLOpt = None,
    checker: CheckerOpt = None,
    as_json: JsonOpt = False,
    trace: TraceOpt = None,
    steps: StepsOpt = False,
    bibtex: BibtexOpt = False,
    collection: CollectionOpt = None,
    no_service: NoServiceOpt = False,
) -> None:
    """Answer a question from the indexed documents, with numbered citations (or an honest abstention)."""
    from assistant.agent.loop import QuestionTooLong, check_question
    from assistant.agent.trace import write_trace
    from assistant.service.client import answerer

    settings = _settings(index, llm, llm_url, checker, collection)
    try:
        question = check_question(question, settings.agent.max_question_chars)
    except QuestionTooLong as exc:
        fail(str(exc), code=2)
    with answerer(settings, use_service=not no_service, warn=warn, progress=note) as assistant:
        answer = _show(assistant.ask(question, []), stream=not as_json, steps=steps)
    if trace is not None:
        write_trace(answer, trace)
    if as_json:
        print_json(answer.to_json() | ({"bibtex": citations_bibtex(answer.citations)} if bibtex else {}))
    elif bibtex and answer.citations and not answer.abstained:
        out.print("\n" + citations_bibtex(answer.citations), markup=False, highlight=False, end="")


def chat(
    index: IndexOpt = None,
    llm: LLMOpt = None,
    llm_url: URLOpt = None,
    checker: CheckerOpt = None,
    steps: StepsOpt = False,
    collection: CollectionOpt = None,
    no_service: NoServiceOpt = False,
) -> None:
    """Talk with the documents: follow-ups are understood in context. /new forgets it, /exit quits."""
    from assistant.service.client import History, answerer

    settings = _settings(index, llm, llm_url, checker, collection)
    console.print("starting...")
    history: History = []
    with answerer(settings, use_service=not no_service, warn=warn, progress=note) as assistant:
        console.print("ask a question (/new starts over, /exit quits)")
        while (line := _read_line()) is not None:
            if line in ("/exit", "/quit"):
                break
            if line == "/new":
                history.clear()
                console.print("new conversation")
            elif line:
                try:
                    _show(assistant.ask(line, history), stream=True, steps=steps)
                except UserFacingError as exc:  # a question too long, a service that refused it
                    console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)


def _read_line() -> str | None:
    try:
        return input("\n> ").strip()
    except EOFError:
        return None


def _settings(
    index: Path | None, llm: str | None, llm_url: str | None, checker: str | None, collection: str | None
) -> Settings:
    if llm and llm_url:
        fail("--llm and --llm-url exclude each other: pick the embedded model or a server URL", code=2)
    return load_settings(
        {
            "index": {"dir": index},
            "llm": {"model": llm, "url": llm_url},
            "grounding": {"checker": checker},
            "retrieval": {"collection": collection},
        }
    )


def _show(events: Iterator[Event], *, stream: bool, steps: bool) -> Answer:
    """Print the run as it happens: progress, the plan and the sources found on stderr (before the model
    writes), the answer on stdout; return the final answer."""
    streamed = ""
    drafts: set[int] = set()  # drafts whose words were shown (on stderr: stdout only gets checked text)
    drafting = False  # a draft line is open: its check is said at its end, not on a line of its own
    answer: Answer | None = None
    for event in events:
        if isinstance(event, QuestionRewritten):
            console.print(
                f"[dim]searching for: {escape(terminal_safe(event.standalone))}[/]", highlight=False
            )
        elif isinstance(event, PlanMade) and stream and len(event.plan.parts) > 1:
            parts = "; ".join(f"{p.id}. {p.question}" for p in event.plan.parts)
            console.print(
                f"[dim]{len(event.plan.parts)} parts: {escape(terminal_safe(parts))}[/]", highlight=False
            )
        elif isinstance(event, EvidenceFound) and stream:
            found = ", ".join(f"[{e.id}] {_where(e)}" for e in event.evidence)
            console.print(f"[dim]found {escape(terminal_safe(found))}[/]", highlight=False)
        elif isinstance(event, StepStarted) and stream and event.action in _WAITING and not drafting:
            console.print(f"[dim]{_WAITING[event.action]}...[/]", highlight=False)
        elif isinstance(event, StepFinished) and steps:
            _print_step(event.step)
        elif isinstance(event, DraftToken) and stream:
            if event.draft not in drafts:
                drafts.add(event.draft)
                drafting = True
                console.print("[dim]draft, checking:[/] ", end="", highlight=False)
            console.print(
                terminal_safe(event.text), end="", style="dim", markup=False, highlight=False, soft_wrap=True
            )
        elif isinstance(event, DraftChecked) and stream and event.draft in drafts:
            verdict = (
                "[green]checked[/]"
                if event.accepted
                else "[yellow]not supported by what it cites: replaced[/]"
            )
            console.print(f"  ({verdict})", highlight=False)
            drafting = False
        elif isinstance(event, AnswerToken) and stream:
            out.print(event.text, end="", markup=False, highlight=False, soft_wrap=True)
            streamed += event.text
        elif isinstance(event, FinalAnswer):
            answer = event.answer
            if stream:
                _print_answer(answer, streamed)
            if steps:
                timings = "  ".join(f"{k} {v:.2f}" for k, v in answer.timings.items())
                console.print(f"[dim]timings (s): {timings}[/]", highlight=False)
    if answer is None:  # read to the end: a chat's history (and the service's reply) comes after the answer
        raise RuntimeError("the agent ended without an answer")
    return answer


_WAITING: dict[str, str] = {
    "plan": "planning",
    "answer": "writing an answer",
    "check": "checking it",
    "think": "looking further",
    "relation": "comparing",
}


def _print_step(step: Step) -> None:
    summary = terminal_safe(" ".join((step.observation or step.raw).split()))
    summary = summary[:200] + ("…" if len(summary) > 200 else "")
    part = f" part {step.part}" if step.part else ""
    console.print(
        f"[bold]step {step.index}{part}[/] [dim](model {step.model_s:.2f}s, tool {step.tool_s:.2f}s"
        f"{f', {step.attempts} attempts' if step.attempts > 1 else ''})[/]\n"
        f"  thought: {escape(terminal_safe(step.thought))}\n"
        f"  action: {step.action}({escape(terminal_safe(step.input[-120:]))!r})\n"
        f"  {'error' if step.error else 'observation'}: {escape(summary)}",
        highlight=False,
    )


def _print_answer(answer: Answer, streamed: str) -> None:
    if answer.text != streamed.strip():
        # The streamed text was replaced (an abstention, or dropped citations): show the final form.
        out.print(("\n" if streamed else "") + answer.text, markup=False, highlight=False, soft_wrap=True)
    else:
        out.print()
    if answer.abstain_reason == "unsupported":
        out.print("(the draft answer was not supported by the passages it cited)", highlight=False)
    elif any(s.verdict for s in answer.sentences):
        marks = "  ".join(
            f"{i}. {s.verdict} ({s.support:.2f})" for i, s in enumerate(answer.sentences, 1) if s.verdict
        )
        out.print(f"\nSupport by sentence: {marks}", highlight=False)
    if answer.abstained:
        return
    if answer.citations:
        out.print("\nSources:", highlight=False)
    for c in answer.citations:
        out.print(source_line(c), markup=False, highlight=False, soft_wrap=True)


def _where(ev: Evidence) -> str:
    if ev.kind == "computed":
        return ev.label()
    return display_path(ev.source) + (f" p.{ev.page}" if ev.page else "")
