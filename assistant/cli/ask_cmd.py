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
    Event,
    FinalAnswer,
    QuestionRewritten,
    Step,
    StepFinished,
)
from assistant.cli.common import console, fail, out, print_json
from assistant.cli.index_cmds import IndexOpt, JsonOpt
from assistant.cli.sources import citation_label, citations_bibtex
from assistant.index_access import open_index
from assistant.settings import Settings, load_settings

LLMOpt = Annotated[
    str | None, typer.Option("--llm", help="model for the embedded server: packaged name, .gguf or hub id")
]
URLOpt = Annotated[
    str | None, typer.Option("--llm-url", help="OpenAI-compatible server URL, e.g. from `ra serve`")
]
CheckerOpt = Annotated[
    str | None, typer.Option("--checker", help="grounding checker for support badges: minilm, llm or none")
]
BibtexOpt = Annotated[bool, typer.Option("--bibtex", help="also print BibTeX entries of the cited documents")]
TraceOpt = Annotated[
    bool, typer.Option("--trace", help="print each step: thought, action, observation, timings")
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
    trace: TraceOpt = False,
    bibtex: BibtexOpt = False,
) -> None:
    """Answer a question from the indexed documents, with numbered citations (or an honest abstention)."""
    from assistant.agent.backends import open_backend
    from assistant.agent.build import build_agent

    if not question.strip():
        fail("empty question: pass it in quotes, e.g. ra ask 'What is classifier-free guidance?'", code=2)
    settings = _settings(index, llm, llm_url, checker)
    idx = open_index(settings)  # fails fast, before a model is started, when there is no index
    with open_backend(settings) as backend:
        agent = build_agent(settings, backend, idx, warn=_warn)
        answer = _show(agent.run(question), stream=not as_json, trace=trace)
    if as_json:
        print_json(answer.to_json() | ({"bibtex": citations_bibtex(answer.citations)} if bibtex else {}))
    elif bibtex and answer.citations and not answer.abstained:
        out.print("\n" + citations_bibtex(answer.citations), markup=False, highlight=False, end="")
    if answer.error:
        fail(answer.error)


def chat(
    index: IndexOpt = None,
    llm: LLMOpt = None,
    llm_url: URLOpt = None,
    checker: CheckerOpt = None,
    trace: TraceOpt = False,
) -> None:
    """Talk with the documents: follow-ups are understood in context. /new forgets it, /exit quits."""
    from assistant.agent.backends import open_backend
    from assistant.agent.build import build_agent
    from assistant.agent.chat import ChatSession

    settings = _settings(index, llm, llm_url, checker)
    idx = open_index(settings)
    console.print("starting the model...")
    with open_backend(settings) as backend:
        session = ChatSession(build_agent(settings, backend, idx, warn=_warn))
        console.print("ask a question (/new starts over, /exit quits)")
        while (line := _read_line()) is not None:
            if line in ("/exit", "/quit"):
                break
            if line == "/new":
                session.new()
                console.print("new conversation")
            elif line:
                answer = _show(session.ask(line), stream=True, trace=trace)
                if answer.error:
                    console.print(f"[bold red]error:[/] {escape(answer.error)}", highlight=False)


def _read_line() -> str | None:
    try:
        return input("\n> ").strip()
    except EOFError:
        return None


def _settings(index: Path | None, llm: str | None, llm_url: str | None, checker: str | None) -> Settings:
    if llm and llm_url:
        fail("--llm and --llm-url exclude each other: pick the embedded model or a server URL", code=2)
    return load_settings(
        {"index": {"dir": index}, "llm": {"model": llm, "url": llm_url}, "grounding": {"checker": checker}}
    )


def _warn(message: str) -> None:
    console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


def _show(events: Iterator[Event], *, stream: bool, trace: bool) -> Answer:
    """Print the run as it happens (answer text on stdout, trace on stderr); return the final answer."""
    streamed = ""
    for event in events:
        if isinstance(event, QuestionRewritten):
            console.print(f"[dim]searching for: {escape(event.standalone)}[/]", highlight=False)
        elif isinstance(event, StepFinished) and trace:
            _print_step(event.step)
        elif isinstance(event, AnswerToken) and stream:
            out.print(event.text, end="", markup=False, highlight=False, soft_wrap=True)
            streamed += event.text
        elif isinstance(event, FinalAnswer):
            answer = event.answer
            if stream:
                _print_answer(answer, streamed)
            if trace:
                timings = "  ".join(f"{k} {v:.2f}" for k, v in answer.timings.items())
                console.print(f"[dim]timings (s): {timings}[/]", highlight=False)
            return answer
    raise RuntimeError("the agent ended without an answer")


def _print_step(step: Step) -> None:
    summary = " ".join(step.observation.split())
    summary = summary[:200] + ("…" if len(summary) > 200 else "")
    console.print(
        f"[bold]step {step.index}[/] [dim](model {step.model_s:.2f}s, tool {step.tool_s:.2f}s"
        f"{f', {step.attempts} attempts' if step.attempts > 1 else ''})[/]\n"
        f"  thought: {escape(step.thought)}\n  action: {step.action}({escape(step.input)!r})\n"
        f"  observation: {escape(summary)}",
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
        marks = "  ".join(f"{i}. {s.verdict} ({s.support:.2f})" for i, s in enumerate(answer.sentences, 1))
        out.print(f"\nSupport by sentence: {marks}", highlight=False)
    if answer.abstained:
        return
    if answer.citations:
        out.print("\nSources:", highlight=False)
    for c in answer.citations:
        line = f"[{c.id}] {citation_label(c)}: \u201c{c.quote}\u201d"
        out.print(line, markup=False, highlight=False, soft_wrap=True)
