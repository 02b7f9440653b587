"""Papers benchmark: metadata accuracy, references kept out of body-text searches, clean text, dev QA recall.

    python -m eval.bench.papers [--shared ../shared] [--out docs/bench/papers.json] [--skip-qa]

On the generated papers of eval/synthetic_papers.py (known truth) and the two real PDFs of ../shared/pdfs:
- title / authors / year / arXiv / DOI accuracy (exact match; authors as the whole list);
- the share of reference-section chunks among the top-k hits of searches for body-text facts, with
  references excluded (the default) and included (`retrieval.include_references = true`, as before);
- words broken by hyphenation: line-end hyphens left in chunk text, and generated hyphenated words not
  found whole in any chunk;
- the dev QA evidence recall@k of the seed corpus (eval/bench/chunk_sizes.py), which must not drop.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path

from eval.bench.chunk_sizes import evidence_recall, load_qa
from eval.synthetic_papers import paper_specs, render_pdf
from index.config import ChunkingConfig, EmbeddingConfig, RetrievalConfig
from index.documents import DocumentMeta
from index.ingest import IndexConfig, ingest_paths
from index.loaders import load_document
from index.search import HybridIndex

# Facts about the two public papers in ../shared/pdfs (their title pages and body text).
REAL_TRUTH = {
    "paperqa_pasa.pdf": DocumentMeta(
        "PaSa: An LLM Agent for Comprehensive Academic Paper Search",
        ["Yichen He", "Guanhua Huang", "Peiyuan Feng", "Yuan Lin", "Yuchen Zhang", "Hang Li", "Weinan E"],
        2025,
        "",
        "2501.10120v1",
    ),
    "paperqa_paper.pdf": DocumentMeta(
        "A Perspective on Explanations of Molecular Prediction Models",
        ["Geemi P. Wellawatte", "Heta A. Gandhi", "Aditi Seshadri", "Andrew D. White"],
        2023,
    ),
}
REAL_QUERIES = [
    "AutoScholarQuery synthetic dataset of fine-grained academic queries",
    "PaSa-7B recall@20 compared with Google with GPT-4o",
    "Crawler agent actions search expand stop",
    "Selector scores each paper against the user query",
    "reinforcement learning PPO training of the paper search agent",
    "chemical counterfactual explanations for molecular property prediction",
    "blood-brain barrier permeability prediction with explanations",
    "descriptor explanations of solubility models",
    "explaining the scent of molecules with structure-property relationships",
    "attribution methods such as gradients for graph neural networks",
]
FIELDS = ("title", "authors", "year", "arxiv", "doi")
_LINE_END_HYPHEN = re.compile(r"[a-z]-\n[a-z]")


def _norm(text: str) -> str:
    return " ".join(text.split())


def metadata_accuracy(pairs: list[tuple[DocumentMeta, DocumentMeta]]) -> dict[str, float]:
    """Share of documents whose extracted field equals the truth, per field."""
    return {
        f: round(sum(getattr(got, f) == getattr(want, f) for got, want in pairs) / max(len(pairs), 1), 3)
        for f in FIELDS
    }


def reference_share(index: HybridIndex, queries: list[str], k: int) -> float:
    hits = [h for q in queries for h in index.search(q, k=k)]
    return round(sum(h.chunk.meta.get("role") == "references" for h in hits) / max(len(hits), 1), 3)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("RA_SHARED_DIR", "../shared")))
    parser.add_argument("--out", type=Path, default=Path("docs/bench/papers.json"))
    parser.add_argument("-k", type=int, default=8)
    parser.add_argument(
        "--skip-qa", action="store_true", help="leave out the dev QA recall (indexes the corpus)"
    )
    args = parser.parse_args()
    cache_dir = Path.home() / ".cache" / "research-assistant"
    result: dict[str, object] = {"date": time.strftime("%Y-%m-%d"), "k": args.k}
    specs = paper_specs()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "papers"
        root.mkdir()
        for i, spec in enumerate(specs):
            (root / f"gen{i:02d}.pdf").write_bytes(render_pdf(spec))
        real = [args.shared / "pdfs" / name for name in REAL_TRUTH]
        t0 = time.perf_counter()
        gen_docs = [load_document(root / f"gen{i:02d}.pdf") for i in range(len(specs))]
        real_docs = [load_document(p) for p in real]
        result["load_seconds"] = round(time.perf_counter() - t0, 2)
        gen_truth = [DocumentMeta(s.title, s.authors, s.year, s.doi, s.arxiv) for s in specs]
        result["metadata_generated"] = metadata_accuracy(
            [(d.meta, t) for d, t in zip(gen_docs, gen_truth, strict=True)]
        )
        result["metadata_real"] = metadata_accuracy(
            [(d.meta, REAL_TRUTH[Path(p).name]) for d, p in zip(real_docs, real, strict=True)]
        )
        result["papers"] = {"generated": len(specs), "real": len(real)}

        retrieval = RetrievalConfig()
        config = IndexConfig(ChunkingConfig(), EmbeddingConfig(), retrieval, cache_dir)
        index_dir = Path(tmp) / "index"
        ingest_paths([root, *real], index_dir, config)
        queries = [f for s in specs for f in s.facts] + REAL_QUERIES
        shares = {}
        for include in (False, True):
            r = retrieval.model_copy(update={"include_references": include})
            shares["included" if include else "excluded (default)"] = reference_share(
                HybridIndex(index_dir, r, config.embedding, cache_dir), queries, args.k
            )
        result["reference_share_of_hits"] = shares
        result["body_fact_queries"] = len(queries)

        chunks = HybridIndex(index_dir, retrieval, config.embedding, cache_dir).all_chunks()
        chunk_text = _norm(" ".join(c.text for c in chunks))
        hyphenated = [w for s in specs for w in s.hyphenated]
        result["hyphenation"] = {
            "line_end_hyphens_in_chunks": sum(len(_LINE_END_HYPHEN.findall(c.text)) for c in chunks),
            "generated_hyphenated_words": len(hyphenated),
            "generated_words_not_whole": sum(1 for w in hyphenated if w not in chunk_text),
        }
        result["chunks"] = {
            "total": len(chunks),
            "references": sum(c.meta.get("role") == "references" for c in chunks),
            "acknowledgements": sum(c.meta.get("role") == "acknowledgements" for c in chunks),
            "with_section": sum(bool(c.section) for c in chunks),
        }

    if not args.skip_qa:
        items = [q for q in load_qa(args.shared / "qa" / "seeds_dev.jsonl") if q.get("evidence")]
        retrieval = RetrievalConfig()
        config = IndexConfig(ChunkingConfig(), EmbeddingConfig(), retrieval, cache_dir)
        with tempfile.TemporaryDirectory() as tmp:
            ingest_paths([args.shared / "corpus"], Path(tmp), config)
            index = HybridIndex(Path(tmp), retrieval, config.embedding, cache_dir)
            result["dev_qa_evidence_recall"] = {
                f"@{k}": round(evidence_recall(index, items, k)[0], 3) for k in (3, 5, 8)
            }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
