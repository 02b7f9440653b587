"""A local Zotero library as documents to ingest: each item's PDF or HTML attachment with the item's metadata.

Zotero keeps its library in DIR/zotero.sqlite and the files it imported in DIR/storage/<attachment key>/.
The database is only read from a copy (the file and its write-ahead log, copied under a read lock when
one can be had): a running Zotero holds an exclusive lock on it and may be writing. The copy is opened
with `mode=ro`. Names, not numbers, are looked up (fields, item and creator types): Zotero fills those
tables from its global schema at startup, so their ids differ between databases.

What the index is told per attachment is the item's record (title, "First Last" authors, the year of its
date, DOI, arXiv id, collection names): it overrides whatever the PDF's own text suggested.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from index.documents import ARXIV_ID, DOI, DocumentMeta
from index.errors import UserFacingError

DEFAULT_DIR = Path("~/Zotero")
DATABASE = "zotero.sqlite"
# itemAttachments.linkMode: 0 imported file, 1 imported URL (a snapshot), 2 linked file, 3 linked URL
# (no file), 4 embedded image (chrome/content/zotero/xpcom/attachments.js)
IMPORTED_FILE, IMPORTED_URL, LINKED_FILE = 0, 1, 2
NO_DOCUMENT = "no PDF or HTML attachment"  # the skip reason of an item with nothing the index reads
CONTENT_TYPES = {"application/pdf": "pdf", "text/html": "html", "application/xhtml+xml": "html"}
_ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf)/([^?#\s]+?)(?:\.pdf)?(?:[?#]|$)", re.I)
_ARXIV_BARE = re.compile(r"^(\d{4}\.\d{4,5}(?:v\d+)?|[a-z-]+(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?)$", re.I)


@dataclass(frozen=True, slots=True)
class Attachment:
    """One file to ingest: where it is, and the metadata of the item it belongs to."""

    path: Path
    meta: DocumentMeta
    label: str  # "KEY (title)", for messages about it


@dataclass
class Library:
    """What a Zotero data folder offers the index."""

    data_dir: Path
    schema_version: int | None  # userdata schema version (the `version` table), for messages
    attachments: list[Attachment] = field(default_factory=list)
    missing: list[Attachment] = field(default_factory=list)  # listed in the library, file not on disk
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item label, why nothing is indexed)

    @property
    def origin(self) -> str:
        """How the index remembers which of its files came from this library (to prune what left it)."""
        return f"zotero:{self.data_dir}"


def read_library(data_dir: Path) -> Library:
    """The library in `data_dir` (a Zotero data directory); a one-line UserFacingError when it has no
    readable zotero.sqlite."""
    data_dir = data_dir.expanduser().resolve()
    source = data_dir / DATABASE
    if not source.is_file():
        where = "no such folder" if not data_dir.is_dir() else f"no {DATABASE} in it"
        raise UserFacingError(
            f"{data_dir} is not a Zotero data directory ({where}): pass the folder Zotero shows under "
            "Settings > Advanced > Files and Folders > Data Directory Location"
        )
    with snapshot(source) as conn:
        try:
            return _read(conn, data_dir)
        except sqlite3.DatabaseError as exc:
            raise UserFacingError(
                f"{source} is not a Zotero database this version can read ({exc}): "
                "check that the folder is a Zotero data directory"
            ) from None


@contextmanager
def snapshot(source: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a private copy of `source`, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="ra-zotero-") as tmp:
        copy = Path(tmp) / DATABASE
        try:
            _copy(source, copy)
            conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise UserFacingError(f"{source} cannot be read as a database ({exc}): is it damaged?") from None
        except OSError as exc:
            raise UserFacingError(f"cannot copy {source} ({exc.strerror or exc})") from None
        with closing(conn):
            yield conn


def _copy(source: Path, copy: Path) -> None:
    """Copy the database and its write-ahead log, then fold the log into the copy. When no one holds
    the lock, a read transaction held meanwhile keeps writers out, so the copy is consistent; Zotero
    holds an exclusive lock for as long as it runs, and then the files are copied as they are (it appends
    to the log, whose checksums drop a frame caught half-written)."""
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=0.5, isolation_level=None)
    with closing(reader):
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        shutil.copyfile(source, copy)
        wal = source.with_name(source.name + "-wal")
        if wal.is_file():
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
    with closing(sqlite3.connect(copy)) as conn:  # our copy: folding the log in writes nothing of Zotero's
        conn.execute("PRAGMA journal_mode=DELETE").fetchone()


def _read(conn: sqlite3.Connection, data_dir: Path) -> Library:
    version = conn.execute("SELECT version FROM version WHERE schema = 'userdata'").fetchone()
    library = Library(data_dir, int(version[0]) if version else None)
    trashed = "SELECT itemID FROM deletedItems"
    rows = conn.execute(
        f"""SELECT a.itemID, i.key, a.parentItemID, a.linkMode, a.contentType, a.path
            FROM itemAttachments a JOIN items i USING (itemID)
            JOIN libraries l ON l.libraryID = i.libraryID
            WHERE l.type != 'feed' AND a.linkMode IN ({IMPORTED_FILE}, {IMPORTED_URL}, {LINKED_FILE})
              AND a.itemID NOT IN ({trashed})
              AND (a.parentItemID IS NULL OR a.parentItemID NOT IN ({trashed}))
            ORDER BY a.itemID"""
    ).fetchall()
    owners = {parent or item for item, _, parent, *_ in rows}
    metas = _metadata(conn, owners)
    keys = dict(conn.execute("SELECT itemID, key FROM items"))
    by_owner: dict[int, list[tuple[str, Path | None, str]]] = defaultdict(list)  # (kind, file, why not)
    for item, key, parent, mode, content_type, path in rows:
        kind = CONTENT_TYPES.get(content_type or "") or _kind_of(path)
        if kind is None:
            continue  # a spreadsheet, an image, an EPUB...: nothing the loaders read
        where, problem = _file_of(data_dir, key, mode, path or "")
        by_owner[parent or item].append((kind, where, problem))
    for owner in sorted(owners):
        meta = metas.get(owner, DocumentMeta())
        label = f"{keys.get(owner, '?')} ({meta.title or 'untitled'})"
        files = by_owner.get(owner, [])
        # an item's PDF is the paper; its HTML snapshot of the landing page would only repeat it
        chosen = [f for f in files if f[0] == "pdf"] or files
        if not chosen:
            library.skipped.append((label, NO_DOCUMENT))
        for _, where, problem in chosen:
            if where is None:
                library.skipped.append((label, problem))
            elif where.is_file():
                library.attachments.append(Attachment(where, meta, label))
            else:
                library.missing.append(Attachment(where, meta, label))
                library.skipped.append((label, f"attachment file missing: {where} ({problem})"))
    return library


def _kind_of(path: str | None) -> str | None:
    suffix = Path(path or "").suffix.lower()
    return {".pdf": "pdf", ".html": "html", ".htm": "html"}.get(suffix)


def _file_of(data_dir: Path, key: str, mode: int, path: str) -> tuple[Path | None, str]:
    """Where an attachment's file is, or None and why it cannot be found; the reason also serves when
    the file is not there."""
    if mode in (IMPORTED_FILE, IMPORTED_URL):
        name = path.removeprefix("storage:")
        return data_dir / "storage" / key / name, "not downloaded by Zotero sync, or deleted outside Zotero"
    if path.startswith("attachments:"):
        # relative to the "Linked Attachment Base Directory", a preference kept outside the data folder
        return None, f"linked file {path!r} is relative to Zotero's base directory, which is not known here"
    return Path(path).expanduser(), "the linked file was moved or deleted"


def _metadata(conn: sqlite3.Connection, items: set[int]) -> dict[int, DocumentMeta]:
    """Each item's record: fields by their base name (a case's `caseName` is its title, a report's
    `issueDate`... its date), creators in order, collections (those not in the trash)."""
    if not items:
        return {}
    conn.execute("CREATE TEMP TABLE wanted(itemID INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO wanted VALUES (?)", ((i,) for i in items))
    base = _base_fields(conn)
    values: dict[int, dict[str, str]] = defaultdict(dict)
    for item, field_id, value in conn.execute(
        """SELECT d.itemID, d.fieldID, v.value FROM itemData d JOIN wanted USING (itemID)
           JOIN itemDataValues v USING (valueID)"""
    ):
        values[item].setdefault(base.get(field_id, ""), str(value))
    authors: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for item, first, last, kind in conn.execute(
        """SELECT ic.itemID, c.firstName, c.lastName, t.creatorType FROM itemCreators ic
           JOIN wanted USING (itemID) JOIN creators c USING (creatorID)
           LEFT JOIN creatorTypes t USING (creatorTypeID) ORDER BY ic.itemID, ic.orderIndex"""
    ):
        authors[item].append((kind or "", " ".join(p for p in (first or "", last or "") if p.strip())))
    collections: dict[int, list[str]] = defaultdict(list)
    deleted = _table(conn, "deletedCollections")
    for item, name in conn.execute(
        f"""SELECT ci.itemID, c.collectionName FROM collectionItems ci JOIN wanted USING (itemID)
            JOIN collections c USING (collectionID)
            {"WHERE ci.collectionID NOT IN (SELECT collectionID FROM deletedCollections)" if deleted else ""}
            ORDER BY c.collectionName"""
    ):
        collections[item].append(str(name))
    conn.execute("DROP TABLE wanted")
    return {item: _record(values[item], authors[item], collections[item]) for item in items}


def _base_fields(conn: sqlite3.Connection) -> dict[int, str]:
    """fieldID -> the name of the field it stands for (its base field when it maps to one)."""
    names = {int(i): str(n) for i, n in conn.execute("SELECT fieldID, fieldName FROM fields")}
    mapping = (
        "baseFieldMappingsCombined" if _table(conn, "baseFieldMappingsCombined") else "baseFieldMappings"
    )
    if _table(conn, mapping):
        for field_id, base_id in conn.execute(f"SELECT fieldID, baseFieldID FROM {mapping}"):
            names[int(field_id)] = names.get(int(base_id), names.get(int(field_id), ""))
    return names


def _table(conn: sqlite3.Connection, name: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        is not None
    )


def _record(values: dict[str, str], creators: list[tuple[str, str]], collections: list[str]) -> DocumentMeta:
    """A DocumentMeta from an item's fields; authors are the creators typed author (all of them when
    none is, as for an edited volume)."""
    names = [name for kind, name in creators if kind == "author" and name] or [n for _, n in creators if n]
    return DocumentMeta(
        title=" ".join(values.get("title", "").split()),
        authors=names,
        year=_year(values.get("date", "")),
        doi=_doi(values),
        arxiv=_arxiv(values),
        collections=list(dict.fromkeys(collections)),
    )


def _year(date: str) -> int | None:
    """Zotero stores dates as 'YYYY-MM-DD original text', with 0000 for an unknown part."""
    m = re.match(r"(\d{4})-\d{2}-\d{2}", date) or re.search(r"\b(\d{4})\b", date)
    return int(m.group(1)) if m and int(m.group(1)) > 0 else None


def _doi(values: dict[str, str]) -> str:
    """The DOI field, or a `DOI: ...` line of Extra (where Zotero keeps it for types without the field)."""
    for text in (values.get("DOI", ""), values.get("extra", "")):
        if m := DOI.search(text):
            return m.group(1)
    return ""


def _arxiv(values: dict[str, str]) -> str:
    """From a preprint's archive ID ('arXiv:2101.00001'), an `arXiv: ...` line of Extra, or the URL."""
    archive = values.get("archiveID", "").strip()
    if m := ARXIV_ID.search(archive) or _ARXIV_BARE.match(archive):
        return m.group(1)
    if m := ARXIV_ID.search(values.get("extra", "")):
        return m.group(1)
    if m := _ARXIV_URL.search(values.get("url", "")):
        return m.group(1)
    return ""
