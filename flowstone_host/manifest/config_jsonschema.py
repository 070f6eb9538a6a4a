"""A plugin's cerberus ``config_schema`` as JSON Schema, for editors and CI.

``flowstone-host schema --installed`` puts one of these under each installed plugin's
``spec.config``, so ``check-jsonschema`` and the YAML language server refuse a misspelt
key before the host does. The translation is conservative: a rule with no JSON Schema
equivalent (``check_with``, a coercion, ``oneof``...) constrains nothing, so the editor
never refuses what the host accepts. A value written as exactly one ``${...}`` is always
accepted: the host converts it to the type asked for (see :func:`~.typed_values.coerce_text`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ENV_REFERENCE", "config_json_schema"]

#: A value that is exactly one ``${VAR}`` or ``${VAR:-default}``.
ENV_REFERENCE: dict[str, Any] = {
    "type": "string",
    "pattern": r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}$]*)?\}$",
}

_TYPES = {
    "string": "string",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "boolean": "boolean",
    "dict": "object",
    "list": "array",
}


def config_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Return the JSON Schema of a config ``schema`` (cerberus) accepts: unknown keys
    refused, required keys required, types and bounds where JSON Schema has them."""
    return _mapping(schema, allow_unknown=False)


def _mapping(schema: Mapping[str, Any], *, allow_unknown: Any) -> dict[str, Any]:
    properties = {
        str(key): _field(rules) for key, rules in schema.items() if isinstance(rules, Mapping)
    }
    required = sorted(
        str(key)
        for key, rules in schema.items()
        if isinstance(rules, Mapping) and rules.get("required") and "default" not in rules
    )
    result: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        result["required"] = required
    if allow_unknown is False:
        result["additionalProperties"] = False
    return result


def _field(rules: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if rules.get("meta", {}).get("description") if isinstance(rules.get("meta"), Mapping) else None:
        result["description"] = str(rules["meta"]["description"])
    if "coerce" in rules or "oneof" in rules or "anyof" in rules:
        return result  # the value given may be of another type than the one kept
    names = [rules["type"]] if isinstance(rules.get("type"), str) else list(rules.get("type") or [])
    types = [_TYPES[n] for n in names if n in _TYPES]
    if types and len(types) == len(names):
        if rules.get("nullable"):
            types.append("null")
        result["type"] = types[0] if len(types) == 1 else types
    _bounds(rules, result)
    inner = rules.get("schema")
    if isinstance(inner, Mapping) and "object" in names_of(result):
        result.update(_mapping(inner, allow_unknown=rules.get("allow_unknown", False)))
        if rules.get("nullable"):
            result["type"] = ["object", "null"]
    elif isinstance(inner, Mapping) and "array" in names_of(result):
        result["items"] = _field(inner)
    if "type" in result and not set(names_of(result)) <= {"string", "null"}:
        return {"anyOf": [result, ENV_REFERENCE]}
    return result


def names_of(result: Mapping[str, Any]) -> list[str]:
    found = result.get("type")
    return [found] if isinstance(found, str) else list(found or [])


def _bounds(rules: Mapping[str, Any], result: dict[str, Any]) -> None:
    allowed = rules.get("allowed")
    if isinstance(allowed, list | tuple) and all(_plain(v) for v in allowed):
        result["enum"] = list(allowed) + ([None] if rules.get("nullable") else [])
    for rule, keyword in (("min", "minimum"), ("max", "maximum")):
        if isinstance(rules.get(rule), int | float) and not isinstance(rules.get(rule), bool):
            result[keyword] = rules[rule]
    kind = names_of(result)
    for rule, text, items in (
        ("minlength", "minLength", "minItems"),
        ("maxlength", "maxLength", "maxItems"),
    ):
        value = rules.get(rule)
        if isinstance(value, int) and kind in (["string"], ["array"]):
            result[text if kind == ["string"] else items] = value
    if isinstance(rules.get("regex"), str) and kind == ["string"]:
        result["pattern"] = f"^(?:{rules['regex']})$"


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
