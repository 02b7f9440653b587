"""Zotero import (`ra ingest --zotero`): libraries built in Zotero's own tables (tests/data/zotero, userdata
schema 129) the way Zotero fills them, read back as documents with the items' metadata and collections,
followed incrementally, and refused in one line when the database is missing or damaged.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from readme_snippets import shell_commands
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from assistant.cli.sources import chunk_label
from assistant.index_access import index_config, open_index
from assistant.settings import load_settings
from index.documents import DocumentMeta
from index.ingest import Origin, ingest_paths
from index.store import MANIFEST, read_manifest
from index.zotero import Library, read_library

SCHEMA = Path(__file__).parent / "data" / "zotero" / "userdata-tables.sql"
# ids as a real database might number them (Zotero assigns them from its global schema)
ITEM_TYPES = {"attachment": 3, "journalArticle": 22, "preprint": 30, "note": 28}
FIELDS = {"title": 1, "date": 6, "url": 13, "extra": 16, "DOI": 59, "archiveID": 120, "caseName": 60}
CREATOR_TYPES = {"author": 8, "editor": 10}
PDF = "application/pdf"


def pdf_bytes(title: str, body: str) -> bytes:
    """A one-page PDF whose own metadata and first line claim `title` (what extraction would guess)."""
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    pdf.setTitle(title)
    pdf.setAuthor("Wrong Author")
    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(72, 770, title)
    pdf.setFont("Helvetica", 10)
    text = pdf.beginText(72, 740)
    for line in body.split("\n"):
        text.textLine(line)
    pdf.drawText(text)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


class ZoteroLibrary:
    """A Zotero data directory written through SQL as Zotero stores things."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "storage").mkdir(parents=True)
        self.db = sqlite3.connect(root / "zotero.sqlite")
        self.db.executescript(SCHEMA.read_text(encoding="utf-8"))
        self.db.execute("INSERT INTO version VALUES ('userdata', 129)")
        self.db.execute(
            "INSERT INTO libraries (libraryID, type, editable, filesEditable) VALUES (1, 'user', 1, 1)"
        )
        self.db.executemany("INSERT INTO itemTypes (typeName, itemTypeID) VALUES (?, ?)", ITEM_TYPES.items())
        self.db.executemany(
            "INSERT INTO fields (fieldID, fieldName) VALUES (?, ?)", [(i, n) for n, i in FIELDS.items()]
        )
        self.db.execute(
            "INSERT INTO baseFieldMappingsCombined VALUES (99, 1, 60)"
        )  # a case's caseName is its title
        self.db.executemany(
            "INSERT INTO creatorTypes VALUES (?, ?)", [(i, n) for n, i in CREATOR_TYPES.items()]
        )
        self.collections: dict[str, int] = {}
        self.commit()

    def commit(self) -> None:
        self.db.commit()

    def _new_item(self, type_name: str, key: str) -> int:
        cur = self.db.execute(
            "INSERT INTO items (itemTypeID, libraryID, key) VALUES (?, 1, ?)", (ITEM_TYPES[type_name], key)
        )
        return int(cur.lastrowid or 0)

    def set_field(self, item: int, name: str, value: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO itemDataValues (value) VALUES (?)", (value,))
        (value_id,) = self.db.execute(
            "SELECT valueID FROM itemDataValues WHERE value = ?", (value,)
        ).fetchone()
        self.db.execute("INSERT OR REPLACE INTO itemData VALUES (?, ?, ?)", (item, FIELDS[name], value_id))

    def item(
        self,
        key: str,
        title: str,
        creators: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
        collections: list[str] = (),  # type: ignore[assignment]
        type_name: str = "journalArticle",
        **values: str,
    ) -> int:
        item = self._new_item(type_name, key)
        for name, value in {"title": title, **values}.items():
            self.set_field(item, name, value)
        for order, (first, last, kind) in enumerate(creators):
            self.db.execute(
                "INSERT OR IGNORE INTO creators (firstName, lastName, fieldMode) VALUES (?, ?, 0)",
                (first, last),
            )
            (creator,) = self.db.execute(
                "SELECT creatorID FROM creators WHERE firstName = ? AND lastName = ?", (first, last)
            ).fetchone()
            self.db.execute(
                "INSERT INTO itemCreators VALUES (?, ?, ?, ?)", (item, creator, CREATOR_TYPES[kind], order)
            )
        for name in collections:
            self.add_to(item, name)
        return item

    def add_to(self, item: int, collection: str) -> None:
        if collection not in self.collections:
            cur = self.db.execute(
                "INSERT INTO collections (collectionName, libraryID, key) VALUES (?, 1, ?)",
                (collection, f"C{len(self.collections):07d}"),
            )
            self.collections[collection] = int(cur.lastrowid or 0)
        self.db.execute("INSERT INTO collectionItems VALUES (?, ?, 0)", (self.collections[collection], item))

    def attach(
        self,
        parent: int | None,
        key: str,
        name: str,
        data: bytes,
        content_type: str = PDF,
        link_mode: int = 0,
        write: bool = True,
    ) -> int:
        """An imported file (linkMode 0) lives in storage/KEY/NAME and its path is 'storage:NAME'."""
        item = self._new_item("attachment", key)
        self.set_field(item, "title", "Full Text PDF" if content_type == PDF else "Snapshot")
        folder = self.root / "storage" / key
        folder.mkdir()
        if write:
            (folder / name).write_bytes(data)
        self.db.execute(
            "INSERT INTO itemAttachments (itemID, parentItemID, linkMode, contentType, path) VALUES (?, ?, ?, ?, ?)",
            (item, parent, link_mode, content_type, f"storage:{name}"),
        )
        return item

    def link(self, parent: int, key: str, path: Path) -> int:
        """A linked file (linkMode 2): its absolute path, wherever it is."""
        item = self._new_item("attachment", key)
        self.db.execute(
            "INSERT INTO itemAttachments (itemID, parentItemID, linkMode, contentType, path) VALUES (?, ?, 2, ?, ?)",
            (item, parent, PDF, str(path)),
        )
        return item

    def trash(self, item: int) -> None:
        self.db.execute("INSERT INTO deletedItems (itemID) VALUES (?)", (item,))

    def delete(self, item: int) -> None:
        """Emptying the trash: the item and its children go (ON DELETE CASCADE, done by hand here)."""
        children = [
            r[0]
            for r in self.db.execute("SELECT itemID FROM itemAttachments WHERE parentItemID = ?", (item,))
        ]
        for gone in [item, *children]:
            for table in (
                "itemData",
                "itemCreators",
                "collectionItems",
                "itemAttachments",
                "deletedItems",
                "items",
            ):
                self.db.execute(f"DELETE FROM {table} WHERE itemID = ?", (gone,))


def settings_for(index_dir: Path, **retrieval: object) -> object:
    return load_settings({"index": {"dir": index_dir}, "retrieval": {"mode": "bm25", **retrieval}})


def ingest_library(root: Path, index_dir: Path) -> tuple[Library, object]:
    """What `ra ingest --zotero ROOT` does, in this process."""
    library = read_library(root)
    report = ingest_paths(
        [a.path for a in library.attachments],
        index_dir,
        index_config(load_settings({"index": {"dir": index_dir}})),
        meta={str(a.path.resolve()): a.meta for a in library.attachments},
        origin=Origin(library.origin, frozenset(str(a.path.resolve()) for a in library.missing)),
    )
    return library, report


def run_ra(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ,
    )


# -- a small library: metadata round trip, collections as filters -----------------------------------------

PAPERS = {
    "ABCD1234": DocumentMeta(
        title="Quantum Annealing of Protein Folds",
        authors=["Ada Lovelace", "Alan Turing"],
        year=2019,
        doi="10.1234/qafold.2019",
        collections=["Methods"],
    ),
    "EFGH5678": DocumentMeta(
        title="Sparse Attention for Glacier Models",
        authors=["Grace Hopper"],
        year=2023,
        arxiv="2301.04567",
        collections=["Methods", "Reviews"],
    ),
    "IJKL9012": DocumentMeta(
        title="A Survey of Mycelium Networks",
        authors=["Barbara McClintock"],
        year=2021,
        collections=["Reviews"],
    ),
    "MNOP3456": DocumentMeta(title="Linked Notes on Tidal Power", authors=["Rachel Carson"], year=2018),
}
WORDS = {"ABCD1234": "zorbium", "EFGH5678": "glaciate", "IJKL9012": "hyphae", "MNOP3456": "tidal"}


@pytest.fixture(scope="module")
def small_library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("zotero") / "Zotero"
    z = ZoteroLibrary(root)

    def body(key: str) -> str:
        word = WORDS[key]
        return "\n".join(
            f"The {word} measurements in part {i} agree with the {word} model." for i in range(30)
        )

    a = z.item(
        "ABCD1234",
        PAPERS["ABCD1234"].title,
        [("Ada", "Lovelace", "author"), ("Alan", "Turing", "author"), ("Ed", "Itor", "editor")],
        ["Methods"],
        date="2019-03-15 March 15, 2019",
        DOI="10.1234/qafold.2019",
    )
    z.attach(a, "PDFA0001", "lovelace2019.pdf", pdf_bytes("A Misleading Title In The PDF", body("ABCD1234")))
    z.attach(a, "TRSH0001", "old-draft.pdf", pdf_bytes("Old Draft", "zorbium draft"))
    z.trash(z.db.execute("SELECT itemID FROM items WHERE key = 'TRSH0001'").fetchone()[0])
    b = z.item(
        "EFGH5678",
        PAPERS["EFGH5678"].title,
        [("Grace", "Hopper", "author")],
        ["Methods", "Reviews"],
        type_name="preprint",
        date="2023-01-11 2023-01-11",
        archiveID="arXiv:2301.04567",
        url="https://arxiv.org/abs/2301.04567",
    )
    z.attach(b, "PDFB0001", "hopper.pdf", pdf_bytes("Another Guess", body("EFGH5678")))
    z.attach(b, "SNAP0001", "snapshot.html", b"<html><body>landing page</body></html>", "text/html", 1)
    c = z.item(
        "IJKL9012",
        PAPERS["IJKL9012"].title,
        [("Barbara", "McClintock", "author")],
        ["Reviews"],
        date="2021-00-00 2021",
    )
    html = f"<html><head><title>Wrong HTML Title</title></head><body><p>{body('IJKL9012')}</p></body></html>"
    z.attach(c, "SNAP0002", "survey.html", html.encode(), "text/html", 1)
    d = z.item(
        "MNOP3456", PAPERS["MNOP3456"].title, [("Rachel", "Carson", "author")], date="2018-06-01 2018-06-01"
    )
    linked = root.parent / "elsewhere" / "tidal.pdf"
    linked.parent.mkdir()
    linked.write_bytes(pdf_bytes("Tidal Guess", body("MNOP3456")))
    z.link(d, "LINK0001", linked)
    e = z.item("QRST7890", "Never Downloaded", [("Lise", "Meitner", "author")])
    z.attach(e, "MISS0001", "meitner.pdf", b"", write=False)
    z.item("UVWX1111", "Only A Note", [])
    z.commit()
    index_dir = root.parent / "index"
    done = run_ra("ingest", "--zotero", str(root), "--index", str(index_dir), "--json", cwd=root.parent)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # --json: stdout is the report alone
    assert report["files_added"] == 4, report
    reasons = {r["path"]: r["reason"] for r in report["skipped"]}
    assert "attachment file missing" in reasons["QRST7890 (Never Downloaded)"]
    assert "storage/MISS0001/meitner.pdf" in reasons["QRST7890 (Never Downloaded)"]
    return root, index_dir


def test_items_metadata_reaches_every_hit(small_library: tuple[Path, Path]) -> None:
    _, index_dir = small_library
    index = open_index(settings_for(index_dir))  # type: ignore[arg-type]
    assert sorted(Path(k).name for k in index.manifest.files) == [
        "hopper.pdf",
        "lovelace2019.pdf",
        "survey.html",
        "tidal.pdf",
    ]  # the PDF, not the snapshot beside it; nothing trashed
    files = {
        "lovelace2019.pdf": "ABCD1234",
        "hopper.pdf": "EFGH5678",
        "survey.html": "IJKL9012",
        "tidal.pdf": "MNOP3456",
    }
    hits = index.search("measurements agree with the model", k=20)
    assert {Path(h.chunk.source).name for h in hits} == set(files)
    for hit in hits:
        want = PAPERS[files[Path(hit.chunk.source).name]]
        assert hit.chunk.document == want, hit.chunk.document
        assert chunk_label(hit.chunk).startswith(f"{want.title} — ")
        assert hit.to_json()["document"]["collections"] == want.collections
    assert index.collections() == ["Methods", "Reviews"]


def test_search_keeps_to_a_collection(small_library: tuple[Path, Path]) -> None:
    root, index_dir = small_library
    index = open_index(settings_for(index_dir, collection="reviews"))  # type: ignore[arg-type]
    hits = index.search("zorbium measurements model", k=5)  # zorbium is in Methods only
    assert len(hits) == 5  # not the top 5 of everything filtered down: 5 of the collection
    assert {h.chunk.document.title for h in hits if h.chunk.document} <= {
        PAPERS["EFGH5678"].title,
        PAPERS["IJKL9012"].title,
    }
    found = run_ra(
        "search",
        "zorbium",
        "--collection",
        "Methods",
        "--index",
        str(index_dir),
        "-k",
        "2",
        "--json",
        cwd=root,
    )
    assert found.returncode == 0, found.stderr
    hits_json = json.loads(found.stdout)
    assert len(hits_json) == 2 and all("Methods" in h["document"]["collections"] for h in hits_json)
    unknown = run_ra("search", "zorbium", "--collection", "Nope", "--index", str(index_dir), cwd=root)
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert unknown.stderr.strip().splitlines() == [
        f"error: no collection 'Nope' in the index at {index_dir}: it has Methods, Reviews"
    ]


@pytest.mark.parametrize("backend", ["local", "milvus"])
def test_a_small_collection_still_gets_k_passages(tmp_path: Path, backend: str) -> None:
    """The collection's passages rank below everyone else's, and the search still returns k of them."""
    root = tmp_path / "Zotero"
    z = ZoteroLibrary(root)
    for i in range(6):
        small = i == 5
        item = z.item(f"ITEM{i:04d}", f"Paper {i}", [("A", f"B{i}", "author")], ["Small" if small else "Big"])
        line = "a glacier note" if small else "glacier glacier glacier ice sheets and glacier flow"
        body = "\n".join(f"{line} number {n} in this long passage of the paper" for n in range(60))
        z.attach(item, f"FILE{i:04d}", f"p{i}.pdf", pdf_bytes(f"P {i}", body))
    z.commit()
    index_dir = tmp_path / "index"
    settings = load_settings(
        {
            "index": {"dir": index_dir, "backend": backend, "milvus": {"uri": str(tmp_path / "milvus.db")}},
            "retrieval": {"mode": "hybrid"},
        }
    )
    library = read_library(root)
    meta = {str(a.path.resolve()): a.meta for a in library.attachments}
    ingest_paths([a.path for a in library.attachments], index_dir, index_config(settings), meta=meta)
    index = open_index(settings)
    everything = index.search("glacier", k=3)
    assert all(Path(h.chunk.source).name != "p5.pdf" for h in everything)
    hits = index.search("glacier", k=3, collection="Small")
    assert len(hits) == 3 and {Path(h.chunk.source).name for h in hits} == {"p5.pdf"}


# -- a 50-item library followed over edits ---------------------------------------------------------------------


def test_fifty_items_incremental(tmp_path: Path) -> None:
    root = tmp_path / "Zotero"
    z = ZoteroLibrary(root)
    items = []
    for i in range(50):
        item = z.item(
            f"ITEM{i:04d}",
            f"Zotero Title {i}",
            [("Given", f"Family{i}", "author")],
            ["Even" if i % 2 == 0 else "Odd"],
            date=f"{2000 + i % 20}-01-01 {2000 + i % 20}",
        )
        z.attach(
            item,
            f"FILE{i:04d}",
            f"paper{i}.pdf",
            pdf_bytes(f"PDF Title {i}", f"Item {i} reports on topic{i}."),
        )
        items.append(item)
    z.commit()
    index_dir = tmp_path / "index"
    elsewhere = tmp_path / "notes.md"
    elsewhere.write_text("# Lab notes\n\nThe zorbium run finished early.\n", encoding="utf-8")
    config = index_config(load_settings({"index": {"dir": index_dir}}))
    ingest_paths([elsewhere], index_dir, config)

    _, first = ingest_library(root, index_dir)
    assert len(first.added) == 50 and not first.skipped  # type: ignore[attr-defined]

    t0 = time.perf_counter()
    _, again = ingest_library(root, index_dir)
    seconds = time.perf_counter() - t0
    assert again.unchanged == 50 and not again.committed  # type: ignore[attr-defined]
    print(f"unchanged re-run of a 50-item library, in process: {seconds:.3f} s")
    assert seconds < 2.0, f"unchanged re-run took {seconds:.2f} s"

    z.delete(items[0])
    z.trash(items[1])
    z.set_field(items[2], "title", "An Edited Title")
    z.db.execute("DELETE FROM collectionItems WHERE itemID = ?", (items[3],))
    z.add_to(items[3], "Favourites")  # collections only: no re-read
    z.commit()
    _, edited = ingest_library(root, index_dir)
    names = lambda keys: sorted(Path(k).name for k in keys)  # noqa: E731
    assert names(edited.removed) == ["paper0.pdf", "paper1.pdf"]  # type: ignore[attr-defined]
    assert names(edited.updated) == ["paper2.pdf"]  # type: ignore[attr-defined]
    assert names(edited.metadata_updated) == ["paper3.pdf"]  # type: ignore[attr-defined]
    assert edited.chunks_embedded == 1  # type: ignore[attr-defined]  # paper2 only
    manifest = read_manifest(index_dir)
    assert manifest is not None
    docs = {Path(k).name: DocumentMeta.from_json(e.document) for k, e in manifest.files.items()}
    assert "notes.md" in docs and len(docs) == 49  # 48 of the library and the notes from elsewhere
    assert docs["paper2.pdf"].title == "An Edited Title"
    assert docs["paper3.pdf"].collections == ["Favourites"] and docs["paper3.pdf"].title == "Zotero Title 3"
    hits = open_index(settings_for(index_dir, collection="Favourites")).search("topic3 reports", k=3)  # type: ignore[arg-type]
    assert [Path(h.chunk.source).name for h in hits] == ["paper3.pdf"]


def test_unchanged_rerun_through_the_cli_is_quick(tmp_path: Path) -> None:
    """The whole command, process start included, as a person runs it (recorded in docs/benchmarks.md)."""
    root = tmp_path / "Zotero"
    z = ZoteroLibrary(root)
    for i in range(50):
        item = z.item(f"ITEM{i:04d}", f"Title {i}", [("A", f"B{i}", "author")])
        z.attach(item, f"FILE{i:04d}", f"p{i}.pdf", pdf_bytes(f"P {i}", f"Item {i} on subject{i}."))
    z.commit()
    args = ("ingest", "--zotero", str(root), "--index", str(tmp_path / "index"), "--json")
    assert run_ra(*args, cwd=tmp_path).returncode == 0
    t0 = time.perf_counter()
    again = run_ra(*args, cwd=tmp_path)
    seconds = time.perf_counter() - t0
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["files_unchanged"] == 50 and not json.loads(again.stdout)["committed"]
    print(f"unchanged re-run of a 50-item library through `ra ingest --zotero`: {seconds:.2f} s")
    assert seconds < 10.0, f"{seconds:.2f} s"  # 0.6 s measured (docs/benchmarks.md 19); shared CPUs vary


# -- bad input ---------------------------------------------------------------------------------------------------


def test_bad_libraries_fail_in_one_line_and_leave_the_index_alone(tmp_path: Path) -> None:
    root = tmp_path / "Zotero"
    z = ZoteroLibrary(root)
    item = z.item("ITEM0001", "A Title", [("A", "B", "author")])
    z.attach(item, "FILE0001", "p.pdf", pdf_bytes("P", "Some text about the subject."))
    z.commit()
    index_dir = tmp_path / "index"
    assert run_ra("ingest", "--zotero", str(root), "--index", str(index_dir), cwd=tmp_path).returncode == 0
    before = (index_dir / MANIFEST).read_bytes()

    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "zotero.sqlite").write_bytes(b"this is not a database" * 100)
    for folder, says in [
        (empty, "is not a Zotero data directory (no zotero.sqlite in it)"),
        (tmp_path / "nowhere", "is not a Zotero data directory (no such folder)"),
        (corrupt, "cannot be read as a database"),
    ]:
        done = run_ra("ingest", "--zotero", str(folder), "--index", str(index_dir), cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and says in lines[0], done.stderr
        assert (index_dir / MANIFEST).read_bytes() == before

    both = run_ra("ingest", "--zotero", str(root), "--meta", str(tmp_path / "x.bib"), cwd=tmp_path)
    assert both.returncode == 2 and "exclude each other" in both.stderr


def test_a_locked_database_is_read_from_a_copy(tmp_path: Path) -> None:
    """Zotero holds an exclusive lock while it runs: the import reads a copy rather than failing."""
    root = tmp_path / "Zotero"
    z = ZoteroLibrary(root)
    item = z.item("ITEM0001", "Locked Library Paper", [("Ada", "Lovelace", "author")], ["Methods"])
    z.attach(item, "FILE0001", "p.pdf", pdf_bytes("P", "Some text about the subject."))
    z.commit()
    holder = sqlite3.connect(root / "zotero.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            sqlite3.connect(f"file:{root / 'zotero.sqlite'}?mode=ro", uri=True, timeout=0).execute(
                "SELECT count(*) FROM items"
            ).fetchone()
        library = read_library(root)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    [attachment] = library.attachments
    assert attachment.meta.title == "Locked Library Paper" and attachment.meta.collections == ["Methods"]


def test_the_readme_commands_run_on_a_library(small_library: tuple[Path, Path], tmp_path: Path) -> None:
    """The README's Zotero lines as a reader would run them, on this library (its folder for ~/Zotero, a
    fresh index); `ra ask` needs a model, so only its flag is checked here."""
    root, _ = small_library
    ingest, search, ask = shell_commands("zotero")
    index = ["--index", str(tmp_path / "idx")]
    done = run_ra(*shlex.split(ingest)[1:], str(root), *index, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files_added"] == 4
    found = run_ra(*shlex.split(search)[1:], *index, "--json", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits and all("Methods" in h["document"]["collections"] for h in hits)
    assert (
        "--collection" in shlex.split(ask) and "--collection" in run_ra("ask", "--help", cwd=tmp_path).stdout
    )
