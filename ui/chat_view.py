"""How a turn looks in the chat: the agent's steps, code runs, the cited answer and its sources panel.

Finished turns and the running one share these pieces; the running one is redrawn as its events arrive.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import streamlit as st

from assistant.agent.records import Answer, Step
from ui import page_view
from ui.agent_run import AgentRun, Turn
from ui.citations_html import answer_html, citation_numbers, draft_html, sources_html, streaming_html

if TYPE_CHECKING:
    from index.search import HybridIndex

ICONS = {
    "plan": ":material/account_tree:",
    "search": ":material/search:",
    "read": ":material/menu_book:",
    "think": ":material/psychology:",
    "answer": ":material/edit_note:",
    "check": ":material/fact_check:",
    "relation": ":material/compare_arrows:",
    "python": ":material/code:",
}
_DOING = {
    "plan": "cutting the question into parts",
    "search": "searching",
    "read": "reading around a passage",
    "think": "deciding where else to look",
    "answer": "writing a part of the answer",
    "check": "checking that part against its sources",
    "relation": "comparing the sides",
    "python": "running code in the sandbox",
}
_TOOLS = ("search", "read", "python")  # steps that run a tool and call no model
_OBSERVATION_CHARS = 1500  # of a step's observation shown in the steps panel


def render_turn(turn: Turn, key: str, index: HybridIndex | None = None) -> None:
    """A finished turn: the question, then the answer with everything that led to it."""
    with st.chat_message("user"):
        st.markdown(turn.question)
    with st.chat_message("assistant"):
        if turn.standalone:
            st.caption(f"Searched for: {turn.standalone}")
        if turn.steps:
            with st.status(_done_label(turn), state="error" if turn.error else "complete", expanded=False):
                for step in turn.steps:
                    render_step(step, turn)
        if turn.error:
            st.error(f"{turn.error}\n\n{turn.hint}".strip(), icon=":material/error:")
        elif turn.answer is not None:
            render_code_runs(turn.steps)
            render_answer(turn.answer, key, index)
            st.caption(_answered_in(turn))
        if turn.notice:
            st.caption(turn.notice)


def follow(run: AgentRun, key: str) -> None:
    """Draw the running turn and keep redrawing it as events arrive, until it is done.

    The status label is refreshed every half second even when nothing happened: each refresh is a message
    to the browser, which is where Streamlit notices a click elsewhere and reruns at once.
    """
    turn = run.turn
    with st.chat_message("user"):
        st.markdown(turn.question)
    with st.chat_message("assistant"):
        status = st.status(_live_label(turn), expanded=True)
        found_slot = st.empty()
        answer_slot = st.empty()
        shown, version, collapsed = 0, -1, False
        while True:
            version = run.wait(version, timeout=0.5)
            with status:
                for step in turn.steps[shown:]:
                    render_step(step, turn)
            shown = len(turn.steps)
            if turn.found and not turn.done:  # no numbers: cards are numbered as the answer cites them
                labels = dict.fromkeys(e.label() for e in turn.found)
                found_slot.caption("Sources found: " + ", ".join(labels))
            if turn.text:
                answer_slot.html(streaming_html(turn.text))
            elif turn.draft:
                answer_slot.html(draft_html(turn.draft, replaced=turn.draft_state == "replaced"))
            status.update(label=_live_label(turn), expanded=not (turn.text or collapsed), state="running")
            collapsed = collapsed or bool(turn.text)
            if turn.done:
                return


def render_step(step: Step, turn: Turn) -> None:
    st.markdown(step_line(step, turn))
    if step.thought:
        st.caption(step.thought)
    if step.action == "python":
        st.code(step.input, language="python")
    if step.observation:
        st.code(_clip(step.observation), language=None, wrap_lines=True)


def step_line(step: Step, turn: Turn) -> str:
    """A step's headline: its action and what it acted on, in words a reader knows (the query searched,
    the passage read, the part of the question worked on). A model step's `input` is the tail of its
    prompt, written for the model, so it is never shown."""
    timing = f"tool {step.tool_s:.1f} s" if step.action in _TOOLS else f"model {step.model_s:.1f} s"
    head = f"**{step.index}. {ICONS.get(step.action, ':material/circle:')} {step.action}**"
    return f"{head}{step_subject(step, turn)} · {timing}"


def step_subject(step: Step, turn: Turn) -> str:
    """What the step worked on, as Markdown after its action ("" when there is nothing to name)."""
    if step.action == "search":
        query = _short(step.input).replace("`", "'")
        return f" `{query}`"
    if step.action == "read":
        evidence = next((e for e in turn.found if str(e.id) == step.input.strip()), None)
        return f" around a passage of {_escape(evidence.label())}" if evidence else " around a passage"
    if step.action == "python":
        return ""  # the code itself is shown below the line
    doing = f" · {_DOING.get(step.action, 'working')}"
    part = next((p for p in turn.plan.parts if p.id == step.part), None) if turn.plan else None
    if step.action == "plan" or part is None:
        return doing
    of = f"part {part.id}: " if turn.plan and len(turn.plan.parts) > 1 else ""
    return f"{doing} · {of}“{_escape(_short(part.question))}”"


def _short(text: str, limit: int = 160) -> str:
    """One line of at most about `limit` characters, cut at a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > 0 else limit] + "…"


def _escape(text: str) -> str:
    """Document and question text shown as written, not as Markdown."""
    return re.sub(r"([\\`*_\[\]<>#|~$])", r"\\\1", text)


def render_code_runs(steps: list[Step]) -> None:
    """Every code run of the answer, inline: the code, what it printed, and the figures it drew."""
    for step in steps:
        if step.action != "python":
            continue
        with st.container(border=True):
            st.markdown(
                f"**:material/terminal: Code run** · step {step.index} · {step.tool_s:.1f} s in the sandbox"
            )
            st.code(step.input, language="python")
            st.code(step.observation or "(no output)", language=None, wrap_lines=True)
            for n, png in enumerate(step.figures, 1):
                st.image(png, caption=f"figure {n}")


def render_answer(answer: Answer, key: str, index: HybridIndex | None = None) -> None:
    if answer.abstained:
        st.info(answer.text, icon=":material/search_off:")
        if answer.abstain_reason == "unsupported" and answer.citations:
            with st.expander("The draft answer, withheld: the passages it cited do not support it"):
                cited_answer(answer, key, index)
    elif answer.citations:
        cited_answer(answer, key, index)
    else:
        st.markdown(answer.text)


def cited_answer(answer: Answer, key: str, index: HybridIndex | None = None) -> None:
    """The sentences with their markers and badges, and beside them the sources panel, whose cards open
    to the cited page or the document around the passage (when the index is at hand)."""
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.html(answer_html(answer, key))
        if any(s.verdict for s in answer.sentences):
            st.caption("Badges: how well the cited passages support each sentence (grounding checker).")
    with right:
        st.markdown("**Sources**")
        views = page_view.source_views(answer.citations, index) if index is not None else {}
        numbers = citation_numbers(answer)
        st.html(sources_html(answer.citations, key, views, numbers))
    if index is not None:
        page_view.page_viewer(answer.citations, index, key, numbers)


def _live_label(turn: Turn) -> str:
    elapsed = f"{turn.seconds:.0f} s"
    if turn.done:
        return _done_label(turn)
    if turn.text:
        return f"Writing the answer… · {elapsed}"
    if turn.current_step is not None:
        doing = _DOING.get(turn.current_action, "working")
        return f"Step {turn.current_step}: {doing}… · {elapsed}"
    if turn.steps:
        return f"Preparing the answer… · {elapsed}"
    if turn.starts_model:
        return f"Starting the model (the first question of this server)… · {elapsed}"
    return f"Starting… · {elapsed}"


def _done_label(turn: Turn) -> str:
    """The research summary. It carries no time: the answer's one duration is under the answer."""
    n = len(turn.steps)
    return f"Research: {n} step{'s' if n != 1 else ''}"


def _answered_in(turn: Turn) -> str:
    """The one duration of an answer, on the page's clock: from the question to the finished answer."""
    first = f" · first words after {turn.first_words_s:.1f} s" if turn.first_words_s is not None else ""
    return f"Answered in {turn.seconds:.1f} s{first}"


def _clip(text: str) -> str:
    return text if len(text) <= _OBSERVATION_CHARS else text[:_OBSERVATION_CHARS] + " …"
