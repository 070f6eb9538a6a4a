"""Build the frozen :class:`ManifestSet` from merged documents, running layer (c) on the way.

Each plugin declaration's class is looked up and its config checked; each asset's config
overrides are merged over its IO manager's (and scatter reader's) config and checked with
the same plugin's schema. A declaration or asset with any issue is left out of the set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..config import FieldPath, has_path
from ..contracts.versions import CONTRACTS
from ..errors import FlowStoneError
from ..loading import entry_points
from ..loading.loader import PluginLoader
from .assembly import Declared
from .issues import Issue
from .model import Asset, Branch, Declaration, ManifestSet, Parallel, Routing, Scatter, freeze
from .plugin_config import UNLOADABLE, ConfigCheck, check_config, plugin_class

__all__ = ["build_manifests"]

_CONFIG: FieldPath = ("spec", "config")
_FALLBACK = ("flowstone.io_managers", "memory")  # what an undeclared "default" IO manager is


#: Each declaration's config check and model, by kind and name, with the sources and
#: plugin class they were built from.
Built = dict[tuple[str, str], tuple[tuple[Any, ...], Any, "ConfigCheck", "Declaration | None"]]


def build_manifests(
    declared: Sequence[Declared],
    failed: Iterable[tuple[str, int]],
    loader: PluginLoader,
    built: Built | None = None,
) -> tuple[ManifestSet, list[Issue]]:
    """Check plugin config and build the model of every document without issues.

    Args:
        declared: Merged, shape-valid documents.
        failed: ``(file, document index)`` of documents already reported as invalid.
        loader: Reads plugin classes under the host's sandbox policy.
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
    for item in declared:
        if item.kind not in CONTRACTS:
            continue
        plugin, problem = plugin_class(item, loader)
        if problem is not None:
            issues.append(problem)
            if problem.code in UNLOADABLE and not _failed(item, bad):
                stub = _declaration(item, item.data["spec"].get("config") or {})
                unloadable[item.kind, item.name] = (stub, problem.message)
                plugins[item.kind, item.name] = (None, item)  # its assets fail in the host
            continue
        check, model = _built(item, plugin, previous.get((item.kind, item.name)))
        built[item.kind, item.name] = (item.sources, plugin, check, model)
        issues.extend(check.issues)
        plugins[item.kind, item.name] = (plugin, item)
        if model is not None and not _failed(item, bad):
            declarations[item.kind, item.name] = model
    assets: dict[str, Asset] = {}
    for item in declared:
        if item.kind == "Asset":
            asset, found = _asset(item, plugins, declarations)
            issues.extend(found)
            if asset is not None and not found and not _failed(item, bad):
                assets[item.name] = asset
    manifests = ManifestSet(freeze(declarations), freeze(assets), MappingProxyType(unloadable))
    return manifests, issues


def _built(
    item: Declared, plugin: Any, last: tuple[tuple[Any, ...], Any, ConfigCheck, Any] | None
) -> tuple[ConfigCheck, Declaration | None]:
    """Check a declaration and build its model, or reuse ``last`` if nothing changed."""
    if last is not None and last[1] is plugin and _same(last[0], item.sources):
        return last[2], last[3]
    partial = item.kind == "ItemReader"  # completed by each asset's reader_config
    check = check_config(plugin, [(item, _CONFIG)], item.data["spec"]["plugin"], partial=partial)
    return check, None if check.issues else _declaration(item, check.config)


def _same(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    return len(old) == len(new) and all(a is b for a, b in zip(old, new, strict=True))


def _failed(item: Declared, bad: set[tuple[str, int]]) -> bool:
    return any((s.document.file, s.document.index) in bad for s in item.sources)


def _declaration(item: Declared, config: Mapping[str, Any]) -> Declaration:
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
    )


def _resolved(
    item: Declared,
    override: FieldPath,
    target: tuple[str, str],
    plugins: Mapping[tuple[str, str], tuple[Any, Declared]],
    declarations: Mapping[tuple[str, str], Declaration],
) -> tuple[Mapping[str, Any] | None, list[Issue]]:
    """Return the config ``target`` gets for this asset, or ``None`` if it cannot be had."""
    if target not in plugins:
        if target != ("IOManager", "default"):
            return None, []  # the declaration itself is reported
        try:
            plugin = entry_points.load_class(*_FALLBACK)
        except FlowStoneError:
            return None, []
        check = check_config(plugin, [(item, override)], _FALLBACK[1])
        return check.config, list(check.issues)
    if target in declarations and not has_path(item.data, override) and target[0] != "ItemReader":
        return declarations[target].config, []
    plugin, owner = plugins[target]
    if plugin is None:
        return {}, []  # unloadable: the asset stays, and fails where its IO manager does
    label = owner.data["spec"]["plugin"]
    check = check_config(plugin, [(owner, _CONFIG), (item, override)], label)
    return (None if check.issues else check.config), list(check.issues)


def _asset(
    item: Declared,
    plugins: Mapping[tuple[str, str], tuple[Any, Declared]],
    declarations: Mapping[tuple[str, str], Declaration],
) -> tuple[Asset | None, list[Issue]]:
    spec = item.data["spec"]
    target = ("IOManager", spec.get("io_manager", "default"))
    io_config, issues = _resolved(item, ("spec", "io_config"), target, plugins, declarations)
    scatter = None
    if "scatter" in spec:
        reader = ("ItemReader", spec["scatter"]["reader"])
        path = ("spec", "scatter", "reader_config")
        reader_config, found = _resolved(item, path, reader, plugins, declarations)
        issues.extend(found)
        scatter = _scatter(spec["scatter"], reader_config or {})
    if io_config is None:
        return None, issues
    positions = tuple(s.position(("metadata", "name")) for s in item.sources)
    return Asset(
        name=item.name,
        compute=spec.get("compute"),
        deps=tuple(spec.get("deps", ())),
        io_manager=target[1],
        io_config=freeze(spec.get("io_config", {})),
        resolved_io_config=freeze(io_config),
        partitions=freeze(spec.get("partitions")),
        scatter=scatter,
        parallel=_parallel(spec["parallel"]) if "parallel" in spec else None,
        routing=Routing(spec["routing"]["router"], freeze(spec["routing"]["routes"]))
        if "routing" in spec
        else None,
        description=spec.get("description", ""),
        env_paths=frozenset(p[1:] for p in item.env_paths if p[:1] == ("spec",)),
        source=positions[-1],
        sources=positions,
    ), issues


def _scatter(spec: Mapping[str, Any], reader_config: Mapping[str, Any]) -> Scatter:
    return Scatter(
        reader=spec["reader"],
        item=spec["item"],
        batch_size=spec.get("batch_size", 100),
        max_concurrency=spec.get("max_concurrency", 4),
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
    return Parallel(freeze(branches), spec["join"])


def _below(paths: frozenset[FieldPath], prefix: FieldPath) -> frozenset[FieldPath]:
    return frozenset(p[len(prefix) :] for p in paths if p[: len(prefix)] == prefix)
