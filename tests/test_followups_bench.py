"""The follow-up benchmark's scoring (eval/bench/followups.py), with the scripted model: no real model."""

from __future__ import annotations

import json
from pathlib import Path

from fakes import RuleBackend, TinyIndex, WordChecker, by_schema

from assistant.agent.config import AgentSettings
from assistant.agent.loop import ResearchAgent
from eval.bench.followups import (
    Conversation,
    Reply,
    load_conversations,
    names_referent,
    run,
    score,
    summarise,
)

DATA = Path(__file__).resolve().parents[1] / "eval" / "data" / "followups.jsonl"
ALPACA = Conversation(
    "c1",
    ("What was Stanford's Alpaca 7B fine-tuned from?", "And on how many demonstrations?"),
    ("Alpaca",),
    ("52K",),
    "On how many demonstrations was Stanford's Alpaca 7B fine-tuned?",
)


def test_a_rewrite_names_the_referent_whatever_its_case_and_spacing() -> None:
    assert names_referent("How many robots does the open  x-embodiment data cover?", ["Open X-Embodiment"])
    assert not names_referent("How many robots does that dataset cover?", ["Open X-Embodiment"])
    assert names_referent("What does SAM take?", ["Segment Anything", "SAM"])  # any one of them


def test_a_row_scores_the_follow_up_and_the_standalone_answer_and_an_abstention_answers_nothing() -> None:
    final = Reply(
        "On how many demonstrations was it fine-tuned?", "It used 52,000 demonstrations. [1]", False, 2.5
    )
    abstained = Reply(ALPACA.standalone, "52K? The documents do not answer this question.", True, 0.1)
    row = score(ALPACA, final, abstained)
    assert (row["right_referent"], row["keyword_hit"], row["standalone_keyword_hit"]) == (False, True, False)
    assert score(ALPACA, final, None)["standalone_keyword_hit"] is None


def test_the_summary_gives_rates_the_gap_in_points_and_the_rewrite_latency() -> None:
    rows = [
        {
            "right_referent": True,
            "keyword_hit": True,
            "standalone_keyword_hit": True,
            "abstained": False,
            "rewrite_s": 1.0,
        },
        {
            "right_referent": True,
            "keyword_hit": False,
            "standalone_keyword_hit": True,
            "abstained": True,
            "rewrite_s": 3.0,
        },
        {
            "right_referent": False,
            "keyword_hit": False,
            "standalone_keyword_hit": False,
            "abstained": False,
            "rewrite_s": 2.0,
        },
        {
            "right_referent": True,
            "keyword_hit": True,
            "standalone_keyword_hit": True,
            "abstained": False,
            "rewrite_s": 4.0,
        },
    ]
    summary = summarise(rows)
    assert summary["right_referent"] == 0.75 and summary["followup_keyword_accuracy"] == 0.5
    assert summary["standalone_keyword_accuracy"] == 0.75 and summary["gap_points"] == 25.0
    assert summary["rewrite_s_p50"] == 2.5 and summary["followup_abstained"] == 1
    no_standalone = [{**r, "standalone_keyword_hit": None} for r in rows]
    assert summarise(no_standalone)["gap_points"] is None


def test_the_bench_runs_each_conversation_through_the_chat_session(tmp_path: Path) -> None:
    index = TinyIndex(
        {"docs/alpaca.md": "Stanford's Alpaca 7B was fine-tuned on 52K demonstrations from LLaMA 7B."}
    )
    backend = RuleBackend(
        by_schema("Stanford's Alpaca 7B was fine-tuned on 52K demonstrations.", ALPACA.standalone)
    )
    cfg = AgentSettings(sandbox=False, self_check=False)
    agent = ResearchAgent(backend, index, cfg, checker=WordChecker(), weak_margin=0.2)

    [row] = run(agent, [ALPACA], tmp_path, standalone=True)

    assert row["rewrite"] == ALPACA.standalone and row["right_referent"] and row["keyword_hit"]
    assert row["standalone_keyword_hit"] is True
    assert [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()] == [row]
    # the first turn, the follow-up and the standalone question each searched; the follow-up as rewritten
    assert any(q.startswith(ALPACA.standalone.rstrip("?")) for q in index.queries)


def test_the_follow_up_set_has_two_and_three_turn_conversations_whose_standalone_names_the_referent() -> None:
    convs = load_conversations(DATA)
    assert len(convs) >= 30 and len({c.id for c in convs}) == len(convs)
    assert {len(c.turns) for c in convs} == {2, 3}
    for c in convs:
        assert c.keywords and names_referent(c.standalone, c.referents), c.id
        assert not names_referent(c.turns[-1], c.referents), c.id  # the last message leaves it out
