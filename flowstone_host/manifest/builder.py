"""Build the frozen :class:`ManifestSet` from merged documents, running layer (c) on the way.

Each plugin declaration's class is looked up and its config checked; each asset's config
overrides are merged over its IO manager's (and scatter reader's) config and checked with
the same plugin's schema. A declaration or asset with any issue is left out of the set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..callables import CallablePolicy
from ..config import FieldPath, callable_keys, has_path, value_at
from ..errors import FlowStoneError
from ..kinds import DEFAULT, PLUGIN_KINDS, Kind, has_fallback, kind_info
from ..partition_defs import partitions_def
from .assembly import Declared
from .catalog import Catalog, EntryPointInfo
from .issues import Issue
from .model import Asset, Branch, Declaration, ManifestSet, Parallel, Routing, Scatter, freeze
from .plugin_config import UNLOADABLE, ConfigCheck, check_config, plugin_class

__all__ = ["build_manifests"]

_CONFIG: FieldPath = ("spec", "config")


#: Each declaration's config check and model, by kind and name, with the sources and
#: plugin class they were built from.
Built = dict[tuple[str, str], tuple[tuple[Any, ...], Any, "ConfigCheck", "Declaration | None"]]


def build_manifests(
    declared: Sequence[Declared],
    failed: Iterable[tuple[str, int]],
    catalog: Catalog,
    callables: CallablePolicy,
    built: Built | None = None,
) -> tuple[ManifestSet, list[Issue]]:
    """Check plugin config and build the model of every document without issues.

    Args:
        declared: Merged, shape-valid documents.
        failed: ``(file, document index)`` of documents already reported as invalid.
        catalog: The installed plugins, read under the host's sandbox policy.
        callables: The policy config values marked as callables must pass.
        built: The config checks of the last build, refreshed in place: a declaration whose
            sources are the very same objects (unchanged files) and whose plugin class is
            the same is not checked again.

    Returns:
        The model of the valid declarations and assets, and the layer (c) issues.
    """
    previous = dict(built or {})
    if built is None:
        built = {}
    built.clear()
    bad = set(failed)
    issues: list[Issue] = []
    plugins: dict[tuple[str, str], tuple[Any, Declared]] = {}
    declarations: dict[tuple[str, str], Declaration] = {}
    unloadable: dict[tuple[str, str], tuple[Declaration, str]] = {}
    context = _Context(catalog, callables)
    for item in declared:
        if item.kind not in PLUGIN_KINDS:
            continue
        plugin, info, problem = plugin_class(item, catalog)
        if problem is not None:
            issues.append(problem)
            if problem.code in UNLOADABLE and not _failed(item, bad):
                stub = _declaration(item, item.data["spec"].get("config") or {})
                unloadable[item.kind, item.name] = (stub, problem.message)
                plugins[item.kind, item.name] = (None, item)  # its assets fail in the host
            continue
        check, model = _built(item, plugin, info, previous.get((item.kind, item.name)))
        check = context.callables_checked(check, plugin, item, _CONFIG)
        built[item.kind, item.name] = (item.sources, plugin, check, model)
        issues.extend(check.issues)
        plugins[item.kind, item.name] = (plugin, item)
        if model is not None and not _failed(item, bad):
            declarations[item.kind, item.name] = model
    assets: dict[str, Asset] = {}
    for item in declared:
        if item.kind == Kind.ASSET:
            asset, found = _asset(item, plugins, declarations, context)
            issues.extend(found)
            if asset is not None and not found and not _failed(item, bad):
                assets[item.name] = asset
    manifests = ManifestSet(freeze(declarations), freeze(assets), MappingProxyType(unloadable))
    return manifests, issues


class _Context:
    """What checking configs needs besides the documents: the catalog and callables."""

    def __init__(self, catalog: Catalog, callables: CallablePolicy) -> None:
        self.catalog = catalog
        self.callables = callables

    def callables_checked(
        self, check: ConfigCheck, plugin: Any, item: Declared, base: FieldPath
    ) -> ConfigCheck:
        """Add an issue for each config value the plugin marks as a callable that names a
        function outside ``callables.allow``."""
        issues = list(check.issues)
        for path in callable_keys(getattr(plugin, "config_schema", None)):
            value = value_at(check.config, path)
            if not isinstance(value, str):
                continue
            try:
                self.callables.check(value)
            except FlowStoneError as exc:
                where = (*base, *path)
                source = item.origin(where)
                issues.append(
                    Issue(
                        source.position(where),
                        where,
                        "ref.callable_denied",
                        exc.message,
                        source.document.index,
                    )
                )
        return (
            check if len(issues) == len(check.issues) else ConfigCheck(check.config, tuple(issues))
        )


def _built(
    item: Declared,
    plugin: Any,
    info: EntryPointInfo | None,
    last: tuple[tuple[Any, ...], Any, ConfigCheck, Any] | None,
) -> tuple[ConfigCheck, Declaration | None]:
    """Check a declaration and build its model, or reuse ``last`` if nothing changed."""
    if last is not None and last[1] is plugin and _same(last[0], item.sources):
        return last[2], last[3]
    partial = kind_info(item.kind).per_run  # completed by each asset's config override
    check = check_config(plugin, [(item, _CONFIG)], item.data["spec"]["plugin"], partial=partial)
    return check, None if check.issues else _declaration(item, check.config, info)


def _same(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    return len(old) == len(new) and all(a is b for a, b in zip(old, new, strict=True))


def _failed(item: Declared, bad: set[tuple[str, int]]) -> bool:
    return any((s.document.file, s.document.index) in bad for s in item.sources)


def _declaration(
    item: Declared, config: Mapping[str, Any], info: EntryPointInfo | None = None
) -> Declaration:
    spec = item.data["spec"]
    positions = tuple(s.position(("metadata", "name")) for s in item.sources)
    return Declaration(
        kind=item.kind,
        name=item.name,
        plugin=spec["plugin"],
        config=freeze(config),
        contract=spec.get("contract"),
        isolation=spec.get("isolation"),
        timeout_s=spec.get("timeout_s"),
        env=freeze(spec.get("env", {})),
        depends_on=tuple(spec.get("depends_on", ())),
        env_paths=_below(item.env_paths, _CONFIG),
        source=positions[-1],
        sources=positions,
        entry_point=info,
    )


def _resolved(
    item: Declared,
    override: FieldPath,
    target: tuple[str, str],
    plugins: Mapping[tuple[str, str], tuple[Any, Declared]],
    declarations: Mapping[tuple[str, str], Declaration],
    context: _Context,
) -> tuple[Mapping[str, Any] | None, list[Issue]]:
    """Return the config ``target`` gets for this asset, or ``None`` if it cannot be had."""
    kind, name = target
    if target not in plugins:
        if not has_fallback(kind, name):
            return None, []  # the declaration itself is reported
        plugin, label = _fallback_class(kind, context.catalog)
        if plugin is None:
            return None, []
        check = check_config(plugin, [(item, override)], label)
        return check.config, list(check.issues)
    per_run = kind_info(kind).per_run  # a per-run config is completed by the asset: check it
    if target in declarations and not has_path(item.data, override) and not per_run:
        return declarations[target].config, []
    plugin, owner = plugins[target]
    if plugin is None:
        return {}, []  # unloadable: the asset stays, and fails where its IO manager does
    label = owner.data["spec"]["plugin"]
    check = check_config(plugin, [(owner, _CONFIG), (item, override)], label)
    check = context.callables_checked(check, plugin, item, override)
    return (None if check.issues else check.config), list(check.issues)


def _fallback_class(kind: str, catalog: Catalog) -> tuple[Any, str]:
    """Return the class an undeclared ``default`` of ``kind`` stands for, or ``None``."""
    name = kind_info(kind).fallback or ""
    info = catalog.find(kind, name)
    try:
        return (catalog.plugin_class(info, "inprocess") if info else None), name
    except FlowStoneError:
        return None, name


def _asset(
    item: Declared,
    plugins: Mapping[tuple[str, str], tuple[Any, Declared]],
    declarations: Mapping[tuple[str, str], Declaration],
    context: _Context,
) -> tuple[Asset | None, list[Issue]]:
    spec = item.data["spec"]
    target = (Kind.IO_MANAGER, spec.get("io_manager", DEFAULT))
    io_path = ("spec", "io_config")
    io_config, issues = _resolved(item, io_path, target, plugins, declarations, context)
    scatter = None
    if "scatter" in spec:
        reader = (Kind.ITEM_READER, spec["scatter"]["reader"])
        path = ("spec", "scatter", "reader_config")
        reader_config, found = _resolved(item, path, reader, plugins, declarations, context)
        issues.extend(found)
        scatter = _scatter(spec["scatter"], reader_config or {})
    if io_config is None:
        return None, issues
    try:
        partitions = partitions_def(spec.get("partitions"))
    except FlowStoneError:
        return None, issues  # reported by layer (b)
    positions = tuple(s.position(("metadata", "name")) for s in item.sources)
    return Asset(
        name=item.name,
        compute=spec.get("compute"),
        deps=tuple(spec.get("deps", ())),
        io_manager=target[1],
        io_config=freeze(spec.get("io_config", {})),
        resolved_io_config=freeze(io_config),
        partitions=partitions,
        scatter=scatter,
        parallel=_parallel(spec["parallel"]) if "parallel" in spec else None,
        routing=_routing(spec["routing"]) if "routing" in spec else None,
        description=spec.get("description", ""),
        env_paths=frozenset(p[1:] for p in item.env_paths if p[:1] == ("spec",)),
        source=positions[-1],
        sources=positions,
    ), issues


def _scatter(spec: Mapping[str, Any], reader_config: Mapping[str, Any]) -> Scatter:
    return Scatter(
        reader=spec["reader"],
        item=spec["item"],
        coordinator=spec.get("coordinator", DEFAULT),
        executor=spec.get("executor", DEFAULT),
        batch_size=spec.get("batch_size", 100),
        max_concurrency=spec.get("max_concurrency", 4),
        items_per_call=spec.get("items_per_call", 1),
        tolerated_failures=freeze(spec.get("tolerated_failures", {"count": 0})),
        gather=spec.get("gather"),
        reader_config=freeze(spec.get("reader_config", {})),
        resolved_reader_config=freeze(reader_config),
    )


def _parallel(spec: Mapping[str, Any]) -> Parallel:
    branches = {
        name: Branch(body["compute"], body.get("required", True))
        for name, body in spec["branches"].items()
    }
    coordinator, executor = spec.get("coordinator", DEFAULT), spec.get("executor", DEFAULT)
    return Parallel(freeze(branches), spec["join"], coordinator, executor)


def _routing(spec: Mapping[str, Any]) -> Routing:
    return Routing(spec["router"], freeze(spec["routes"]), spec.get("coordinator", DEFAULT))


def _below(paths: frozenset[FieldPath], prefix: FieldPath) -> frozenset[FieldPath]:
    return frozenset(p[len(prefix) :] for p in paths if p[: len(prefix)] == prefix)
