"""One settings object for the whole product.

Precedence, lowest to highest: defaults < `ra.toml` (or the file named by RA_CONFIG) < `RA_*` environment
variables (nested with `__`, e.g. `RA_RETRIEVAL__MODE=bm25`) < CLI flags (passed as init arguments).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from assistant.agent.config import AgentSettings
from assistant.llm.models import DEFAULT_MODEL
from assistant.sandbox.models import SandboxLimits
from index.config import (
    DEFAULT_LOCK_WAIT_S,
    DEFAULT_MAX_FILE_MB,
    DEFAULT_PARSE_MEMORY_MB,
    DEFAULT_PARSE_TIMEOUT_S,
    BackendName,
    ChunkingConfig,
    EmbeddingConfig,
    MilvusConfig,
    RetrievalConfig,
)
from index.errors import UserFacingError

DEFAULT_INDEX_DIR = Path(".ra/index")
DEFAULT_MAX_MODEL_LEN = 4096  # vLLM's context length (`ra serve`, the in-process batch engine)


def default_cache_dir() -> Path:
    """Where derived artifacts (ONNX exports, assembled model files) live; shared by all indexes."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "research-assistant"


class IndexSettings(BaseModel):
    dir: Path = Field(DEFAULT_INDEX_DIR, description="index directory (created by `ra ingest`)")
    chunking: ChunkingConfig = ChunkingConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    max_file_mb: float = Field(
        DEFAULT_MAX_FILE_MB, gt=0, description="larger files are skipped with a reason by `ra ingest`"
    )
    lock_wait_s: float = Field(
        DEFAULT_LOCK_WAIT_S, ge=0, description="how long an ingest waits for another one writing the index"
    )
    parse_timeout_s: float = Field(
        DEFAULT_PARSE_TIMEOUT_S,
        gt=0,
        description="longest time to parse one PDF or HTML file; a slower one is skipped with the reason",
    )
    parse_memory_mb: int = Field(
        DEFAULT_PARSE_MEMORY_MB,
        ge=256,
        description="most memory the parser may use for one PDF or HTML file; past it the file is skipped",
    )
    backend: BackendName = Field(
        "local", description="local: FAISS + BM25 + SQLite in `dir`; milvus: a milvus-lite file or server"
    )
    milvus: MilvusConfig = MilvusConfig()


class VLLMParallel(BaseModel):
    """How `ra serve` spreads one model over GPUs (vLLM's own options; 1 everywhere is one GPU or the CPU).

    tensor x pipeline GPUs hold one copy of the model; data parallel runs that many copies behind one
    server. Past one machine, pipeline (and tensor) parallel run on a Ray cluster: see README, Deployment."""

    tensor: int = Field(1, ge=1, description="--tensor-parallel-size: GPUs that split every layer")
    pipeline: int = Field(
        1, ge=1, description="--pipeline-parallel-size: groups of layers, e.g. one per node"
    )
    data: int = Field(1, ge=1, description="--data-parallel-size: full copies of the model behind one server")
    executor: Literal["auto", "mp", "ray"] = Field(
        "auto", description="--distributed-executor-backend: ray to span nodes, mp for one machine"
    )

    def flags(self) -> list[str]:
        """vLLM's arguments for these settings (none for the defaults, so CPU servers start as before)."""
        out: list[str] = []
        for flag, value in (
            ("--tensor-parallel-size", self.tensor),
            ("--pipeline-parallel-size", self.pipeline),
            ("--data-parallel-size", self.data),
        ):
            if value > 1:
                out += [flag, str(value)]
        return out + (["--distributed-executor-backend", self.executor] if self.executor != "auto" else [])


class LLMSettings(BaseModel):
    """Which model answers. With `url` set, any OpenAI-compatible server is used (vLLM, llama.cpp, Ollama);
    otherwise the embedded llama.cpp server is started with `model` (a packaged name, a path or a hub id)."""

    model: str = Field(DEFAULT_MODEL, description="packaged name, local path, or Hugging Face id")
    url: str | None = Field(
        None,
        description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1; several replicas of one model "
        "comma-separated (requests go to the least busy one)",
    )
    api_key: str | None = None
    allow_download: bool = Field(False, description="allow fetching a Hugging Face model when online")
    context_size: int = Field(8192, ge=512, description="context window of the embedded server (per slot)")
    slots: int = Field(
        1,
        ge=1,
        le=16,
        description="questions the embedded server works on at once (llama.cpp parallel slots, batched "
        "together); each slot gets context_size tokens",
    )
    speculative: Literal["none", "draft", "ngram"] = Field(
        "none",
        description="speculative decoding of the embedded server: draft (draft_model proposes tokens), "
        "ngram (spans of the prompt are proposed: answers copy the evidence), none; outputs are identical",
    )
    draft_model: str = Field("qwen2.5-coder-0.5b", description="the draft model of speculative = draft")
    temperature: float = 0.0
    timeout_s: float = Field(300.0, gt=0, description="longest wait for one whole answer")
    first_token_timeout_s: float = Field(
        90.0,
        gt=0,
        description="longest wait for a server's first byte (the model list, a stream's first token): "
        "covers prompt processing of a full context on a CPU, and tells a hung server from a slow answer",
    )
    vllm_python: Path | None = Field(
        None, description="python of the vLLM virtual env (default: .venv-vllm/bin/python of the project)"
    )
    serve_port: int = 8000
    serve_host: str = Field(
        "127.0.0.1", description="address `ra serve` binds; 0.0.0.0 serves other machines"
    )
    max_model_len: int = Field(DEFAULT_MAX_MODEL_LEN, ge=512, description="context length vLLM serves")
    parallel: VLLMParallel = VLLMParallel()


class GroundingSettings(BaseModel):
    """The grounding (faithfulness) checker used for support badges, abstention and `ra eval`."""

    checker: str = Field(
        "minilm",
        description="checker name: minilm (local, CPU), align (local v2, CPU), llm (judge via the LLM), none",
    )
    threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="decision threshold; None uses the checker's calibrated one"
    )
    weak_margin: float = Field(
        0.15, ge=0.0, le=1.0, description="scores this far below the threshold are weak"
    )


class UISettings(BaseModel):
    """The Streamlit app (`ra ui`)."""

    max_upload_mb: int = Field(
        50,
        ge=1,
        description="largest file the upload panel ingests (Streamlit's own cap is 4x: see ui.uploads)",
    )


class ServiceSettings(BaseModel):
    """The resident assistant (`ra service`): the model, the checker and the indexes kept warm between commands."""

    autostart: bool = Field(
        False,
        description="ra ask, chat and search start the service when none is running (else they answer in process)",
    )
    socket: Path | None = Field(
        None,
        description="Unix socket of the service (default: $XDG_RUNTIME_DIR/research-assistant/service.sock, "
        "else /tmp/ra-<uid>/service.sock)",
    )
    idle_timeout_s: float = Field(
        1800.0, gt=0, description="the service exits after this long without a request"
    )
    start_timeout_s: float = Field(300.0, gt=0, description="longest wait for a starting service to answer")


class AgentAPISettings(BaseModel):
    """`ra serve --agent`: the assistant behind the OpenAI chat API (Open WebUI, any `openai` client)."""

    api_key: str | None = Field(
        None, description="clients send it as 'Authorization: Bearer KEY'; needed to bind beyond loopback"
    )
    model_id: str = Field("research-assistant", description="the model name clients see in /v1/models")
    host: str = Field("127.0.0.1", description="address to bind; another host than loopback needs api_key")
    port: int = Field(8090, ge=1, le=65535)
    max_body_kb: int = Field(1024, ge=1, description="largest request body accepted")


class MCPSettings(BaseModel):
    """`ra mcp`: the index served to MCP clients (Claude Desktop, IDEs). A client is driven by a model that
    reads untrusted documents, so whatever could change the index or read files is off until the user turns
    it on, and every answer is bounded in size."""

    allow_ingest: bool = Field(
        False, description="offer the ingest tool (it still reads only files under ingest_roots)"
    )
    ingest_roots: list[Path] = Field(
        default_factory=list,
        description="folders the ingest tool may read from (a path outside them is refused, links included)",
    )
    port: int = Field(8765, ge=1, le=65535, description="port of `ra mcp --http` (always on 127.0.0.1)")
    max_k: int = Field(50, ge=1, description="most passages one search returns")
    max_read_chars: int = Field(
        8000, ge=200, description="most characters the read tool returns (the rest is one more read away)"
    )
    max_document_chars: int = Field(
        1_000_000, ge=1000, description="a document resource's text is cut after this many characters"
    )


class Settings(BaseSettings):
    """Everything configurable; nested sections map to `[index]`, `[retrieval]`... tables in ra.toml."""

    model_config = SettingsConfigDict(env_prefix="RA_", env_nested_delimiter="__", extra="ignore")

    index: IndexSettings = IndexSettings()
    retrieval: RetrievalConfig = RetrievalConfig()
    llm: LLMSettings = LLMSettings()
    agent: AgentSettings = AgentSettings()
    grounding: GroundingSettings = GroundingSettings()
    sandbox: SandboxLimits = Field(
        SandboxLimits(), description="limits of every sandboxed run (the agent's python tool, ra sandbox run)"
    )
    ui: UISettings = UISettings()
    service: ServiceSettings = ServiceSettings()
    agent_api: AgentAPISettings = AgentAPISettings()
    mcp: MCPSettings = MCPSettings()
    cache_dir: Path = Field(default_factory=default_cache_dir)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = config_path()
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Build settings with CLI overrides on top; `overrides` is nested ({"retrieval": {"k": 5}}), None values ignored."""
    # pydantic-settings deep-merges nested init arguments over the env and file sources.
    try:
        return Settings(**_drop_none(overrides or {}))
    except OSError as exc:  # e.g. RA_CONFIG names a file in a folder we may not enter
        raise UserFacingError(
            f"cannot read the settings file {exc.filename or config_path()} ({exc.strerror}): "
            "check RA_CONFIG and the file's permissions"
        ) from None


def config_path() -> Path:
    """The TOML file settings are read from: RA_CONFIG, else ./ra.toml."""
    return Path(os.environ.get("RA_CONFIG", "ra.toml"))


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (_drop_none(v) if isinstance(v, dict) else v) for k, v in d.items() if v is not None}
