"""This project side by side with PaperQA2 and a LangChain RAG chain: same documents, same local model,
same questions, one scorer, one table.

    python -m eval.bench.peers --data QA.jsonl --docs DIR... [--systems ra,paperqa,langchain]
                               [--limit N] [--budget-s 300] --out DIR

Each system runs as a worker process in its own virtual env (eval/bench/peer_workers; the peers in
`.venv-peers`, built by `make peers`), speaking eval/bench/peer_workers/protocol.py. All of them reach the
same model through one OpenAI-compatible server: the embedded llama.cpp one this command starts (the
settings' `llm.model`), or `--llm-url` (e.g. vLLM on a GPU box). Every answer is scored here by
eval/metrics.py: keyword accuracy, citations whose passage is verbatim in the cited document, abstention
and false abstention (each system's own "cannot answer" form, see its worker), wall time per question.
A question over the per-question budget is killed, recorded as an error (wrong), and the worker restarts.
Resumable: a system's finished questions are kept in OUT/SYSTEM/results.jsonl.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from eval.metrics import keyword_hit, mean, percentile, quote_in_document, verbatim_key
from eval.qa_run import RESULTS, QAItem, ResultStore, load_items
from index.errors import UserFacingError

REPO = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).parent / "peer_workers"
PEERS_PYTHON = REPO / ".venv-peers" / "bin" / "python"
SYSTEMS = ("ra", "paperqa", "langchain")  # the default run
VARIANTS = ("paperqa-skip-summary",)  # asked for by name: PaperQA2 with evidence_skip_summary
SETUP_TIMEOUT_S = 3600.0  # one ingest of the documents
INGEST = "ingest.json"


class PeersError(UserFacingError):
    pass


class SystemFailed(PeersError):
    """A system could not be set up (its ingest failed or hung): that is its result, the others go on."""


@dataclass(frozen=True)
class WorkerSpec:
    """How to start one system's worker: its venv's python and its script."""

    python: Path
    script: Path
    options: Mapping[str, Any] = field(default_factory=dict)  # the worker's switches


def default_systems(peers_python: Path = PEERS_PYTHON) -> dict[str, WorkerSpec]:
    paperqa = WORKERS / "paperqa_worker.py"
    return {
        "ra": WorkerSpec(Path(sys.executable), WORKERS / "ra_worker.py"),
        "paperqa": WorkerSpec(peers_python, paperqa),
        "langchain": WorkerSpec(peers_python, WORKERS / "langchain_worker.py"),
        "paperqa-skip-summary": WorkerSpec(peers_python, paperqa, {"skip_summary": True}),
    }


# -- one worker --------------------------------------------------------------------------------------------
class WorkerTimeout(Exception):
    pass


class Worker:
    """A system's worker process: requests in, one reply line each, with a deadline."""

    def __init__(self, spec: WorkerSpec, log: Path) -> None:
        env = os.environ | {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        self._log = open(log, "ab")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [str(spec.python), str(spec.script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            start_new_session=True,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=_pump, args=(self.proc.stdout, self._lines), daemon=True).start()

    def request(self, message: Mapping[str, Any], timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise WorkerTimeout from None
        if not line:
            raise PeersError(f"the worker ended (exit code {self.proc.wait()}): see {self._log.name}")
        return json.loads(line)

    def kill(self) -> None:
        """End a worker stuck in a question (its process group: a system's own helpers too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, 9)
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        self._log.close()


def _pump(stream: IO[bytes], lines: queue.Queue[bytes]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(b"")


# -- a run -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    items: Sequence[QAItem]
    docs: Sequence[Path]
    llm_url: str
    llm_model: str
    embedding_model: str
    out: Path
    budget_s: float
    grace_s: float = 60.0  # past the budget before the harness kills a worker (the system's own limit first)

    def config(self, system: str, spec: WorkerSpec) -> dict[str, Any]:
        """What determines a system's answers; its fingerprint guards the system's output folder."""
        config = {
            "system": system,
            "docs": sorted(str(p) for p in self.docs),
            "llm_model": self.llm_model,
            "embedding_model": Path(self.embedding_model).name,
            "budget_s": self.budget_s,
            "options": dict(spec.options),
        }
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
        return {"fingerprint": digest, **config}


def run_system(
    run: Run, name: str, spec: WorkerSpec, fresh: bool = False, progress: Any = print
) -> list[dict[str, Any]]:
    """Answer every question of `run` not yet in OUT/NAME with system `name`; all its rows, in item order.
    OUT/NAME keeps its configuration: another one is refused unless `fresh` (as `ra eval qa`)."""
    store = ResultStore(run.out / name)
    store.prepare(run.config(name, spec), fresh=fresh)
    rows = store.load()
    todo = [i for i in run.items if rows.get(i.id, {}).get("question") != i.question]
    if not todo:
        return [rows[i.id] for i in run.items]
    keys = document_keys(run.docs)
    worker = _start(run, name, spec, store.out)
    try:
        for n, item in enumerate(todo, 1):
            started = time.perf_counter()
            stuck = False
            try:
                reply = worker.request({"op": "ask", "question": item.question}, run.budget_s + run.grace_s)
            except WorkerTimeout:
                reply, stuck = {"error": f"over the {run.budget_s:.0f} s budget"}, True
            seconds = time.perf_counter() - started
            if stuck:
                worker.kill()
                worker = _start(run, name, spec, store.out)
            row = score_row(item, reply, seconds, keys)
            rows[item.id] = row
            store.append(row)
            note = f" ({row['error']})" if row["error"] else ""
            progress(f"{name} {n}/{len(todo)} {item.id}: {row['seconds']:.1f} s{note}")
    finally:
        worker.close()
    return [rows[i.id] for i in run.items]


def _start(run: Run, name: str, spec: WorkerSpec, folder: Path) -> Worker:
    """A ready worker: started and set up (its ingest timed the first time only)."""
    state = folder / "state"
    state.mkdir(exist_ok=True)
    worker = Worker(spec, folder / "worker.log")
    setup = {
        "docs": [str(p) for p in run.docs],
        "llm_url": run.llm_url,
        "llm_model": run.llm_model,
        "embedding_model": run.embedding_model,
        "state_dir": str(state),
        "budget_s": run.budget_s,
        "options": dict(spec.options),
    }
    try:
        reply = worker.request({"op": "setup", "setup": setup}, SETUP_TIMEOUT_S)
    except WorkerTimeout:
        worker.close()
        raise PeersError(
            f"{name}: ingest took over {SETUP_TIMEOUT_S:.0f} s: see {folder / 'worker.log'}"
        ) from None
    if "error" in reply:
        worker.close()
        raise SystemFailed(f"{reply['error']} (see {folder / 'worker.log'})")
    if not (folder / INGEST).exists():
        (folder / INGEST).write_text(json.dumps(reply, indent=2))
    return worker


# -- scoring -----------------------------------------------------------------------------------------------
def document_keys(docs: Sequence[Path]) -> dict[str, str]:
    """Each document's `verbatim_key`, by the file name the systems cite it by."""
    from index.loaders import load_document

    return {p.name: verbatim_key(load_document(p).text) for p in docs}


def score_row(
    item: QAItem, reply: Mapping[str, Any], seconds: float, keys: Mapping[str, str]
) -> dict[str, Any]:
    """One question's results.jsonl row: the reply, and its scores. An error scores as a wrong answer."""
    error = reply.get("error")
    answer = "" if error else str(reply.get("answer", ""))
    abstained = bool(reply.get("abstained")) and not error
    citations = [] if error else list(reply.get("citations", []))
    verbatim = [
        quote_in_document(str(c.get("quote", "")), keys.get(str(c.get("document")), "")) for c in citations
    ]
    return {
        "id": item.id,
        "question": item.question,
        "kind": item.kind,
        "unanswerable": item.unanswerable,
        "gold_answer": item.answer,
        "answer": answer,
        "abstained": abstained,
        "citations": [c | {"verbatim": v} for c, v in zip(citations, verbatim, strict=True)],
        "error": error,
        "seconds": round(seconds, 2),
        "keyword_hit": None if item.unanswerable else keyword_hit("" if abstained else answer, item.keywords),
    }


def summarise(rows: Sequence[Mapping[str, Any]], ingest: Mapping[str, Any]) -> dict[str, Any]:
    """One system's summary.json entry."""
    answerable = [r for r in rows if not r["unanswerable"]]
    unanswerable = [r for r in rows if r["unanswerable"]]
    kinds = sorted({r["kind"] for r in answerable})
    seconds = [r["seconds"] for r in rows]
    return {
        "n": len(rows),
        "keyword_accuracy": mean(r["keyword_hit"] for r in answerable),
        "by_kind": {k: mean(r["keyword_hit"] for r in answerable if r["kind"] == k) for k in kinds},
        "citation_verbatim": mean(c["verbatim"] for r in rows for c in r["citations"]),
        "citations_per_answer": mean(len(r["citations"]) for r in answerable if not r["abstained"]),
        "abstention": mean(r["abstained"] for r in unanswerable),
        "false_abstention": mean(r["abstained"] for r in answerable),
        "p50_s": percentile(seconds, 50),
        "p95_s": percentile(seconds, 95),
        "errors": sum(1 for r in rows if r["error"]),
        "ingest_s": ingest.get("ingest_s"),
        "index_bytes": ingest.get("index_bytes"),
    }


COLUMNS = (
    ("keyword_accuracy", "keyword accuracy"),
    ("citation_verbatim", "verbatim citations"),
    ("abstention", "abstention"),
    ("false_abstention", "false abstention"),
    ("p50_s", "p50 s"),
    ("p95_s", "p95 s"),
    ("errors", "errors"),
    ("ingest_s", "ingest s"),
    ("index_bytes", "index MB"),
)


def table(summary: Mapping[str, Mapping[str, Any]]) -> str:
    """The Markdown table: one row per system, then keyword accuracy by question kind."""
    lines = [
        "| system | n | " + " | ".join(label for _, label in COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for name, s in summary.items():
        if "could_not_run" in s:
            lines.append(f"| {name} | 0 | could not run: {s['could_not_run']} |" + " |" * (len(COLUMNS) - 1))
            continue
        cells = [_cell(key, s.get(key)) for key, _ in COLUMNS]
        lines.append(f"| {name} | {s['n']} | " + " | ".join(cells) + " |")
    kinds = sorted({k for s in summary.values() for k in s.get("by_kind", {})})
    if kinds:
        lines += ["", "| system | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
        for name, s in summary.items():
            if "by_kind" in s:
                cells = [_cell("by_kind", s["by_kind"].get(k)) for k in kinds]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key == "index_bytes":
        return f"{value / 1e6:.1f}"
    if key in {"p50_s", "p95_s", "ingest_s"}:
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.1%}"
    return str(value)


def write_outputs(
    out: Path, results: Mapping[str, Sequence[Mapping[str, Any]]], failed: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """summary.json, table.md and all rows in one results.jsonl (each with its system); a system in
    `failed` (name -> why it could not run) is reported as such."""
    summary: dict[str, Any] = {name: {"n": 0, "could_not_run": why} for name, why in (failed or {}).items()}
    for name, rows in results.items():
        ingest_file = out / name / INGEST
        ingest = json.loads(ingest_file.read_text()) if ingest_file.exists() else {}
        summary[name] = summarise(rows, ingest)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "table.md").write_text(table(summary))
    with open(out / RESULTS, "w", encoding="utf-8") as f:
        for name, rows in results.items():
            for row in rows:
                f.write(json.dumps({"system": name, **row}) + "\n")
    return summary


# -- the command -------------------------------------------------------------------------------------------
def document_files(paths: Sequence[Path]) -> list[Path]:
    """The loadable files under `paths`, as `ra ingest` walks them; file names must be unique (the systems
    cite documents by file name)."""
    from index.loaders import iter_files

    files = [p for p, reason in iter_files(paths) if reason is None]
    if not files:
        raise PeersError("no loadable documents under --docs: pass folders or files (pdf, txt, md, html)")
    seen: dict[str, Path] = {}
    for p in files:
        if p.name in seen:
            raise PeersError(f"two documents are named {p.name} ({seen[p.name]}, {p}): rename one")
        seen[p.name] = p
    return files


@contextlib.contextmanager
def shared_model(llm_url: str | None, llm_model: str | None) -> Iterator[tuple[str, str]]:
    """(base URL ending in /v1, model name): `--llm-url` as given, else the embedded llama.cpp server."""
    from assistant.llm.client import normalize_base_url

    if llm_url:
        if not llm_model:
            raise PeersError("--llm-url needs --llm-model (the name the server serves)")
        yield normalize_base_url(llm_url), llm_model
        return
    from assistant.llm.llamacpp import LlamaCppServer
    from assistant.settings import load_settings

    settings = load_settings()
    with LlamaCppServer.for_settings(settings.llm, settings.cache_dir, startup_timeout=600.0) as server:
        yield normalize_base_url(server.base_url), server.model_name


def embedding_path() -> str:
    from assistant.settings import load_settings
    from index.embeddings import resolve_model_path

    cfg = load_settings().index.embedding
    return resolve_model_path(cfg.model, cfg.allow_download)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="QA file in ../shared/qa's format")
    parser.add_argument("--docs", type=Path, nargs="+", required=True, help="folders or files")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help="comma-separated: " + ",".join(SYSTEMS + VARIANTS)
    )
    parser.add_argument("--limit", type=int, default=None, help="first N questions")
    parser.add_argument("--budget-s", type=float, default=300.0, help="per question and system")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--llm-url", help="a running OpenAI-compatible server (default: start llama.cpp)")
    parser.add_argument("--llm-model", help="its model name")
    parser.add_argument("--peers-python", type=Path, default=PEERS_PYTHON)
    parser.add_argument("--fresh", action="store_true", help="discard earlier results in --out")
    args = parser.parse_args(argv)
    try:
        names = [s.strip() for s in args.systems.split(",") if s.strip()]
        unknown = sorted(set(names) - set(SYSTEMS + VARIANTS))
        if unknown or not names:
            raise PeersError(
                f"unknown system(s) {', '.join(unknown) or '(none)'}: "
                f"choose from {', '.join(SYSTEMS + VARIANTS)}"
            )
        items = load_items(args.data, args.limit)
        docs = document_files(args.docs)
        specs = default_systems(args.peers_python)
        for name in names:
            if not specs[name].python.is_file():
                raise PeersError(
                    f"{name}: {specs[name].python} not found: run `make peers` to install the peers"
                )
        results: dict[str, list[dict[str, Any]]] = {}
        failed: dict[str, str] = {}
        with shared_model(args.llm_url, args.llm_model) as (url, model):
            run = Run(items, docs, url, model, embedding_path(), args.out, args.budget_s)
            for name in names:
                try:
                    results[name] = run_system(run, name, specs[name], args.fresh, _progress)
                except SystemFailed as exc:
                    failed[name] = str(exc)
                    _progress(f"error: {name} could not run: {exc}")
        summary = write_outputs(args.out, results, failed)
    except UserFacingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 1 if failed else 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
