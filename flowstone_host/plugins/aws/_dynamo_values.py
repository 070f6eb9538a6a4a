"""DynamoDB's typed JSON to plain Python, and keys to JSON-safe checkpoint data.

- ``N`` becomes an ``int`` when integral, else a ``float``; ``S`` a ``str``; ``B`` ``bytes``;
  ``BOOL`` and ``NULL`` a ``bool`` and ``None``; ``L`` and ``M`` lists and dicts of these;
  the sets ``SS``, ``NS`` and ``BS`` sorted lists (sets are unordered: sorting makes two
  reads of the same item equal).
- A key (``{"pk": {"S": "a"}, "sk": {"B": b"..."}}``) round-trips through
  :func:`key_to_json` and :func:`key_from_json`; binary parts travel as base64.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from ...errors import ValidationError

__all__ = ["from_dynamo", "key_from_json", "key_to_json", "to_dynamo"]


def _number(text: str) -> int | float:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


def _binary(value: Any) -> bytes:
    return base64.b64decode(value) if isinstance(value, str) else bytes(value)


def _attribute(typed: Mapping[str, Any]) -> Any:
    ((tag, value),) = typed.items()
    if tag in ("S", "BOOL"):
        return value
    if tag == "N":
        return _number(value)
    if tag == "B":
        return _binary(value)
    if tag == "NULL":
        return None
    if tag == "L":
        return [_attribute(v) for v in value]
    if tag == "M":
        return from_dynamo(value)
    if tag in ("SS", "NS", "BS"):
        converters: dict[str, Callable[[Any], Any]] = {"SS": str, "NS": _number, "BS": _binary}
        convert = converters[tag]
        return sorted(convert(v) for v in value)
    raise ValidationError(f"Unknown DynamoDB attribute type {tag!r}")


def from_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    """Return a DynamoDB item (typed JSON, as the low-level client gives it) as plain Python."""
    return {name: _attribute(typed) for name, typed in item.items()}


def to_dynamo(value: Any) -> dict[str, Any]:
    """Return the typed JSON of a plain value (for expression values in config)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float | Decimal):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, list | tuple):
        return {"L": [to_dynamo(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_dynamo(v) for k, v in value.items()}}
    raise ValidationError(f"Cannot send {type(value).__name__} to DynamoDB: {value!r}")


def key_to_json(key: Mapping[str, Any]) -> dict[str, Any]:
    """Return a typed key as JSON-safe data (binary parts as base64 under ``B64``)."""
    out: dict[str, Any] = {}
    for name, typed in key.items():
        ((tag, value),) = typed.items()
        if tag == "B":
            out[name] = {"B64": base64.b64encode(_binary(value)).decode()}
        else:
            out[name] = {tag: value}
    return out


def key_from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return the typed key that :func:`key_to_json` produced ``data`` from."""
    out: dict[str, Any] = {}
    for name, typed in data.items():
        ((tag, value),) = typed.items()
        out[name] = {"B": base64.b64decode(value)} if tag == "B64" else {tag: value}
    return out
