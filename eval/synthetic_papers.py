"""Generated research papers with known truth, for tests and the papers benchmark.

Each `PaperSpec` becomes a PDF (reportlab) laid out like a paper: a large title, authors with footnote
marks, affiliations, an abstract, numbered sections whose lines end in hyphenated words, acknowledgements
and a references section that repeats the body's topic words (so a search that returns references is
caught). Two-column papers can be drawn column by column (as pdfTeX does) or row by row across the
columns (an interleaved content stream, the case pypdf's plain text reads in the wrong order).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field

PAGE_W, PAGE_H = 612.0, 792.0
MARGIN = 54.0
GUTTER = 24.0
BODY_SIZE = 10.0
LEADING = 12.5


@dataclass
class PaperSpec:
    """The truth a generated paper is checked against."""

    title: str
    authors: list[str]
    year: int
    topic: str  # a made-up word unique to this paper, so its facts are unambiguous
    arxiv: str = ""
    doi: str = ""
    two_column: bool = False
    interleaved: bool = False  # two columns drawn row by row across the page
    info_metadata: bool = False  # write title/authors into the PDF Info dictionary too
    facts: list[str] = field(default_factory=list)  # body sentences a search must find outside references
    table: list[list[str]] = field(default_factory=list)  # rows of a results table in the Experiments section
    hyphenated: list[str] = field(default_factory=list)  # words the generator broke at a line end


_FIRST = ["Alice", "Bruno", "Chen", "Dana", "Emil", "Farah", "Goran", "Hana", "Ivo", "Jun", "Kira", "Lars"]
_LAST = ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Petrov", "Haddad", "Novak", "Quispe", "Brandt", "Osei"]
_TOPICS = [
    "zorbium", "quintaxel", "morvane", "plexitude", "drallic", "venthor", "cobrizine", "talvane",
    "surepine", "glimmerane", "ostrakine", "feldspore",
]  # fmt: skip
_TITLE_TEMPLATES = [
    "Scaling {T} Estimators for Robust Sequence Modelling",
    "A Study of {T} Regularisation in Sparse Retrieval Systems",
    "{T}: Efficient Attention with Learned Memory Compression",
    "On the Calibration of {T} Classifiers under Distribution Shift",
    "Learning {T} Representations from Weakly Labelled Scientific Text",
    "{T} Networks for Long-Horizon Planning",
]
_LONG_WORDS = [
    "representation", "generalisation", "regularisation", "computational", "experimental",
    "performance", "architecture", "optimisation", "distribution", "significantly",
]  # fmt: skip


def paper_specs(n: int = 12, seed: int = 15) -> list[PaperSpec]:
    """`n` specs covering one/two columns, interleaved streams, Info metadata, arXiv ids and DOIs."""
    rng = random.Random(seed)
    specs = []
    for i in range(n):
        topic = _TOPICS[i % len(_TOPICS)]
        title = _TITLE_TEMPLATES[i % len(_TITLE_TEMPLATES)].format(T=topic.capitalize())
        authors = [f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" for _ in range(2 + i % 3)]
        authors = list(dict.fromkeys(authors))
        year = 2016 + i % 9
        arxiv = f"{year % 100:02d}{1 + i % 12:02d}.{10000 + 37 * i:05d}v{1 + i % 2}" if i % 2 == 0 else ""
        doi = f"10.{5000 + i}/synth.{year}.{i:03d}" if i % 3 == 1 else ""
        facts = [
            f"The {topic} estimator reduced the validation error to {11 + i}.{i % 10} percent on the held-out split.",
            f"Training the {topic} model took {3 + i} hours on {2 + i % 4} accelerators.",
        ]
        table = [
            ["Baseline", f"{40 + i}.1", f"{50 + i}.2", f"{0.5 + i / 100:.2f}"],
            [topic.capitalize(), f"{60 + i}.3", f"{70 + i}.4", f"{0.8 + i / 100:.2f}"],
            ["Ablation", f"{55 + i}.5", f"{65 + i}.6", f"{0.7 + i / 100:.2f}"],
        ]
        specs.append(
            PaperSpec(
                title=title,
                authors=authors,
                year=year,
                topic=topic,
                arxiv=arxiv,
                doi=doi,
                two_column=i % 2 == 1 or i % 4 == 2,
                interleaved=i % 4 == 3,
                info_metadata=i % 5 == 4,
                facts=facts,
                table=table,
            )
        )
    return specs


def _wrap(words: list[str], width: float, size: float, spec: PaperSpec) -> list[str]:
    """Greedy line breaking in Helvetica; long words that overflow are hyphenated (and recorded)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines, line = [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if stringWidth(trial, "Helvetica", size) <= width:
            line = trial
            continue
        if len(word) >= 9 and word.isalpha() and word.islower():
            for cut in range(len(word) - 4, 3, -1):
                head = f"{line} {word[:cut]}-".strip()
                if stringWidth(head, "Helvetica", size) <= width:
                    lines.append(head)
                    spec.hyphenated.append(word)
                    line = word[cut:]
                    break
            else:
                lines.append(line)
                line = word
            continue
        lines.append(line)
        line = word
    if line:
        lines.append(line)
    return lines


def _body(spec: PaperSpec, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, text) blocks: headings and paragraphs of the paper, in reading order."""
    filler = [
        "We describe the method and its {T} component in detail and compare it with strong baselines from recent work.",
        "The {T} approach keeps the computational cost low while the representation quality improves steadily.",
        "Ablations show that each part of the {T} pipeline matters for the final performance on every benchmark.",
        "Our experimental protocol follows prior studies so that the comparison of the generalisation results is fair.",
    ]
    words = _LONG_WORDS[:]
    blocks: list[tuple[str, str]] = [("heading", "Abstract")]
    blocks.append(("para", filler[0].format(T=spec.topic) + " " + spec.facts[0]))
    for n, name in enumerate(["Introduction", "Method", "Experiments", "Conclusion"], 1):
        blocks.append(("heading", f"{n} {name}"))
        for p in range(2):
            rng.shuffle(words)
            sentences = [filler[(n + p + j) % len(filler)].format(T=spec.topic) for j in range(3)]
            sentences.insert(1, "The " + " and ".join(words[:4]) + " of this work are discussed at length.")
            if name == "Experiments" and p == 1:
                sentences.append(spec.facts[1])
            blocks.append(("para", " ".join(sentences)))
            if name == "Experiments" and p == 0 and spec.table:
                blocks.append(("caption", f"Table 1: Results of the {spec.topic} estimator."))
                blocks += [("row", "\t".join(row)) for row in spec.table]
    blocks.append(("heading", "Acknowledgements"))
    blocks.append(
        ("para", f"We thank the {spec.topic} reading group for comments and our funders for support.")
    )
    blocks.append(("heading", "References"))
    for r in range(8):
        a = f"{rng.choice(_LAST)}, {rng.choice(_FIRST)[0]}."
        blocks.append(
            (
                "ref",
                f"[{r + 1}] {a} {spec.topic.capitalize()} estimators and the validation error of "
                f"{spec.topic} models trained on accelerators. Journal of Synthetic Results, {2000 + r}.",
            )
        )
    return blocks


def _draw_authors(c: object, authors: list[str], y: float, *, marks: bool) -> None:
    """Names centred on one line, comma-separated, or with raised footnote marks instead of commas."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    parts = []
    for i, name in enumerate(authors):
        parts.append(("Helvetica", 12.0, name, 0.0))
        if marks:
            parts.append(("Helvetica", 7.0, f"{i % 2 + 1}", 4.0))
            parts.append(("Helvetica", 12.0, "   ", 0.0))
        elif i < len(authors) - 1:
            parts.append(("Helvetica", 12.0, ",  ", 0.0))
    x = (PAGE_W - sum(stringWidth(t, f, s) for f, s, t, _ in parts)) / 2
    for font, size, text, rise in parts:
        c.setFont(font, size)  # type: ignore[attr-defined]
        c.drawString(x, y + rise, text)  # type: ignore[attr-defined]
        x += stringWidth(text, font, size)


def render_pdf(spec: PaperSpec, seed: int = 0) -> bytes:
    """The paper as PDF bytes (deterministic for a spec and seed)."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    rng = random.Random(seed + len(spec.title))
    spec.hyphenated = []
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=letter, invariant=1)
    if spec.info_metadata:
        c.setTitle(spec.title)
        c.setAuthor(", ".join(spec.authors))
    else:
        c.setTitle("")
        c.setAuthor("")
    y = PAGE_H - 72
    c.setFont("Helvetica-Bold", 18)
    c.drawCentredString(PAGE_W / 2, y, spec.title)
    y -= 30
    _draw_authors(c, spec.authors, y, marks=len(spec.title) % 2 == 0)
    y -= 18
    c.setFont("Helvetica", 10)
    c.drawCentredString(PAGE_W / 2, y, "Department of Synthetic Studies, University of Nowhere")
    y -= 14
    venue = f"Preprint, {spec.year}." + (f" doi:{spec.doi}" if spec.doi else "")
    c.drawCentredString(PAGE_W / 2, y, venue)
    if spec.arxiv:
        c.setFont("Helvetica", 8)
        c.drawString(MARGIN, 40, f"arXiv:{spec.arxiv} [cs.LG] 1 Jan {spec.year}")
    y -= 28

    cols = 2 if spec.two_column else 1
    col_w = (PAGE_W - 2 * MARGIN - (GUTTER if cols == 2 else 0)) / cols
    lines: list[tuple[str, str]] = []  # (font, text); "" text is a paragraph gap
    for kind, text in _body(spec, rng):
        if kind == "heading":
            lines += [("", ""), ("Helvetica-Bold", text)]
        elif kind == "row":
            lines.append(("row", text))
        elif kind == "caption":
            lines += [("Helvetica", text), ("", "")]
        else:
            size = 9.0 if kind == "ref" else BODY_SIZE
            lines += [("Helvetica", ln) for ln in _wrap(text.split(), col_w, size, spec)]
            lines.append(("", ""))
    page_no, pos = 0, 0
    while pos < len(lines):
        top = y if page_no == 0 else PAGE_H - 72
        per = int((top - 60) // LEADING)
        columns = [lines[pos + k * per : pos + (k + 1) * per] for k in range(cols)]
        pos += per * cols
        order = (
            [(k, r) for r in range(per) for k in range(cols)]
            if spec.interleaved
            else [(k, r) for k in range(cols) for r in range(per)]
        )
        for k, r in order:
            if r >= len(columns[k]) or not columns[k][r][1]:
                continue
            font, text = columns[k][r]
            x0 = MARGIN + k * (col_w + GUTTER)
            if font == "row":  # one string per cell, in fixed columns
                c.setFont("Helvetica", BODY_SIZE)
                cells = text.split("\t")
                for j, cell in enumerate(cells):
                    c.drawString(x0 + j * col_w / len(cells), top - r * LEADING, cell)
                continue
            c.setFont(font, 11.0 if font == "Helvetica-Bold" else BODY_SIZE)
            c.drawString(x0, top - r * LEADING, text)
        page_no += 1
        c.setFont("Helvetica", 9)
        c.drawCentredString(PAGE_W / 2, 30, str(page_no))
        c.showPage()
    c.save()
    return buf.getvalue()
