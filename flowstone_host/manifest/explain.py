"""``config show``: the merged, redacted config of a declaration or asset, key by key.

With ``explain``, each key says which layer set it: the plugin's ``config_schema``
default, a file and line (naming the overlay folder if it came from one), an asset's
override, and whether the value came from the environment. Given the catalog, keys the
plugin's schema marks secret (``"meta": {"secret": true}``) are redacted too.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import REDACTED, FieldPath, redact, secret_keys
from ..errors import FlowStoneError, NotFound
from .assembly import Declared
from .catalog import Catalog
from .model import Declaration, thaw
from .schema import KINDS
from .validate import ValidationReport

__all__ = ["ExplainedKey", "explain_asset", "explain_declaration", "show_config"]

_CONFIG: FieldPath = ("spec", "config")


@dataclass(frozen=True, slots=True)
class ExplainedKey:
    """One leaf of a config: its dotted key, redacted value and the layer that set it."""

    key: str
    value: Any
    layer: str


def explain_declaration(
    report: ValidationReport, kind: str, name: str, catalog: Catalog | None = None
) -> list[ExplainedKey]:
    """Explain the config declaration ``kind``/``name`` gets; with ``catalog``, keys its
    plugin's schema marks secret are redacted too.

    Raises:
        NotFound: no valid declaration of that kind and name.
    """
    declaration = report.manifests.get(kind, name)
    if declaration is None:
        raise NotFound(_missing(report, f"{kind} {name!r}"), kind=kind, name=name)
    layers = [(_declared(report, kind, name), _CONFIG)]
    secrets = _secrets(catalog, declaration)
    return list(_explain(declaration.config, declaration.env_paths, layers, secrets))


def _secrets(catalog: Catalog | None, declaration: Declaration | None) -> frozenset[FieldPath]:
    """The config paths ``declaration``'s plugin schema marks secret (none without a
    catalog, or when its class cannot be read)."""
    if catalog is None or declaration is None:
        return frozenset()
    info = declaration.entry_point or catalog.find(declaration.kind, declaration.plugin)
    if info is None:
        return frozenset()
    isolation = declaration.isolation or catalog.default_isolation
    try:
        plugin_class = catalog.plugin_class(info, isolation)
    except FlowStoneError:
        return frozenset()
    return frozenset(secret_keys(getattr(plugin_class, "config_schema", None)))


def explain_asset(
    report: ValidationReport, name: str, catalog: Catalog | None = None
) -> dict[str, list[ExplainedKey]]:
    """Explain the IO config (and scatter reader config) asset ``name`` gets; with
    ``catalog``, keys the IO manager's (reader's) schema marks secret are redacted too.

    Raises:
        NotFound: no valid asset of that name.
    """
    asset = report.manifests.assets.get(name)
    if asset is None:
        raise NotFound(_missing(report, f"asset {name!r}", only="Asset"), asset=name)
    own = _declared(report, "Asset", name)
    sections: dict[str, tuple[tuple[str, str], FieldPath]] = {
        "io_config": (("IOManager", asset.io_manager), ("spec", "io_config"))
    }
    if asset.scatter is not None:
        sections["reader_config"] = (
            ("ItemReader", asset.scatter.reader),
            ("spec", "scatter", "reader_config"),
        )
    result: dict[str, list[ExplainedKey]] = {}
    for section, (target, path) in sections.items():
        owner = _find(report, *target)
        layers = ([(owner, _CONFIG)] if owner else []) + [(own, path)]
        values = (
            asset.resolved_io_config
            if section == "io_config"
            else (asset.scatter.resolved_reader_config if asset.scatter else {})
        )
        hidden = {p[len(path) :] for p in own.env_paths if p[: len(path)] == path}
        if owner is not None:
            hidden |= {p[2:] for p in owner.env_paths if p[:2] == _CONFIG}
        secrets = _secrets(catalog, report.manifests.get(*target))
        result[section] = list(_explain(values, frozenset(hidden), layers, secrets))
    return result


def _explain(
    values: Mapping[str, Any],
    env_paths: frozenset[FieldPath],
    layers: list[tuple[Declared, FieldPath]],
    secrets: frozenset[FieldPath] = frozenset(),
) -> Iterator[ExplainedKey]:
    shown = redact(thaw(values), env_paths | secrets)
    for path, value in _leaves(shown, ()):
        layer = _layer(path, layers)
        if value == REDACTED and any(path[: len(p)] == p for p in env_paths):
            layer += ", from the environment"
        yield ExplainedKey(".".join(str(p) for p in path), value, layer)


def _layer(path: FieldPath, layers: list[tuple[Declared, FieldPath]]) -> str:
    for index, (item, base) in enumerate(reversed(layers)):
        full = (*base, *path)
        source = item.origin(full)
        if source.has(full):
            where = str(source.position(full, at_key=True))
            overlay = f" (overlay {source.layer_name})" if source.layer else ""
            role = "asset override" if index == 0 and len(layers) > 1 else "declaration"
            return f"{role} {where}{overlay}"
    return "plugin default"


def _leaves(value: Any, path: FieldPath) -> Iterator[tuple[FieldPath, Any]]:
    if isinstance(value, Mapping) and value:
        for key, child in value.items():
            yield from _leaves(child, (*path, key))
    elif path:  # an empty config has no leaves at all
        yield path, value


def _find(report: ValidationReport, kind: str, name: str) -> Declared | None:
    return next((d for d in report.declared if d.kind == kind and d.name == name), None)


def _declared(report: ValidationReport, kind: str, name: str) -> Declared:
    found = _find(report, kind, name)
    if found is None:
        raise NotFound(_missing(report, f"{kind} {name!r}"), kind=kind, name=name)
    return found


def _missing(report: ValidationReport, what: str, only: str | None = None) -> str:
    found = [d for d in report.declared if only in (None, d.kind)]
    names = sorted({d.name if only else f"{d.kind}/{d.name}" for d in found})
    hint = "" if report.ok else " (some manifests are invalid: run `flowstone-host validate`)"
    return f"No valid {what}{hint}; declared: {', '.join(names) or 'nothing'}."


def show_config(
    report: ValidationReport,
    name: str | None = None,
    *,
    kind: str | None = None,
    asset: str | None = None,
    explain: bool = False,
    catalog: Catalog | None = None,
) -> str:
    """Return the text of ``config show``: one block per declaration or asset section.

    ``catalog`` (the installed plugins) lets keys the plugins' schemas mark secret be
    redacted too.

    Raises:
        NotFound: the named declaration or asset is not there (or not valid).
    """
    blocks: dict[str, list[ExplainedKey]] = {}
    if kind is not None and kind not in KINDS:
        hint = difflib.get_close_matches(kind, KINDS, n=1)
        suggestion = f"did you mean {hint[0]!r}? " if hint else ""
        raise NotFound(f"No kind {kind!r}; {suggestion}known kinds: {', '.join(KINDS)}.", kind=kind)
    if asset is not None:
        for section, keys in explain_asset(report, asset, catalog).items():
            blocks[f"Asset {asset} {section}"] = keys
    else:
        for declaration in report.manifests.declarations.values():
            if name in (None, declaration.name) and kind in (None, declaration.kind):
                title = f"{declaration.kind} {declaration.name} (plugin {declaration.plugin})"
                blocks[title] = explain_declaration(
                    report, declaration.kind, declaration.name, catalog
                )
        if not blocks:
            raise NotFound(_missing(report, f"{kind or 'declaration'} {name!r}", kind), name=name)
    lines: list[str] = []
    for title, keys in blocks.items():
        lines.append(f"{title}:")
        width = max((len(k.key) + len(_scalar(k.value)) for k in keys), default=0) + 4
        if not keys:
            lines.append("  (no config)")
        for key in keys:
            text = f"  {key.key}: {_scalar(key.value)}"
            lines.append(f"{text:<{width}}  # {key.layer}" if explain and key.layer else text)
    return "\n".join(lines)


def _scalar(value: Any) -> str:
    return json.dumps(value, default=str)
