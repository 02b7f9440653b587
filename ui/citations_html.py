"""The cited answer and its sources panel as HTML: `[n]` markers link to source cards, a card opens its
passage with the quoted span highlighted.

Opening works with the CSS `:target` selector (see `ui/style.py`): a marker is a link to `#<card id>`, and the
targeted card shows its passage. No script is needed, which Streamlit's HTML element would not run anyway.
All document and model text is escaped; nothing from a document reaches the page as markup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape

from assistant.agent.records import Answer, Citation, Sentence
from assistant.cli.sources import set_aside
from index.documents import format_source

_MARKER = re.compile(r"\[(\d+)\]")
VERDICT_LABELS = {"supported": "supported", "weak": "weak support", "unsupported": "unsupported"}


def card_id(turn_key: str, citation_id: int) -> str:
    return f"ra-{turn_key}-src-{citation_id}"


def panel_id(turn_key: str) -> str:
    return f"ra-{turn_key}-sources"


def source_name(citation: Citation) -> str:
    """'Title — Authors (year)' as a researcher cites it; the page goes in its own badge, the file path
    in the card's tooltip."""
    if citation.kind == "computed":
        return "python result"
    return format_source(citation.document, citation.source, lines=citation.lines)


def citation_numbers(answer: Answer) -> dict[int, int]:
    """Evidence id -> the number shown, 1..k in the order the answer first cites them. The agent numbers
    passages by when it saw them, so its ids have gaps (a panel whose only card is "5")."""
    ids = [n for s in answer.sentences for n in s.citations] + [c.id for c in answer.citations]
    return {n: shown for shown, n in enumerate(dict.fromkeys(ids), 1)}


def renumbered(text: str) -> str:
    """Streamed answer text with its [n] markers numbered 1..k in order of appearance, as the finished
    answer will number them."""
    numbers: dict[str, int] = {}
    return _MARKER.sub(lambda m: f"[{numbers.setdefault(m.group(1), len(numbers) + 1)}]", text)


def marker(turn_key: str, citation: Citation | None, n: int) -> str:
    title = "" if citation is None else f' title="{escape(_where(citation))}"'
    return f'<a class="ra-cite" href="#{card_id(turn_key, n)}"{title}>[{n}]</a>'


def badge(sentence: Sentence) -> str:
    if not sentence.verdict:
        return ""
    label = VERDICT_LABELS.get(sentence.verdict, sentence.verdict)
    score = "" if sentence.support is None else f' title="support {sentence.support:.2f}"'
    return f'<span class="ra-badge ra-{escape(sentence.verdict)}"{score}>{escape(label)}</span>'


def answer_html(answer: Answer, turn_key: str) -> str:
    """Sentence by sentence: text, citation markers, support badge. Falls back to the plain text."""
    by_id = {c.id: c for c in answer.citations}
    if not answer.sentences:
        return f'<div class="ra-answer">{escape(renumbered(answer.text))}</div>'
    shown = citation_numbers(answer)
    parts = []
    for s in answer.sentences:
        marks = "".join(marker(turn_key, by_id.get(n), shown[n]) for n in s.citations)
        parts.append(f'<span class="ra-sentence">{escape(s.text.strip())}</span>{marks}{badge(s)}')
    return f'<div class="ra-answer">{" ".join(parts)}</div>'


def streaming_html(text: str) -> str:
    return f'<div class="ra-answer">{escape(renumbered(text))}<span class="ra-caret">▍</span></div>'


def draft_html(text: str, *, replaced: bool) -> str:
    """A draft as the model writes it: grey and marked as being checked, or struck through when its
    sources did not support it (the page then waits for the next draft or the abstention)."""
    if replaced:
        return (
            f'<div class="ra-draft"><s>{escape(text)}</s><br><small>replaced: the passages it cites do not '
            "support it; looking further</small></div>"
        )
    return (
        f'<div class="ra-draft" style="color:#777">{escape(text)}<span class="ra-caret">▍</span><br>'
        "<small>draft, checking it against its sources…</small></div>"
    )


def highlighted_passage(citation: Citation) -> str:
    """The evidence text with the quote marked; the quote's offsets are document offsets, the passage's
    own offset is `passage_start` (a computed result has none: its quote is found by position 0)."""
    passage = citation.passage or citation.quote
    lo = -1
    if citation.start is not None and citation.passage_start is not None:
        lo = citation.start - citation.passage_start
    if not (lo >= 0 and passage[lo : lo + len(citation.quote)] == citation.quote):
        lo = passage.find(citation.quote) if citation.quote else -1
    if lo < 0:
        return escape(passage)
    hi = lo + len(citation.quote)
    return f'{escape(passage[:lo])}<mark class="ra-hl">{escape(passage[lo:hi])}</mark>{escape(passage[hi:])}'


def passage_block(citation: Citation) -> str:
    return f'<div class="ra-label">passage</div><div class="ra-text">{highlighted_passage(citation)}</div>'


def source_card(citation: Citation, turn_key: str, number: int, view: str = "") -> str:
    """A card: number, source and quote; opened (by its marker), the code run, or `view` (the page or the
    document around the passage, see ui/page_view.py), else the passage with its quote marked."""
    cid = card_id(turn_key, number)
    page = f'<span class="ra-page">p. {citation.page}</span>' if citation.page else ""
    head = (
        f'<a class="ra-source-head" href="#{cid}" title="{escape(_where(citation))}">'
        f'<span class="ra-num">{number}</span><span class="ra-doc">{escape(source_name(citation))}</span>'
        f"{page}</a>"
    )
    quote = f'<div class="ra-quote">“{escape(citation.quote)}”</div>' if citation.quote else ""
    if citation.kind == "computed":
        body = (
            f'<div class="ra-label">code</div><pre class="ra-code">{escape(citation.code or "")}</pre>'
            f'<div class="ra-label">output</div><pre class="ra-code">{escape(citation.output or citation.passage)}</pre>'
        )
    else:
        flag = set_aside(citation)  # the document addressed the assistant: the reader should see it tried
        body = (view or passage_block(citation)) + (
            f'<div class="ra-flag">{escape(flag)}</div>' if flag else ""
        )
    close = f'<a class="ra-close" href="#{panel_id(turn_key)}" title="close">close</a>'
    return f'<div class="ra-source" id="{cid}">{head}{quote}<div class="ra-passage">{body}{close}</div></div>'


def sources_html(
    citations: list[Citation],
    turn_key: str,
    views: Mapping[int, str] | None = None,
    numbers: Mapping[int, int] | None = None,
) -> str:
    """Source cards in the order of their numbers (an answer's: `citation_numbers`, as its markers; search
    hits keep their ranks), each opening to its `views` entry when there is one."""
    views = views or {}
    shown = numbers or {c.id: c.id for c in citations}
    ordered = sorted(citations, key=lambda c: shown[c.id])
    cards = "".join(source_card(c, turn_key, shown[c.id], views.get(c.id, "")) for c in ordered)
    hint = '<div class="ra-hint">Click a number to open its passage.</div>'
    return f'<div class="ra-sources" id="{panel_id(turn_key)}">{hint}{cards}</div>'


def _where(citation: Citation) -> str:
    if citation.kind == "computed":
        return "computed by the python tool"
    return citation.source + (f", page {citation.page}" if citation.page else "")
