"""Several replicas behind one `llm.url`: requests spread by load, a dead replica is skipped.

Logic against scripted servers (httpx.MockTransport), then two real llama.cpp servers of the packaged model.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from assistant.llm.client import ChatClient, LLMUnavailable
from assistant.llm.replicas import ReplicaPool, split_urls

A, B = "http://a.test:8000/v1", "http://b.test:8000/v1"
HI = [{"role": "user", "content": "hi"}]


def _completion(content: str) -> dict:
    return {"choices": [{"message": {"content": content}, "finish_reason": "stop"}], "usage": {}}


def test_split_urls_accepts_one_or_several() -> None:
    assert split_urls("http://a:1/v1") == ["http://a:1/v1"]
    assert split_urls(" http://a:1 ,http://b:2/v1,") == ["http://a:1", "http://b:2/v1"]
    with pytest.raises(ValueError, match="no LLM URL"):
        split_urls(" , ")


def test_pool_prefers_the_least_busy_replica_and_rotates_ties() -> None:
    pool = ReplicaPool([A, B])
    with pool.lease() as first, pool.lease() as second:
        assert {first, second} == {A, B}  # the busy one is avoided
    picks = []
    for _ in range(4):
        with pool.lease() as url:
            picks.append(url)
    assert picks.count(A) == picks.count(B) == 2


def test_requests_spread_over_replicas_and_skip_a_dead_one() -> None:
    hosts: list[str] = []
    gate = threading.Barrier(2, timeout=5)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "dead.test":
            raise httpx.ConnectError("refused", request=request)
        hosts.append(request.url.host)
        gate.wait()  # both requests in flight at once: each must have gone to its own replica
        return httpx.Response(200, json=_completion(request.url.host))

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = ChatClient(f"{A},http://dead.test:1/v1,{B}", "m", http=http)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: client.chat(HI), range(2)))
    assert sorted(r.text for r in results) == ["a.test", "b.test"]
    assert sorted(r.replica for r in results) == [A, B]
    assert client.pool.served["http://dead.test:1/v1"] == 0


def test_all_replicas_down_names_them_all() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = ChatClient(f"{A},{B}", "m", http=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(LLMUnavailable, match=r"a\.test.*b\.test"):
        client.chat(HI)
    with pytest.raises(LLMUnavailable):
        list(client.stream(HI))


@pytest.mark.slow
@pytest.mark.integration
def test_two_real_llamacpp_replicas_share_concurrent_requests() -> None:
    pytest.importorskip("xllamacpp")
    from assistant.llm.llamacpp import LlamaCppServer
    from assistant.llm.models import DEFAULT_MODEL, PACKAGED, resolve_model
    from assistant.settings import load_settings

    if importlib.util.find_spec(PACKAGED[DEFAULT_MODEL].parts[0][0]) is None:
        pytest.skip(f"packaged model not installed: {PACKAGED[DEFAULT_MODEL].install}")
    model = resolve_model(DEFAULT_MODEL, load_settings().cache_dir)
    with (
        LlamaCppServer(model, n_ctx=1024, threads=1) as one,
        LlamaCppServer(model, n_ctx=1024, threads=1) as two,
    ):
        client = ChatClient(f"{one.base_url},{two.base_url}", timeout=120)
        question = [{"role": "user", "content": "Say OK."}]
        assert client.model == DEFAULT_MODEL
        t0 = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: client.chat(question, max_tokens=4), range(4)))
        assert all(r.text.strip() for r in results), time.perf_counter() - t0
        assert {r.replica for r in results} == {one.base_url, two.base_url}
        assert Counter(r.replica for r in results) == {one.base_url: 2, two.base_url: 2}
        one.stop()
        after = client.chat(question, max_tokens=4)  # the stopped replica is skipped, not fatal
        assert after.replica == two.base_url and after.text.strip()
