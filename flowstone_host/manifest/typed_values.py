"""Typed ``${VAR}``: a value written as exactly one reference takes the type its schema asks.

``port: ${PORT:-8080}`` interpolates to the text ``"8080"``; where the schema asks for an
integer, a number or a boolean (and not also for a string), that text is converted. It is
the one place both configs do it: a plugin's config against its cerberus
``config_schema`` (:func:`cerberus_type`), the host config against
``host-config.schema.json`` (:func:`json_schema_type`). Text around a reference
(``"x${N}"``) is never converted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..config import FieldPath, value_at

__all__ = [
    "TYPED",
    "cerberus_type",
    "coerce_references",
    "coerce_text",
    "json_schema_type",
    "not_parsed",
    "set_at",
]

#: The types a whole-reference value is converted to (``float`` is cerberus's name).
TYPED = ("integer", "number", "float", "boolean")
_TRUE, _FALSE = frozenset({"true", "yes", "on", "1"}), frozenset({"false", "no", "off", "0"})
_INTEGER = re.compile(r"[+-]?[0-9]+")


def coerce_text(text: str, wanted: str) -> Any:
    """Convert the text a ``${VAR}`` gave to ``wanted`` (one of :data:`TYPED`).

    Integers are decimal digits with an optional sign; numbers are what ``float`` reads
    (not ``nan`` or ``inf``); booleans are ``true/false``, ``yes/no``, ``on/off`` or
    ``1/0``, in any case.

    Raises:
        ValueError: the text does not parse as ``wanted``.
    """
    stripped = text.strip()
    if wanted == "integer" and _INTEGER.fullmatch(stripped):
        return int(stripped)
    if wanted in ("number", "float"):
        number = float(stripped)  # raises ValueError itself
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(text)
        return int(number) if wanted == "number" and _INTEGER.fullmatch(stripped) else number
    if wanted == "boolean" and stripped.lower() in _TRUE | _FALSE:
        return stripped.lower() in _TRUE
    raise ValueError(text)


def coerce_references(
    data: Any, paths: Iterable[FieldPath], wanted: Callable[[FieldPath], str | None]
) -> list[tuple[FieldPath, str]]:
    """Convert, in ``data``, the text at each of ``paths`` (values that were exactly one
    ``${...}``) to the type ``wanted(path)`` names, if it names one.

    Returns:
        ``(path, type)`` of each value that does not parse, in path order; it is left as
        it was.
    """
    failed: list[tuple[FieldPath, str]] = []
    for path in sorted(paths, key=str):
        kind = wanted(path)
        value = value_at(data, path)
        if kind is None or not isinstance(value, str):
            continue
        try:
            set_at(data, path, coerce_text(value, kind))
        except ValueError:
            failed.append((path, kind))
    return failed


def not_parsed(subject: str, wanted: str) -> str:
    """The message of a value its ``${...}`` gave that does not parse; never the value."""
    return (
        f"{subject} must be of type {wanted}, and the value its ${{...}} gave does not parse "
        "as one; fix the variable or its default."
    )


def cerberus_type(schema: Mapping[str, Any], path: FieldPath) -> str | None:
    """The one of :data:`TYPED` the cerberus rules at ``path`` ask for, if any."""
    rules: Any = {"type": "dict", "schema": schema}
    for part in path:
        below = rules.get("schema") if isinstance(rules, Mapping) else None
        if not isinstance(below, Mapping):
            return None
        rules = below if isinstance(part, int) else below.get(part)
    return _typed(rules.get("type") if isinstance(rules, Mapping) else None)


def json_schema_type(schema: Mapping[str, Any], path: FieldPath) -> str | None:
    """The one of :data:`TYPED` the JSON Schema at ``path`` asks for, if any."""
    node: Any = schema
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get("items") if isinstance(part, int) else node.get("properties", {}).get(part)
    return _typed(node.get("type") if isinstance(node, Mapping) else None)


def _typed(types: Any) -> str | None:
    """The first of :data:`TYPED` in a type rule, unless it allows a string as well."""
    names = [types] if isinstance(types, str) else list(types or ())
    if "string" in names:
        return None
    return next((t for t in names if t in TYPED), None)


def set_at(data: Any, path: FieldPath, value: Any) -> None:
    """Put ``value`` at ``path`` in nested mappings and lists, copying each list on the
    way (a merged config shares its lists with the documents)."""
    for part in path[:-1]:
        child = data[part]
        if isinstance(child, list):
            child = data[part] = list(child)
        data = child
    data[path[-1]] = value
