"""What every grounding checker is: (evidence, claim) pairs in, support probabilities out.

The agent (per-sentence support, abstention), the UI (support badges) and `ra eval` (faithfulness, citation
precision/recall) all score through this one protocol, so a checker is swapped by name in the settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from index.errors import UserFacingError

Verdict = Literal["supported", "weak", "unsupported"]


class GroundingChecker(Protocol):
    """Scores how likely `evidence` supports `claim`; `threshold` is the calibrated decision point."""

    name: str
    threshold: float

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """P(supported) in [0, 1] for each (evidence, claim) pair, in order."""
        ...


@dataclass(frozen=True, slots=True)
class Support:
    """One claim's score and its verdict under a checker's threshold and the weak band below it."""

    score: float
    verdict: Verdict


def verdict(score: float, threshold: float, weak_margin: float) -> Verdict:
    """supported at or above the threshold, weak within `weak_margin` below it, else unsupported."""
    if score >= threshold:
        return "supported"
    if score >= threshold - weak_margin:
        return "weak"
    return "unsupported"


def judge(checker: GroundingChecker, pairs: Sequence[tuple[str, str]], weak_margin: float) -> list[Support]:
    """Scores and verdicts of (evidence, claim) pairs under the checker's threshold."""
    return [Support(s, verdict(s, checker.threshold, weak_margin)) for s in checker.scores(pairs)]


class CheckerNotBuilt(UserFacingError):
    """A local checker whose weights are not built yet; callers that can do without one warn and go on."""
