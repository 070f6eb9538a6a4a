"""Layer (a): JSON Schema shape, every error turned into an :class:`Issue` that says what to do.

All errors are reported, best match first (``jsonschema``'s relevance order). Messages are
written here rather than taken from ``jsonschema``, whose texts repeat the offending value:
a value is shown only when it is a short scalar outside any secret-looking key.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterator
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaError  # type: ignore[import-untyped]
from jsonschema.exceptions import relevance
from yaml.nodes import Node, ScalarNode

from ..config import is_secret_path
from .issues import Issue, one_per_field
from .schema import manifest_validator
from .yaml_reader import YamlDocument

__all__ = ["did_you_mean", "shape_issues"]

FieldPath = tuple[str | int, ...]
_Translator = Callable[[SchemaError, YamlDocument, FieldPath], Iterator[Issue]]


def shape_issues(document: YamlDocument) -> list[Issue]:
    """Check one document against ``manifest.schema.json``; return one problem per field.

    A value of the wrong type is reported as that alone: its bounds (``-1.5`` for a
    count of at least 0) mean nothing until the type is right.
    """
    errors = sorted(manifest_validator().iter_errors(document.data), key=relevance, reverse=True)
    issues: list[Issue] = []
    for error in errors:
        path = tuple(error.absolute_path)
        translate = _TRANSLATORS.get(str(error.validator), _generic)
        issues.extend(translate(error, document, path))
    mistyped = {i.path for i in issues if i.code in _TYPE_CODES}
    return one_per_field(i for i in issues if i.path not in mistyped or i.code in _TYPE_CODES)


#: The codes of a value of the wrong type.
_TYPE_CODES = frozenset({"shape.type", "shape.quote_string"})


def did_you_mean(word: str, options: Any) -> str:
    """Return `` (did you mean 'x'?)`` for the closest option, or an empty string."""
    close = difflib.get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _issue(doc: YamlDocument, path: FieldPath, code: str, message: str, *, at_key: bool) -> Issue:
    return Issue(doc.position(path, at_key=at_key), path, code, message, doc.index)


def _where(path: FieldPath) -> str:
    return f"'{path[-1]}'" if path and isinstance(path[-1], str) else "this mapping"


def _required(error: SchemaError, doc: YamlDocument, path: FieldPath) -> Iterator[Issue]:
    properties = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    for key in error.validator_value:
        if isinstance(error.instance, dict) and key not in error.instance:
            help_ = properties.get(key, {}).get("description", "")
            message = f"Missing required key {key!r} in {_where(path)}; add it. {help_}".strip()
            yield _issue(doc, (*path, key), "shape.missing_key", message, at_key=True)


def _additional(error: SchemaError, doc: YamlDocument, path: FieldPath) -> Iterator[Issue]:
    allowed = list(error.schema.get("properties", {}))
    for key in error.instance:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed) or f"; allowed keys: {', '.join(allowed)}"
            message = f"Unknown key {key!r} in {_where(path)}{hint}. Remove or rename it."
            yield _issue(doc, (*path, key), "shape.unknown_key", message, at_key=True)


def _type(error: SchemaError, doc: YamlDocument, path: FieldPath) -> Iterator[Issue]:
    expected = error.validator_value
    expected = [expected] if isinstance(expected, str) else list(expected)
    found = _type_name(error.instance)
    if not path:
        message = (
            f"A manifest document is a mapping with apiVersion, kind, metadata and spec; "
            f"this document is {found}."
        )
        yield _issue(doc, path, "shape.not_mapping", message, at_key=False)
        return
    _, node = doc.node_at(path)
    plain = isinstance(node, ScalarNode) and not node.style
    if "string" in expected and plain and not isinstance(error.instance, dict | list | str):
        yield _issue(
            doc, path, "shape.quote_string", _quote_message(found, node, path), at_key=False
        )
        return
    message = f"Expected {' or '.join(expected)} here, found {found}; change the value."
    yield _issue(doc, path, "shape.type", message, at_key=False)


def _quote_message(found: str, node: Node, path: FieldPath) -> str:
    text = "the value" if is_secret_path(path) else f'"{node.value}"'
    return (
        f"This value is read as {found} by YAML 1.1 (which reads yes/no/on/off as booleans, "
        f"1.10 as a number and dates as dates), but a string is expected; quote it: {text}."
    )


def _enum(error: SchemaError, doc: YamlDocument, path: FieldPath) -> Iterator[Issue]:
    options = list(error.validator_value)
    shown = _show(error.instance, path)
    hint = did_you_mean(str(error.instance), options) if isinstance(error.instance, str) else ""
    choices = ", ".join(str(o) for o in options)
    message = f"{shown} is not allowed here{hint}; use one of: {choices}."
    yield _issue(doc, path, "shape.enum", message, at_key=False)


def _const(error: SchemaError, doc: YamlDocument, path: FieldPath) -> Iterator[Issue]:
    message = f"{_show(error.instance, path)} is not allowed here; write {error.validator_value!r}."
    yield _issue(doc, path, "shape.enum", message, at_key=False)


def _pattern(error: SchemaError, doc: YamlDocument, path: FieldPath) -> Iterator[Issue]:
    help_ = error.schema.get("description", f"it must match {error.validator_value}")
    if list(error.schema_path)[-2:-1] == ["propertyNames"]:  # a key, not a value
        message = f"The key {error.instance!r} is not a valid name. {help_}"
        yield _issue(doc, (*path, error.instance), "shape.bad_name", message, at_key=True)
        return
    message = f"{_show(error.instance, path)} is not a valid value here. {help_}"
    yield _issue(doc, path, "shape.pattern", message, at_key=False)


def _not(error: SchemaError, doc: YamlDocument, path: FieldPath) -> Iterator[Issue]:
    keys = sorted(set(re.findall(r"'required': \['(\w+)'\]", str(error.validator_value))))
    present = [k for k in keys if isinstance(error.instance, dict) and k in error.instance]
    target = (*path, present[0]) if present else path
    message = error.schema.get("description", "This combination of keys is not allowed.")
    yield _issue(doc, target, "shape.conflict", message, at_key=True)


_BOUNDS = {
    "minimum": "at least {}",
    "maximum": "at most {}",
    "exclusiveMinimum": "more than {}",
    "exclusiveMaximum": "less than {}",
    "minItems": "a list of at least {} item(s)",
    "maxItems": "a list of at most {} item(s)",
    "minProperties": "a mapping with at least {} key(s)",
    "maxProperties": "a mapping with at most {} key(s)",
    "minLength": "at least {} character(s) long",
    "uniqueItems": "a list without repeated items",
}


def _bound(error: SchemaError, doc: YamlDocument, path: FieldPath) -> Iterator[Issue]:
    wanted = _BOUNDS[str(error.validator)].format(error.validator_value)
    message = f"This value must be {wanted}; change it."
    yield _issue(doc, path, "shape.range", message, at_key=False)


def _generic(error: SchemaError, doc: YamlDocument, path: FieldPath) -> Iterator[Issue]:
    help_ = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
    message = f"This value fails the schema rule {error.validator!r}. {help_}".strip()
    yield _issue(doc, path, f"shape.{error.validator}", message, at_key=False)


_TRANSLATORS: dict[str, _Translator] = {
    "required": _required,
    "additionalProperties": _additional,
    "type": _type,
    "enum": _enum,
    "const": _const,
    "pattern": _pattern,
    "not": _not,
    **{name: _bound for name in _BOUNDS},
}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a string"


def _show(value: Any, path: FieldPath) -> str:
    if is_secret_path(path) or not isinstance(value, str | int | float) or len(str(value)) > 80:
        return "This value"
    return repr(value)
