"""Acceptance precision/recall from `ra eval qa` rows: drafts labelled by gold keywords, rates per policy."""

from __future__ import annotations

from typing import Any

from eval.acceptance import drafts, policies, rates


def sentence(
    text: str, accepted: bool, anchored: bool, verdict: str | None, self_check: float | None
) -> dict:
    acceptance = {"accepted": accepted, "anchored": anchored, "support": 0.4, "self_check": self_check}
    return {"text": text, "kind": "answer", "verdict": verdict, "acceptance": acceptance}


ROWS: list[dict[str, Any]] = [
    {
        "id": "q1",
        "kind": "numeric",
        "unanswerable": False,
        "keywords": ["52k"],
        "parts": [
            {
                "sentences": [sentence("Alpaca used 52K demos.", True, True, "unsupported", 0.9)],
                "drafts": [sentence("Alpaca used 64K demos.", False, False, "supported", 0.9)],
            }
        ],
    },
    {
        "id": "q2",
        "kind": "unanswerable",
        "unanswerable": True,
        "keywords": [],
        "parts": [
            {
                "sentences": [{"text": "not stated", "kind": "not_stated"}],
                "drafts": [sentence("Claude 3 reads 200K tokens.", False, True, "unsupported", 0.3)],
            }
        ],
    },
]


def test_drafts_are_labelled_by_gold_keywords_and_unanswerable_drafts_are_wrong() -> None:
    items = list(drafts(ROWS))
    assert [(d.text, d.right) for d in items] == [
        ("Alpaca used 52K demos.", True),
        ("Alpaca used 64K demos.", False),
        ("Claude 3 reads 200K tokens.", False),
    ]


def test_each_policy_reports_right_kept_and_wrong_stopped() -> None:
    items = list(drafts(ROWS))
    chosen = policies(0.5)
    assert rates(items, chosen["agent (as run)"]) == {
        "right_kept": 1.0,
        "wrong_stopped": 1.0,
        "right": 1,
        "wrong": 2,
    }
    assert rates(items, chosen["checker"])["right_kept"] == 0.0  # the checker alone loses the right draft
    assert rates(items, chosen["self-check"])["wrong_stopped"] == 0.5
    assert rates(items, chosen["anchored and (checker or self-check)"])["wrong_stopped"] == 1.0
