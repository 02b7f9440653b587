"""Labelled (evidence, claim) pairs: WiCE-format files to score, and the public training material.

The training material under `RA_SHARED_DIR/bench/faithfulness/train/` comes in five formats; each reader
turns one into `Pair`s with a binary label (supported or not) and a `group` (the claim or document it
came from), so that a held-out split never shares a claim or a document with the training side.
Provenance and licences are listed in docs/benchmarks.md.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from index.errors import UserFacingError


class BadDataFile(UserFacingError):
    pass


@dataclass(frozen=True, slots=True)
class Pair:
    evidence: str
    claim: str
    label: bool | None
    source: str = ""
    group: str = ""


def read_wice(path: Path) -> list[Pair]:
    """WiCE lines: {"claim", "evidence": [sentences] or text, "label"?, "source"?}; supported vs.
    partially/not. `source` (default "wice") lets `ra eval checker` report per source."""
    if not path.is_file():
        raise BadDataFile(
            f"no data file at {path}: pass a JSONL file in WiCE format (claim, evidence, label)"
        )
    pairs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            evidence = row["evidence"]
            claim = str(row["claim"])
        except (ValueError, KeyError, TypeError):
            raise BadDataFile(
                f"{path}:{n} is not a WiCE line: each line must be JSON with 'claim' and 'evidence'"
            ) from None
        text = "\n".join(map(str, evidence)) if isinstance(evidence, list) else str(evidence)
        label = row.get("label")
        source = str(row.get("source") or "wice")
        pairs.append(Pair(text, claim, None if label is None else label == "supported", source, str(n)))
    if not pairs:
        raise BadDataFile(f"{path} holds no pairs: one JSON object per line with 'claim' and 'evidence'")
    return pairs


def scifact(train_dir: Path, corpus_path: Path) -> Iterator[Pair]:
    """SciFact claims (train): SUPPORT vs. CONTRADICT abstracts, and cited abstracts without evidence
    (NEI: topical, so hard negatives). Evidence is the whole abstract (title + text)."""
    abstracts = {}
    with corpus_path.open(encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            abstracts[doc["_id"]] = f"{doc['title']}\n{doc['text']}"
    with (train_dir / "claims_train.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            group = f"scifact:{row['id']}"
            if row["evidence_doc_id"]:
                label = row["evidence_label"] == "SUPPORT"
                yield Pair(abstracts[row["evidence_doc_id"]], row["claim"], label, "scifact", group)
                continue
            for doc_id in row["cited_doc_ids"].strip("[]").replace(",", " ").split():
                if doc_id in abstracts:
                    yield Pair(abstracts[doc_id], row["claim"], False, "scifact", group)


def climate_fever(train_dir: Path) -> Iterator[Pair]:
    """Climate-FEVER: each (claim, Wikipedia sentence) with its vote (SUPPORTS vs. REFUTES/NOT_ENOUGH_INFO),
    and each claim against its five sentences together with the claim label (DISPUTED left out)."""
    with (train_dir / "climate-fever.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            group = f"climate:{row['claim_id']}"
            sentences = [e["evidence"] for e in row["evidences"]]
            for e in row["evidences"]:
                yield Pair(
                    e["evidence"], row["claim"], e["evidence_label"] == "SUPPORTS", "climate-sent", group
                )
            if row["claim_label"] != "DISPUTED":
                label = row["claim_label"] == "SUPPORTS"
                yield Pair("\n".join(sentences), row["claim"], label, "climate-claim", group)


def qags(train_dir: Path) -> Iterator[Pair]:
    """QAGS (CNN/DM and XSum): summary sentences against their article, supported by majority vote."""
    for name in ("mturk_cnndm", "mturk_xsum"):
        source = "qags-" + name.removeprefix("mturk_")
        with (train_dir / f"{name}.jsonl").open(encoding="utf-8") as f:
            for n, line in enumerate(f):
                row = json.loads(line)
                for s in row["summary_sentences"]:
                    votes = [r["response"] == "yes" for r in s["responses"]]
                    label = 2 * sum(votes) > len(votes)
                    yield Pair(row["article"], s["sentence"], label, source, f"{source}:{n}")


def summac(train_dir: Path) -> Iterator[Pair]:
    """SummaC benchmark subsets (FactCC, SummEval, XSumFaith, Polytope): summaries against documents.

    Polytope marks omissions as errors too; an omission does not make a summary unfaithful, so there a
    summary counts as supported when it has neither an addition nor an inaccuracy error."""
    for name in ("factcc", "summeval", "xsumfaith", "polytope"):
        rows = json.loads((train_dir / "summac" / f"{name}.json").read_text(encoding="utf-8"))
        for row in rows.values():
            if name == "polytope":
                label = str(row["addition_label"]) == "1" and str(row["inaccuracy_label"]) == "1"
            else:
                label = str(row["label"]) == "1"
            group = f"{name}:" + hashlib.sha1(row["document"].encode()).hexdigest()[:12]
            yield Pair(row["document"], row["claim"], label, name, group)


def training_material(shared: Path) -> list[Pair]:
    """Every labelled pair of the training material under `shared` (RA_SHARED_DIR)."""
    train_dir = shared / "bench" / "faithfulness" / "train"
    if not train_dir.is_dir():
        raise BadDataFile(f"no training material at {train_dir}: set RA_SHARED_DIR to the shared data folder")
    return [
        *scifact(train_dir, shared / "bench" / "scifact" / "corpus.jsonl"),
        *climate_fever(train_dir),
        *qags(train_dir),
        *summac(train_dir),
    ]


def is_held_out(group: str, fraction: float) -> bool:
    """A fixed, seed-free split by group: the same claims and documents are held out on every machine."""
    digest = hashlib.sha256(group.encode()).digest()
    return int.from_bytes(digest[:4], "big") < fraction * 2**32
