"""Follow-ups that keep their subject: conversations run through the chat code of `ra chat` and the web app.

    python -m eval.bench.followups --data eval/data/followups.jsonl --index IDX --llm-url URL --out DIR
                                   [--limit N] [--no-standalone]

Each record of the data is a conversation (`turns`, the user's messages), the names a right standalone
rewrite of its last message must contain (`referents`, any one), the keywords of a right answer
(`answer_keywords`, scored by `eval.metrics.keyword_hit`) and the last message written standalone
(`standalone`). The earlier turns are answered by the real agent, as a user would see them; the last
message's rewrite (the `QuestionRewritten` event; the message itself when none came) and answer are
recorded. Then the standalone question is asked in a fresh conversation, which says how well the agent
answers the same thing when nothing needs resolving (`--no-standalone` skips it: a second run of other
chat code over the same agent shares those answers). Rewrite latency is the time from the message to the
first event of its run (the rewrite is the only model call before it).

Written against the chat session's public surface only (`ChatSession(agent).ask`, the event types), so the
same file measures the chat code of an older commit. DIR gets rows.jsonl (one row per conversation, written
as it finishes) and summary.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from eval.bench import write_result
from eval.metrics import keyword_hit, mean, normalise, percentile


@dataclass(frozen=True, slots=True)
class Conversation:
    """One record of the follow-up set."""

    id: str
    turns: tuple[str, ...]
    referents: tuple[str, ...]
    keywords: tuple[str, ...]
    standalone: str


@dataclass(frozen=True, slots=True)
class Reply:
    """What one message got: the question the agent ran, its answer, and the seconds to its first event."""

    asked: str
    answer: str
    abstained: bool
    first_event_s: float


def load_conversations(path: Path, limit: int | None = None) -> list[Conversation]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    convs = [
        Conversation(
            r["id"], tuple(r["turns"]), tuple(r["referents"]), tuple(r["answer_keywords"]), r["standalone"]
        )
        for r in rows
    ]
    return convs[:limit]


def names_referent(rewrite: str, referents: Sequence[str]) -> bool:
    """The rewrite names one of the gold referents (case, quotes and spacing ignored)."""
    text = normalise(rewrite)
    return any(normalise(r) in text for r in referents)


def score(conv: Conversation, final: Reply, standalone: Reply | None) -> dict[str, Any]:
    """One conversation's row: the final rewrite and whether it names the subject, and the keyword hit
    of the follow-up's answer and of the standalone question's (an abstention answers nothing)."""
    return {
        "id": conv.id,
        "turns": list(conv.turns),
        "rewrite": final.asked,
        "right_referent": names_referent(final.asked, conv.referents),
        "rewrite_s": round(final.first_event_s, 3),
        "answer": final.answer,
        "abstained": final.abstained,
        "keyword_hit": keyword_hit("" if final.abstained else final.answer, conv.keywords),
        "standalone": conv.standalone,
        "standalone_answer": standalone.answer if standalone else None,
        "standalone_keyword_hit": (
            keyword_hit("" if standalone.abstained else standalone.answer, conv.keywords)
            if standalone
            else None
        ),
    }


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Rates over the conversations: right referent, keyword accuracy of the follow-ups and of the
    standalone questions (None when not run) and its gap, and the rewrite latency percentiles."""
    follow = mean(r["keyword_hit"] for r in rows)
    alone = mean(r["standalone_keyword_hit"] for r in rows)
    latencies = [r["rewrite_s"] for r in rows]
    return {
        "conversations": len(rows),
        "right_referent": mean(r["right_referent"] for r in rows),
        "followup_keyword_accuracy": follow,
        "standalone_keyword_accuracy": alone,
        "gap_points": round(100 * (alone - follow), 1) if follow is not None and alone is not None else None,
        "followup_abstained": sum(r["abstained"] for r in rows),
        "rewrite_s_p50": percentile(latencies, 50),
        "rewrite_s_p95": percentile(latencies, 95),
    }


def reply_to(session: Any, message: str) -> Reply:
    """Run one message through the chat session as `ra chat` does."""
    from assistant.agent.records import FinalAnswer, QuestionRewritten

    started = time.perf_counter()
    first: float | None = None
    asked, answer = message, None
    for event in session.ask(message):
        first = time.perf_counter() - started if first is None else first
        if isinstance(event, QuestionRewritten):
            asked = event.standalone
        elif isinstance(event, FinalAnswer):
            answer = event.answer
    assert answer is not None, f"no final answer for {message!r}"
    return Reply(asked, answer.text, answer.abstained, first or 0.0)


def run(agent: Any, convs: Iterable[Conversation], out: Path, standalone: bool) -> list[dict[str, Any]]:
    """Every conversation in order, each in a fresh chat session; a row is written as it finishes."""
    from assistant.agent.chat import ChatSession

    rows: list[dict[str, Any]] = []
    with (out / "rows.jsonl").open("w", encoding="utf-8") as sink:
        for conv in convs:
            session = ChatSession(agent)
            replies = [reply_to(session, turn) for turn in conv.turns]
            alone = reply_to(ChatSession(agent), conv.standalone) if standalone else None
            row = score(conv, replies[-1], alone)
            rows.append(row)
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            sink.flush()
            print(
                f"{conv.id}: referent {row['right_referent']} keywords {row['keyword_hit']} | {row['rewrite']}"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("eval/data/followups.jsonl"))
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument(
        "--llm-url", required=True, help="a running server (ra serve) so the model loads once"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None, help="first N conversations only")
    parser.add_argument("--no-standalone", dest="standalone", action="store_false")
    args = parser.parse_args()

    from assistant.agent.factory import ready_agent
    from assistant.settings import load_settings

    settings = load_settings({"index": {"dir": args.index}, "llm": {"url": args.llm_url}})
    args.out.mkdir(parents=True, exist_ok=True)
    convs = load_conversations(args.data, args.limit)
    with ready_agent(settings) as agent:
        rows = run(agent, convs, args.out, args.standalone)
    summary = {"date": date.today().isoformat(), "data": args.data.name, **summarise(rows)}
    write_result(summary, args.out / "summary.json")


if __name__ == "__main__":
    main()
