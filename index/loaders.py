"""Turn source files (PDF, plain text, Markdown, HTML) into `LoadedDocument`s.

Every loader keeps provenance exact: PDFs keep their 1-based page numbers, text files keep their text
byte-for-byte (apart from CRLF), so chunk offsets and line numbers point back into what the user sees.
Anything that cannot be read raises `LoadError` with a one-line reason; a batch skips the file and goes on.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from index.documents import DocumentMeta, read_meta_file, sidecar_for
from index.errors import LoadError, UserFacingError
from index.html_text import read_html
from index.pdf_layout import PageLayout, document_headings, first_page_meta, pdf_info_meta, read_page
from index.pdf_tables import page_tables
from index.types import LoadedDocument, Page

SUPPORTED_SUFFIXES: dict[str, str] = {
    ".pdf": "pdf",
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
}

_SNIFF_BYTES = 8192
_MAX_CONTROL_RATIO = 0.10
_TITLE_MAX = 120
_MAX_PDF_WARNINGS = 20


def _one_line(err: BaseException | str) -> str:
    """Errors from third-party parsers can span lines; the user gets one."""
    text = " ".join(str(err).split())
    return text or type(err).__name__


def _sniff_binary(head: bytes) -> bool:
    """NUL bytes or many C0 control bytes mean the file is not text in any encoding we decode."""
    if not head:
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 32 and b not in b"\t\n\r\f\b\x1b")
    return controls / len(head) > _MAX_CONTROL_RATIO


def read_file_bytes(path: Path) -> bytes:
    """The whole file, or LoadError saying why not (ingest hashes and parses these same bytes)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise LoadError("file not found: check the path") from None
    except IsADirectoryError:
        raise LoadError("is a directory, not a file") from None
    except OSError as e:
        raise LoadError(f"unreadable: {_one_line(e.strerror or e)}") from None


def printable_path(path: Path) -> str:
    """The path as text that any terminal and JSON reader accepts: bytes of a name that are not UTF-8 are
    shown as \\xNN escapes."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _unnamable(path: Path) -> str | None:
    """A name that is not valid UTF-8 (bytes from another system's encoding) cannot be stored as a source
    or shown: skip that file with a reason instead of failing the batch."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8: rename the file"
    return None


def _skip_reason(path: Path) -> str | None:
    """Cheap checks (suffix, magic bytes) so a folder walk can report skips without parsing files."""
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        return f"unsupported file type '{path.suffix or '(none)'}' (supported: {supported})"
    try:
        with path.open("rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as e:
        return f"unreadable: {_one_line(e.strerror or e)}"
    if kind == "pdf":
        return None if b"%PDF-" in head[:1024] else "not a PDF (no %PDF header): the file may be damaged"
    return "binary file, not text" if _sniff_binary(head) else None


def _too_large(path: Path, max_bytes: int | None) -> str | None:
    if max_bytes is None:
        return None
    try:
        size = path.stat().st_size
    except OSError as e:
        return f"unreadable: {_one_line(e.strerror or e)}"
    if size <= max_bytes:
        return None
    return (
        f"{size / 2**20:.1f} MB, larger than the {max_bytes / 2**20:g} MB limit per file "
        "(setting index.max_file_mb)"
    )


def _missing_reason(path: Path) -> str:
    """Why a path that is neither a file nor a folder cannot be followed (a loop, a dangling link...)."""
    if not path.is_symlink():
        return "no such file or folder"
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop: fix or remove the link"
        return f"broken symbolic link ({_one_line(e.strerror or e)})"
    return "not a regular file"


def iter_files(paths: Iterable[Path], max_bytes: int | None = None) -> Iterator[tuple[Path, str | None]]:
    """Yield (file, None) for each loadable file and (file, reason) for each one to skip.

    Folders are walked recursively in sorted order so ingestion is deterministic; hidden entries
    (.git, .ra, dotfiles) inside folders are skipped silently, as are files reached twice. Links that
    loop, dangle or cannot be read, and files over `max_bytes`, are skipped with a reason: one bad entry
    never ends the walk.
    """
    seen: set[Path] = set()

    def walk(path: Path) -> Iterator[tuple[Path, str | None]]:
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
            yield path, _missing_reason(path)
            return
        if resolved in seen:
            return
        seen.add(resolved)
        if path.is_dir():
            try:
                children = sorted(path.iterdir())
            except OSError as e:
                yield path, f"unreadable folder: {_one_line(e.strerror or e)}"
                return
            for child in children:
                if not child.name.startswith("."):
                    yield from walk(child)
        elif path.is_file():
            yield path, _unnamable(path) or _too_large(path, max_bytes) or _skip_reason(path)
        elif not path.exists():
            yield path, _missing_reason(path)
        else:
            yield path, "not a regular file"

    for p in paths:
        yield from walk(Path(p))


def load_document(path: Path, meta: DocumentMeta | None = None, data: bytes | None = None) -> LoadedDocument:
    """Load one file by its suffix; raises LoadError (one line) for anything that should be skipped.

    `data`: the file's bytes as already read (ingest parses exactly the bytes it hashed). The document's own
    metadata is overridden by a sidecar (`paper.pdf.bib` / `.json`), then by `meta`."""
    path = Path(path)
    doc = _load_by_kind(path, data)
    if sidecar := sidecar_for(path):
        try:
            doc.meta = doc.meta.merged(read_meta_file(sidecar))
        except UserFacingError as exc:
            doc.warnings.append(f"sidecar ignored: {exc}")
    if meta is not None:
        doc.meta = doc.meta.merged(meta)
    doc.title = doc.meta.title or doc.title
    return doc


def _load_by_kind(path: Path, data: bytes | None) -> LoadedDocument:
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise LoadError(_skip_reason(path) or "unsupported file type")
    data = read_file_bytes(path) if data is None else data
    if kind == "pdf":
        return _load_pdf(path, data)
    if _sniff_binary(data[:_SNIFF_BYTES]):
        raise LoadError("binary file, not text")
    if kind == "html":
        return _load_html(path, data)
    return _load_text(path, data, kind)


# --- plain text and Markdown ------------------------------------------------------------------------

_ATX_H1 = re.compile(r"^ {0,3}#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_ATX_ANY = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def _decode(data: bytes) -> tuple[str, list[str]]:
    """UTF-8, with each undecodable byte replaced by U+FFFD so one bad byte costs one character.

    Only a file with no valid multi-byte UTF-8 at all but 8-bit bytes is taken as a legacy 8-bit
    encoding (cp1252, else latin-1), since there every accented letter would otherwise be lost.
    """
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8-sig", errors="replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    if any(ord(ch) > 0x7F and ch != "\ufffd" for ch in text):
        return text, [f"not valid UTF-8: {bad} undecodable byte sequence(s) replaced with U+FFFD"]
    for enc in ("cp1252", "latin-1"):
        try:
            legacy = data.decode(enc)
        except UnicodeDecodeError:
            continue
        return legacy, [f"not UTF-8; decoded as {enc} (some characters may be wrong)"]
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def _load_text(path: Path, data: bytes, kind: str) -> LoadedDocument:
    text, notes = _decode(data)
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise LoadError("empty file")
    if kind == "md":  # the first-level heading, else the first heading of any level
        m = _ATX_H1.search(text) or _ATX_ANY.search(text)
        title = m.group(1).strip() if m else ""
    else:
        title = _text_title(text)
    return LoadedDocument(
        source=str(path),
        title=title or path.stem,
        kind=kind,
        pages=[Page(number=None, text=text)],
        warnings=notes,
        meta=DocumentMeta(title=title),
    )


_NOT_A_TITLE = re.compile(r"^(?:#\w+(?:\s+#\w+)*|[-=_*~]{3,}|(?:link|url|source):.*|https?://\S+)$", re.I)
_FIRST_SENTENCE = re.compile(r"^(.{12,}?[.!?])\s")


def _text_title(text: str) -> str:
    """The first heading or first line that can name the document: tags, rules and bare links are
    passed over; a long first line gives its first sentence, or its first words and an ellipsis."""
    for line in text.splitlines()[:20]:
        line = line.strip()
        if not line or _NOT_A_TITLE.match(line):
            continue
        line = line.lstrip("#").strip() if line.startswith("# ") else line
        if len(line) <= _TITLE_MAX:
            return line
        m = _FIRST_SENTENCE.match(line)
        if m and len(m.group(1)) <= _TITLE_MAX:
            return m.group(1)
        cut = line.rfind(" ", 0, _TITLE_MAX - 1)
        return line[:cut].rstrip(",;:") + "…" if cut > 0 else ""
    return ""


# --- PDF --------------------------------------------------------------------------------------------

_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
# Control characters other than newline/tab would confuse the chunker; \f is the page separator.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u00ad]")
# "atten-\ntion" -> "attention\n": the rest of the broken word moves up so line structure survives.
_HYPHEN_BREAK = re.compile(r"([a-z])-\n([a-z]\S*)[ \t]*\n?")
# "GPT-\n4o", "Vision-\nLanguage": a hyphen that belongs to the word stays, the line break goes.
_COMPOUND_BREAK = re.compile(r"([A-Za-z0-9])-\n([A-Z0-9]\S*)[ \t]*\n?")
_HSPACE = re.compile(r"[^\S\n]+")
_MANY_BREAKS = re.compile(r"\n{3,}")
_PAGE_NUMBER_LINE = re.compile(r"\n\d{1,4}$")
_PAGE_END_HYPHEN = re.compile(r"[a-z]-$")
_PAGE_START_WORD = re.compile(r"[a-z]\S*[ \t]*\n?")


def _clean_pdf_text(text: str) -> str:
    """Undo pypdf artefacts: ligatures, hyphenated line breaks, whitespace runs, the page number line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_LIGATURES)
    text = _CONTROL.sub(lambda m: "" if m.group() == "\u00ad" else " ", text)
    text = _HSPACE.sub(" ", text)
    text = re.sub(r" ?\n ?", "\n", text)
    text = _HYPHEN_BREAK.sub(r"\1\2\n", text)
    text = _COMPOUND_BREAK.sub(r"\1-\2\n", text)
    text = _MANY_BREAKS.sub("\n\n", text).strip()
    return _PAGE_NUMBER_LINE.sub("", text)


def _join_page_hyphens(pages: list[Page]) -> list[Page]:
    """A word hyphenated across a page break ("probabil-" | "ity") is completed on the first page."""
    out = list(pages)
    for i in range(len(out) - 1):
        head, tail = out[i], out[i + 1]
        m = _PAGE_START_WORD.match(tail.text)
        if tail.number == (head.number or 0) + 1 and _PAGE_END_HYPHEN.search(head.text) and m:
            word = m.group().strip()
            rest = tail.text[m.end() :]
            out[i] = replace(head, text=head.text[:-1] + word)
            out[i + 1] = replace(tail, text=rest or word)
    return [p for p in out if p.text.strip()]


def _pdf_meta(reader: object, layouts: list[PageLayout], first_text: str) -> DocumentMeta:
    """The Info dictionary where it says something, the first page's layout for the rest; the creation
    date's year when nothing on the page gives one."""
    try:
        info = reader.metadata  # type: ignore[attr-defined]
    except Exception:
        info = None
    meta = first_page_meta(layouts[0], first_text) if layouts and layouts[0].number == 1 else DocumentMeta()
    meta = meta.merged(pdf_info_meta(info))
    if not meta.title:
        meta.title = _first_line_title(first_text)
    if meta.year is None:
        try:
            created = info.creation_date if info else None  # type: ignore[union-attr]
        except Exception:
            created = None
        meta.year = created.year if created else None
    return meta


def _first_line_title(first_page: str) -> str:
    for line in first_page.splitlines():
        line = line.strip()
        letters = sum(c.isalpha() for c in line)
        if letters >= 8 and len(line.split()) >= 2 and not line.lower().startswith("arxiv:"):
            return line[:_TITLE_MAX]
    return ""


class _LogCollector(logging.Handler):
    """Collects pypdf's log records so they land in doc.warnings rather than on stderr."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(_one_line(record.getMessage()))


def _load_pdf(path: Path, data: bytes) -> LoadedDocument:
    logger = logging.getLogger("pypdf")
    collector = _LogCollector()
    old_propagate, logger.propagate = logger.propagate, False
    logger.addHandler(collector)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pages, meta, page_errors = _read_pdf(io.BytesIO(data))
    finally:
        logger.removeHandler(collector)
        logger.propagate = old_propagate
    notes = page_errors + collector.messages + [_one_line(str(w.message)) for w in caught]
    if not pages:
        if page_errors:
            raise LoadError(f"no extractable text (text extraction failed: {page_errors[0]})")
        raise LoadError("no extractable text (scanned PDF? run OCR first)")
    return LoadedDocument(
        source=str(path),
        title=meta.title or path.stem,
        kind="pdf",
        pages=pages,
        warnings=list(dict.fromkeys(notes))[:_MAX_PDF_WARNINGS],
        meta=meta,
    )


def _read_pdf(stream: io.BytesIO) -> tuple[list[Page], DocumentMeta, list[str]]:
    """Parse the PDF; returns (non-empty pages, metadata, per-page errors). Raises LoadError."""
    from pypdf import PasswordType, PdfReader  # lazy: text-only ingestion need not pay for it

    try:
        reader = PdfReader(stream, strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("") != PasswordType.NOT_DECRYPTED
            except Exception:  # missing AES provider, broken encryption dict
                ok = False
            if not ok:
                raise LoadError("encrypted PDF: remove the password (e.g. qpdf --decrypt) and ingest again")
        raw_pages = list(reader.pages)
    except LoadError:
        raise
    except Exception as e:  # pypdf raises many types on damaged files
        raise LoadError(f"corrupt or truncated PDF: {_one_line(e)}") from None

    layouts: list[PageLayout] = []
    tables: dict[int, tuple[dict[str, object], ...]] = {}
    errors: list[str] = []
    for number, page in enumerate(raw_pages, start=1):
        try:
            layouts.append(read_page(page, number))
        except Exception as e:
            errors.append(f"page {number}: {_one_line(e)}")
            continue
        tables[number] = tuple(page_tables(page, layouts[-1].text))
    pages = [
        Page(number=lay.number, text=text, headings=keys, tables=tables[lay.number])
        for lay, keys in zip(layouts, document_headings(layouts), strict=True)
        if (text := _clean_pdf_text(lay.text))
    ]
    pages = _join_page_hyphens(pages)
    first = pages[0].text if pages and pages[0].number == 1 else ""
    return pages, _pdf_meta(reader, layouts, first), errors


# --- HTML -------------------------------------------------------------------------------------------


def _load_html(path: Path, data: bytes) -> LoadedDocument:
    text, meta = read_html(data)
    if not text.strip():
        raise LoadError("no readable text in HTML (empty page or all script?)")
    return LoadedDocument(
        source=str(path),
        title=meta.title or path.stem,
        kind="html",
        pages=[Page(number=None, text=text)],
        meta=meta,
    )
