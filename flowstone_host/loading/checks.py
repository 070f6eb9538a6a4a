"""What the loader checks of a plugin class before building anything, and what it records.

The class must subclass its contract's ABC and implement every abstract method; its
declared contract version must be one this host runs and inside the declaration's
``spec.contract`` range. A process-isolated plugin is never imported into the host: a
stand-in class carries what its import probe read.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Mapping
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from ..contracts.versions import Compatibility, Contract, check_compatibility
from ..errors import IncompatibleContract, PluginLoadError
from ..manifest.catalog import EntryPointInfo
from ..manifest.model import Declaration

__all__ = ["check_class", "compatible", "label", "metadata", "stand_in"]


def label(declaration: Declaration) -> str:
    """Name a declaration for messages: kind, name, plugin and where it is declared."""
    where = f" ({declaration.source})" if declaration.source else ""
    return f"{declaration.kind} {declaration.name!r} (plugin {declaration.plugin!r}){where}"


def stand_in(plugin: str, declared: Mapping[str, Any]) -> type[Any]:
    """A class carrying what a probe read of a plugin class, checked: the probe ran plugin
    code, so what it reports is the plugin's word and may be anything."""
    attributes: dict[str, Any] = {
        k: v
        for k in ("contract_version", "plugin_version")
        if isinstance(v := declared.get(k), str)
    }
    schema = declared.get("config_schema")
    if isinstance(schema, Mapping) and all(isinstance(k, str) for k in schema):
        attributes["config_schema"] = dict(schema)
    return _stand_in_class(plugin, json.dumps(attributes, sort_keys=True, default=repr))


@functools.lru_cache(maxsize=256)
def _stand_in_class(plugin: str, attributes: str) -> type[Any]:
    # One class per plugin and attributes, so memos keyed by class keep working across
    # reloads instead of growing by a class each time.
    return type(f"Probed[{plugin}]", (), json.loads(attributes))


def check_class(
    contract: Contract, info: EntryPointInfo, loaded: Any, declaration: Declaration
) -> None:
    if not (inspect.isclass(loaded) and issubclass(loaded, contract.abc)):
        what = loaded.__name__ if inspect.isclass(loaded) else type(loaded).__name__
        raise PluginLoadError(
            f"{label(declaration)}: {info.target} is a {what}, not a subclass of "
            f"{contract.abc.__name__}; it is registered under the wrong namespace or does "
            f"not implement the contract.",
        )
    missing = sorted(getattr(loaded, "__abstractmethods__", ()))
    if missing:
        raise PluginLoadError(
            f"{label(declaration)}: {info.target} does not implement "
            f"{', '.join(missing)} of {contract.abc.__name__}.",
            details={"missing": missing},
        )


def compatible(
    plugin_class: type[Any], contract: Contract, declaration: Declaration
) -> Compatibility:
    compatibility = check_compatibility(plugin_class, contract, name=declaration.name)
    if declaration.contract:
        version = compatibility.declared or contract.current
        try:
            accepted = version in SpecifierSet(declaration.contract)
        except InvalidSpecifier:
            accepted = False
        if not accepted:
            raise IncompatibleContract(
                f"{label(declaration)} implements {contract.kind} contract {version}, outside "
                f"the declaration's range {declaration.contract!r}. Widen spec.contract or "
                f"install a matching plugin release.",
                declared=version,
                supported=declaration.contract,
            )
    return compatibility


def metadata(
    info: EntryPointInfo, isolation: str, compatibility: Compatibility, plugin_class: type[Any]
) -> dict[str, Any]:
    return {
        "distribution": info.distribution,
        "version": info.version,
        "target": info.target,
        "isolation": isolation,
        "contract_version": compatibility.declared,
        "compatibility": compatibility.status,
        "plugin_version": getattr(plugin_class, "plugin_version", None),
    }
