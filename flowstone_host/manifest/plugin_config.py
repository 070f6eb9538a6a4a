"""Layer (c): plugin config, checked against each plugin's own cerberus ``config_schema``.

The entry point named by ``spec.plugin`` must exist in the kind's namespace and pass the
sandbox policy. Its class is read for ``config_schema`` through the plugin loader (imported
after the import probe, or, for a process-isolated plugin, only described by the probe;
never instantiated), and
the config is validated and normalised with it: coercion and defaults included. An asset's
``io_config`` / a scatter's ``reader_config`` is deep-merged over its declaration's config
and checked the same way. Messages never repeat config values: they may come from the
environment or be secrets.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cerberus  # type: ignore[import-untyped]

from ..config import FieldPath, deep_merge, has_path
from ..errors import FlowStoneError, PluginRefused
from ..kinds import kind_info
from .assembly import Declared, Source
from .catalog import Catalog, EntryPointInfo
from .issues import Issue
from .shape import did_you_mean
from .typed_values import cerberus_type, coerce_references, not_parsed

__all__ = ["UNLOADABLE", "ConfigCheck", "check_config", "plugin_class"]

#: Codes of issues about a declaration's plugin rather than its manifest: the plugin is not
#: installed, the sandbox policy refuses it, its import probe failed, its class does not
#: implement the kind's contract, or (run in its own process) its config schema cannot be
#: checked by the host. A host fails that one declaration and keeps the rest of the file.
UNLOADABLE = frozenset(
    {
        "plugin.unknown",
        "plugin.refused",
        "plugin.import_failed",
        "plugin.wrong_class",
        "plugin.schema_uncheckable",
    }
)

#: The issue code of a load error, by its ``details["problem"]``.
_PROBLEM_CODES = {
    "wrong_class": "plugin.wrong_class",
    "schema_uncheckable": "plugin.schema_uncheckable",
}


@dataclass(frozen=True, slots=True)
class ConfigCheck:
    """The outcome of checking one config: the normalised config, or the issues."""

    config: dict[str, Any]
    issues: tuple[Issue, ...]


def plugin_class(
    item: Declared, catalog: Catalog
) -> tuple[Any, EntryPointInfo | None, Issue | None]:
    """Return the class ``spec.plugin`` names in ``item``'s namespace and its entry point,
    or an issue.

    The class comes through ``catalog``, so the sandbox policy and the import probe guard
    it; a process-isolated plugin yields the probe's stand-in and is never imported.
    """
    spec = item.data["spec"]
    name = spec["plugin"]
    path: FieldPath = ("spec", "plugin")
    info = catalog.find(item.kind, name)
    if info is None:
        known = catalog.names(item.kind)
        namespace = kind_info(item.kind).namespace
        message = (
            f"No plugin {name!r} in {namespace}{did_you_mean(name, known)} (installed: "
            f"{', '.join(known) or 'none'}). Install the distribution that provides it, or "
            "fix the name; `flowstone-host plugins` lists what is installed."
        )
        return None, None, _issue(item.origin(path), path, "plugin.unknown", message)
    isolation = spec.get("isolation") or catalog.default_isolation
    try:
        return catalog.plugin_class(info, isolation), info, None
    except PluginRefused as exc:
        return None, info, _issue(item.origin(path), path, "plugin.refused", exc.message)
    except FlowStoneError as exc:
        code = _PROBLEM_CODES.get(str(exc.details.get("problem")), "plugin.import_failed")
        return None, info, _issue(item.origin(path), path, code, exc.message)


def check_config(
    plugin: Any, layers: list[tuple[Declared, FieldPath]], label: str, *, partial: bool = False
) -> ConfigCheck:
    """Merge config layers (lowest first) and check them against ``plugin.config_schema``.

    Args:
        plugin: The plugin class.
        layers: ``(document, path of its config)`` pairs, e.g. the IO manager's
            ``spec.config`` then an asset's ``spec.io_config``; positions come from them.
        label: The plugin's name for messages.
        partial: Skip ``required`` rules: an item reader's declaration is completed by
            each asset's ``reader_config`` and checked in full there.
    """
    merged = deep_merge({}, *(_at(item.data, path) for item, path in layers))
    schema = getattr(plugin, "config_schema", None)
    if schema is None:
        return ConfigCheck(merged, ())
    typed_issues = _typed(merged, layers, schema, label)
    if typed_issues:
        return ConfigCheck(merged, typed_issues)
    item, path = layers[-1]

    def bad_schema(exc: Exception) -> ConfigCheck:
        # the plugin author's bug, not the user's; the message never shows config values
        message = (
            f"Plugin {label!r} has an invalid config_schema ({type(exc).__name__}); report it "
            "to the plugin's author."
        )
        return ConfigCheck(merged, (_issue(item.origin(path), path, "plugin.bad_schema", message),))

    try:
        validator = _validator(plugin)
    except Exception as exc:
        return bad_schema(exc)
    key = _memo_key(plugin, merged, partial)
    if key is not None and key in _VALID:
        return ConfigCheck(_VALID[key], ())
    try:
        valid = validator.validate(merged, update=partial)
    except Exception as exc:  # a check_with or coerce function of the schema raised
        return bad_schema(exc)
    if valid:
        normalized = dict(validator.document)
        if key is not None and len(_VALID) < _MEMO_SIZE:
            _VALID[key] = normalized
        return ConfigCheck(normalized, ())
    issues = [
        _config_issue(error, layers, label, plugin.config_schema)
        for error in _leaves(validator._errors)
    ]
    return ConfigCheck(merged, tuple(issues))


#: Normalised configs already found valid, by plugin and config (checks are pure, and
#: the same config recurs across assets and reloads). Callers never mutate them.
_VALID: dict[tuple[Any, bool, str], dict[str, Any]] = {}
_MEMO_SIZE = 4096


def _memo_key(
    plugin: Any, config: Mapping[str, Any], partial: bool
) -> tuple[Any, bool, str] | None:
    try:
        return plugin, partial, json.dumps(config, sort_keys=True)
    except (TypeError, ValueError):
        return None  # dates and other non-JSON values: no memo


@functools.cache
def _validator(plugin: type) -> cerberus.Validator:
    return cerberus.Validator(dict(getattr(plugin, "config_schema", None) or {}))


def _typed(
    merged: dict[str, Any],
    layers: list[tuple[Declared, FieldPath]],
    schema: Mapping[str, Any],
    label: str,
) -> tuple[Issue, ...]:
    """Convert, in ``merged``, each value written as exactly one ``${...}`` to the integer,
    number or boolean the schema asks for there; an issue for each that does not parse."""
    written: dict[FieldPath, tuple[Declared, FieldPath]] = {}
    for inner in {f[len(b) :] for item, b in layers for f in item.typed_paths_below(b)}:
        for item, base in reversed(layers):  # the layer that sets it: a reference there?
            full = (*base, *inner)
            if has_path(item.data, full):
                if item.typed(full):
                    written[inner] = item, full
                break
    issues: list[Issue] = []
    for inner, wanted in coerce_references(merged, written, lambda p: cerberus_type(schema, p)):
        item, full = written[inner]
        key = ".".join(str(p) for p in inner)
        message = not_parsed(f"Config key {key!r} of plugin {label!r}", wanted)
        issues.append(_issue(item.origin(full), full, "plugin.config", message))
    return tuple(issues)


def _leaves(errors: Any) -> Iterator[Any]:
    for error in errors:
        if error.is_group_error:
            yield from _leaves(error.child_errors)
        else:
            yield error


def _config_issue(
    error: Any, layers: list[tuple[Declared, FieldPath]], label: str, schema: Mapping[str, Any]
) -> Issue:
    inner = tuple(error.document_path)
    rule = _rule(error)
    message = _rule_message(error, rule, inner, label, schema)
    for item, base in reversed(layers):
        if has_path(item.data, (*base, *inner)):
            path = (*base, *inner)
            at_key = rule == "unknown"
            return _issue(item.origin(path), path, "plugin.config", message, at_key=at_key)
    item, base = layers[-1]  # a missing key: point where the last layer would add it
    path = (*base, *inner)
    return _issue(item.origin(base), path, "plugin.config", message, at_key=True)


def _rule(error: Any) -> str:
    if error.code == cerberus.errors.UNKNOWN_FIELD.code:
        return "unknown"
    if error.code == cerberus.errors.REQUIRED_FIELD.code:
        return "required"
    return str(error.rule)


_RULES = {
    "type": "must be of type {}",
    "allowed": "must be one of: {}",
    "min": "must be at least {}",
    "max": "must be at most {}",
    "minlength": "must have at least {} item(s) or character(s)",
    "maxlength": "must have at most {} item(s) or character(s)",
    "regex": "must match the pattern {}",
    "empty": "must not be empty",
    "nullable": "must not be null",
    "coerce": "could not be converted to the expected type",
}


def _rule_message(
    error: Any, rule: str, inner: FieldPath, label: str, schema: Mapping[str, Any]
) -> str:
    key = ".".join(str(p) for p in inner) or "config"
    if rule == "unknown":
        known = _known_keys(schema, inner[:-1])
        hint = did_you_mean(str(inner[-1]), known) if inner else ""
        listed = f" (known: {', '.join(known)})" if known and not hint else ""
        return (
            f"{key!r} is not a config key of plugin {label!r}{hint}{listed}; remove or rename it."
        )
    if rule == "required":
        return f"Plugin {label!r} requires config key {key!r}; add it."
    constraint = error.constraint
    if isinstance(constraint, list | tuple):
        constraint = ", ".join(str(c) for c in constraint)
    template = _RULES.get(rule, f"fails the plugin's rule {rule!r}")
    return f"Config key {key!r} of plugin {label!r} {template.format(constraint)}; fix the value."


def _known_keys(schema: Mapping[str, Any], parents: FieldPath) -> list[str]:
    level: Any = schema
    for part in parents:
        rules = level.get(part, {}) if isinstance(level, Mapping) else {}
        level = rules.get("schema", {}) if isinstance(rules, Mapping) else {}
    return [str(k) for k in level] if isinstance(level, Mapping) else []


def _at(data: Mapping[str, Any], path: FieldPath) -> Mapping[str, Any]:
    value: Any = data
    for part in path:
        value = value.get(part, {}) if isinstance(value, Mapping) else {}
    return value if isinstance(value, Mapping) else {}


def _issue(
    source: Source, path: FieldPath, code: str, message: str, *, at_key: bool = False
) -> Issue:
    return Issue(source.position(path, at_key=at_key), path, code, message, source.document.index)
