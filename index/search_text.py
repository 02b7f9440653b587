"""The search-only copy of a passage: what BM25 and the embedder see, never what a citation quotes.

Inline citation markers ("quantum computing 4,5 to drug discovery 6–10", "[12]", "[3, 5–7]") are noise
to both rankers: a query never contains them, and their numbers match unrelated passages. They are
removed here, from a copy, so chunk text and its offsets stay exact against the stored document.
"""

from __future__ import annotations

import re

# [12], [3, 5-7], [1;4] - bracketed numeric references
_BRACKETED = re.compile(r"\s?\[\d{1,3}(?:\s*[,;–-]\s*\d{1,3})*\]")
# superscript lists flattened by text extraction: "computing 4,5 to", "model 60,66–69,73."; a list
# needs a comma or an en-dash range after a lower-case word; "1,000" and "33,511" are numbers, kept
_NUM = r"\d{1,3}(?:–\d{1,3})?"
_SUPERSCRIPT_LIST = re.compile(rf"(?<=[a-z\)])\s?{_NUM}(?:,{_NUM})*(?=[\s.,;:)]|$)")
_THOUSANDS = re.compile(r"\s?\d{1,3}(?:,\d{3})+")


def _drop_list(m: re.Match[str]) -> str:
    marker = m.group()
    if _THOUSANDS.fullmatch(marker) or not re.search(r"[,–]", marker):
        return marker
    return ""


def search_text(text: str) -> str:
    """`text` without inline citation markers (for ranking only)."""
    return _SUPERSCRIPT_LIST.sub(_drop_list, _BRACKETED.sub("", text))
