"""The manifest JSON Schema with each installed plugin's config schema in place.

``flowstone-host schema --installed``: every ``(kind, spec.plugin)`` of an installed
plugin gets an ``if``/``then`` branch that checks ``spec.config`` with the plugin's own
``config_schema`` (translated by :mod:`.config_jsonschema`). Plugins are read through a
:class:`~.catalog.Catalog` (as process-isolated, so nothing is imported into the caller);
one whose class cannot be read, or whose schema cannot leave its probe, keeps a free-form
``spec.config``, and is named in ``$comment``.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import FlowStoneError
from ..kinds import PLUGIN_KINDS
from .catalog import Catalog, EntryPointInfo
from .config_jsonschema import config_json_schema
from .schema import bundled_schema

__all__ = ["installed_schema"]


def installed_schema(catalog: Catalog, *, workers: int = 8) -> dict[str, Any]:
    """Return the whole-document schema, ``spec.config`` checked per installed plugin."""
    found = [
        (kind, info)
        for kind in PLUGIN_KINDS
        for name in catalog.names(kind)
        if (info := catalog.find(kind, name)) is not None
    ]

    def read(item: tuple[str, EntryPointInfo]) -> Any:
        return _config_schema(catalog, item[1])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        schemas = list(pool.map(read, found))
    root = bundled_schema()
    branches = root.setdefault("allOf", [])
    skipped = []
    for (kind, info), schema in zip(found, schemas, strict=True):
        if not isinstance(schema, Mapping):
            skipped.append(f"{kind}/{info.name}")
            continue
        branches.append(_branch(kind, info.name, config_json_schema(schema)))
    root["title"] = "FlowStone manifest document (with the installed plugins' config)"
    if skipped:
        root["$comment"] = f"spec.config left free-form for: {', '.join(skipped)}"
    return root


def _config_schema(catalog: Catalog, info: EntryPointInfo) -> Any:
    try:
        plugin = catalog.plugin_class(info, "process")
    except FlowStoneError:
        return None
    if getattr(plugin, "config_schema_problem", None):
        return None
    return getattr(plugin, "config_schema", None)  # None: any config, as the host does


def _branch(kind: str, plugin: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "if": {
            "required": ["kind", "spec"],
            "properties": {
                "kind": {"const": kind},
                "spec": {"required": ["plugin"], "properties": {"plugin": {"const": plugin}}},
            },
        },
        "then": {"properties": {"spec": {"properties": {"config": config}}}},
    }
