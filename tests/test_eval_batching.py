"""Batching agents' model calls across questions: the batcher with a fake generator, the persistent vLLM
worker protocol with a fake worker script, and (marker `vllm`) a real in-process vLLM eval run."""

from __future__ import annotations

import json
import os
import stat
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_eval_qa import ANSWERS, EvalIndex, OverlapChecker, write_items
from test_eval_qa import ITEMS as QA_ITEMS

from assistant.llm.vllm_batch import VLLMBatchSession
from assistant.llm.vllm_env import VLLMStartError, vllm_python
from assistant.settings import Settings, load_settings
from eval.batching import Batcher, BatcherClosed, BatchingBackend, open_vllm_batch
from eval.qa_run import QAOptions, evaluate
from index.errors import UserFacingError


def submit_all(batcher: Batcher, requests: list[dict[str, Any]]) -> list[Any]:
    """Submit each request from its own thread; the replies (or exceptions) by request."""
    results: list[Any] = [None] * len(requests)

    def call(i: int) -> None:
        try:
            results[i] = batcher.submit(requests[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_concurrent_calls_go_out_as_one_batch_and_each_caller_gets_its_own_reply() -> None:
    seen: list[list[int]] = []

    def generate(requests: list[dict[str, Any]]) -> list[str]:
        seen.append([r["n"] for r in requests])
        return [f"reply {r['n']}" for r in requests]

    # The batch is sent when full, so a long linger never delays this one.
    with Batcher(generate, max_batch=4, linger_s=60) as batcher:
        replies = submit_all(batcher, [{"n": n} for n in range(4)])
    assert replies == [f"reply {n}" for n in range(4)]
    assert len(seen) == 1 and sorted(seen[0]) == [0, 1, 2, 3]


def test_batches_are_capped_and_a_lone_call_goes_after_the_linger() -> None:
    sizes: list[int] = []

    def generate(requests: list[dict[str, Any]]) -> list[str]:
        sizes.append(len(requests))
        return ["ok"] * len(requests)

    with Batcher(generate, max_batch=2, linger_s=0.05) as batcher:
        assert submit_all(batcher, [{}] * 5) == ["ok"] * 5
        assert batcher.submit({}) == "ok"
    assert max(sizes) <= 2 and sum(sizes) == 6 and sizes == batcher.sizes


def test_a_failing_generator_fails_every_caller_of_its_batch() -> None:
    def generate(requests: list[dict[str, Any]]) -> list[str]:
        raise RuntimeError("engine died")

    with Batcher(generate, max_batch=3, linger_s=60) as batcher:
        results = submit_all(batcher, [{}] * 3)
    assert all(isinstance(r, RuntimeError) and "engine died" in str(r) for r in results)


def test_closing_releases_waiting_callers_and_refuses_new_ones() -> None:
    batcher = Batcher(lambda r: ["x"] * len(r), max_batch=10, linger_s=60)
    with batcher:
        waiter = threading.Thread(target=lambda: results.append(_catch(batcher.submit, {})))
        results: list[Any] = []
        waiter.start()
        while not batcher._pending:  # the caller is queued (a full batch of 10 never comes)
            threading.Event().wait(0.01)
    waiter.join(timeout=10)
    assert isinstance(results[0], BatcherClosed)
    with pytest.raises(BatcherClosed):
        batcher.submit({})


def _catch(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        return exc


def test_backend_sends_messages_schema_and_limits_and_returns_the_reply() -> None:
    got: list[dict[str, Any]] = []

    def generate(requests: list[dict[str, Any]]) -> list[str]:
        got.extend(requests)
        return ['{"a": 1}']

    with Batcher(generate, max_batch=1) as batcher:
        backend = BatchingBackend(batcher, temperature=0.3, context_tokens=2048)
        reply = backend.complete([{"role": "user", "content": "hi"}], {"type": "object"}, max_tokens=9)
    assert reply.text == '{"a": 1}' and backend.context_tokens == 2048
    assert got == [
        {
            "messages": [{"role": "user", "content": "hi"}],
            "json_schema": {"type": "object"},
            "max_tokens": 9,
            "temperature": 0.3,
        }
    ]


# -- the persistent worker protocol, with a script standing in for the vLLM venv's python --------------
def fake_python(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


ECHO_WORKER = """exec python3 -c '
import json, os, sys
for line in sys.stdin:
    batch = json.loads(line)
    out = [{"text": "%s:%s" % (os.getpid(), r["messages"][-1]["content"])} for r in batch]
    print(json.dumps(out), flush=True)
'"""


def test_session_keeps_one_worker_for_many_batches(tmp_path: Path) -> None:
    python = fake_python(tmp_path / "python", ECHO_WORKER)
    session = VLLMBatchSession("model", python=python)
    assert session.command()[-1] == "--session"
    with session:
        first = session.run([{"messages": [{"role": "user", "content": c}]} for c in ("a", "b")])
        second = session.run([{"messages": [{"role": "user", "content": "c"}]}])
    pids = {t.split(":")[0] for t in first + second}
    assert [t.split(":")[1] for t in first + second] == ["a", "b", "c"] and len(pids) == 1


def test_a_worker_that_dies_reports_its_log(tmp_path: Path) -> None:
    python = fake_python(tmp_path / "python", "echo 'RuntimeError: no KV cache space' >&2; exit 3")
    with VLLMBatchSession("model", python=python) as session, pytest.raises(VLLMStartError) as err:
        session.run([{"messages": [{"role": "user", "content": "hi"}]}])
    assert "no KV cache space" in str(err.value) and "\n" not in str(err.value)


def test_vllm_batch_without_the_vllm_venv_says_how_to_install(tmp_path: Path) -> None:
    settings = load_settings({"llm": {"vllm_python": tmp_path / "missing"}})
    with pytest.raises(UserFacingError, match="vLLM is not installed"), open_vllm_batch(settings, 4):
        pass


# -- real vLLM (its own venv): agents batched through one in-process engine ---------------------------
@pytest.mark.vllm
@pytest.mark.slow
def test_eval_run_through_in_process_vllm(tmp_path: Path) -> None:
    try:
        vllm_python(load_settings().llm.vllm_python)
    except UserFacingError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI must run scripts/install-vllm.sh first)")
        pytest.skip(str(exc))
    settings = load_settings(
        {
            "index": {"dir": tmp_path / "index"},
            "agent": {"sandbox": False, "max_steps": 2, "part_max_tokens": 96},
            "llm": {"max_model_len": 2048, "model": "qwen2.5-coder-0.5b"},  # the small one on CPU vLLM
        }
    )
    engines: list[Batcher] = []

    @contextmanager
    def factory(s: Settings, llm_backend: str, width: int) -> Any:
        with open_vllm_batch(s, width) as backend:
            engines.append(backend.batcher)
            yield backend

    data = write_items(tmp_path / "qa.jsonl", QA_ITEMS[:2])
    run = evaluate(
        settings,
        QAOptions(data=data, out=tmp_path / "run", llm_backend="vllm-batch", concurrency=2),
        index=EvalIndex(),  # type: ignore[arg-type]
        backend_factory=factory,
        checker_factory=lambda s, b: OverlapChecker(),
    )
    assert run.summary["n"] == 2 and run.answered == 2
    rows = {
        r["id"]: r for r in map(json.loads, (tmp_path / "run" / "results.jsonl").read_text().splitlines())
    }
    for r in rows.values():  # every model step came back as schema-valid JSON through the engine
        steps = [
            json.loads(line)
            for line in (tmp_path / "run" / "traces" / f"{r['id']}.jsonl").read_text().splitlines()
        ]
        answers = [s for s in steps if s["type"] == "step" and s["action"] == "answer"]
        assert answers and all(s["error"] is None for s in answers)
    alpaca = rows["q2"]
    assert alpaca["metrics"]["keyword_hit"] is True and alpaca["metrics"]["citations_resolve"] is True
    # Both agents' calls went through the one engine, at least once together.
    assert max(engines[0].sizes) == 2, engines[0].sizes
    assert set(ANSWERS) >= {r["question"] for r in rows.values()}
