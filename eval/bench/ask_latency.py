"""What a person waits for: `ra ask` as a command, timed from its start to the first draft words (stderr),
the first checked answer words (stdout) and its exit; cold (a fresh process that loads everything) against
warm (the resident service keeps the model, checker and index loaded), and several users at once.

    python -m eval.bench.ask_latency --index DIR [--data ../shared/qa/seeds_dev.jsonl] [--limit N]
        [--modes cold,warm] [--users 1,2,4] [--llm SPEC] [--out docs/bench/ask_latency.json]

Every mode answers the same questions in the same run. `cold` runs `ra ask --no-service`; `warm` starts
`ra service` first (its start is reported, not counted) and runs `ra ask` as a thin client; `api` sends the
same questions, streamed, to `ra serve --agent` in front of that service (an OpenAI client's wait). `--users N`
runs N clients at once against a service with N llama.cpp slots and reports answers per minute. Keyword
accuracy of each mode's answers is reported beside its times (speed must not cost answers).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import httpx

from eval.bench import write_result
from eval.metrics import keyword_hit, percentile

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "qa" / "seeds_dev.jsonl"
DRAFT_MARK = b"draft, checking:"


def ra(*args: str) -> list[str]:
    return [sys.executable, "-m", "assistant", *args]


def time_ask(
    question: str, index: Path, llm: str | None, env: dict[str, str], cold: bool, trace: Path
) -> dict[str, Any]:
    """One `ra ask`: seconds to the first draft words, the first stdout byte, and the exit; the KV cache's
    share of each model call's prompt, from the run's trace."""
    cmd = ra("ask", question, "--index", str(index), "--trace", str(trace), *(["--llm", llm] if llm else []))
    cmd += ["--no-service"] if cold else []
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    marks: dict[str, float] = {}
    chunks: dict[str, bytes] = {}

    def read(name: str, stream: IO[bytes], mark: bytes | None) -> None:
        data = b""
        while piece := stream.read1(4096):  # type: ignore[attr-defined]
            data += piece
            if name not in marks and (mark is None or mark in data):
                marks[name] = time.perf_counter() - t0
        chunks[name] = data

    readers = [
        threading.Thread(target=read, args=("first_words_s", proc.stdout, None)),
        threading.Thread(target=read, args=("first_draft_s", proc.stderr, DRAFT_MARK)),
    ]
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    proc.wait()
    total = time.perf_counter() - t0
    answer = chunks.get("first_words_s", b"").decode(errors="replace")
    return {
        "first_draft_s": round(marks["first_draft_s"], 2) if "first_draft_s" in marks else None,
        "first_words_s": round(marks["first_words_s"], 2) if "first_words_s" in marks else None,
        "total_s": round(total, 2),
        "exit_code": proc.returncode,
        "answer": answer.split("\n\nSources:")[0].strip()[:400],
        "error": chunks.get("first_draft_s", b"").decode(errors="replace").strip()[-300:]
        if proc.returncode
        else "",
        "prompt_tokens": prompt_tokens_by_stage(trace),
    }


def prompt_tokens_by_stage(trace: Path) -> dict[str, list[int]]:
    """stage (the step's action: plan, answer, check, ...) -> [prompt tokens, of them from the KV cache]."""
    stages: dict[str, list[int]] = {}
    if not trace.exists():
        return stages
    for line in trace.read_text().splitlines():
        record = json.loads(line)
        if record["type"] == "step" and record.get("prompt_tokens"):
            total = stages.setdefault(record["action"], [0, 0])
            total[0] += record["prompt_tokens"]
            total[1] += record.get("cached_tokens") or 0
    return stages


Timer = Callable[[str, Path], dict[str, Any]]  # (question, trace file) -> the timings of one answer


def asking(index: Path, llm: str | None, env: dict[str, str], *, cold: bool) -> Timer:
    return lambda question, trace: time_ask(question, index, llm, env, cold, trace)


def time_api(question: str, url: str) -> dict[str, Any]:
    """One streamed request to `ra serve --agent`: seconds to the first answer words in the stream (what an
    OpenAI client shows first) and to its end."""
    body = {
        "model": "research-assistant",
        "stream": True,
        "messages": [{"role": "user", "content": question}],
    }
    t0 = time.perf_counter()
    first, text = None, ""
    with httpx.stream("POST", url + "/chat/completions", json=body, timeout=900) as reply:
        for line in reply.iter_lines():
            if not line.startswith("data: {"):
                continue
            piece = json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
            if piece and first is None:
                first = time.perf_counter() - t0
            text += piece
        status = reply.status_code
    return {
        "first_draft_s": None,
        "first_words_s": round(first, 2) if first is not None else None,
        "total_s": round(time.perf_counter() - t0, 2),
        "exit_code": 0 if status == 200 else status,
        "answer": text.split("\n\nSources:")[0].strip()[:400],
        "error": "" if status == 200 else text[-300:],
        "prompt_tokens": {},
    }


def streaming(url: str) -> Timer:
    return lambda question, trace: time_api(question, url)


def run_questions(items: list[dict[str, Any]], timer: Timer, *, users: int) -> dict[str, Any]:
    began = time.perf_counter()
    traces = Path(tempfile.mkdtemp(prefix="ra-bench-traces-"))

    def one(item: dict[str, Any]) -> dict[str, Any]:
        trace = traces / f"{item['id']}.jsonl"
        run = {"id": item["id"], "kind": item["kind"], **timer(item["question"], trace)}
        abstained = run["answer"].startswith("The documents do not answer")
        run["keyword_hit"] = keyword_hit(
            "" if abstained else run["answer"], item.get("answer_keywords") or []
        )
        print(json.dumps(run), file=sys.stderr, flush=True)
        return run

    with ThreadPoolExecutor(users) as pool:
        runs = list(pool.map(one, items))
    wall = time.perf_counter() - began
    return summarise(runs, wall)


def summarise(runs: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    def p(key: str, q: float) -> float | None:
        return percentile([r[key] for r in runs if r[key] is not None], q)

    scored = [r["keyword_hit"] for r in runs if r["keyword_hit"] is not None]
    by_kind: dict[str, list[float]] = {}
    stages: dict[str, list[int]] = {}
    for r in runs:
        by_kind.setdefault(r["kind"], []).append(r["total_s"])
        for stage, (prompt, cached) in r["prompt_tokens"].items():
            stages.setdefault(stage, [0, 0])
            stages[stage][0] += prompt
            stages[stage][1] += cached
    return {
        "n": len(runs),
        "total_p50": p("total_s", 50),
        "total_p95": p("total_s", 95),
        "first_draft_p50": p("first_draft_s", 50),
        "first_words_p50": p("first_words_s", 50),
        "first_words_p95": p("first_words_s", 95),
        "total_p50_by_kind": {k: percentile(v, 50) for k, v in sorted(by_kind.items())},
        "answers_per_min": round(len(runs) / wall_s * 60, 2),
        "keyword_accuracy": round(sum(scored) / len(scored), 4) if scored else None,
        "kv_cache_share_by_stage": {s: round(c / p, 3) for s, (p, c) in sorted(stages.items()) if p},
        "failed": sum(r["exit_code"] != 0 for r in runs),
        "runs": runs,
    }


def with_service(env: dict[str, str], index: Path, llm: str | None) -> float:
    """Start the service for these settings; seconds until it answered."""
    t0 = time.perf_counter()
    cmd = ra("service", "start", "--index", str(index), *(["--llm", llm] if llm else []))
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return round(time.perf_counter() - t0, 2)


def stop_service(env: dict[str, str]) -> None:
    subprocess.run(
        ra("service", "stop"), env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def with_api(
    env: dict[str, str], index: Path, llm: str | None, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """`ra serve --agent` in front of the running service; its URL once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    cmd = ra(
        "serve", "--agent", "--index", str(index), "--port", str(port), *(["--model", llm] if llm else [])
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"`ra serve --agent` did not come up: see {log}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--llm", default=None)
    ap.add_argument(
        "--modes",
        default="cold,warm",
        help="cold, warm, api (streamed from `ra serve --agent` over the warm service), comma-separated",
    )
    ap.add_argument("--users", default="", help="concurrent users against the service, e.g. 1,2,4")
    ap.add_argument("--out", type=Path, default=Path("docs/bench/ask_latency.json"))
    args = ap.parse_args(argv)
    items = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()][: args.limit]
    run_dir = Path(tempfile.mkdtemp(prefix="ra-bench-"))
    env = os.environ | {"RA_SERVICE__SOCKET": str(run_dir / "service.sock")}  # never the user's service
    result: dict[str, Any] = {"data": args.data.name, "n": len(items), "modes": {}, "users": {}}
    for mode in [m for m in args.modes.split(",") if m]:
        if mode in ("warm", "api"):
            result["service_start_s"] = with_service(env, args.index, args.llm)
        api = with_api(env, args.index, args.llm, run_dir / "api.log") if mode == "api" else None
        try:
            timer = (
                streaming(api[1])
                if api is not None
                else asking(args.index, args.llm, env, cold=mode == "cold")
            )
            result["modes"][mode] = run_questions(items, timer, users=1)
        finally:
            if api is not None:
                api[0].terminate()
                api[0].wait(timeout=60)
            if mode in ("warm", "api"):
                stop_service(env)
    for users in [int(u) for u in args.users.split(",") if u]:
        slots = env | {"RA_LLM__SLOTS": str(users)}
        with_service(slots, args.index, args.llm)
        try:
            result["users"][str(users)] = run_questions(
                items, asking(args.index, args.llm, slots, cold=False), users=users
            )
        finally:
            stop_service(slots)
    cold, warm = result["modes"].get("cold"), result["modes"].get("warm")
    if cold and warm and cold["total_p50"] and warm["total_p50"]:
        result["warm_vs_cold_total_p50"] = round(warm["total_p50"] / cold["total_p50"], 3)
    one = result["users"].get("1")
    for r in result["users"].values():
        if one:
            r["throughput_vs_1"] = round(r["answers_per_min"] / one["answers_per_min"], 3)
    for r in [*result["modes"].values(), *result["users"].values()]:
        r["runs"] = [
            {k: v for k, v in run.items() if k != "answer"} | {"answer": run["answer"][:160]}
            for run in r["runs"]
        ]
    out = write_result(result, args.out)
    return out


if __name__ == "__main__":
    main()
