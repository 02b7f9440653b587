"""`python -m assistant.llm.llamacpp_serve`: run xllamacpp's embedded llama.cpp HTTP server in this process.

xllamacpp has no CLI: `xllamacpp.Server(params)` loads the model, serves the OpenAI-compatible API on
`params.hostnames`/`params.port` from native threads, and stops when the object is destroyed. This module
wraps that in a tiny process so the caller (see `llamacpp.LlamaCppServer`) survives a native crash and a
foreground `ra serve` can share one model between the CLI and the UI.

Start-up protocol: once the model is loaded and the socket listens, one JSON line `{"url": ...}` goes to the
original stdout, which is then closed; native logs go to stderr. With `--exit-with-parent` the server also
stops when stdin reaches EOF, i.e. when the parent died without stopping it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

DEFAULT_CTX = 8192


def cpu_threads() -> int:
    """Cores this process may use (affinity-aware where the OS tells us)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


SPECULATIVE = ("none", "draft", "ngram")


def build_params(
    *,
    gguf: str | None,
    hf_repo: str | None,
    name: str,
    host: str,
    port: int,
    n_ctx: int,
    threads: int,
    slots: int = 1,
    speculative: str = "none",
    draft_gguf: str | None = None,
):  # -> xllamacpp.CommonParams (untyped extension class)
    """llama.cpp's parameters. `n_ctx` is per slot: llama.cpp splits its context between the slots.
    Speculative decoding verifies every proposed token with the main model, so greedy output is the
    same with it as without (tests/test_llm_speculative.py checks that)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    if gguf:
        params.model.path = gguf
    else:
        params.model.hf_repo = hf_repo  # llama.cpp downloads the repo's GGUF itself
    params.model_alias = {name}
    params.hostnames = [host]
    params.port = port
    params.n_ctx = n_ctx * slots
    params.n_parallel = slots
    params.cont_batching = True  # the slots' tokens go through the model together
    params.cache_prompt = True  # reuse the KV cache of a shared prompt prefix (ReAct turns grow by appending)
    kind = xllamacpp.common_speculative_type
    if speculative == "draft":
        if not draft_gguf:
            raise ValueError("speculative decoding with a draft model needs --draft-gguf")
        params.speculative.draft.mparams.path = draft_gguf
        params.speculative.draft.cpuparams.n_threads = threads
        params.speculative.draft.cpuparams_batch.n_threads = threads
        params.speculative.types = [kind.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
    elif speculative == "ngram":
        params.speculative.types = [kind.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
    params.ui = False
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    return params


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--gguf", help="path of the GGUF file to serve")
    src.add_argument("--hf-repo", help="Hugging Face repo with a GGUF (needs network)")
    ap.add_argument("--name", required=True, help="model name the API reports and accepts")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--ctx", type=int, default=DEFAULT_CTX)
    ap.add_argument("--threads", type=int, default=cpu_threads())
    ap.add_argument("--slots", type=int, default=1, help="questions served at once")
    ap.add_argument("--speculative", choices=SPECULATIVE, default="none")
    ap.add_argument("--draft-gguf", help="draft model of --speculative draft")
    ap.add_argument("--exit-with-parent", action="store_true", help="stop when stdin closes")
    args = ap.parse_args(argv)

    # Keep a private copy of stdout for the start-up line; everything native writes goes to stderr so a
    # parent that stops reading our stdout can never block us on a full pipe.
    announce = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.exit_with_parent:
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()

    import xllamacpp

    params = build_params(
        gguf=args.gguf,
        hf_repo=args.hf_repo,
        name=args.name,
        host=args.host,
        port=args.port,
        n_ctx=args.ctx,
        threads=args.threads,
        slots=args.slots,
        speculative=args.speculative,
        draft_gguf=args.draft_gguf,
    )
    server = xllamacpp.Server(params)
    announce.write(json.dumps({"url": server.listening_address, "pid": os.getpid()}) + "\n")
    announce.close()
    stop.wait()
    # Exit at once, not `del server`: its destructor joins llama.cpp's loop, which first finishes the reply
    # being generated (minutes), so a stop during a request waited for it. The OS frees the model.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
