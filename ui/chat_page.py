"""The chat page: the conversation, the running answer, and the sidebar's conversation actions."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import streamlit as st

from assistant.agent.chat import ChatSession, Exchange
from assistant.agent.factory import build_agent
from assistant.agent.records import Event
from assistant.service.client import ServiceAnswerer, service_for
from assistant.settings import Settings
from index.errors import UserFacingError
from ui import chat_view, resources, session_settings
from ui.agent_run import AgentRun, Turn
from ui.export import conversation_markdown

if TYPE_CHECKING:
    from index.search import HybridIndex

_STATE, _PROMPT = "chat.conversation", "chat.prompt"
_ids = itertools.count(1)


@dataclass
class Conversation:
    """One browser session's chat: finished turns, the history the rewriter sees, the run in progress."""

    id: int = field(default_factory=lambda: next(_ids))
    turns: list[Turn] = field(default_factory=list)
    history: list[Exchange] = field(default_factory=list)
    pending: AgentRun | None = None


def conversation() -> Conversation:
    if _STATE not in st.session_state:
        st.session_state[_STATE] = Conversation()
    return st.session_state[_STATE]


def sidebar_actions(settings: Settings) -> None:
    """New chat and export; shown at the top of the sidebar on this page."""
    convo = conversation()
    new, export = st.columns(2)
    if new.button(
        "New chat",
        icon=":material/add_comment:",
        width="stretch",
        disabled=not (convo.turns or convo.pending),
    ):
        st.session_state[_STATE] = Conversation()  # a run still going finishes into the old one, unseen
        st.rerun()
    export.download_button(
        "Export",
        conversation_markdown(convo.turns, str(settings.index.dir)),
        file_name="research-conversation.md",
        mime="text/markdown",
        icon=":material/download:",
        width="stretch",
        disabled=not convo.turns,
        help="The conversation with its numbered sources, as Markdown.",
    )


def render() -> None:
    base = session_settings.base_settings()
    settings = session_settings.current(base)
    convo = conversation()
    st.title("Research assistant")
    st.caption(
        "Ask about your documents. Every sentence cites the passages it rests on: "
        "click a number such as [1] to open the passage, with the quoted words highlighted."
    )
    try:
        index = resources.index_for(settings)
    except UserFacingError as exc:
        index = None
        st.warning(f"**No index to search yet.** {exc}", icon=":material/inbox:")
        st.info(
            "Upload PDF, text, Markdown or HTML files in the sidebar to build one.",
            icon=":material/upload_file:",
        )
    problem = session_settings.url_problem(session_settings.current_choices(base))
    if problem:
        st.error(f"{problem} (sidebar settings).", icon=":material/error:")
    st.chat_input(  # drawn at the bottom of the page wherever it is called
        "Ask a question about your documents",
        key=_PROMPT,
        on_submit=_submit,
        disabled=index is None or convo.pending is not None or problem is not None,
    )
    if index is not None and not (convo.turns or convo.pending):
        st.info(
            "Ask a question below. You can follow up: the assistant remembers the conversation.",
            icon=":material/forum:",
        )
    for n, turn in enumerate(convo.turns):
        chat_view.render_turn(turn, f"{convo.id}-{n}", index)
    if convo.pending is not None:
        run = convo.pending
        chat_view.follow(run, f"{convo.id}-{len(convo.turns)}")
        convo.turns.append(run.turn)
        convo.pending = None
        st.rerun()


def _submit() -> None:
    """The chat input's callback: it runs before the page, so the page already draws the input disabled
    while the answer is on its way (a question sent meanwhile would have nowhere to go)."""
    question = (st.session_state.get(_PROMPT) or "").strip()
    convo = conversation()
    if not question or convo.pending is not None:
        return
    settings = session_settings.current()
    try:
        index = resources.index_for(settings)
    except UserFacingError:
        return  # the page says there is no index
    convo.pending = start_run(question, settings, index, convo)


def start_run(question: str, settings: Settings, index: HybridIndex, convo: Conversation) -> AgentRun:
    """Start answering in a background thread, which also starts the model and the grounding checker on
    first use (seconds, once per process), so not even that blocks the page."""
    turn = Turn(question, starts_model=not (settings.llm.url or resources.backend_started(settings)))

    def events() -> Iterator[Event]:
        service = service_for(settings, True, warn=_notice, progress=_notice)
        if service is not None:  # the resident service answers: its model, checker and index are warm
            turn.starts_model = False
            yield from ServiceAnswerer(service, settings).ask(question, convo.history)
            return
        backend = resources.backend_for(settings)
        checking = resources.checker_for(settings, backend)
        turn.notice = checking.note
        agent = build_agent(settings, backend, index, checking.checker)
        yield from ChatSession(agent, convo.history).ask(question)

    def _notice(message: str) -> None:
        turn.notice = message

    return AgentRun(turn, events).start()
