"""Reading a model's JSON reply: a parse failure becomes the ValueError the re-ask feeds back."""

from __future__ import annotations

import json
from typing import Any


def parse_json(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"it is not JSON ({exc.msg})") from None


def json_object(raw: str) -> dict[str, Any]:
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise ValueError("it is not a JSON object")
    return data
