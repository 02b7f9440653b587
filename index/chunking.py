"""Structure-aware chunking: headings, then paragraphs, then sentences, then words.

Chunks are spans of `LoadedDocument.text`, never copies that drift from it: `doc.text[c.start:c.end]`
is the chunk text, so a citation can always be shown in context. A chunk never crosses a page (page-level
citations stay exact), prefers to end at a heading, keeps fenced code blocks whole so an agent can run
"the snippet in section X", and repeats whole trailing sentences of its predecessor as overlap.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field

from index.config import ChunkingConfig
from index.text import sentence_spans
from index.types import Chunk, LoadedDocument

# unit kinds; a whole code block may fill 2*size, a piece of a longer one only size
_HEADING, _TEXT, _CODE, _CODE_PART = "heading", "text", "code", "code-part"


@dataclass(slots=True)
class _Unit:
    """An indivisible span (page-relative offsets) the packer places whole into a chunk."""

    start: int
    end: int
    kind: str
    section: str
    splittable: bool = False  # a text unit with several sentences, for sentence-level overlap
    role: str = "body"  # the section's role: body | references | acknowledgements | appendix


@dataclass(slots=True)
class _CodeBlock:
    start: int  # the opening fence
    end: int  # the end of the closing fence
    body_start: int
    body_end: int
    lang: str


@dataclass(slots=True)
class _Block:
    start: int
    end: int
    kind: str
    heading: str = ""
    code: _CodeBlock | None = None


@dataclass(slots=True)
class _Span:
    """A chunk under construction: `new_from` is where its own (non-overlap) content starts."""

    start: int
    end: int
    new_from: int
    units: list[_Unit] = field(default_factory=list)


# --- block structure --------------------------------------------------------------------------------

_LINE = re.compile(r"[^\n]*\n?")
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*([^\s`]*)[^`\n]*$")
_ATX = re.compile(r" {0,3}(#{1,6})[ \t]+(\S.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_RULE = re.compile(r" {0,3}(=+|-{2,})[ \t]*$")
_BULLET = re.compile(r"[ \t]*[-*+•‣◦▪●][ \t]")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+•‣◦▪●]|\(?\d{1,3}[.)]|[a-z][.)])[ \t]+\S")
# PDFs wrap lines at the column edge, so only numbered headings ("5.1 Experimental Setting") and the
# usual section names are trusted there.
_PDF_HEADING = re.compile(r"(?:\d{1,2}(?:\.\d{1,2})*\.?|[A-H]\.\d{1,2}(?:\.\d{1,2})*)[ \t]+[A-Z][^\n]{1,70}")
_PDF_SECTION_NAMES = frozenset(
    {
        "abstract", "introduction", "related work", "background", "method", "methods", "results",
        "discussion", "conclusion", "conclusions", "limitations", "references", "bibliography",
        "acknowledgements", "acknowledgments", "appendix",
    }
)  # fmt: skip
_TITLE_END_PUNCT = ".,;:!?"


_REFERENCES = frozenset(
    {"references", "reference", "bibliography", "literature cited", "works cited", "references and notes"}
)
_NUMBERING = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*\.?|[IVX]{1,5}\.|[A-H](?:\.\d{1,2})*\.?)\s+")
_APPENDIX = re.compile(
    r"^(?:appendix|appendices|supplementary|supplemental)\b|^[A-H](?:\.\d{1,2})*\.?\s+[A-Z]", re.I
)


def section_role(heading: str, current: str) -> str:
    """What a heading starts: "references" (kept out of search by default), "acknowledgements",
    "appendix" or "body". Inside a reference list only an appendix heading ends it, since numbered
    entries can look like headings."""
    name = _NUMBERING.sub("", heading.strip()).strip(" .:").lower()
    if name in _REFERENCES:
        return "references"
    if name.startswith(("acknowledg", "funding")):
        return "acknowledgements"
    if _APPENDIX.match(heading.strip()) and (
        current in ("references", "appendix") or name.startswith("append")
    ):
        return "appendix"
    if current in ("references", "appendix"):
        return current
    return "body"


def _is_font_heading(line: str, nxt: str, headings: frozenset[str]) -> bool:
    """A line the PDF set in a larger font, when it also reads like a heading (no sentence going on)."""
    s = line.strip()
    if not headings or re.sub(r"\s+", "", s) not in headings:
        return False
    return bool(s) and s[-1] not in ".,;" and "@" not in s and not nxt[:1].islower()


def _is_title_like(line: str, prev: str, nxt: str, pdf: bool) -> bool:
    """Heuristic heading for text without markup: a short standalone line that does not read as prose."""
    s = line.strip()
    if not s or s[-1] in _TITLE_END_PUNCT or s.endswith("-") or len(s.split()) > (10 if pdf else 20):
        return False
    if nxt[:1].islower():  # the sentence goes on: a wrapped line
        return False
    if pdf:
        wordy = sum(c.isalpha() for c in s) >= len(s) / 2
        return s.lower() in _PDF_SECTION_NAMES or (wordy and bool(_PDF_HEADING.fullmatch(s)))
    starts_like_title = s[0].isupper() or s[0].isdigit() or s[0] == "("
    if len(s) > 160 or not starts_like_title or not any(c.isalpha() for c in s):
        return False
    p = prev.strip()
    return not p or p[-1] in ".!?:)\"”'’"


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line without its newline."""
    out = []
    for m in _LINE.finditer(text):
        if m.start() == len(text):
            break
        end = m.end() - 1 if m.group().endswith("\n") else m.end()
        out.append((m.start(), end))
    return out


def _blocks(text: str, kind: str, title_lines: bool, headings: frozenset[str] = frozenset()) -> list[_Block]:
    """Split a page into headings, fenced code blocks and paragraphs (blank-line separated).

    Block spans are stripped of surrounding whitespace so chunks start and end on text."""
    return [_strip_block(text, b) for b in _raw_blocks(text, kind, title_lines, headings)]


def _strip_block(text: str, b: _Block) -> _Block:
    start = b.start
    while text[start].isspace():
        start += 1
    return _Block(start, _rstrip(text, start, b.end), b.kind, b.heading, b.code)


def _raw_blocks(text: str, kind: str, title_lines: bool, headings: frozenset[str]) -> list[_Block]:
    lines = _lines(text)
    blocks: list[_Block] = []
    para_start = -1
    para_end = -1

    def close_para() -> None:
        nonlocal para_start
        if para_start >= 0:
            blocks.append(_Block(para_start, para_end, _TEXT))
            para_start = -1

    pdf = kind == "pdf"
    i, n = 0, len(lines)
    while i < n:
        s, e = lines[i]
        line = text[s:e]
        if not line.strip():
            close_para()
            i += 1
            continue
        fence = None if pdf else _FENCE_OPEN.match(line)
        if fence:
            close_para()
            marker = fence.group(1)
            closing = re.compile(rf" {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
            j = i + 1
            while j < n and not closing.match(text[lines[j][0] : lines[j][1]]):
                j += 1
            last = min(j, n - 1)
            body_start = lines[i + 1][0] if i + 1 < n else e
            body_end = _rstrip(text, body_start, lines[j - 1][1]) if j - 1 > i else body_start
            code = _CodeBlock(s, lines[last][1], body_start, body_end, fence.group(2))
            blocks.append(_Block(s, lines[last][1], _CODE, code=code))
            i = j + 1
            continue
        prev = text[lines[i - 1][0] : lines[i - 1][1]] if i > 0 else ""
        nxt = text[lines[i + 1][0] : lines[i + 1][1]] if i + 1 < n else ""
        atx = None if pdf else _ATX.match(line)
        if atx:
            close_para()
            blocks.append(_Block(s, e, _HEADING, heading=atx.group(2).strip()))
        elif (
            not pdf
            and para_start < 0
            and _SETEXT_RULE.match(nxt)
            and not _LIST_ITEM.match(line)
            and not _SETEXT_RULE.match(line)
        ):
            blocks.append(_Block(s, lines[i + 1][1], _HEADING, heading=line.strip()))
            i += 1
        elif ((title_lines or pdf) and not _BULLET.match(line) and _is_title_like(line, prev, nxt, pdf)) or (
            pdf and _is_font_heading(line, nxt, headings)
        ):
            close_para()
            blocks.append(_Block(s, e, _HEADING, heading=line.strip()))
        else:
            if para_start < 0:
                para_start = s
            para_end = e
        i += 1
    close_para()
    return blocks


# --- splitting into units ---------------------------------------------------------------------------

_WORD = re.compile(r"\S+")
_CLAUSE_START = re.compile(r"[,;:—]\s+(?=\S)")
_LIST_LINE = re.compile(r"^" + _LIST_ITEM.pattern, re.MULTILINE)


def _word_pieces(text: str, start: int, end: int, size: int) -> Iterator[tuple[int, int]]:
    """Greedy runs of whole words up to `size`; a single longer "word" (text without spaces: a base64
    blob, a URL list, CJK) is cut every `size` characters, so no chunk outgrows the size."""
    piece_start = piece_end = -1
    for m in _WORD.finditer(text, start, end):
        if piece_start >= 0 and m.end() - piece_start > size:
            yield piece_start, piece_end
            piece_start = -1
        if m.end() - m.start() > size:
            cuts = range(m.start(), m.end(), size)
            yield from ((lo, min(lo + size, m.end())) for lo in cuts[:-1])
            piece_start, piece_end = cuts[-1], m.end()
            continue
        if piece_start < 0:
            piece_start = m.start()
        piece_end = m.end()
    if piece_start >= 0:
        yield piece_start, piece_end


def _items(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """A paragraph split before each list item, so bullets stay whole where possible."""
    pos = start
    for m in _LIST_LINE.finditer(text, start, end):
        if m.start() > pos:
            yield pos, _rstrip(text, pos, m.start())
            pos = m.start() + len(m.group()) - len(m.group().lstrip())
    yield pos, end


def _rstrip(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _text_units(text: str, start: int, end: int, size: int, section: str, lines: bool) -> Iterator[_Unit]:
    if end - start <= size:
        yield _Unit(start, end, _TEXT, section, splittable=True)
        return
    for i_start, i_end in _items(text, start, end):
        if i_end - i_start <= size:
            yield _Unit(i_start, i_end, _TEXT, section, splittable=True)
            continue
        for s_start, s_end in sentence_spans(text, i_start, i_end, lines):
            if s_end - s_start <= size:
                yield _Unit(s_start, s_end, _TEXT, section)
            else:
                for w_start, w_end in _word_pieces(text, s_start, s_end, size):
                    yield _Unit(w_start, w_end, _TEXT, section)


def _with_role(units: Iterator[_Unit] | list[_Unit], role: str) -> list[_Unit]:
    out = list(units)
    for u in out:
        u.role = role
    return out


def _code_units(text: str, block: _Block, size: int, section: str) -> Iterator[_Unit]:
    """A code block is one unit up to 2*size; longer ones split at line ends, then words."""
    if block.end - block.start <= 2 * size:
        yield _Unit(block.start, block.end, _CODE, section)
        return
    piece_start = piece_end = -1
    for s, e in _lines(text[block.start : block.end]):
        s, e = s + block.start, _rstrip(text, s + block.start, e + block.start)
        if e <= s or not text[s:e].strip():
            continue
        if e - s > size:
            if piece_start >= 0:
                yield _Unit(piece_start, piece_end, _CODE_PART, section)
                piece_start = -1
            for w_start, w_end in _word_pieces(text, s, e, size):
                yield _Unit(w_start, w_end, _CODE_PART, section)
            continue
        if piece_start >= 0 and e - piece_start > size:
            yield _Unit(piece_start, piece_end, _CODE_PART, section)
            piece_start = -1
        if piece_start < 0:
            piece_start = s + len(text[s:e]) - len(text[s:e].lstrip())
        piece_end = e
    if piece_start >= 0:
        yield _Unit(piece_start, piece_end, _CODE_PART, section)


def _units(
    text: str, blocks: list[_Block], size: int, section: str, role: str, lines: bool
) -> tuple[list[_Unit], str, str]:
    """All units of a page, each tagged with the heading in effect and its role; returns the section and
    role at the end of the page."""
    units: list[_Unit] = []
    for b in blocks:
        if b.kind == _HEADING:
            section, role = b.heading, section_role(b.heading, role)
            if b.end - b.start <= size:
                units.append(_Unit(b.start, b.end, _HEADING, section, role=role))
            else:  # an absurdly long heading is still text to be found
                units.extend(_with_role(_text_units(text, b.start, b.end, size, section, lines), role))
        elif b.kind == _CODE:
            units.extend(_with_role(_code_units(text, b, size, section), role))
        else:
            units.extend(_with_role(_text_units(text, b.start, b.end, size, section, lines), role))
    return units, section, role


# --- packing ----------------------------------------------------------------------------------------


def _overlap_start(text: str, span: _Span, budget: int, lines: bool) -> int:
    """Where the next chunk starts so it repeats about `budget` chars: whole trailing sentences that fit
    (or one sentence up to 2x budget), else a trailing clause, else trailing whole words; span.end means
    no overlap."""
    if budget <= 0:
        return span.end
    best = span.end
    for unit in reversed(span.units):
        if unit.kind != _TEXT or unit.start < span.start:
            break
        if span.end - unit.start <= budget:
            best = unit.start
            continue
        if unit.splittable:
            for s_start, _ in sentence_spans(text, unit.start, unit.end, lines):
                if span.end - s_start <= budget:
                    return s_start
        if best == span.end and span.end - unit.start <= 2 * budget:
            return unit.start  # one whole sentence a little over budget beats a cut one
        break
    if best < span.end:
        return best
    last = span.units[-1]
    if last.kind != _TEXT:
        return span.end
    lo = max(last.start, span.end - budget)
    if clause := _CLAUSE_START.search(text, lo, span.end):
        return clause.end()
    for m in _WORD.finditer(text, lo, span.end):
        if m.start() == last.start or text[m.start() - 1].isspace():
            return m.start()
    return span.end


def _pack(text: str, units: list[_Unit], cfg: ChunkingConfig, lines: bool) -> list[_Span]:
    """Greedy packing of units into spans up to cfg.size (code up to 2*size)."""
    spans: list[_Span] = []
    cur: _Span | None = None

    def close(span: _Span) -> None:
        """Emit a span, merging a short trailing piece into the previous chunk of the page."""
        prev = spans[-1] if spans else None
        own = span.end - span.new_from
        if prev and own < cfg.min_size and span.end - prev.start <= cfg.size + cfg.min_size:
            prev.units.extend(u for u in span.units if u.start >= prev.end)
            prev.end = span.end
        else:
            spans.append(span)

    for u in units:
        if cur is None:
            cur = _Span(u.start, u.end, u.start, [u])
            continue
        if u.kind == _HEADING:
            # a heading starts a chunk unless what precedes it is a stub that would stand alone
            has_body = any(x.kind != _HEADING and x.start >= cur.new_from for x in cur.units)
            stub = cur.end - cur.start < cfg.min_size and not spans
            if (has_body and not stub) or u.end - cur.start > cfg.size:
                close(cur)
                cur = _Span(u.start, u.end, u.start, [u])
            else:
                cur.end = u.end
                cur.units.append(u)
            continue
        if u.end - cur.start <= cfg.size:
            cur.end = u.end
            cur.units.append(u)
            continue
        limit = 2 * cfg.size if u.kind == _CODE else cfg.size
        ov = _overlap_start(text, cur, cfg.overlap, lines)
        if ov >= cur.end or u.end - ov > limit:
            ov = u.start
        if ov <= cur.new_from and u.end - cur.start <= limit:
            # the whole chunk would be repeated as overlap: grow it instead of emitting a near-twin
            cur.end = u.end
            cur.units.append(u)
            continue
        close(cur)
        kept = [x for x in cur.units if x.end > ov]
        cur = _Span(ov, u.end, u.start, [*kept, u])
    if cur is not None:
        close(cur)
    return spans


# --- public API -------------------------------------------------------------------------------------


def _section_of(span: _Span) -> _Unit:
    """The unit whose heading names the chunk: its first own content (a leading heading names it)."""
    own = [u for u in span.units if u.start >= span.new_from] or span.units
    return next((u for u in own if u.kind != _HEADING), own[-1])


def _code_meta(text: str, blocks: list[_CodeBlock], start: int, end: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for cb in blocks:
        if cb.end <= start or cb.start >= end:
            continue
        lo, hi = max(cb.body_start, start), min(cb.body_end, end)
        entry: dict[str, object] = {"lang": cb.lang, "code": text[lo:hi] if hi > lo else ""}
        if lo > cb.body_start or hi < cb.body_end:
            entry["partial"] = True
        out.append(entry)
    return out


def _tables_in(tables: tuple[dict[str, object], ...], text: str) -> list[dict[str, object]]:
    """The page's tables this chunk shows: its caption is in the chunk, or most of its first row."""
    flat = " ".join(text.split())
    out = []
    for table in tables:
        caption = " ".join(str(table.get("caption") or "").split())
        first = [" ".join(str(c).split()) for c in (table["rows"][0] if table.get("rows") else [])]  # type: ignore[index]
        cells = [c for c in first if len(c) >= 3 and any(ch.isalnum() for ch in c)]
        shown = sum(1 for cell in cells if cell in flat)
        if (caption and caption[:60] in flat) or (shown >= 2 and shown * 2 > len(cells)):
            out.append(table)
    return out


def chunk_document(doc: LoadedDocument, cfg: ChunkingConfig, doc_id: str) -> list[Chunk]:
    """Chunk a loaded document page by page; offsets are into doc.text, lines are 1-based inclusive."""
    full = doc.text
    newlines = [m.start() for m in re.finditer("\n", full)]
    # Bare "title lines" only count as headings in plain text without Markdown headings of its own.
    title_lines = doc.kind == "txt" and not re.search(r"^ {0,3}#{1,6}[ \t]+\S", full, re.MULTILINE)
    lines = doc.kind != "pdf"  # PDF line breaks are just the column edge
    chunks: list[Chunk] = []
    section, role = "", "body"
    for page, base in zip(doc.pages, doc.page_starts, strict=True):
        text = page.text
        blocks = _blocks(text, doc.kind, title_lines, page.headings)
        units, section, role = _units(text, blocks, cfg.size, section, role, lines)
        code_blocks = [b.code for b in blocks if b.code is not None]
        for span in _pack(text, units, cfg, lines):
            start, end = base + span.start, base + span.end
            meta: dict[str, object] = {}
            if code_blocks and (code := _code_meta(text, code_blocks, span.start, span.end)):
                meta["code"] = code
            if page.tables and (tables := _tables_in(page.tables, full[start:end])):
                meta["tables"] = tables
            named_by = _section_of(span)
            if named_by.role != "body":
                meta["role"] = named_by.role
            chunks.append(
                Chunk(
                    chunk_id=f"{doc_id}:{len(chunks):05d}",
                    source=doc.source,
                    title=doc.title,
                    page=page.number,
                    start=start,
                    end=end,
                    line_start=bisect_left(newlines, start) + 1,
                    line_end=bisect_left(newlines, end - 1) + 1,
                    text=full[start:end],
                    section=named_by.section,
                    meta=meta,
                )
            )
    return chunks
