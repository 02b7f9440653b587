"""`ra mcp`: the index served over MCP, driven by the official SDK's own client.

Over stdio (`python -m assistant mcp` spawned by the SDK's stdio client, and the command the README's
Claude Desktop snippet names), over streamable HTTP (`ra mcp --http`), and in process for ingest. The
index is built here: a few Markdown notes and one real PDF from ../shared. Only `ask` loads the model (one
slow test); everything else checks the tools, resources, errors and hostile input without it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from readme_snippets import snippet

from assistant.index_access import index_config, open_index
from assistant.mcp_server.library import document_id
from assistant.mcp_server.server import build_server
from assistant.settings import load_settings
from index.ingest import ingest_paths

REPO = Path(__file__).resolve().parents[1]
PDF = "paperqa_pasa.pdf"
NOTES = {
    "glide.md": "GLIDE compares two guidance strategies. Human evaluators preferred classifier-free "
    "guidance for photorealism and caption similarity. CLIP guidance was preferred less often.",
    "alpaca.md": "Alpaca is a small model. Stanford's Alpaca 7B was fine-tuned on 52K "
    "instruction-following demonstrations. It cost little to train.",
    # BM25 gives a term found in half of the documents no weight: unrelated notes keep that from happening
    "sparrows.md": "Some notes: sparrows nest in spring.",
    "rivers.md": "Some notes: rivers carry silt.",
}
Session = Callable[[Client], Awaitable[None]]


@pytest.fixture(scope="module")
def corpus(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mcp-corpus")
    for name, text in NOTES.items():
        (root / name).write_text(f"# {Path(name).stem.title()}\n\n{text}\n", encoding="utf-8")
    shutil.copy(shared / "pdfs" / PDF, root / PDF)
    return root


@pytest.fixture(scope="module")
def mcp_index(corpus: Path) -> Path:
    index_dir = corpus.parent / "mcp-index"
    ingest_paths([corpus], index_dir, index_config(load_settings({"index": {"dir": index_dir}})))
    return index_dir


def stdio(index: Path, *args: str, verbose: bool = False) -> StdioServerParameters:
    """`python -m assistant mcp --index DIR` as the SDK's stdio client starts it (the tests' environment:
    their isolated settings and model cache, and this checkout on PYTHONPATH)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    argv = ["-m", "assistant", *(["--verbose"] if verbose else []), "mcp", "--index", str(index), *args]
    return StdioServerParameters(command=sys.executable, args=argv, env=env, cwd=str(REPO))


def run_session(server: Any, session: Session) -> None:
    async def main() -> None:
        async with Client(server, read_timeout_seconds=300) as client:
            await session(client)

    anyio.run(main)


def text_of(result: Any) -> str:
    return result.content[0].text


def assert_refused(result: Any, message: str) -> None:
    """A clean MCP tool error whose text is the one-line message (no traceback, no SDK prefix)."""
    assert result.is_error, result
    text = text_of(result)
    assert re.search(message, text), text
    assert "\n" not in text and "Traceback" not in text


# -- stdio: every read-only tool and the resources, and what hostile input gets --------------------------
def test_stdio_tools_resources_and_hostile_input(mcp_index: Path, corpus: Path) -> None:
    index = open_index(load_settings({"index": {"dir": mcp_index}}))
    pdf_source = str((corpus / PDF).resolve())
    glide = str((corpus / "glide.md").resolve())

    async def session(client: Client) -> None:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"search", "read", "list_documents", "ask", "ingest"}
        assert all(t.output_schema and t.output_schema["type"] == "object" for t in tools.values())
        assert "boxes" in json.dumps(tools["search"].output_schema)
        assert "citations" in json.dumps(tools["ask"].output_schema)

        # search: the CLI's JSON per hit, plus the document id; the text is the document's own span
        found = await client.call_tool(
            "search", {"query": "classifier-free guidance human evaluators", "k": 3}
        )
        assert not found.is_error
        hits = found.structured_content["hits"]
        assert 1 <= len(hits) <= 3 and hits[0]["source"] == glide
        for h in hits:
            assert index.document_text(h["source"])[h["start"] : h["end"]] == h["text"]
            assert h["document_id"] == document_id(h["source"])
            assert {
                "chunk_id",
                "score",
                "page",
                "line_start",
                "line_end",
                "section",
                "boxes",
                "document",
            } <= set(h)
        assert "GLIDE" in text_of(found) and hits[0]["chunk_id"] in text_of(found)

        # a PDF hit carries its page and the boxes of the passage on that page
        pdf = await client.call_tool("search", {"query": "PaSa paper search agent", "k": 5, "mode": "bm25"})
        pdf_hits = [h for h in pdf.structured_content["hits"] if h["source"] == pdf_source]
        assert pdf_hits and pdf_hits[0]["page"] >= 1
        assert pdf_hits[0]["boxes"] and all(b[0] == pdf_hits[0]["page"] for b in pdf_hits[0]["boxes"][:1])
        assert pdf.structured_content["mode"] == "bm25"

        # read around a passage, and a span of a document: exact text, bounded
        chunk = await client.call_tool("read", {"chunk_id": pdf_hits[0]["chunk_id"], "context": 1})
        r = chunk.structured_content
        text = index.document_text(pdf_source)
        assert not chunk.is_error and r["text"] == text[r["start"] : r["end"]]
        assert r["start"] <= pdf_hits[0]["start"] and pdf_hits[0]["end"] <= r["end"]
        assert pdf_hits[0]["chunk_id"] in r["chunk_ids"] and len(r["chunk_ids"]) >= 2
        doc_id = document_id(pdf_source)
        span = await client.call_tool("read", {"document_id": doc_id, "start": 100, "end": 300})
        assert span.structured_content["text"] == text[100:300] and span.structured_content["page"] == 1
        whole = await client.call_tool("read", {"document_id": doc_id, "start": 0, "end": len(text)})
        assert whole.structured_content["truncated"] and len(whole.structured_content["text"]) == 8000
        assert whole.structured_content["end"] == 8000 and whole.structured_content["length"] == len(text)

        # the documents, as a tool and as resources
        docs = (await client.call_tool("list_documents", {})).structured_content["documents"]
        assert {d["source"] for d in docs} == {str((corpus / n).resolve()) for n in [*NOTES, PDF]}
        paper = next(d for d in docs if d["source"] == pdf_source)
        assert paper["id"] == doc_id and paper["kind"] == "pdf" and paper["pages"] == 15
        assert paper["uri"] == f"ra://documents/{doc_id}" and paper["document"]["title"]
        listed = {r.uri for r in (await client.list_resources()).resources}
        assert {f"ra://documents/{d['id']}" for d in docs} | {
            f"ra://documents/{d['id']}/text" for d in docs
        } <= listed
        meta = json.loads((await client.read_resource(f"ra://documents/{doc_id}")).contents[0].text)
        assert meta == paper
        body = (await client.read_resource(f"ra://documents/{doc_id}/text")).contents[0].text
        assert body == text

        # hostile or wrong input: one-line tool errors; nothing read outside the index
        refusals: list[tuple[str, dict[str, Any], str]] = [
            ("read", {"chunk_id": "../../etc/passwd"}, r"^no passage with chunk id '\.\./\.\./etc/passwd'"),
            ("read", {"document_id": "../../etc/passwd"}, r"^no document with id '\.\./\.\./etc/passwd'"),
            ("read", {"document_id": "/etc/passwd", "start": 0, "end": 10}, r"^no document with id"),
            ("read", {"chunk_id": "x" * 10_000_000}, r"^no passage with chunk id 'x{60}…': use a chunk_id"),
            ("read", {"document_id": doc_id, "start": -5, "end": 10}, r"0 <= start < end <= \d+"),
            ("read", {"document_id": doc_id, "start": 0, "end": 10**12}, r"0 <= start < end <= \d+"),
            ("read", {"document_id": doc_id, "start": 50, "end": 50}, r"0 <= start < end"),
            ("read", {"chunk_id": hits[0]["chunk_id"], "context": 10**9}, r"context must be between 0 and 3"),
            ("read", {}, r"pass either chunk_id .* or document_id"),
            ("search", {"query": "guidance", "k": 10**9}, r"^k must be between 1 and 50"),
            ("search", {"query": "guidance", "k": 0}, r"^k must be between 1 and 50"),
            ("search", {"query": "x" * 10_000_000}, r"^the query has 10,000,000 characters"),
            ("search", {"query": "   "}, r"^empty query"),
            ("search", {"query": "guidance", "mode": "fuzzy"}, r"^unknown mode 'fuzzy'"),
            (
                "search",
                {"query": "guidance", "k": "abc"},
                r"^k must be a valid integer.* \(got 'abc'\): see the search",
            ),
            ("search", {"k": 3}, r"^query is required: see the search tool's input schema$"),
            ("read", {"chunk_id": ["a", "b"]}, r"^chunk_id must be .*\(got \['a', 'b'\]\)"),
            ("ask", {"question": "q" * 10_000_000}, r"^the question has 10,000,000 characters"),
            ("ask", {"question": " "}, r"^empty question"),
            (
                "ingest",
                {"path": "../../etc/passwd"},
                r"^ingest is turned off for MCP clients: set mcp.allow_ingest",
            ),
        ]
        for tool, arguments, message in refusals:
            assert_refused(await client.call_tool(tool, arguments), message)
        for uri in ["ra://documents/0123456789abcdef", "ra://documents/..%2F..%2Fetc%2Fpasswd"]:
            with pytest.raises(MCPError):
                await client.read_resource(uri)
        # and the server still answers
        again = await client.call_tool(
            "search", {"query": "Alpaca 52K demonstrations", "k": 1, "mode": "bm25"}
        )
        assert again.structured_content["hits"][0]["source"].endswith("alpaca.md")

    before = sorted(p.name for p in mcp_index.iterdir())
    run_session(stdio(mcp_index), session)
    assert sorted(p.name for p in mcp_index.iterdir()) == before  # nothing was ingested


def test_stdout_carries_nothing_but_the_protocol(mcp_index: Path) -> None:
    """Raw JSON-RPC over the pipes with third-party output let through (`ra --verbose`): the embedding model
    loads during the search, and every line on stdout is still a JSON-RPC message."""
    params = stdio(mcp_index, verbose=True)
    proc = subprocess.Popen(
        [params.command, *params.args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=params.env,
        cwd=params.cwd,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    lines: list[str] = []

    def send(message: dict[str, Any]) -> None:
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    def reply(request_id: int) -> dict[str, Any]:
        while line := proc.stdout.readline():  # type: ignore[union-attr]
            lines.append(line)
            message = json.loads(line)
            if message.get("id") == request_id:
                return message
        raise AssertionError(f"the server closed stdout; stderr: {proc.stderr.read()}")  # type: ignore[union-attr]

    try:
        send(
            {
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"},
                },
            }
        )
        assert reply(1)["result"]["serverInfo"]["name"] == "research-assistant"
        send({"method": "notifications/initialized"})
        call = {"name": "search", "arguments": {"query": "classifier-free guidance", "mode": "hybrid"}}
        send({"id": 2, "method": "tools/call", "params": call})
        assert reply(2)["result"]["structuredContent"]["hits"]
        send({"id": 3, "method": "tools/call", "params": {"name": "read", "arguments": {"chunk_id": "nope"}}})
        assert reply(3)["result"]["isError"] is True
        rest, _ = proc.communicate(timeout=60)  # closes stdin: the end of the session
    finally:
        if proc.poll() is None:
            proc.kill()
    lines += rest.splitlines()
    assert proc.returncode == 0
    assert all(json.loads(line)["jsonrpc"] == "2.0" for line in lines if line.strip())


# -- streamable HTTP -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streamable_http(mcp_index: Path) -> None:
    port = free_port()
    params = stdio(mcp_index, "--http", "--port", str(port))
    proc = subprocess.Popen(
        [params.command, *params.args],
        env=params.env,
        cwd=params.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "ra mcp --http did not listen within 120 s"
                time.sleep(0.5)

        async def session(client: Client) -> None:
            found = await client.call_tool(
                "search", {"query": "Alpaca 52K demonstrations", "k": 2, "mode": "bm25"}
            )
            assert found.structured_content["hits"][0]["source"].endswith("alpaca.md")
            assert_refused(await client.call_tool("read", {"chunk_id": "../../etc/passwd"}), r"^no passage")
            docs = await client.call_tool("list_documents", {})
            assert len(docs.structured_content["documents"]) == len(NOTES) + 1

        run_session(url, session)

        # a 10 MB argument is over the transport's request limit: an error for that call, not the server
        async def huge(client: Client) -> None:
            await client.call_tool("search", {"query": "x" * 10_000_000})

        with pytest.raises(Exception) as refused:  # the SDK wraps it in an exception group
            run_session(url, huge)
        assert "MCPError" in repr(refused.value) or isinstance(refused.value, MCPError)
        run_session(url, session)

        # a second server on the same port: the CLI's one-line error, exit 1
        second = subprocess.run(
            [params.command, *params.args],
            env=params.env,
            cwd=params.cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1
        assert f"port {port} on 127.0.0.1 is in use: pick another with --port" in second.stderr
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: uvicorn shuts down, then our one-line "interrupted"
        _, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 130) and "Traceback" not in err, err
    assert f"MCP server on {url}" in err


# -- ingest: off by default; when on, only under the allowed folders ------------------------------------
def test_ingest_is_off_unless_allowed_then_reads_only_its_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = tmp_path / "papers"
    allowed.mkdir()
    (allowed / "glide.md").write_text("# GLIDE\n\n" + NOTES["glide.md"] + "\n", encoding="utf-8")
    (allowed / "rivers.md").write_text("# Rivers\n\n" + NOTES["rivers.md"] + "\n", encoding="utf-8")
    secret = tmp_path / "private" / "secret.md"
    secret.parent.mkdir()
    secret.write_text("# Secret\n\nthe vault code is zebra-42\n", encoding="utf-8")
    (allowed / "leak").symlink_to(secret.parent, target_is_directory=True)  # a link out of the folder
    index_dir = tmp_path / "index"

    def server(**mcp: Any) -> Any:
        return build_server(load_settings({"index": {"dir": index_dir}, "mcp": mcp}))

    async def refused(client: Client) -> None:
        for path in [str(allowed), "../../etc/passwd"]:
            assert_refused(await client.call_tool("ingest", {"path": path}), r"^ingest is turned off for MCP")
        # no index yet: the CLI's message, which says how to build one
        assert_refused(
            await client.call_tool("search", {"query": "guidance"}),
            r"^no index at .*: build one with `ra ingest",
        )
        assert (await client.list_resources()).resources == []

    run_session(server(), refused)
    assert not index_dir.exists()

    # the variables turn it on (settings precedence: env over ra.toml); the roots must name a folder too
    monkeypatch.setenv("RA_MCP__ALLOW_INGEST", "true")

    async def no_roots(client: Client) -> None:
        assert_refused(
            await client.call_tool("ingest", {"path": str(allowed)}), r"^ingest has no folders it may read"
        )

    run_session(server(), no_roots)
    monkeypatch.setenv("RA_MCP__INGEST_ROOTS", json.dumps([str(allowed)]))
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async def allowed_only(client: Client) -> None:
        for path, message in [
            ("../../etc/passwd", r"^'\.\./\.\./etc/passwd' is outside the folders ingest may read"),
            ("/etc/passwd", r"is outside the folders ingest may read"),
            (str(secret), r"is outside the folders ingest may read"),
            (str(allowed / "leak" / "secret.md"), r"is outside the folders ingest may read"),
            ("x" * 10_000_000, r"^path must be a file or folder name"),
            ("missing.md", r"^no such file or folder: 'missing.md'"),
        ]:
            assert_refused(await client.call_tool("ingest", {"path": path}), message)
        assert not index_dir.exists()

        done = await client.call_tool("ingest", {"path": str(allowed)}, progress_callback=on_progress)
        report = done.structured_content
        assert not done.is_error and report["committed"] and report["files_added"] == 2
        assert {
            "path": str(allowed / "leak" / "secret.md"),
            "reason": "a link to outside mcp.ingest_roots",
        } in report["skipped"]
        docs = (await client.call_tool("list_documents", {})).structured_content["documents"]
        assert sorted(Path(d["source"]).name for d in docs) == ["glide.md", "rivers.md"]
        hits = (
            await client.call_tool("search", {"query": "vault code zebra", "mode": "bm25"})
        ).structured_content
        assert all("zebra" not in h["text"] for h in hits["hits"])
        # a relative path is under the first allowed folder; unchanged files are skipped by their hash
        again = await client.call_tool("ingest", {"path": "glide.md"})
        assert again.structured_content["files_unchanged"] == 1 and not again.structured_content["committed"]

    run_session(server(), allowed_only)
    assert progress[0] == "reading: 2 to do" and "embedding: 2 to do" in progress, progress


def test_allow_ingest_flag_turns_ingest_on_for_its_folder_only(mcp_index: Path, tmp_path: Path) -> None:
    allowed = tmp_path / "papers"
    allowed.mkdir()
    (allowed / "note.txt").write_text("a note on diffusion guidance\n", encoding="utf-8")
    index_dir = tmp_path / "index"

    async def session(client: Client) -> None:
        outside = await client.call_tool("ingest", {"path": str(mcp_index.parent)})
        assert_refused(outside, r"is outside the folders ingest may read \(" + re.escape(str(allowed)))
        done = await client.call_tool("ingest", {"path": str(allowed)})
        assert done.structured_content["files_added"] == 1, text_of(done)

    run_session(stdio(index_dir, "--allow-ingest", str(allowed)), session)
    docs = open_index(load_settings({"index": {"dir": index_dir}})).documents
    assert list(docs) == [str((allowed / "note.txt").resolve())]


# -- the README's Claude Desktop snippet ---------------------------------------------------------------
def test_readme_claude_desktop_config_runs(mcp_index: Path) -> None:
    [(name, server)] = json.loads(snippet("mcp-config"))["mcpServers"].items()
    assert name == "research-assistant" and server["command"] == "ra"
    assert server["args"] == ["mcp", "--index", "/path/to/index"]
    # the command as a client would start it: `ra` of this environment, the user's path filled in
    ra = Path(sys.executable).with_name("ra")
    command = str(ra) if ra.exists() else shutil.which(server["command"])
    assert command, "the `ra` console script is not installed"
    args = [str(mcp_index) if a == "/path/to/index" else a for a in server["args"]]
    params = StdioServerParameters(command=command, args=args, env=stdio(mcp_index).env, cwd=str(REPO))

    async def session(client: Client) -> None:
        assert client.server_info is None or client.server_info.name == "research-assistant"
        found = await client.call_tool("search", {"query": "GLIDE guidance", "k": 1, "mode": "bm25"})
        assert found.structured_content["hits"][0]["source"].endswith("glide.md")

    run_session(params, session)


# -- ask, with the real embedded model ------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.integration
def test_ask_gives_a_cited_answer_with_progress(mcp_index: Path) -> None:
    pytest.importorskip("xllamacpp")
    index = open_index(load_settings({"index": {"dir": mcp_index}}))
    progress: list[tuple[float, str]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, message or ""))

    async def session(client: Client) -> None:
        result = await client.call_tool(
            "ask",
            {"question": "Which guidance did GLIDE's human evaluators prefer?"},
            progress_callback=on_progress,
        )
        assert not result.is_error, text_of(result)
        answer = result.structured_content
        assert not answer["abstained"] and "classifier-free" in answer["answer"].lower()
        assert answer["citations"] and answer["sentences"]
        ids = {c["id"] for c in answer["citations"]}
        assert any(set(s["citations"]) & ids for s in answer["sentences"])
        assert all(s["verdict"] in ("supported", "weak", "unsupported", None) for s in answer["sentences"])
        for c in answer["citations"]:
            assert c["source"].endswith("glide.md") and c["document_id"] == document_id(c["source"])
            assert index.document_text(c["source"])[c["start"] : c["end"]] == c["quote"]
            assert c["document"]["title"] and c["boxes"] == []  # a Markdown file has no page to box
        assert "Sources:" in text_of(result) and answer["citations"][0]["quote"] in text_of(result)

    run_session(stdio(mcp_index), session)
    messages = [m for _, m in progress]
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)  # progress only goes up
    assert "searching the documents" in messages or any(m.startswith("found") for m in messages), messages
    assert "writing an answer" in messages and messages[-1] == "answered", messages
