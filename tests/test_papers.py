"""Papers as papers: metadata, sections and references, clean text, column order, citations and BibTeX.

Generated PDFs (eval/synthetic_papers.py, reportlab) carry known truth; the two real PDFs in ../shared
check the same on pdfTeX output.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from assistant.agent.records import Citation, Evidence
from assistant.cli import index_cmds
from assistant.cli.sources import chunk_label, citation_label, citations_bibtex
from assistant.index_access import index_config, open_index
from assistant.settings import load_settings
from eval.synthetic_papers import PaperSpec, paper_specs, render_pdf
from index.chunking import chunk_document
from index.config import ChunkingConfig
from index.documents import DocumentMeta, format_source, parse_bibtex, to_bibtex
from index.errors import IndexIncompatible
from index.ingest import ingest_paths
from index.loaders import load_document
from index.search_text import search_text
from index.store import MANIFEST, read_manifest

SPECS = paper_specs()
PASA_AUTHORS = [
    "Yichen He",
    "Guanhua Huang",
    "Peiyuan Feng",
    "Yuan Lin",
    "Yuchen Zhang",
    "Hang Li",
    "Weinan E",
]


def norm(text: str) -> str:
    return " ".join(text.split())


def write_paper(tmp_path: Path, spec: PaperSpec, name: str = "paper.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(render_pdf(spec))
    return path


# -- metadata --------------------------------------------------------------------------------------


def test_generated_set_covers_the_layouts() -> None:
    assert len(SPECS) >= 10
    assert {(s.two_column, s.interleaved) for s in SPECS} == {(False, False), (True, False), (True, True)}
    assert any(s.arxiv for s in SPECS) and any(s.doi for s in SPECS) and any(s.info_metadata for s in SPECS)


@pytest.mark.parametrize("i", range(len(SPECS)))
def test_generated_paper_metadata_is_extracted(tmp_path: Path, i: int) -> None:
    spec = SPECS[i]
    meta = load_document(write_paper(tmp_path, spec)).meta
    assert meta.title == spec.title
    assert meta.authors == spec.authors
    assert meta.year == spec.year
    assert meta.arxiv == spec.arxiv
    assert meta.doi == spec.doi


def test_real_pdfs_metadata(shared: Path) -> None:
    pasa = load_document(shared / "pdfs" / "paperqa_pasa.pdf").meta
    assert pasa.title == "PaSa: An LLM Agent for Comprehensive Academic Paper Search"
    assert pasa.authors == PASA_AUTHORS
    assert pasa.year == 2025 and pasa.arxiv == "2501.10120v1"
    paper = load_document(shared / "pdfs" / "paperqa_paper.pdf").meta
    assert paper.title == "A Perspective on Explanations of Molecular Prediction Models"
    assert paper.authors == ["Geemi P. Wellawatte", "Heta A. Gandhi", "Aditi Seshadri", "Andrew D. White"]


def test_sidecar_and_meta_override(tmp_path: Path) -> None:
    spec = SPECS[0]
    pdf = write_paper(tmp_path, spec)
    (tmp_path / "paper.pdf.bib").write_text(
        "@article{x, title = {The {Real} Title}, author = {Doe, Jane and Roe, Richard},\n"
        " year = 2020, doi = {10.1000/xyz.1}}\n",
        encoding="utf-8",
    )
    meta = load_document(pdf).meta
    assert (meta.title, meta.authors, meta.year, meta.doi) == (
        "The Real Title",
        ["Jane Doe", "Richard Roe"],
        2020,
        "10.1000/xyz.1",
    )
    assert meta.arxiv == spec.arxiv  # what the sidecar does not say stays as extracted
    override = load_document(pdf, DocumentMeta(title="Given on the command line")).meta
    assert override.title == "Given on the command line" and override.year == 2020


def test_text_html_markdown_titles(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("#notes\n\nThis review covers ten papers. It goes on for a while.\n" * 3)
    assert (
        load_document(tmp_path / "a.txt").meta.title
        == "This review covers ten papers. It goes on for a while."
    )
    long = "This article is a compilation of research highlights, handpicked and summarized. " + "x " * 80
    (tmp_path / "b.txt").write_text(long)
    assert load_document(tmp_path / "b.txt").meta.title == (
        "This article is a compilation of research highlights, handpicked and summarized."
    )
    (tmp_path / "c.md").write_text("intro\n\n## Only a Second Level\n\ntext\n")
    assert load_document(tmp_path / "c.md").meta.title == "Only a Second Level"
    (tmp_path / "d.html").write_text(
        '<html><head><title>Site | Page</title><meta name="citation_title" content="A Paper">'
        '<meta name="citation_author" content="Ada Lovelace"><meta name="citation_author" content="Alan Turing">'
        '<meta name="citation_publication_date" content="2019/05/02"><meta name="citation_doi" content="10.1/2">'
        "</head><body><p>x</p></body></html>"
    )
    html = load_document(tmp_path / "d.html").meta
    assert (html.title, html.authors, html.year, html.doi) == (
        "A Paper",
        ["Ada Lovelace", "Alan Turing"],
        2019,
        "10.1/2",
    )


# -- sections, references, clean text, column order ------------------------------------------------


def test_generated_sections_roles_hyphenation_and_columns(tmp_path: Path) -> None:
    for i, spec in enumerate(SPECS):
        doc = load_document(write_paper(tmp_path, spec, f"p{i}.pdf"))
        chunks = chunk_document(doc, ChunkingConfig(), "d")
        text = norm(" ".join(c.text for c in chunks))
        for c in chunks:
            assert doc.text[c.start : c.end] == c.text
        assert spec.hyphenated and all(word in text for word in spec.hyphenated), spec.title
        assert not re.search(r"[a-z]-\n[a-z]", doc.text)
        for fact in spec.facts:  # in reading order even where the stream interleaves the columns
            assert fact in norm(doc.text), (spec.title, fact)
        roles = {c.section: c.meta.get("role", "body") for c in chunks if c.section}
        assert roles["References"] == "references" and roles["Acknowledgements"] == "acknowledgements"
        assert roles["3 Experiments"] == "body"
        pieces = (f"Training the {spec.topic}", f"{spec.topic} model took")  # the fact may cross a page
        fact_chunks = [c for c in chunks if any(p in norm(c.text) for p in pieces)]
        assert fact_chunks and all(c.section == "3 Experiments" for c in fact_chunks)


def test_interleaved_two_columns_read_left_column_first(tmp_path: Path) -> None:
    spec = next(s for s in SPECS if s.interleaved)
    page = norm(load_document(write_paper(tmp_path, spec)).pages[0].text)
    assert page.index("1 Introduction") < page.index("2 Method") < page.index("3 Experiments")


def test_real_pdfs_sections_references_and_reading_order(shared: Path) -> None:
    pasa = load_document(shared / "pdfs" / "paperqa_pasa.pdf")
    first = norm(pasa.pages[0].text)
    # the abstract reads on in one column and its hyphenated words are whole again
    assert "including invoking search tools, reading papers, and selecting relevant references" in first
    assert "Despite being trained on synthetic data" in first
    starts = {}
    for name, doc in (("pasa", pasa), ("paper", load_document(shared / "pdfs" / "paperqa_paper.pdf"))):
        chunks = chunk_document(doc, ChunkingConfig(), "d")
        assert all(doc.text[c.start : c.end] == c.text for c in chunks)
        assert not re.search(r"[a-z]-\n[a-z]", doc.text)
        refs = [c for c in chunks if c.meta.get("role") == "references"]
        starts[name] = min(c.page for c in refs)
        assert all(c.section for c in chunks if c.page and c.page > 1)
        if name == "paper":
            acks = [c for c in chunks if c.meta.get("role") == "acknowledgements"]
            assert acks and {c.page for c in acks} == {24}
            assert {"Theory", "Counterfactual explanations", "Solubility prediction"} <= {
                c.section for c in chunks
            }
    assert starts == {"pasa": 10, "paper": 24}


def test_search_text_drops_citation_markers_only() -> None:
    assert (
        search_text("quantum computing 4,5 to drug discovery 6–10 and")
        == "quantum computing to drug discovery and"
    )
    assert search_text("see [12] and [3, 5–7].") == "see and."
    kept = "includes 33,511 queries, 1,000 papers and 37.78% at top 20; pages 10-20"
    assert search_text(kept) == kept


# -- citations and BibTeX ----------------------------------------------------------------------------


def test_format_source_and_bibtex() -> None:
    pasa = DocumentMeta(
        "PaSa: An LLM Agent", ["Yichen He", "Guanhua Huang", "Peiyuan Feng"], 2025, "", "2501.10120v1"
    )
    assert format_source(pasa, "/x/p.pdf", page=3) == "PaSa: An LLM Agent — He et al. (2025), p. 3"
    two = DocumentMeta("T", ["Ada Lovelace", "Alan Turing"], 1950)
    assert format_source(two, "/x/t.pdf") == "T — Lovelace and Turing (1950)"
    notes = DocumentMeta(title="Papers List")
    assert format_source(notes, "/abs/c/001_3c21.txt", lines=(4, 9)) == "Papers List, lines 4–9"
    assert format_source(DocumentMeta(), "corpus/001_3c21.txt", lines=(4, 4)) == "corpus/001_3c21.txt, line 4"
    bib = to_bibtex(pasa, "/x/p.pdf")
    assert bib.startswith("@misc{he2025pasa,") and "eprint = {2501.10120}" in bib
    [back] = parse_bibtex(bib)
    assert (back.title, back.authors, back.year, back.arxiv) == (pasa.title, pasa.authors, 2025, "2501.10120")


def test_citation_labels_and_bibtex_entries() -> None:
    meta = DocumentMeta("A Title", ["Ada Lovelace"], 2001, "10.1/x")

    def passage(n: int, source: str, page: int | None, document: DocumentMeta) -> Evidence:
        return Evidence(n, "passage", "quote and more", source, page, 0, 14, f"c{n}", document=document)

    pdf = Citation(1, "quote", 0, 5, passage(1, "/a/b.pdf", 4, meta))
    txt = Citation(2, "quote", 0, 5, passage(2, "/a/n.txt", None, DocumentMeta("Notes")), lines=(3, 5))
    again = Citation(3, "more", 9, 12, passage(3, "/a/b.pdf", 5, meta))
    assert citation_label(pdf) == "A Title — Lovelace (2001), p. 4"
    assert citation_label(txt) == "Notes, lines 3–5"
    bib = citations_bibtex([pdf, txt, again])
    assert bib.count("@") == 2 and "@article{lovelace2001title," in bib and "doi = {10.1/x}" in bib
    assert json.loads(json.dumps(pdf.to_json()))["document"] == {
        "title": "A Title",
        "authors": ["Ada Lovelace"],
        "year": 2001,
        "doi": "10.1/x",
        "arxiv": "",
        "collections": [],
    }


# -- the index: stored metadata, references out of search, format version ----------------------------


@pytest.fixture(scope="module")
def paper_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("papers")
    for i in (0, 3):
        (root / f"paper{i}.pdf").write_bytes(render_pdf(SPECS[i]))
    (root / "notes.md").write_text("# Lab Notes\n\nThe zorbium run finished early.\n", encoding="utf-8")
    index_dir = root / "index"
    ingest_paths([root], index_dir, index_config(load_settings({"index": {"dir": index_dir}})))
    return index_dir


def test_index_stores_metadata_and_keeps_references_out(paper_index: Path) -> None:
    manifest = read_manifest(paper_index)
    assert manifest is not None
    docs = {Path(k).name: e.document for k, e in manifest.files.items()}
    assert docs["paper0.pdf"]["title"] == SPECS[0].title and docs["paper0.pdf"]["arxiv"] == SPECS[0].arxiv
    settings = load_settings({"index": {"dir": paper_index}, "retrieval": {"mode": "bm25"}})
    query = f"{SPECS[0].topic} estimators validation error accelerators"
    hits = open_index(settings).search(query, k=8)
    assert hits and not [h for h in hits if h.chunk.meta.get("role") == "references"]
    assert hits[0].chunk.document == DocumentMeta.from_json(docs[Path(hits[0].chunk.source).name])
    with_refs = load_settings(
        {"index": {"dir": paper_index}, "retrieval": {"mode": "bm25", "include_references": True}}
    )
    assert [h for h in open_index(with_refs).search(query, k=8) if h.chunk.meta.get("role") == "references"]
    label = chunk_label(hits[0].chunk)
    assert label.startswith(SPECS[0].title + " — ") and f"({SPECS[0].year}), p. " in label


def test_search_json_and_text_name_documents(paper_index: Path) -> None:
    app = typer.Typer()
    index_cmds.register(app)
    args = ["search", "zorbium run finished", "--index", str(paper_index), "--mode", "bm25", "-k", "3"]
    data = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    notes = next(h for h in data if h["source"].endswith("notes.md"))
    assert notes["document"] == {
        "title": "Lab Notes",
        "authors": [],
        "year": None,
        "doi": "",
        "arxiv": "",
        "collections": [],
    }
    paper = next(h for h in data if h["source"].endswith(".pdf"))
    assert paper["document"]["authors"] == SPECS[0].authors and paper["section"]
    text = CliRunner().invoke(app, args).stdout
    assert "Lab Notes, lines 1–3" in text and f"{SPECS[0].title} — " in text
    assert str(paper_index.parent) not in text  # no absolute, hash-named paths


def test_cli_ingest_meta_file_and_old_format(tmp_path: Path) -> None:
    app = typer.Typer()
    index_cmds.register(app)
    pdf = write_paper(tmp_path, SPECS[1])
    bib = tmp_path / "given.bib"
    bib.write_text("@misc{k, title={Given Title}, author={Kim, Lee}, year={2011}}", encoding="utf-8")
    idx = tmp_path / "idx"
    folder = CliRunner().invoke(app, ["ingest", str(tmp_path), "--index", str(idx), "--meta", str(bib)])
    assert folder.exit_code == 2 and "exactly one file" in folder.output
    done = CliRunner().invoke(app, ["ingest", str(pdf), "--index", str(idx), "--meta", str(bib)])
    assert done.exit_code == 0, done.output
    [entry] = read_manifest(idx).files.values()  # type: ignore[union-attr]
    assert entry.document["title"] == "Given Title" and entry.document["authors"] == ["Lee Kim"]

    manifest = json.loads((idx / MANIFEST).read_text())
    (idx / MANIFEST).write_text(json.dumps({**manifest, "format_version": 1}))
    with pytest.raises(IndexIncompatible, match="rebuild"):
        read_manifest(idx)
    rebuilt = CliRunner().invoke(app, ["ingest", str(pdf), "--index", str(idx), "--rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert read_manifest(idx) is not None


# -- tables ------------------------------------------------------------------------------------------


def test_generated_table_rows_in_chunk_meta(tmp_path: Path) -> None:
    for spec in (SPECS[0], SPECS[1], SPECS[3]):  # one column, two columns, interleaved
        chunks = chunk_document(load_document(write_paper(tmp_path, spec)), ChunkingConfig(), "d")
        tables = [t for c in chunks for t in c.meta.get("tables", [])]
        assert tables and tables[0]["rows"] == spec.table
        assert tables[0]["caption"] == f"Table 1: Results of the {spec.topic} estimator."


def test_real_pdf_table_rows(shared: Path) -> None:
    chunks = chunk_document(load_document(shared / "pdfs" / "paperqa_pasa.pdf"), ChunkingConfig(), "d")
    [table] = [t for c in chunks for t in c.meta.get("tables", []) if t["caption"].startswith("Table 9:")][:1]
    assert table["rows"][0] == ["w/o [Expand]", "0.3355", "0.1445", "0.2536", "0.3359", "0.6738", "0.2890"]


@pytest.mark.slow
def test_milvus_keeps_references_out_and_returns_document_records(tmp_path: Path) -> None:
    """The same papers in the milvus backend (a real milvus-lite file): reference lists stay out of every
    search mode by Milvus's own filter, and chunks come back with their section and document record."""
    for i in (0, 3):
        (tmp_path / f"paper{i}.pdf").write_bytes(render_pdf(SPECS[i]))
    where = {"dir": tmp_path / "index", "backend": "milvus", "milvus": {"uri": str(tmp_path / "m.db")}}
    settings = load_settings({"index": where})
    ingest_paths([tmp_path], settings.index.dir, index_config(settings))
    manifest = read_manifest(settings.index.dir)
    assert manifest is not None and manifest.build["index.backend"] == "milvus"
    index = open_index(settings)
    query = f"{SPECS[0].topic} estimators validation error accelerators"
    for mode in ("bm25", "dense", "hybrid"):
        hits = index.search(query, k=8, mode=mode)
        assert hits and not [h for h in hits if h.chunk.meta.get("role") == "references"], mode
    top = index.search(query, k=1, mode="bm25")[0].chunk
    assert top.document == DocumentMeta.from_json(manifest.files[top.source].document)
    assert top.document.title == SPECS[0].title and top.section
    assert index.get_chunk(top.chunk_id).document == top.document
    assert all(c.document == top.document for c in index.neighbours(top.chunk_id))
    with_refs = load_settings({"index": where, "retrieval": {"mode": "bm25", "include_references": True}})
    assert [h for h in open_index(with_refs).search(query, k=8) if h.chunk.meta.get("role") == "references"]


def test_a_text_titled_by_its_opening_sentence_is_labelled_by_its_file_name() -> None:
    """Issue 23: "This year has felt distinctly different., line 17" read like a sentence, not a source."""
    opening = DocumentMeta(title="This year has felt distinctly different.")
    assert format_source(opening, "/abs/c/003_b445.txt", lines=(17, 17)) == (
        "003_b445.txt (\u201cThis year has felt distinctly different\u2026\u201d), line 17"
    )
    question = DocumentMeta(title="Why do small models hallucinate?")  # a heading that asks is a title
    assert format_source(question, "/abs/c/b.md") == "Why do small models hallucinate?"
