"""HTML as Markdown-ish text (headings, code blocks, lists, table rows) and its scholarly metadata, in one
streaming pass.

The page is read by Beautiful Soup's own html.parser front end (its entity, void-element and end-tag
rules), but no tree is built: `_Stream` takes the parser's events and keeps only a stack of open tag
names and the text so far. So time and memory grow linearly with the file, however deep the nesting
(a tree of 2 MB of nested divs took 34 s and hundreds of MB, and recursion over it failed), and the text
is the one the tree walk gave: strings between two tags are one string, an end tag closes the most
recent open tag of its name and every tag opened after it, an end tag with no open tag is ignored.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

from index.documents import DocumentMeta, arxiv_year
from index.errors import LoadError

DROP_TAGS = frozenset(
    {"script", "style", "nav", "header", "footer", "noscript", "svg", "template", "head", "iframe"}
)
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "caption", "center", "dd", "details", "div", "dl",
        "dt", "fieldset", "figcaption", "figure", "form", "hr", "main", "p", "section", "summary",
        "table", "tbody", "tfoot", "thead",
    }
)  # fmt: skip
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_META_NAMES = frozenset(
    {
        "citation_title", "dc.title", "citation_publication_date", "citation_date", "dc.date",
        "citation_arxiv_id", "citation_author", "dc.creator", "citation_doi",
    }
)  # fmt: skip
# Beautiful Soup's string kinds: only plain text (and CDATA, for get_text) is content
_TEXT, _CDATA, _OTHER, _SKIPPED = "text", "cdata", "other", "skipped"


class _Renderer:
    """Text blocks of the rendered part of the page; consecutive list items ("li") or table rows ("tr")
    are joined by one newline, other blocks by a blank line."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, str]] = []
        self.buf: list[str | None] = []  # inline text; None marks a <br>
        self.prefix = ""
        self.depth = 0  # list nesting

    def flush(self, group: str = "") -> None:
        lines, line = [], []
        for piece in [*self.buf, None]:
            if piece is None:
                lines.append(" ".join("".join(line).split()))
                line = []
            else:
                line.append(piece)
        text = "\n".join(x for x in lines if x)
        if text:
            self.blocks.append((self.prefix + text, "li" if self.prefix else group))
            self.prefix = ""
        self.buf = []

    def start(self, name: str) -> None:
        if name == "br":
            self.buf.append(None)
        elif name == "li":
            self.flush()
            self.prefix = "  " * max(self.depth - 1, 0) + "- "
        elif name in ("ul", "ol"):
            self.flush()
            self.depth += 1
        elif name in ("td", "th"):
            self.buf.append(" | " if self.buf else "")
        elif name == "tr" or name in _BLOCK_TAGS or name in _HEADINGS or name == "pre":
            self.flush()

    def end(self, name: str) -> None:
        if name == "li" or name in _BLOCK_TAGS:
            self.flush()
        elif name in ("ul", "ol"):
            self.depth -= 1
        elif name == "tr":
            self.flush(group="tr")

    def text(self) -> str:
        self.flush()
        out: list[str] = []
        prev_group = ""
        for text, group in self.blocks:
            if out:
                out.append("\n" if group and group == prev_group else "\n\n")
            out.append(text)
            prev_group = group
        return "".join(out)


@dataclass
class _Capture:
    """The text of one element (a heading, a <pre>, the <title>), as Beautiful Soup's get_text gives it."""

    name: str
    level: int  # stack depth of the element: it ends when the stack drops below this
    strings: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # of a <pre> and of the first <code> in it
    code_seen: bool = False
    done: bool = False


class _Stream:
    """Stands in for a BeautifulSoup object towards its parser: the same calls, no tree."""

    def __init__(self) -> None:
        from bs4.builder import HTMLTreeBuilder
        from bs4.builder._htmlparser import HTMLParserTreeBuilder

        self.builder = HTMLParserTreeBuilder()
        self.contains_replacement_characters = False
        self._void = HTMLTreeBuilder.DEFAULT_EMPTY_ELEMENT_TAGS or set()
        self._containers = HTMLTreeBuilder.DEFAULT_STRING_CONTAINERS
        self.stack: list[str] = []
        self.open: dict[str, int] = {}
        self.data: list[str] = []
        self.container_levels: list[int] = []  # stack depths of open rt/rp/script/style/template
        self.drop_level: int | None = None  # depth of the outermost open dropped element
        self.body_level: int | None = None  # depth of the rendered <body> while it is open
        self.page, self.body = _Renderer(), None  # whole page; the first <body> once one opens
        self.capture: _Capture | None = None  # heading or <pre> being rendered
        self.meta_captures: list[_Capture] = []  # the first <title> and <h1>, before anything is dropped
        self.meta_seen: set[str] = set()
        self.meta: dict[str, list[str]] = {}

    # --- the BeautifulSoup interface the parser calls -------------------------------------------

    def handle_starttag(self, name: str, _ns: object, _prefix: object, attrs: dict, **_: object) -> object:
        self.endData()
        if name == "meta" and attrs.get("name") in _META_NAMES and attrs.get("content"):
            self.meta.setdefault(attrs["name"], []).append(" ".join(str(attrs["content"]).split()))
        self.stack.append(name)
        level = len(self.stack)
        self.open[name] = self.open.get(name, 0) + 1
        if name in self._containers:
            self.container_levels.append(level)
        if name in ("title", "h1") and name not in self.meta_seen:
            self.meta_seen.add(name)
            self.meta_captures.append(_Capture(name, level))
        if self.drop_level is None and name in DROP_TAGS:
            self.drop_level = level
        if self._rendering():
            self._render_start(name, level, attrs)
        return _Element(name in self._void)

    def handle_endtag(self, name: str, _prefix: object = None) -> None:
        self.endData()
        if not self.open.get(name):
            return
        while self.stack:
            popped = self.stack[-1]
            self._pop()
            if popped == name:
                break

    def handle_data(self, data: str) -> None:
        self.data.append(data)

    def endData(self, container: type | None = None) -> None:  # Beautiful Soup's name
        if not self.data:
            return
        text = "".join(self.data)
        self.data = []
        from bs4.element import CData

        if container is CData:
            kind = _CDATA
        elif container is not None:
            kind = _SKIPPED  # comment, doctype, declaration, processing instruction
        elif self.container_levels:
            kind = _OTHER  # ruby text, script, style, template: not what get_text reads
        else:
            kind = _TEXT
        for cap in self.meta_captures:
            if not cap.done and kind in (_TEXT, _CDATA):
                cap.strings.append(text)
        if not self._rendering():
            return
        if self.capture is not None:
            if kind in (_TEXT, _CDATA):
                self.capture.strings.append(text)
        elif kind in (_TEXT, _OTHER):
            self._renderer().buf.append(text)

    # --- rendering -------------------------------------------------------------------------------

    def _rendering(self) -> bool:
        """Outside dropped elements, and not after the rendered <body> closed."""
        return self.drop_level is None and (self.body is None or self.body_level is not None)

    def _renderer(self) -> _Renderer:
        return self.body if self.body is not None else self.page

    def _render_start(self, name: str, level: int, attrs: dict) -> None:
        if name == "body" and self.body is None:  # what came before is not rendered, even an open heading
            self.body, self.body_level, self.capture = _Renderer(), level, None
            return
        if self.capture is not None:
            if self.capture.name == "pre" and name == "code" and not self.capture.code_seen:
                self.capture.code_seen = True
                self.capture.classes += str(attrs.get("class") or "").split()
            return
        self._renderer().start(name)
        if name in _HEADINGS or name == "pre":
            self.capture = _Capture(name, level, classes=str(attrs.get("class") or "").split())

    def _pop(self) -> None:
        level = len(self.stack)
        name = self.stack.pop()
        self.open[name] -= 1
        if self.container_levels and self.container_levels[-1] == level:
            self.container_levels.pop()
        for cap in self.meta_captures:
            cap.done = cap.done or cap.level == level
        if self.drop_level == level:
            self.drop_level = None
        elif not self._rendering():
            return
        elif self.capture is not None:
            if self.capture.level == level:
                self._emit(self.capture)
                self.capture = None
        elif self.body_level == level:
            self.body_level = None
        else:
            self._renderer().end(name)

    def _emit(self, cap: _Capture) -> None:
        out = self._renderer()
        if cap.name == "pre":
            code = "".join(cap.strings).strip("\n")
            if code.strip():
                out.blocks.append((f"```{_code_lang(cap.classes)}\n{code}\n```", ""))
        elif text := " ".join(" ".join(cap.strings).split()):
            out.blocks.append(("#" * _HEADINGS[cap.name] + " " + text, ""))

    def finish(self) -> None:
        self.endData()
        while self.stack:
            self._pop()

    def title_of(self, name: str) -> str:
        cap = next((c for c in self.meta_captures if c.name == name), None)
        return " ".join(" ".join(cap.strings).split()) if cap else ""


@dataclass(frozen=True, slots=True)
class _Element:
    is_empty_element: bool  # a void element (<br>, <meta>): the parser closes it at once


def _code_lang(classes: list[str]) -> str:
    """Language from class="language-x" / "lang-x" on <pre> or its <code>, as highlighters write it."""
    for cls in classes:
        if m := re.match(r"(?:language|lang)-([\w+#.-]+)$", cls):
            return m.group(1)
    return ""


def read_html(data: bytes) -> tuple[str, DocumentMeta]:
    """The page's text and metadata; LoadError when it cannot be decoded."""
    from bs4.builder._htmlparser import BeautifulSoupHTMLParser
    from bs4.dammit import UnicodeDammit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bs4 warns about markup that looks like XML or a file name
        markup = UnicodeDammit(data, is_html=True).unicode_markup
        if markup is None:
            raise LoadError("could not decode the HTML: save it as UTF-8")
        stream = _Stream()
        parser = BeautifulSoupHTMLParser(stream, convert_charrefs=False)
        parser.feed(markup)
        parser.close()
        stream.finish()
    body = stream.body if stream.body is not None else stream.page
    return body.text(), _html_meta(stream)


def _html_meta(stream: _Stream) -> DocumentMeta:
    """Scholarly <meta name="citation_*"> tags (Highwire, as journals and arXiv write them) first, then
    <title>, then the first <h1>."""
    tags = stream.meta.get
    title = next(iter(tags("citation_title", []) + tags("dc.title", [])), "")
    title = title or stream.title_of("title") or stream.title_of("h1")
    dates = tags("citation_publication_date", []) + tags("citation_date", []) + tags("dc.date", [])
    year = next((int(m.group()) for d in dates if (m := re.search(r"\b(19|20)\d\d\b", d))), None)
    arxiv = next(iter(tags("citation_arxiv_id", [])), "")
    return DocumentMeta(
        title=title,
        authors=tags("citation_author", []) or tags("dc.creator", []),
        year=year or (arxiv_year(arxiv) if arxiv else None),
        doi=next(iter(tags("citation_doi", [])), ""),
        arxiv=arxiv,
    )
