"""Loaders: page numbers, exact text, clean one-line errors for every kind of bad input."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pypdf
import pytest

from index.errors import LoadError, UserFacingError
from index.loaders import SUPPORTED_SUFFIXES, iter_files, load_document

SHARED = Path(os.environ.get("RA_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


def make_pdf(pages: list[list[str]], *, bad_startxref: bool = False) -> bytes:
    """A minimal valid PDF drawing each string as one Helvetica text line; xref offsets computed."""
    n = len(pages)
    font = 3 + 2 * n
    objs = {
        1: "<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{3 + 2 * i} 0 R' for i in range(n))}] /Count {n} >>",
        font: "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops += [f"({escaped}) Tj", "T*"]
        stream = "\n".join([*ops, "ET"])
        objs[3 + 2 * i] = (
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {4 + 2 * i} 0 R >>"
        )
        objs[4 + 2 * i] = f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream"
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for k in sorted(objs):
        offsets[k] = len(out)
        out += f"{k} 0 obj\n{objs[k]}\nendobj\n".encode("latin-1")
    xref, size = len(out), max(objs) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offsets[k]:010d} 00000 n \n" for k in range(1, size)).encode()
    startxref = xref + 7 if bad_startxref else xref
    out += f"trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{startxref}\n%%EOF\n".encode()
    return bytes(out)


THREE_PAGES = [
    ["A Study of Careful Chunking", "We pay atten-", "tion to detail."],
    ["Second page words here."],
    ["Third page closes the paper."],
]


def rewrite_pdf(data: bytes, *, user_password: str | None = None, title: str | None = None) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    if title is not None:
        writer.add_metadata({"/Title": title})
    if user_password is not None:
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def load_error(path: Path) -> str:
    with pytest.raises(LoadError) as info:
        load_document(path)
    message = str(info.value)
    assert "\n" not in message and message
    assert isinstance(info.value, UserFacingError)
    return message


# --- PDF --------------------------------------------------------------------------------------------


def test_pdf_pages_numbered_and_cleaned(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "paper.pdf", make_pdf(THREE_PAGES)))
    assert doc.kind == "pdf"
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert "attention" in doc.pages[0].text  # hyphenated line break joined
    assert "Second page words here." in doc.pages[1].text
    assert doc.title == "A Study of Careful Chunking"  # no metadata: first substantial line
    assert doc.text == doc.PAGE_SEPARATOR.join(p.text for p in doc.pages)


def test_pdf_title_from_metadata(tmp_path: Path) -> None:
    data = rewrite_pdf(make_pdf(THREE_PAGES), title="Metadata Title")
    assert load_document(write(tmp_path, "t.pdf", data)).title == "Metadata Title"


def test_pdf_blank_pages_keep_real_numbers(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "gap.pdf", make_pdf([["Page one text."], [], ["Page three text."]])))
    assert [p.number for p in doc.pages] == [1, 3]


def test_pdf_encrypted_with_password_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "locked.pdf", rewrite_pdf(make_pdf(THREE_PAGES), user_password="secret"))
    message = load_error(path)
    assert message.startswith("encrypted PDF") and "qpdf --decrypt" in message


def test_pdf_encrypted_with_empty_password_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "owner_only.pdf", rewrite_pdf(make_pdf(THREE_PAGES), user_password=""))
    assert "Second page words here." in load_document(path).text


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_pdf_truncated_is_a_load_error(tmp_path: Path, fraction: float) -> None:
    data = make_pdf(THREE_PAGES)
    load_error(write(tmp_path, "cut.pdf", data[: int(len(data) * fraction)]))


def test_pdf_garbage_after_header(tmp_path: Path) -> None:
    assert "corrupt" in load_error(write(tmp_path, "junk.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 4))


def test_pdf_without_text_suggests_ocr(tmp_path: Path) -> None:
    assert "OCR" in load_error(write(tmp_path, "scan.pdf", make_pdf([[], []])))


def test_pdf_failing_page_is_skipped_with_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = pypdf.PageObject.extract_text

    def flaky(self: pypdf.PageObject, *args: object, **kwargs: object) -> str:
        text = original(self, *args, **kwargs)
        if "Second page" in text:
            raise ValueError("broken\nfont")
        return text

    monkeypatch.setattr(pypdf.PageObject, "extract_text", flaky)
    doc = load_document(write(tmp_path, "flaky.pdf", make_pdf(THREE_PAGES)))
    assert [p.number for p in doc.pages] == [1, 3]
    assert "page 2: broken font" in doc.warnings


def test_pdf_parser_noise_goes_to_warnings(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    doc = load_document(write(tmp_path, "off.pdf", make_pdf(THREE_PAGES, bad_startxref=True)))
    assert "Third page" in doc.text
    assert doc.warnings
    assert capfd.readouterr().err == ""


# --- text, Markdown, HTML ---------------------------------------------------------------------------


def test_text_kept_exactly_except_crlf(tmp_path: Path) -> None:
    raw = "  First line  \r\n\r\n\tindented\r\nlast without newline"
    doc = load_document(write(tmp_path, "notes.txt", raw))
    assert doc.text == raw.replace("\r\n", "\n")
    assert doc.pages[0].number is None and doc.kind == "txt"
    assert doc.title == "First line"


def test_text_bom_and_cp1252_fallback(tmp_path: Path) -> None:
    bom = load_document(write(tmp_path, "bom.txt", "\ufeffcafé".encode()))
    assert bom.text == "café" and not bom.warnings
    legacy = load_document(write(tmp_path, "legacy.txt", "naïve “quotes”".encode("cp1252")))
    assert legacy.text == "naïve “quotes”"
    assert any("cp1252" in w for w in legacy.warnings)


def test_text_titles(tmp_path: Path) -> None:
    assert load_document(write(tmp_path, "a.md", "intro\n\n# Real Title #\ntext")).title == "Real Title"
    assert load_document(write(tmp_path, "b.md", "no heading here")).title == "b"
    assert load_document(write(tmp_path, "c.txt", "x" * 200)).title == "c"
    assert load_document(write(tmp_path, "d.markdown", "# T\n")).kind == "md"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\t\n", "empty file"),
        ("nul.txt", b"text\x00with nul", "binary file, not text"),
        ("ctrl.html", bytes(range(1, 32)) * 20, "binary file, not text"),
        ("image.png", b"\x89PNG", "unsupported file type '.png'"),
        ("missing.txt", None, "file not found"),
    ],
)
def test_text_bad_inputs(tmp_path: Path, name: str, data: bytes | None, reason: str) -> None:
    path = write(tmp_path, name, data) if data is not None else tmp_path / name
    assert load_error(path).startswith(reason)


def test_html_readable_markdown(tmp_path: Path) -> None:
    html = """<html><head><title>Page Title</title><style>p {color: red}</style></head><body>
    <nav>Home | About</nav><header>Site banner</header><script>var secret = 1;</script>
    <h1>Main</h1><p>First <b>bold</b>
       paragraph.</p><div>Second<br>line</div>
    <h3>Code</h3><pre><code class="language-python">def f(x):
        return x + 1</code></pre>
    <ul><li>one</li><li>two<ul><li>nested</li></ul></li></ul>
    <table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>
    <noscript>enable js</noscript><footer>Copyright</footer></body></html>"""
    doc = load_document(write(tmp_path, "page.html", html))
    assert doc.title == "Page Title" and doc.kind == "html"
    text = doc.text
    for dropped in ("Home | About", "Site banner", "secret", "color", "enable js", "Copyright", "<"):
        assert dropped not in text
    assert "# Main\n\nFirst bold paragraph.\n\nSecond\nline" in text
    assert "### Code\n\n```python\ndef f(x):\n        return x + 1\n```" in text
    assert "- one\n- two\n  - nested" in text
    assert "a | b\n1 | 2" in text


def test_html_title_falls_back_to_h1_then_stem(tmp_path: Path) -> None:
    assert load_document(write(tmp_path, "a.htm", "<h1>Heading One</h1><p>x</p>")).title == "Heading One"
    assert load_document(write(tmp_path, "b.html", "<p>just text</p>")).title == "b"
    assert "no readable text" in load_error(write(tmp_path, "c.html", "<script>x()</script>"))


# --- folder walking ---------------------------------------------------------------------------------


def test_iter_files_walks_sorted_and_explains_skips(tmp_path: Path) -> None:
    write(tmp_path, "b.md", "# B")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "a.txt", "a")
    write(tmp_path / "sub", "fake.pdf", "not a pdf")
    write(tmp_path, "bin.txt", b"\x00\x01\x02")
    write(tmp_path, "data.csv", "x,y")
    for hidden in (".git", ".ra"):
        (tmp_path / hidden).mkdir()
        write(tmp_path / hidden, "inside.txt", "hidden")
    write(tmp_path, ".secret.md", "hidden")
    missing = tmp_path / "missing.txt"

    got = list(iter_files([tmp_path, tmp_path / "b.md", missing]))
    names = [p.relative_to(tmp_path).as_posix() for p, _ in got]
    assert names == ["b.md", "bin.txt", "data.csv", "sub/a.txt", "sub/fake.pdf", "missing.txt"]
    reasons = dict(zip(names, (r for _, r in got), strict=True))
    assert reasons["b.md"] is None and reasons["sub/a.txt"] is None
    assert reasons["bin.txt"] == "binary file, not text"
    assert reasons["data.csv"].startswith("unsupported file type '.csv'")
    assert "not a PDF" in reasons["sub/fake.pdf"]
    assert reasons["missing.txt"] == "no such file or folder"


def test_supported_suffixes() -> None:
    assert SUPPORTED_SUFFIXES[".pdf"] == "pdf" and SUPPORTED_SUFFIXES[".htm"] == "html"
    assert set(SUPPORTED_SUFFIXES.values()) == {"pdf", "txt", "md", "html"}


# --- real data in ../shared -------------------------------------------------------------------------


@pytest.mark.integration
def test_shared_pdf_page_numbers() -> None:
    path = SHARED / "pdfs" / "paperqa_pasa.pdf"
    if not path.exists():
        pytest.skip(f"{path} not found (set RA_SHARED_DIR)")
    doc = load_document(path)
    assert [p.number for p in doc.pages] == list(range(1, 16))
    assert doc.title.startswith("PaSa: An LLM Agent")
    phrase = "We sequentially trained the Selector and Crawler"
    found = [p.number for p in doc.pages if phrase in " ".join(p.text.split())]
    assert found == [7]
    assert "reading papers" in " ".join(doc.pages[0].text.split())  # "pa-\npers" joined


@pytest.mark.integration
def test_shared_corpus_text_is_exact() -> None:
    files = sorted((SHARED / "corpus").glob("*.txt"))
    if not files:
        pytest.skip(f"{SHARED / 'corpus'} not found (set RA_SHARED_DIR)")
    for path in files:
        doc = load_document(path)
        assert doc.text == path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        assert doc.title and len(doc.title) <= 120
