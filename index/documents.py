"""What a document is, bibliographically: title, authors, year and identifiers, and how to cite it.

One record (`DocumentMeta`) is extracted by the loaders, stored per file in the manifest, carried by every
chunk and citation, and rendered here: `format_source` gives the line a researcher pastes
("Title — Authors (year), p. N"), `to_bibtex` the BibTeX entry. A sidecar file next to the document
(`paper.pdf.bib` or `paper.pdf.json`) or `ra ingest --meta FILE` overrides what was extracted.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from index.errors import UserFacingError

SIDECAR_SUFFIXES = (".bib", ".json")
_FIELDS = ("title", "authors", "year", "doi", "arxiv")

ARXIV_ID = re.compile(r"\barXiv:\s*(\d{4}\.\d{4,5}(?:v\d+)?|[a-z-]+(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?)", re.I)
DOI = re.compile(r"\b(10\.\d{4,9}/[-._;()/:A-Za-z0-9]*[A-Za-z0-9])")


@dataclass(slots=True)
class DocumentMeta:
    """Bibliographic facts of one document; empty fields mean "not known", never guessed."""

    title: str = ""
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    doi: str = ""
    arxiv: str = ""
    # Zotero collections holding the document (`ra search --collection`); empty for files from elsewhere,
    # and in indexes written before collections existed, which therefore still read as they are
    collections: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> DocumentMeta:
        data = data or {}
        year = data.get("year")
        return cls(
            title=str(data.get("title") or ""),
            authors=[str(a) for a in data.get("authors") or []],
            year=int(year) if year not in (None, "") else None,
            doi=str(data.get("doi") or ""),
            arxiv=str(data.get("arxiv") or ""),
            collections=[str(c) for c in data.get("collections") or []],
        )

    def merged(self, override: DocumentMeta) -> DocumentMeta:
        """This record with every field the override knows replaced by the override's value (a list, such
        as the authors or the collections, as a whole)."""
        known = {k: v for k, v in asdict(override).items() if v not in ("", None, [])}
        return replace(self, **known)


def arxiv_year(arxiv: str) -> int | None:
    """New-style ids start with YYMM (2501.10120 is January 2025); old ones carry YYMMNNN after the slash."""
    m = re.match(r"(\d{2})(\d{2})\.", arxiv) or re.search(r"/(\d{2})(\d{2})\d{3}", arxiv)
    if not m or not 1 <= int(m.group(2)) <= 12:
        return None
    yy = int(m.group(1))
    return (1900 if yy >= 91 else 2000) + yy


# --- display ----------------------------------------------------------------------------------------


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def display_path(path: str) -> str:
    """A path relative to the working directory when under it: shorter and still exact. Control
    characters (a newline in a file name) are shown escaped, so one result stays one line."""
    if os.path.isabs(path):
        rel = os.path.relpath(path)
        path = path if rel.startswith("..") else rel
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], path)


def author_list(authors: list[str], *, max_names: int = 2) -> str:
    """ "Smith", "Smith and Jones", "Smith et al.": family names, as a citation writes them."""
    names = [_family_name(a) for a in authors if a.strip()]
    if not names:
        return ""
    if len(names) <= max_names:
        return " and ".join(names)
    return f"{names[0]} et al."


def _family_name(name: str) -> str:
    name = name.strip()
    if "," in name:
        return name.split(",", 1)[0].strip()
    return name.split()[-1]


def format_source(
    meta: DocumentMeta | None,
    source: str,
    *,
    page: int | None = None,
    lines: tuple[int, int] | None = None,
) -> str:
    """'Title — Authors (year), p. N' for a paper; 'Title, lines a–b' for a text file without authors.

    Without a known title the path relative to the working directory stands in; a hash-named absolute
    path is never the only thing shown when the document told us its name."""
    meta = meta or DocumentMeta()
    name = display_title(meta.title, source) if meta.title else display_path(source)
    who = author_list(meta.authors)
    year = f"({meta.year})" if meta.year else ""
    byline = " ".join(x for x in (who, year) if x)
    head = f"{name} — {byline}" if byline else name
    where = []
    if page:
        where.append(f"p. {page}")
    if lines and not page:
        a, b = lines
        where.append(f"line {a}" if a == b else f"lines {a}–{b}")
    return ", ".join([head, *where])


# a statement of four words or more ("Why ...?" is a title)
_OPENING_SENTENCE = re.compile(r"^(?:\S+\s+){3,}\S*?[.\u2026][\"'\u201d\u2019)\]]*$")


def display_title(title: str, source: str) -> str:
    """The title as a label shows it. A plain-text file without a heading is titled by its first line; when
    that line is a sentence ("This year has felt distinctly different.") it does not name the file, so the
    label gives the file's name with the sentence quoted as its opening words. The stored title, which
    search reads beside each passage, is unchanged."""
    if not _OPENING_SENTENCE.match(title):
        return title
    opening = title.rstrip("\"'\u201d\u2019)]").rstrip(".\u2026")
    return f"{Path(display_path(source)).name} (\u201c{opening}\u2026\u201d)"


def line_range(text: str, start: int, end: int) -> tuple[int, int]:
    """1-based first and last line of text[start:end] (end exclusive)."""
    first = text.count("\n", 0, start) + 1
    return first, first + text.count("\n", start, max(start, end - 1))


# --- BibTeX -----------------------------------------------------------------------------------------


def bibtex_key(meta: DocumentMeta, source: str) -> str:
    """familyname + year + first title word, ASCII only (e.g. he2025pasa); the file stem when unknown."""
    family = _family_name(meta.authors[0]) if meta.authors else ""
    words = [w for w in re.findall(r"[A-Za-z0-9]+", _ascii(meta.title)) if len(w) > 2]
    parts = [_ascii(family).lower(), str(meta.year or ""), words[0].lower() if words else ""]
    key = re.sub(r"[^a-z0-9]", "", "".join(parts))
    return key or re.sub(r"[^A-Za-z0-9]", "", Path(source).stem) or "document"


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _bib_value(text: str) -> str:
    """Braces balanced and TeX specials escaped, so any title survives a BibTeX run."""
    text = re.sub(r"([&%$#_])", r"\\\1", text)
    return text.replace("{", "").replace("}", "")


def to_bibtex(meta: DocumentMeta, source: str, *, key: str | None = None) -> str:
    """One BibTeX entry: @article with eprint fields for arXiv papers, @misc otherwise."""
    entry = "article" if meta.doi else "misc"
    fields: list[tuple[str, str]] = [("title", meta.title or display_path(source))]
    if meta.authors:
        fields.append(("author", " and ".join(meta.authors)))
    if meta.year:
        fields.append(("year", str(meta.year)))
    if meta.doi:
        fields.append(("doi", meta.doi))
    if meta.arxiv:
        fields += [("eprint", re.sub(r"v\d+$", "", meta.arxiv)), ("archiveprefix", "arXiv")]
    if not (meta.doi or meta.arxiv):
        fields.append(("note", f"file: {display_path(source)}"))
    body = ",\n".join(f"  {name} = {{{_bib_value(value)}}}" for name, value in fields)
    return f"@{entry}{{{key or bibtex_key(meta, source)},\n{body}\n}}"


def bibtex_entries(docs: list[tuple[DocumentMeta, str]]) -> str:
    """Entries for several documents, keys made unique (he2025pasa, he2025pasa-b, ...)."""
    seen: dict[str, int] = {}
    out = []
    for meta, source in docs:
        key = bibtex_key(meta, source)
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append(to_bibtex(meta, source, key=key if n == 0 else f"{key}-{chr(ord('a') + n)}"))
    return "\n\n".join(out) + ("\n" if out else "")


_BIB_ENTRY = re.compile(r"@(\w+)\s*[{(]\s*([^,\s]*)\s*,", re.S)
_BIB_FIELD = re.compile(r"\s*([A-Za-z][\w-]*)\s*=\s*")


def parse_bibtex(text: str) -> list[DocumentMeta]:
    """The entries of a .bib file (values in braces, quotes or bare numbers; @comment/@string skipped)."""
    out: list[DocumentMeta] = []
    for m in _BIB_ENTRY.finditer(text):
        if m.group(1).lower() in ("comment", "string", "preamble"):
            continue
        values = _bib_fields(text, m.end())
        year = re.search(r"\d{4}", values.get("year", ""))
        arxiv = values.get("eprint", "") if "arxiv" in values.get("archiveprefix", "arxiv").lower() else ""
        out.append(
            DocumentMeta(
                title=_bib_text(values.get("title", "")),
                authors=[
                    _bib_author(a) for a in re.split(r"\s+and\s+", values.get("author", "")) if a.strip()
                ],
                year=int(year.group()) if year else None,
                doi=values.get("doi", "").strip(),
                arxiv=arxiv.strip(),
            )
        )
    return out


def _bib_fields(text: str, pos: int) -> dict[str, str]:
    values: dict[str, str] = {}
    while True:
        m = _BIB_FIELD.match(text, pos)
        if not m:
            return values
        name, pos = m.group(1).lower(), m.end()
        if pos >= len(text):
            return values
        if text[pos] in '{"':
            close = "}" if text[pos] == "{" else '"'
            depth, i = 0, pos
            while i < len(text):
                c = text[i]
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                if (close == "}" and depth == 0) or (close == '"' and c == '"' and i > pos and depth == 0):
                    break
                i += 1
            values[name] = text[pos + 1 : i]
            pos = i + 1
        else:
            bare = re.match(r"[^,}\s]*", text[pos:])
            values[name] = bare.group() if bare else ""
            pos += len(values[name])
        comma = re.match(r"\s*,", text[pos:])
        if not comma:
            return values
        pos += comma.end()


def _bib_text(value: str) -> str:
    return " ".join(value.replace("{", "").replace("}", "").split())


def _bib_author(name: str) -> str:
    """'Last, First' -> 'First Last'; braces dropped."""
    name = _bib_text(name)
    if "," in name:
        last, first = name.split(",", 1)
        return f"{first.strip()} {last.strip()}".strip()
    return name


# --- sidecars and --meta files ----------------------------------------------------------------------


def sidecar_for(path: Path) -> Path | None:
    """`paper.pdf.bib` or `paper.pdf.json` next to `paper.pdf`, if there is one."""
    for suffix in SIDECAR_SUFFIXES:
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return candidate
    return None


def is_sidecar(path: Path) -> bool:
    """A .bib/.json file that belongs to the document it is named after (not itself a document)."""
    return path.suffix.lower() in SIDECAR_SUFFIXES and path.with_suffix("").is_file()


def read_meta_file(path: Path) -> DocumentMeta:
    """The metadata in a .bib (first entry) or .json file; a clear error when it holds none."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserFacingError(f"cannot read metadata file {path}: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserFacingError(
                f"metadata file {path} is not valid JSON ({exc.msg}, line {exc.lineno})"
            ) from None
        if not isinstance(data, dict) or not set(data) & set(_FIELDS):
            raise UserFacingError(f"metadata file {path} needs an object with some of: {', '.join(_FIELDS)}")
        if isinstance(data.get("authors"), str):
            data["authors"] = [a.strip() for a in re.split(r";|\s+and\s+", data["authors"]) if a.strip()]
        try:
            return DocumentMeta.from_json(data)
        except (TypeError, ValueError) as exc:
            raise UserFacingError(f"metadata file {path}: {exc}") from None
    entries = parse_bibtex(text)
    if not entries:
        raise UserFacingError(
            f"metadata file {path} holds no BibTeX entry (expected e.g. @article{{key, title = ...}})"
        )
    return entries[0]
