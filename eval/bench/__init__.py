"""Benchmarks run as scripts: python -m eval.bench.<name>."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_result(result: dict[str, Any], out: Path, detail: str | None = None) -> dict[str, Any]:
    """Record a benchmark's result as JSON at `out` and print it without its per-run `detail` list."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != detail}, indent=2))
    return result
