"""`ra eval qa`: run the agent over a QA set, score every answer, keep finished work, write the report.

Input, one JSON object a line (the format of shared/qa/seeds_dev.jsonl):
    {"id", "question", "answer", "kind", "evidence": [{"doc", "quote"}], "answer_keywords": [...]}
`kind` "unanswerable" marks a question the documents do not answer: the right reply is an abstention.

Output folder (`--out`; default `.ra/eval/<data name>-<config fingerprint>`):
    config.json    what was run (model, back-end, index generation, retrieval, agent and checker settings)
                   and its fingerprint; a rerun with another configuration refuses to mix into it
    results.jsonl  one line per finished question, appended and fsynced as each one finishes:
        {"id", "question", "kind", "unanswerable", "gold_answer", "answer", "abstained",
         "citations": [Citation.to_json()], "sentences": [{"text", "citations", "support", "verdict"}],
         "metrics": {"keyword_hit", "abstention_correct", "judge_correct", "faithfulness",
                     "citation_recall", "citation_precision", "invalid_citations", "citations_resolve",
                     "evidence_recall", "retrieval_recall"},
         "timings": {"first_token_s", "total_s", "model_s", "tools_s", "answer_s"}, "actions", "error"}
    summary.json   {"config", "n", "metrics": {means}, "by_kind": {kind: {means}},
                    "latency": {"first_token_p50", "first_token_p95", "total_p50", "total_p95"}}
    report.html    one self-contained page (eval/report.py)
    traces/<id>.jsonl  each question's run (plan, steps with raw replies, evidence, parts): assistant/agent/trace.py
Metric definitions: eval/metrics.py. A sentence's `support` and `verdict` are the agent's own, from the one
support scorer (assistant/grounding/support.py).

Resuming: a crash or Ctrl-C keeps every finished line; the same command again skips the questions whose id
and text already have a line, and a question edited in the data file is answered again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.agent.prompts import render
from assistant.agent.records import Answer, Sentence
from assistant.grounding.base import GroundingChecker
from assistant.grounding.support import ScoredSentence, resolve_threshold, support_table
from assistant.index_access import open_index
from eval.metrics import (
    abstention_correct,
    citation_precision,
    citation_recall,
    citations_resolve,
    evidence_recall,
    faithfulness,
    keyword_hit,
    summarise,
)
from index.errors import UserFacingError
from index.ingest import NullProgress, Progress

if TYPE_CHECKING:
    from assistant.agent.backends import ChatBackend
    from assistant.settings import Settings
    from index.search import HybridIndex

RESULTS, SUMMARY, REPORT, CONFIG, TRACES = (
    "results.jsonl",
    "summary.json",
    "report.html",
    "config.json",
    "traces",
)
LLM_BACKENDS = ("server", "vllm-batch")
JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"correct": {"type": "boolean"}},
    "required": ["correct"],
    "additionalProperties": False,
}


class QADataError(UserFacingError):
    """The QA file is missing or has a bad line."""


class RunConfigChanged(UserFacingError):
    """The output folder holds results of another configuration."""


# -- the questions -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QAItem:
    id: str
    question: str
    kind: str
    answer: str = ""
    quotes: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()

    @property
    def unanswerable(self) -> bool:
        return self.kind == "unanswerable"


def load_items(path: Path, limit: int | None = None) -> list[QAItem]:
    """The questions of a QA jsonl file; a bad line fails with its file:line and what is wrong."""
    if not path.is_file():
        raise QADataError(f"no QA file at {path}: pass --data FILE.jsonl (one question object a line)")
    items: list[QAItem] = []
    first_line: dict[str, int] = {}
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise QADataError(f"{where}: not valid JSON ({exc.msg}); fix or remove that line") from None
            item = _item(data, where)
            if item.id in first_line:
                raise QADataError(f"{where}: id '{item.id}' already used on line {first_line[item.id]}")
            first_line[item.id] = n
            items.append(item)
    if not items:
        raise QADataError(f"{path} has no questions: one JSON object a line, with an id and a question")
    return items[:limit] if limit else items


def _item(data: Any, where: str) -> QAItem:
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("question"), str)
        or not data["question"].strip()
    ):
        raise QADataError(f'{where}: each line needs a "question" string (and an "id")')
    if not isinstance(data.get("id"), str | int):
        raise QADataError(f'{where}: each line needs an "id" (a string)')
    evidence = data.get("evidence") or []
    keywords = data.get("answer_keywords") or []
    if not isinstance(evidence, list) or not all(isinstance(e, dict) for e in evidence):
        raise QADataError(f'{where}: "evidence" must be a list of {{"doc", "quote"}} objects')
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise QADataError(f'{where}: "answer_keywords" must be a list of strings')
    return QAItem(
        id=str(data["id"]),
        question=data["question"].strip(),
        kind=str(data.get("kind") or "unknown"),
        answer=str(data.get("answer") or ""),
        quotes=tuple(str(e["quote"]) for e in evidence if e.get("quote")),
        keywords=tuple(keywords),
    )


# -- configuration and the output folder --------------------------------------------------------------
def run_config(
    settings: Settings, *, data: Path, llm_backend: str, index: HybridIndex, judge: str | None
) -> dict[str, Any]:
    """What determines the answers and scores; its fingerprint guards the output folder."""
    llm = settings.llm
    config: dict[str, Any] = {
        "llm": llm.url or llm.model,
        "llm_backend": "url" if llm.url else ("embedded" if llm_backend == "server" else llm_backend),
        "temperature": llm.temperature,
        "index": str(settings.index.dir.resolve()),
        "index_generation": index.manifest.generation,
        "retrieval": settings.retrieval.model_dump(mode="json"),
        "agent": settings.agent.model_dump(mode="json"),
        "grounding": settings.grounding.model_dump(mode="json"),
        "judge": judge,
    }
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    return {"data": str(data), "fingerprint": digest, **config}


def default_out(data: Path, config: Mapping[str, Any]) -> Path:
    """Same data and configuration -> same folder, so rerunning a command resumes it."""
    return Path(".ra") / "eval" / f"{data.stem}-{config['fingerprint']}"


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"agent": {"max_steps": 6}} -> {"agent.max_steps": 6} (for naming what differs)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Settings that differ between two configs (data path and fingerprint aside)."""
    a, b = flatten(old), flatten(new)
    skip = {"data", "fingerprint"}
    return {
        k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if k not in skip and a.get(k) != b.get(k)
    }


class ResultStore:
    """The output folder: config, append-only results (one fsynced line per question), summary, report."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.results = out / RESULTS
        self._lock = threading.Lock()

    def prepare(self, config: Mapping[str, Any], fresh: bool = False) -> None:
        """Create the folder; refuse to mix in results of another configuration unless `fresh`."""
        self.out.mkdir(parents=True, exist_ok=True)
        if fresh:
            for name in (RESULTS, SUMMARY, REPORT):
                (self.out / name).unlink(missing_ok=True)
        old = self._old_config()
        if old and old.get("fingerprint") != config["fingerprint"] and self.load():
            changed = ", ".join(config_changes(old, config)) or "fingerprint"
            raise RunConfigChanged(
                f"{self.out} holds results of another configuration (changed: {changed}); "
                "pass --fresh to discard them or --out DIR to keep both"
            )
        _write_atomic(self.out / CONFIG, json.dumps(config, indent=2) + "\n")

    def _old_config(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.out / CONFIG).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def load(self) -> dict[str, dict[str, Any]]:
        """Finished rows by question id (a later line wins). A last line cut short by a crash is dropped."""
        if not self.results.is_file():
            return {}
        raw = self.results.read_bytes()
        rows: dict[str, dict[str, Any]] = {}
        lines = raw.split(b"\n")
        offset = 0
        for n, line in enumerate(lines, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    if n == len(lines):  # no newline after it: the write was interrupted
                        with self.results.open("r+b") as f:
                            f.truncate(offset)
                        break
                    raise QADataError(
                        f"{self.results}:{n} is corrupt: pass --fresh to start over or remove that line"
                    ) from None
                rows[str(row["id"])] = row
            offset += len(line) + 1
        return rows

    def append(self, row: Mapping[str, Any]) -> None:
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with self._lock, self.results.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        _write_atomic(self.out / SUMMARY, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# -- scoring one answer -------------------------------------------------------------------------------
@dataclass
class Scorer:
    """Turns an item and the agent's answer into a results.jsonl row."""

    index: HybridIndex
    checker: GroundingChecker | None
    threshold: float
    judge: ChatBackend | None
    retrieval_k: int
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def row(self, item: QAItem, answer: Answer) -> dict[str, Any]:
        claims = [s for s in answer.sentences if s.kind != "not_stated"]
        scored = self._support(answer, claims)
        citations = [c.to_json() for c in answer.citations]
        text = "" if answer.abstained else (" ".join(s.text for s in answer.sentences) or answer.text)
        seen = [e.text for e in answer.evidence if e.kind == "passage"]
        retrieved = (
            [h.chunk.text for h in self.index.search(item.question, k=self.retrieval_k)]
            if item.quotes
            else []
        )
        judged = scored is not None and not answer.abstained
        metrics = {
            "keyword_hit": keyword_hit(text, item.keywords),
            "abstention_correct": abstention_correct(answer.abstained, item.unanswerable),
            "judge_correct": self._judge(item, answer, text),
            "faithfulness": faithfulness([s.verdict for s in claims]) if judged else None,
            "citation_recall": citation_recall(scored, self.threshold) if judged and scored else None,
            "citation_precision": citation_precision(scored, self.threshold) if judged and scored else None,
            "invalid_citations": answer.invalid_citations,
            "citations_resolve": citations_resolve(citations, self.index.document_text, self._chunk_span),
            "evidence_recall": evidence_recall(item.quotes, seen),
            "retrieval_recall": evidence_recall(item.quotes, retrieved),
        }
        return {
            "id": item.id,
            "question": item.question,
            "kind": item.kind,
            "unanswerable": item.unanswerable,
            "gold_answer": item.answer,
            "answer": answer.text,
            "abstained": answer.abstained,
            "abstain_reason": answer.abstain_reason,
            "citations": citations,
            "sentences": [s.to_json() for s in answer.sentences],
            "parts": [p.to_json() for p in answer.parts],
            "metrics": {k: _round(v) if isinstance(v, float) else v for k, v in metrics.items()},
            "timings": {k: round(v, 3) for k, v in answer.timings.items()},
            "actions": [s.action for s in answer.steps],
        }

    def _support(self, answer: Answer, claims: list[Sentence]) -> list[ScoredSentence] | None:
        """Each claiming sentence's support by the citation subsets ALCE's recall and precision need
        (one batched checker call per answer); None when no checker runs."""
        if self.checker is None:
            return None
        with self._lock:  # a checker holds one model; answers finish in several threads
            return support_table(self.checker, claims, {e.id: e for e in answer.evidence})

    def _judge(self, item: QAItem, answer: Answer, text: str) -> bool | None:
        """The LLM judge's verdict on an answerable item (an abstention is wrong); None when not judged
        or when the judge's reply is unusable."""
        if self.judge is None or item.unanswerable:
            return None
        if answer.abstained:
            return False
        prompt = render("judge_correctness.md", question=item.question, reference=item.answer, candidate=text)
        raw = self.judge.complete([{"role": "user", "content": prompt}], JUDGE_SCHEMA, max_tokens=32).text
        try:
            value = json.loads(raw).get("correct")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, bool) else None

    def _chunk_span(self, chunk_id: str) -> tuple[int, int] | None:
        chunk = self.index.get_chunk(chunk_id)
        return None if chunk is None else (chunk.start, chunk.end)


def _safe_name(item_id: str) -> str:
    """A question id as a file name (ids are free text in QA files)."""
    return re.sub(r"[^\w.-]", "_", item_id)[:100] or "item"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# -- running many questions ---------------------------------------------------------------------------
def run_items(
    items: Sequence[QAItem],
    work: Callable[[QAItem], dict[str, Any]],
    concurrency: int,
    on_row: Callable[[dict[str, Any]], None],
) -> None:
    """`work` on every item, `concurrency` at a time (threads); `on_row` runs in this thread as each one
    finishes. The first failure (or Ctrl-C) cancels what has not started; finished rows stay delivered."""
    if concurrency <= 1:
        for item in items:
            on_row(work(item))
        return
    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="ra-eval")
    try:
        futures = [pool.submit(work, item) for item in items]
        for future in as_completed(futures):
            on_row(future.result())
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class QAOptions:
    """What `ra eval qa` was asked to do beyond the settings."""

    data: Path
    out: Path | None = None
    llm_backend: str = "server"
    concurrency: int = 1
    judge: bool = False
    judge_url: str | None = None
    limit: int | None = None
    fresh: bool = False


@dataclass(frozen=True)
class QARun:
    out: Path
    summary: dict[str, Any]
    answered: int  # questions answered by this invocation
    reused: int  # questions whose results an earlier invocation left in the folder


@contextmanager
def open_eval_backend(settings: Settings, llm_backend: str, width: int) -> Iterator[ChatBackend]:
    """`server`: the URL in the settings, else the embedded llama.cpp server; `vllm-batch`: the model in
    an in-process vLLM engine, with the agents' calls batched (eval/batching.py)."""
    if llm_backend == "vllm-batch":
        if settings.llm.url:
            raise UserFacingError(
                "--llm-backend vllm-batch runs the model itself: drop --llm-url / RA_LLM__URL"
            )
        from eval.batching import open_vllm_batch

        with open_vllm_batch(settings, width) as backend:
            yield backend
        return
    if llm_backend != "server":
        raise UserFacingError(f"unknown --llm-backend '{llm_backend}': use {' or '.join(LLM_BACKENDS)}")
    from assistant.agent.factory import open_backend

    with open_backend(settings) as backend:
        yield backend


def open_checker(settings: Settings, backend: ChatBackend) -> GroundingChecker | None:
    """The checker the settings name (None for "none"); an unbuilt local checker is an error here, since
    an evaluation without support scores should be asked for (`--checker none`)."""
    from assistant.grounding.registry import open_checker as registry_open

    return registry_open(settings, client=getattr(backend, "client", None))


@contextmanager
def _judge_backend(
    options: QAOptions, settings: Settings, backend: ChatBackend
) -> Iterator[ChatBackend | None]:
    if options.judge_url:
        from assistant.agent.backends import OpenAIBackend
        from assistant.llm.client import ChatClient

        with ChatClient.for_settings(settings.llm, options.judge_url) as client:
            yield OpenAIBackend(client, 0.0, client.context_tokens(default=settings.llm.context_size))
    else:
        yield backend if options.judge else None


def evaluate(
    settings: Settings,
    options: QAOptions,
    index: HybridIndex | None = None,
    progress: Progress | None = None,
    backend_factory: Callable[[Settings, str, int], Any] | None = None,
    checker_factory: Callable[[Settings, ChatBackend], GroundingChecker | None] | None = None,
) -> QARun:
    """Answer and score every question not yet in the output folder, then write summary and report.
    The factories default to `open_eval_backend` and `open_checker` (tests pass scripted ones)."""
    from assistant.agent.factory import build_agent
    from assistant.agent.loop import final_answer
    from assistant.agent.trace import write_trace
    from eval.report import write_report

    progress = progress or NullProgress()
    items = load_items(options.data, options.limit)
    index = index or open_index(settings)  # after the data check: both fail fast, before any model starts
    judge = options.judge_url or ("same model" if options.judge else None)
    config = run_config(
        settings, data=options.data, llm_backend=options.llm_backend, index=index, judge=judge
    )
    store = ResultStore(options.out or default_out(options.data, config))
    store.prepare(config, fresh=options.fresh)
    finished_rows = store.load()
    done = {i.id for i in items if i.id in finished_rows and finished_rows[i.id]["question"] == i.question}
    todo = [i for i in items if i.id not in done]
    progress.start("answering", len(items))
    progress.advance(len(done))
    if todo:
        with (
            (backend_factory or open_eval_backend)(
                settings, options.llm_backend, options.concurrency
            ) as backend,
            _judge_backend(options, settings, backend) as judge_backend,
        ):
            checker = (checker_factory or open_checker)(settings, backend)
            threshold = resolve_threshold(checker, settings.grounding.threshold)
            scorer = Scorer(index, checker, threshold, judge_backend, settings.retrieval.k)
            agent = build_agent(settings, backend, index, checker)

            def work(item: QAItem) -> dict[str, Any]:
                answer = final_answer(agent.run(item.question))
                write_trace(answer, store.out / TRACES / f"{_safe_name(item.id)}.jsonl")
                return scorer.row(item, answer)

            def save(row: dict[str, Any]) -> None:
                store.append(row)
                progress.advance()

            run_items(todo, work, options.concurrency, save)
    rows_by_id = store.load()
    rows = [rows_by_id[i.id] for i in items if i.id in rows_by_id]
    summary = summarise(rows, config)
    store.write_summary(summary)
    write_report(store.out / REPORT, rows, summary)
    return QARun(store.out, summary, answered=len(todo), reused=len(done))
