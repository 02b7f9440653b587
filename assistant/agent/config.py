"""Settings of the agent: a plain pydantic model, nested in `Settings` as `agent`."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AgentSettings(BaseModel):
    """Knobs of the ReAct loop; defaults are sized for a 0.5B model on a CPU with an 8k context."""

    sandbox: bool = Field(True, description="offer the `python` tool (runs in the sandbox)")
    max_steps: int = Field(6, ge=1, description="model steps before the answer is forced")
    retries: int = Field(2, ge=0, description="re-asks after an invalid step, with the parse error fed back")
    search_k: int = Field(5, ge=1, description="passages per search")
    context_tokens: int = Field(
        4096, ge=512, description="prompt budget; older observations are shortened first"
    )
    step_max_tokens: int = Field(256, ge=16, description="generation cap of one ReAct step")
    answer_max_tokens: int = Field(400, ge=16, description="generation cap of the final answer")
    answer_sentences: int = Field(
        12, ge=1, description="evidence sentences closest to the question shown for the final answer"
    )
    abstain_unsupported: bool = Field(
        True,
        description="abstain unless the grounding checker finds an answer sentence supported (not merely "
        "weakly) by its citations",
    )
    observation_chars: int = Field(1500, ge=100, description="stdout/stderr kept in a python observation")
