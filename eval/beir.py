"""BEIR-format retrieval evaluation: load corpus/queries/qrels, index the corpus, score a run.

Documents are chunked like any other source; a document's score is its best chunk's (max-passage), the
usual way to evaluate passage retrieval against document-level judgements.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from index.errors import UserFacingError
from index.ingest import SourceDoc, sha256_text
from index.types import LoadedDocument, Page

Run = dict[str, list[tuple[str, float]]]  # qid -> [(docid, score)] best first
Qrels = dict[str, dict[str, int]]  # qid -> {docid: grade}

BEIR_PREFIX = "beir:"


@dataclass
class BeirData:
    corpus: dict[str, tuple[str, str]]  # docid -> (title, text)
    queries: dict[str, str]
    qrels: Qrels


def _read_jsonl(path: Path) -> Iterable[dict]:
    try:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise UserFacingError(
                            f"{path}:{n} is not valid JSON ({exc.msg}): fix that line"
                        ) from exc
    except FileNotFoundError:
        raise UserFacingError(f"{path} does not exist: pass the BEIR file's path") from None


def load_qrels(path: Path) -> Qrels:
    """BEIR qrels TSV (query-id, corpus-id, score; header optional); grade 0 lines are kept but not relevant."""
    qrels: Qrels = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for row in csv.reader(fh, delimiter="\t"):
                if len(row) < 3 or row[0] == "query-id":
                    continue
                try:
                    qrels.setdefault(row[0], {})[row[1]] = int(row[2])
                except ValueError:
                    raise UserFacingError(
                        f"{path}: bad relevance grade {row[2]!r}: expected an integer"
                    ) from None
    except FileNotFoundError:
        raise UserFacingError(f"{path} does not exist: pass the BEIR qrels TSV") from None
    return qrels


def load_beir(corpus: Path, queries: Path, qrels: Path) -> BeirData:
    docs = {str(d["_id"]): (d.get("title") or "", d.get("text") or "") for d in _read_jsonl(corpus)}
    qrel_map = load_qrels(qrels)
    all_queries = {str(q["_id"]): q["text"] for q in _read_jsonl(queries)}
    judged = {qid: text for qid, text in all_queries.items() if qid in qrel_map}
    if not docs or not judged:
        raise UserFacingError("the BEIR corpus is empty or no query has qrels: check the three file paths")
    return BeirData(corpus=docs, queries=judged, qrels=qrel_map)


def corpus_documents(corpus: Mapping[str, tuple[str, str]]) -> Iterable[SourceDoc]:
    """Each BEIR document as one page-less text document keyed 'beir:<id>' (title first, as BEIR does)."""
    for docid, (title, text) in corpus.items():
        body = f"{title}\n\n{text}" if title else text
        doc = LoadedDocument(source=BEIR_PREFIX + docid, title=title, kind="txt", pages=[Page(None, body)])
        yield SourceDoc(key=BEIR_PREFIX + docid, sha256=sha256_text(body), doc=doc)


def max_passage(ranked_sources: Iterable[tuple[str, float]], k: int) -> list[tuple[str, float]]:
    """Collapse chunk hits (source, score) to documents, keeping each document's best (first) score."""
    seen: dict[str, float] = {}
    for source, score in ranked_sources:
        docid = source.removeprefix(BEIR_PREFIX)
        if docid not in seen:
            seen[docid] = score
            if len(seen) == k:
                break
    return list(seen.items())


def ndcg_at(ranked: list[str], rels: Mapping[str, int], k: int) -> float:
    gains = [rels.get(d, 0) for d in ranked[:k]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((g for g in rels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], rels: Mapping[str, int], k: int) -> float:
    relevant = {d for d, g in rels.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranked: list[str], rels: Mapping[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def evaluate_run(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over the judged queries (a query missing from the run scores 0)."""
    judged = [q for q, rels in qrels.items() if any(g > 0 for g in rels.values())]
    if not judged:
        return {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0, "queries": 0}
    totals = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for qid in judged:
        ranked = [d for d, _ in run.get(qid, [])]
        totals["ndcg@10"] += ndcg_at(ranked, qrels[qid], 10)
        totals["recall@100"] += recall_at(ranked, qrels[qid], 100)
        totals["mrr@10"] += mrr_at(ranked, qrels[qid], 10)
    return {**{k: round(v / len(judged), 4) for k, v in totals.items()}, "queries": len(judged)}


def write_trec_run(run: Run, path: Path, tag: str) -> None:
    """TREC run format (`qid Q0 docid rank score tag`) so others can score it with trec_eval."""
    with open(path, "w", encoding="utf-8") as fh:
        for qid, docs in run.items():
            for rank, (docid, score) in enumerate(docs, 1):
                fh.write(f"{qid} Q0 {docid} {rank} {score:.6f} {tag}\n")


def run_queries(
    search: Callable[[str, int], list[tuple[str, float]]],
    queries: Mapping[str, str],
    depth: int = 100,
    on_query: Callable[[], None] | None = None,
) -> Run:
    """Ask `search(query, n_chunks)` for each query and collapse chunk hits to the top `depth` documents."""
    run: Run = {}
    for qid, text in queries.items():
        run[qid] = max_passage(search(text, depth * 3), depth)
        if on_query:
            on_query()
    return run
