"""What every grounding checker is: (evidence, claim) pairs in, support probabilities out.

The agent (per-sentence support, abstention), the UI (support badges) and `ra eval` (faithfulness, citation
precision/recall) all score through this one protocol, so a checker is swapped by name in the settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from index.errors import UserFacingError


class GroundingChecker(Protocol):
    """Scores how likely `evidence` supports `claim`; `threshold` is the calibrated decision point."""

    name: str
    threshold: float

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """P(supported) in [0, 1] for each (evidence, claim) pair, in order."""
        ...


class CheckerNotBuilt(UserFacingError):
    """A local checker whose weights are not built yet; callers that can do without one warn and go on."""
