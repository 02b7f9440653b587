"""Several OpenAI-compatible replicas behind one client: each request goes to the least busy live one.

`llm.url` may list replicas separated by commas (e.g. one vLLM server per GPU, or per node), so `ra eval qa
--concurrency N`, the UI's sessions and the agent spread over all of them without a load balancer. A replica
that refuses connections is skipped for `cooldown_s` and the request moves on to the next one.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator


def split_urls(spec: str) -> list[str]:
    """'http://a:8000/v1, http://b:8000/v1' -> both; a single URL -> a list of one."""
    urls = [u.strip() for u in spec.replace("\n", ",").split(",") if u.strip()]
    if not urls:
        raise ValueError("no LLM URL given: pass one (or several, comma-separated)")
    return urls


class ReplicaPool:
    """Thread-safe choice of a replica: fewest requests in flight, ties in turn; dead ones cool down."""

    def __init__(self, urls: list[str], cooldown_s: float = 10.0) -> None:
        self.urls = list(dict.fromkeys(urls))
        self.cooldown_s = cooldown_s
        self._in_flight = dict.fromkeys(self.urls, 0)
        self._down_until = dict.fromkeys(self.urls, 0.0)
        self.served = dict.fromkeys(self.urls, 0)
        self._turn = itertools.count()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def lease(self, exclude: set[str] | frozenset[str] = frozenset()) -> Iterator[str]:
        """Pick a replica not in `exclude` and count a request in flight on it while the block runs.

        Live replicas come first, fewest in flight first, ties in turn; a cooling one is used only when no
        live one is left (it may have come back)."""
        now = time.monotonic()
        with self._lock:
            candidates = [u for u in self.urls if u not in exclude]
            if not candidates:
                raise LookupError("every replica was tried")
            shift = next(self._turn) % len(candidates)
            rotated = candidates[shift:] + candidates[:shift]
            url = min(rotated, key=lambda u: (self._down_until[u] > now, self._in_flight[u]))
            self._in_flight[url] += 1
        try:
            yield url
        finally:
            with self._lock:
                self._in_flight[url] -= 1

    def mark_down(self, url: str) -> None:
        with self._lock:
            self._down_until[url] = time.monotonic() + self.cooldown_s

    def mark_served(self, url: str) -> None:
        with self._lock:
            self._down_until[url] = 0.0
            self.served[url] += 1
