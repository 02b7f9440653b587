"""The service's wire format: the agent's typed records as JSON lines and back.

`to_json` on the records is for people and eval rows (it drops what they do not need: figure bytes, a
passage's sentence offsets). A client of the service needs the records themselves, so that `ra ask`
prints the same thing whether the answer was made in process or by the service. `encode` writes every
dataclass field; `decode` rebuilds the record from its type hints, so a new field travels without a line
here. Bytes go as base64.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from assistant.agent.records import Event

EVENT_TYPES: dict[str, type] = {
    next(f.default for f in dataclasses.fields(cls) if f.name == "type"): cls for cls in get_args(Event)
}


def encode(obj: Any) -> Any:
    """JSON-ready form of a record (dataclasses, tuples, lists, dicts, bytes and scalars, nested)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, bytes):
        return {"base64": base64.b64encode(obj).decode("ascii")}
    if isinstance(obj, list | tuple):
        return [encode(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): encode(v) for k, v in obj.items()}
    return obj


def decode_event(data: dict[str, Any]) -> Event:
    """The event `encode` wrote; ValueError for anything else (a client never guesses)."""
    cls = EVENT_TYPES.get(data.get("type", "")) if isinstance(data, dict) else None
    if cls is None:
        raise ValueError(f"not an agent event: {str(data)[:80]}")
    return decode(cls, data)


def decode(tp: Any, data: Any) -> Any:
    """Rebuild a value of type `tp` from its encoded form, checking literals and shapes as it goes."""
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise ValueError(f"{tp.__name__}: expected an object")
        hints = _hints(tp)
        return tp(
            **{f.name: decode(hints[f.name], data[f.name]) for f in dataclasses.fields(tp) if f.name in data}
        )
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return decode(arg, data)
            except (ValueError, TypeError) as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))
    if origin is Literal:
        if data not in args:
            raise ValueError(f"{data!r} is not one of {args}")
        return data
    if origin in (list, tuple) and not isinstance(data, list):
        raise ValueError(f"expected a list, not {type(data).__name__}")
    if origin is list:
        return [decode(args[0], x) for x in data]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], x) for x in data)
        return tuple(decode(a, x) for a, x in zip(args, data, strict=True))
    if origin is dict:
        return {k: decode(args[1], v) for k, v in data.items()}
    if tp is bytes:
        return base64.b64decode(data["base64"])
    if tp is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if tp in (int, str, bool) and type(data) is not tp:
        raise ValueError(f"expected {tp.__name__}, not {type(data).__name__}")
    return data


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)
