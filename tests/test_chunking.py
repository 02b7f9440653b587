"""Chunker: exact spans, full coverage, bounded sizes, structure (pages, sections, code, sentences)."""

from __future__ import annotations

import itertools
import os
import random
import re
from pathlib import Path

import pytest

from index.chunking import chunk_document
from index.config import ChunkingConfig
from index.text import sentence_spans
from index.types import Chunk, LoadedDocument, Page

SHARED = Path(os.environ.get("RA_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


def doc_of(*pages: str, kind: str = "md", numbered: bool | None = None) -> LoadedDocument:
    numbered = kind == "pdf" if numbered is None else numbered
    return LoadedDocument(
        source="src/doc." + kind,
        title="Doc Title",
        kind=kind,
        pages=[Page(number=i + 1 if numbered else None, text=t) for i, t in enumerate(pages)],
    )


def check_invariants(doc: LoadedDocument, chunks: list[Chunk], cfg: ChunkingConfig) -> None:
    """The contract every consumer relies on, checked against the document itself."""
    text = doc.text
    covered = bytearray(len(text))
    page_bounds = [(s, s + len(p.text), p.number) for s, p in zip(doc.page_starts, doc.pages, strict=True)]
    for i, c in enumerate(chunks):
        assert c.chunk_id == f"d1:{i:05d}"
        assert c.source == doc.source and c.title == doc.title
        assert text[c.start : c.end] == c.text
        assert c.text.strip() == c.text and c.text
        assert c.line_start == text.count("\n", 0, c.start) + 1
        assert c.line_end == text.count("\n", 0, c.end - 1) + 1
        pages = [n for s, e, n in page_bounds if s <= c.start and c.end <= e]
        assert pages == [c.page], "a chunk stays inside one page"
        limit = cfg.size + cfg.min_size
        if len(c.text) > limit:
            whole_code = any(not x.get("partial") for x in c.meta.get("code", []))
            fits_code = whole_code and len(c.text) <= 2 * cfg.size + cfg.min_size
            one_token = not re.search(r"\s", c.text)
            assert fits_code or one_token, f"oversized chunk of {len(c.text)} chars: {c.text[:80]!r}"
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, f"uncovered text at {missing[:5]}: {text[missing[0] : missing[0] + 40]!r}"


# --- random documents -------------------------------------------------------------------------------

WORDS = ["model", "the", "data", "e.g.", "et al.", "Fig. 3", "3.14", "i.e.", "U.S.", "loss", "GPU", "naïve"]


def random_sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 25))]
    if rng.random() < 0.05:
        words.append("x" * rng.randint(50, 500))  # an unbreakable token
    return " ".join(words).capitalize() + rng.choice([".", "!", "?", "", '."', ".)"])


def random_block(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.12:
        return "#" * rng.randint(1, 6) + " " + random_sentence(rng).rstrip(".!?")
    if kind < 0.17:
        title = random_sentence(rng).rstrip(".!?") or "Title"
        return title + "\n" + rng.choice("=-") * rng.randint(2, 8)
    if kind < 0.25:
        return "Short Title Line " + str(rng.randint(1, 9))
    if kind < 0.35:
        lines = ["    x = " + str(rng.random()) for _ in range(rng.randint(0, 40))]
        closing = "\n```" if rng.random() < 0.9 else ""
        return "```" + rng.choice(["python", "", "sh"]) + "\n" + "\n".join(lines) + closing
    if kind < 0.5:
        bullet = rng.choice(["- ", "* ", "  • ", "1. ", "2) "])
        return "\n".join(bullet + random_sentence(rng) for _ in range(rng.randint(1, 8)))
    sep = rng.choice([" ", "  ", "\n", "\t", " \n "])
    return sep.join(random_sentence(rng) for _ in range(rng.randint(1, 12)))


def random_doc(rng: random.Random) -> LoadedDocument:
    kind = rng.choice(["md", "txt", "html", "pdf"])
    pages = []
    for _ in range(rng.randint(1, 4) if kind == "pdf" else 1):
        blocks = [random_block(rng) for _ in range(rng.randint(1, 15))]
        sep = [rng.choice(["\n\n", "\n", "\n\n\n", "\n \n"]) for _ in blocks]
        page = rng.choice(["", "  ", "\n"]) + "".join(b + s for b, s in zip(blocks, sep, strict=True))
        pages.append(page if page.strip() else "text")
    return doc_of(*pages, kind=kind)


def test_invariants_on_random_documents() -> None:
    rng = random.Random(1234)
    for _ in range(300):
        doc = random_doc(rng)
        size = rng.randint(100, 500)
        cfg = ChunkingConfig(size=size, overlap=rng.randint(0, size // 3), min_size=rng.randint(1, size // 4))
        check_invariants(doc, chunk_document(doc, cfg, "d1"), cfg)


# --- structure --------------------------------------------------------------------------------------


def test_sentences_respect_abbreviations_and_decimals() -> None:
    text = (
        "Results improve, e.g. on GPUs. Smith et al. (2020) agree. See Fig. 3 for details. "
        "The loss is 3.14 here. J. Doe wrote it! Is it new? Yes."
    )
    got = [text[s:e] for s, e in sentence_spans(text, 0, len(text))]
    assert got == [
        "Results improve, e.g. on GPUs.",
        "Smith et al. (2020) agree.",
        "See Fig. 3 for details.",
        "The loss is 3.14 here.",
        "J. Doe wrote it!",
        "Is it new?",
        "Yes.",
    ]


def test_line_breaks_end_sentences_only_outside_pdfs() -> None:
    text = "A heading without stop\nNext line starts here\nand wraps on"
    assert len(list(sentence_spans(text, 0, len(text), lines=True))) == 2
    assert len(list(sentence_spans(text, 0, len(text)))) == 1


def test_chunks_never_cross_pages_and_keep_numbers() -> None:
    pages = [" ".join(f"Page {n} sentence {i} is here." for i in range(30)) for n in (1, 2, 3)]
    doc = doc_of(*pages, kind="pdf")
    cfg = ChunkingConfig(size=200, overlap=40, min_size=20)
    chunks = chunk_document(doc, cfg, "d1")
    check_invariants(doc, chunks, cfg)
    for c in chunks:
        assert {int(n) for n in re.findall(r"Page (\d)", c.text)} == {c.page}
        page_start = doc.page_starts[c.page - 1]
        assert doc.pages[c.page - 1].text[c.start - page_start : c.end - page_start] == c.text


def test_overlap_is_whole_trailing_sentences() -> None:
    text = " ".join(f"Sentence number {i} says something." for i in range(60))
    doc = doc_of(text, kind="txt")
    cfg = ChunkingConfig(size=300, overlap=80, min_size=30)
    chunks = chunk_document(doc, cfg, "d1")
    assert len(chunks) > 3
    for prev, nxt in itertools.pairwise(chunks):
        shared = prev.end - nxt.start
        assert 0 < shared <= cfg.overlap
        assert nxt.text.startswith("Sentence number") and prev.text.endswith("something.")


def test_short_tail_merges_into_previous_chunk() -> None:
    body = " ".join(f"Sentence {i} is about twenty." for i in range(20))
    doc = doc_of(body + " Tail.", kind="txt")
    cfg = ChunkingConfig(size=200, overlap=0, min_size=50)
    chunks = chunk_document(doc, cfg, "d1")
    assert chunks[-1].text.endswith("Tail.")
    assert all(len(c.text) >= cfg.min_size for c in chunks)


def test_markdown_sections() -> None:
    text = (
        "# Title\n\nIntro paragraph that is long enough to stand alone as a chunk of text.\n\n"
        "## Methods\n\nWe did things carefully and measured them twice, then wrote it up.\n\n"
        "Results\n=======\n\nThe numbers are good and the error bars are small enough."
    )
    doc = doc_of(text)
    chunks = chunk_document(doc, ChunkingConfig(size=100, overlap=0, min_size=10), "d1")
    assert [(c.section, c.text.split("\n")[0]) for c in chunks] == [
        ("Title", "# Title"),
        ("Methods", "## Methods"),
        ("Results", "Results"),
    ]


def test_plain_text_title_lines_are_sections() -> None:
    text = (
        "Opening sentence of the review. It has two sentences.\n"
        "LIMA: Less Is More for Alignment (2023)\n"
        "Researchers curated 1000 examples. They beat RLHF models.\n"
        "QLoRA: Efficient Finetuning\n"
        "QLoRA reduces memory needs a lot. It fits on one GPU."
    )
    chunks = chunk_document(doc_of(text, kind="txt"), ChunkingConfig(size=100, overlap=0, min_size=10), "d1")
    by_section = {c.section: c.text for c in chunks}
    assert "They beat RLHF models." in by_section["LIMA: Less Is More for Alignment (2023)"]
    assert "It fits on one GPU." in by_section["QLoRA: Efficient Finetuning"]


def test_pdf_numbered_headings_but_not_wrapped_lines() -> None:
    page = (
        "the end of an earlier paragraph.\n5 Experiments\n5.1 Experimental Setting\n"
        "We sequentially trained the Selector\nand Crawler on eight GPUs for a day.\n"
        "Selector The Selector was fine-tuned\nusing the training dataset."
    )
    chunks = chunk_document(doc_of(page, kind="pdf"), ChunkingConfig(size=120, overlap=0, min_size=10), "d1")
    assert {c.section for c in chunks if "Selector" in c.text} == {"5.1 Experimental Setting"}


def test_code_block_kept_whole_with_meta() -> None:
    code = "\n".join(f"    total += {i}  # step {i}" for i in range(12))
    text = (
        "## Snippet\n\nThis sentence introduces the code. It is short.\n\n"
        f"```python\ndef f():\n    total = 0\n{code}\n    return total\n```\n\nAfter the code."
    )
    doc = doc_of(text)
    cfg = ChunkingConfig(size=200, overlap=50, min_size=10)
    chunks = chunk_document(doc, cfg, "d1")
    check_invariants(doc, chunks, cfg)
    with_code = [c for c in chunks if "code" in c.meta]
    assert len(with_code) == 1
    (entry,) = with_code[0].meta["code"]
    assert entry["lang"] == "python" and not entry.get("partial")
    assert entry["code"].startswith("def f():") and entry["code"].endswith("return total")
    assert "```" not in entry["code"]
    assert with_code[0].section == "Snippet"
    assert "```python" in with_code[0].text and with_code[0].text.rstrip().endswith("```")


def test_huge_code_block_is_split_at_lines() -> None:
    lines = [f"print({i})" for i in range(200)]
    doc = doc_of("```\n" + "\n".join(lines) + "\n```")
    cfg = ChunkingConfig(size=100, overlap=0, min_size=5)
    chunks = chunk_document(doc, cfg, "d1")
    check_invariants(doc, chunks, cfg)
    assert len(chunks) > 5
    assert all(e.get("partial") for c in chunks for e in c.meta["code"])
    assert all(re.fullmatch(r"(```\n)?(print\(\d+\)\n?)+(```)?", c.text) for c in chunks)


def test_text_without_spaces_is_cut_to_the_chunk_size() -> None:
    """A 200 KB run with no whitespace (a base64 blob pasted into notes) used to become one chunk."""
    blob = "QUJD" * 50_000
    doc = doc_of(f"Intro sentence here.\n\n{blob}\n\nA closing sentence.")
    cfg = ChunkingConfig(size=800, overlap=0, min_size=50)
    chunks = chunk_document(doc, cfg, "d1")
    check_invariants(doc, chunks, cfg)
    assert max(len(c.text) for c in chunks) <= cfg.size + cfg.min_size  # a short tail may join the last piece
    assert "".join(c.text for c in chunks if "QUJD" in c.text).count("QUJD") >= 49_000  # nothing dropped


def test_hash_comment_in_code_is_not_a_heading() -> None:
    doc = doc_of("# Real\n\n```sh\n# not a heading\necho hi\n```")
    chunks = chunk_document(doc, ChunkingConfig(), "d1")
    assert [c.section for c in chunks] == ["Real"]


# --- real data in ../shared -------------------------------------------------------------------------


@pytest.mark.integration
def test_shared_documents_chunk_cleanly() -> None:
    from index.loaders import load_document

    paths = [*sorted((SHARED / "corpus").glob("*.txt")), SHARED / "pdfs" / "paperqa_pasa.pdf"]
    paths = [p for p in paths if p.exists()]
    if not paths:
        pytest.skip(f"{SHARED} has no corpus or PDFs (set RA_SHARED_DIR)")
    cfg = ChunkingConfig()
    for path in paths:
        doc = load_document(path)
        chunks = chunk_document(doc, cfg, "d1")
        check_invariants(doc, chunks, cfg)
        if doc.kind == "pdf":
            assert {c.page for c in chunks} == {p.number for p in doc.pages}
            assert any(c.section.endswith("Related Work") for c in chunks)
