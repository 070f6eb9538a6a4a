"""The bundled JSON Schemas (``schemas/``): loading, the one validator, and exporting.

The schema files ship inside the package (``flowstone_host/schemas``) and are read with
:mod:`importlib.resources`. ``$ref`` between them is resolved by a :mod:`referencing`
registry that holds only these files and has no way to retrieve anything else, so nothing
is ever fetched over the network.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

import referencing
import referencing.jsonschema
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from ..errors import NotFound

__all__ = [
    "ENTRY_SCHEMA",
    "KINDS",
    "bundled_schema",
    "manifest_validator",
    "schema_files",
]

#: The entry point: the schema of one manifest document.
ENTRY_SCHEMA = "manifest.schema.json"


@functools.cache
def schema_files() -> dict[str, dict[str, Any]]:
    """Return every bundled schema by file name, parsed once."""
    folder = resources.files("flowstone_host").joinpath("schemas")
    return {
        item.name: json.loads(item.read_text(encoding="utf-8"))
        for item in folder.iterdir()
        if item.name.endswith(".schema.json")
    }


@functools.cache
def _registry() -> referencing.Registry[Any]:
    resources_ = [
        (
            name,
            referencing.Resource.from_contents(
                contents, default_specification=referencing.jsonschema.DRAFT202012
            ),
        )
        for name, contents in schema_files().items()
    ]
    return referencing.Registry().with_resources(resources_).crawl()


@functools.cache
def manifest_validator() -> Draft202012Validator:
    """Return the Draft 2020-12 validator of one manifest document, built once."""
    return Draft202012Validator(schema_files()[ENTRY_SCHEMA], registry=_registry())


def _kinds() -> tuple[str, ...]:
    return tuple(schema_files()[ENTRY_SCHEMA]["properties"]["kind"]["enum"])


#: Every document kind, plugin kinds first, then ``Asset`` and ``HostConfig``.
KINDS: tuple[str, ...] = _kinds()


def bundled_schema(kind: str | None = None) -> dict[str, Any]:
    """Return a self-contained schema: one document, or one document of ``kind``.

    The other schema files are embedded under ``$defs`` with their file name as ``$id``,
    so the relative ``$ref``s resolve inside the one file an editor or CI tool is given.

    Raises:
        NotFound: ``kind`` is not a known kind.
    """
    files = schema_files()
    if kind is not None and kind not in KINDS:
        raise NotFound(f"No kind {kind!r}; known kinds: {', '.join(KINDS)}.", kind=kind)
    root = copy.deepcopy(files[ENTRY_SCHEMA])
    if kind is not None:
        root = {
            "$schema": root["$schema"],
            "title": f"FlowStone {kind} document",
            "description": f"One manifest document of kind {kind}.",
            "$ref": ENTRY_SCHEMA,
            "properties": {"kind": {"const": kind}},
        }
        files = {**files, ENTRY_SCHEMA: {**files[ENTRY_SCHEMA], "$id": ENTRY_SCHEMA}}
    embedded = {
        name: {**contents, "$id": name}
        for name, contents in files.items()
        if name != ENTRY_SCHEMA or kind is not None
    }
    root["$defs"] = {**root.get("$defs", {}), **embedded}
    return root
