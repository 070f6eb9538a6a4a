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
from .schema_wire import from_wire

__all__ = [
    "check_contract_class",
    "check_probed_class",
    "compatible",
    "label",
    "metadata",
    "stand_in",
]


def label(declaration: Declaration) -> str:
    """Name a declaration for messages: kind, name, plugin and where it is declared."""
    where = f" ({declaration.source})" if declaration.source else ""
    return f"{declaration.kind} {declaration.name!r} (plugin {declaration.plugin!r}){where}"


def stand_in(plugin: str, declared: Mapping[str, Any]) -> type[Any]:
    """A class carrying what a probe read of a plugin class, checked: the probe ran plugin
    code, so what it reports is the plugin's word and may be anything.

    Its ``config_schema`` is rebuilt with the standard coercions (:mod:`.schema_wire`);
    ``config_schema_problem`` says why a schema could not be carried, and then the config
    cannot be checked: the declaration must be refused, never run unchecked.
    """
    attributes: dict[str, Any] = {
        k: v
        for k in ("contract_version", "plugin_version", "config_schema_problem")
        if isinstance(v := declared.get(k), str)
    }
    schema = declared.get("config_schema")
    if isinstance(schema, Mapping) and all(isinstance(k, str) for k in schema):
        attributes["config_schema"] = dict(schema)
    elif schema is not None:
        attributes["config_schema_problem"] = "its config_schema is not a mapping"
    return _stand_in_class(plugin, json.dumps(attributes, sort_keys=True, default=repr))


@functools.lru_cache(maxsize=256)
def _stand_in_class(plugin: str, attributes: str) -> type[Any]:
    # One class per plugin and attributes, so memos keyed by class keep working across
    # reloads instead of growing by a class each time.
    namespace = json.loads(attributes)
    if "config_schema" in namespace:
        namespace["config_schema"] = from_wire(namespace["config_schema"])
    return type(f"Probed[{plugin}]", (), namespace)


def check_contract_class(contract: Contract, info: EntryPointInfo, loaded: Any) -> None:
    """Refuse an imported object that is not a complete subclass of ``contract``'s ABC.

    Raises:
        PluginLoadError: with ``details["problem"] == "wrong_class"``.
    """
    if not (inspect.isclass(loaded) and issubclass(loaded, contract.abc)):
        what = loaded.__name__ if inspect.isclass(loaded) else type(loaded).__name__
        raise _wrong_class(
            contract, info, f"is a {what}, not a subclass of {contract.abc.__name__}"
        )
    missing = sorted(getattr(loaded, "__abstractmethods__", ()))
    if missing:
        raise _wrong_class(contract, info, _not_implementing(contract, missing), missing)


def check_probed_class(
    contract: Contract, info: EntryPointInfo, declared: Mapping[str, Any]
) -> None:
    """Refuse, from its probe's report, a plugin that is not a complete subclass of
    ``contract``'s ABC, or whose config schema cannot be checked outside its process.

    Raises:
        PluginLoadError: ``details["problem"]`` is ``wrong_class`` or
            ``schema_uncheckable``.
    """
    contracts = declared.get("contracts")
    if isinstance(contracts, Mapping):  # absent from the reports of older probes
        missing = contracts.get(contract.kind)
        if not isinstance(missing, list):
            raise _wrong_class(contract, info, f"is not a subclass of {contract.abc.__name__}")
        if missing:
            raise _wrong_class(contract, info, _not_implementing(contract, missing), missing)
    problem = declared.get("config_schema_problem")
    if problem:
        raise PluginLoadError(
            f"Plugin {info.name!r} ({info.target}) runs in its own process, and its config "
            f"cannot be checked there: {problem}. The declaration is refused rather than run "
            "with its config unchecked; use a standard coercion or a type rule in "
            "config_schema, or isolation: inprocess.",
            details={"problem": "schema_uncheckable"},
        )


def _not_implementing(contract: Contract, missing: list[str]) -> str:
    return f"does not implement {', '.join(missing)} of {contract.abc.__name__}"


def _wrong_class(
    contract: Contract, info: EntryPointInfo, what: str, missing: list[str] | None = None
) -> PluginLoadError:
    return PluginLoadError(
        f"Plugin {info.name!r}: {info.target} {what}; it is registered under the wrong "
        f"namespace ({info.namespace}) or does not implement the {contract.kind} contract. "
        "Fix the class or its entry point.",
        details={"problem": "wrong_class", "missing": missing or []},
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
    info: EntryPointInfo,
    isolation: str,
    compatibility: Compatibility,
    plugin_class: type[Any],
    running: str | None = None,
) -> dict[str, Any]:
    """The loader facts of an entry; ``version`` is the one whose code runs (``running``)."""
    running = running or info.version
    extra: dict[str, Any] = {}
    if running != info.version:
        extra["installed_version"] = info.version
    if isolation == "process":  # the proxy class says what holds its child
        extra["containment"] = getattr(plugin_class, "containment", None)
    return {
        "distribution": info.distribution,
        "version": running,
        **extra,
        "target": info.target,
        "isolation": isolation,
        "contract_version": compatibility.declared,
        "compatibility": compatibility.status,
        "plugin_version": getattr(plugin_class, "plugin_version", None),
    }
