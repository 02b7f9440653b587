"""Settings of the agent: a plain pydantic model, nested in `Settings` as `agent`."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AgentSettings(BaseModel):
    """Knobs of the plan -> evidence -> answer-per-part loop, sized for a small model on a CPU."""

    sandbox: bool = Field(True, description="run computations and requested snippets in the sandbox")
    max_steps: int = Field(12, ge=1, description="model calls per question (plan, answers, checks, research)")
    retries: int = Field(2, ge=0, description="re-asks after an invalid reply, with the parse error fed back")
    search_k: int = Field(5, ge=1, description="passages per search")
    part_sentences: int = Field(
        8, ge=1, description="evidence sentences closest to a part shown when answering it"
    )
    part_retries: int = Field(
        1, ge=0, description="research steps (new search or read) for a part whose answer is not accepted"
    )
    plan_max_tokens: int = Field(96, ge=16, description="generation cap of the planning call")
    step_max_tokens: int = Field(160, ge=16, description="generation cap of one research step")
    part_max_tokens: int = Field(160, ge=16, description="generation cap of one part's answer")
    rewrite_max_tokens: int = Field(128, ge=16, description="generation cap of a chat follow-up's rewrite")
    rewrite_history: int = Field(3, ge=1, description="earlier exchanges a follow-up's rewrite is shown")
    rewrite_candidates: int = Field(
        10, ge=1, description="names from earlier exchanges a follow-up's rewrite may pick as its subject"
    )
    rewrite_candidate_chars: int = Field(
        100, ge=8, description="longest name or document title offered as a follow-up's subject"
    )
    rewrite_keep_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="share of a follow-up's content words its rewrite must keep to be used (else the message)",
    )
    check_max_tokens: int = Field(12, ge=4, description="generation cap of the self-check and relation calls")
    self_check: bool = Field(
        True, description="ask the answering model whether its cited sentences state its answer (logprob)"
    )
    self_check_threshold: float = Field(
        0.6, ge=0.0, le=1.0, description="P(yes) of the self-check at which it counts as a yes"
    )
    abstain_unsupported: bool = Field(
        True,
        description="say a part is not stated unless its answer is accepted (anchored and supported)",
    )
    observation_chars: int = Field(1500, ge=100, description="stdout/stderr kept in a python observation")
    max_question_chars: int = Field(2000, ge=10, description="longest question accepted")
