"""Layer (b): cross-references between documents.

Checks that every name an asset uses is declared (its IO manager, scatter reader,
dependencies and route targets) and every resource a plugin declaration ``depends_on``,
that callables come from modules the host config allows, that neither assets nor
resources depend on each other in a cycle (the cycle is named), that no host config
hides among the manifests, and that the runtime can honour every asset
(:mod:`.asset_checks`: partitions, how deps map onto them, reachable routes). Names
unique per kind are checked while merging layers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..config import FieldPath
from ..errors import FlowStoneError
from ..kinds import DEFAULT, KINDS, PLUGIN_KINDS, Kind, kind_info
from .assembly import Declared
from .asset_checks import asset_issues
from .host_config import HostConfig
from .issues import Issue
from .shape import did_you_mean

__all__ = ["reference_issues"]


def reference_issues(declared: Sequence[Declared], host: HostConfig) -> list[Issue]:
    """Return every broken reference among ``declared`` (merged, shape-valid documents)."""
    names: dict[str, list[str]] = {}
    for item in declared:
        names.setdefault(item.kind, []).append(item.name)
    for kind, info in KINDS.items():
        if info.fallback is not None:  # an undeclared default stands for the fallback plugin
            names.setdefault(kind, []).append(DEFAULT)
    issues: list[Issue] = []
    assets = [item for item in declared if item.kind == Kind.ASSET]
    for item in declared:
        if item.kind == "HostConfig":
            issues.append(_issue(item, ("kind",), "ref.host_config", _HOST_CONFIG_MESSAGE))
    for asset in assets:
        issues.extend(_missing_names(asset, names))
        issues.extend(_denied_callables(asset, host))
    issues.extend(_cycles(assets, "deps"))
    issues.extend(asset_issues(declared))
    plugins = [item for item in declared if item.kind in PLUGIN_KINDS]
    for plugin in plugins:
        issues.extend(_missing_names(plugin, names))
    issues.extend(_cycles([p for p in plugins if p.kind == Kind.RESOURCE], "depends_on"))
    return issues


_HOST_CONFIG_MESSAGE = (
    "A HostConfig document does not belong among manifests; move it to config/host.yaml "
    "(or pass it with --config)."
)


def _references(kind: str, spec: Mapping[str, Any]) -> Iterator[tuple[FieldPath, str, str]]:
    """Yield ``(path, kind, name)`` for every name a document's spec refers to."""
    for index, resource in enumerate(spec.get("depends_on", [])):
        yield ("spec", "depends_on", index), Kind.RESOURCE, resource
    if kind != Kind.ASSET:
        return
    yield ("spec", "io_manager"), Kind.IO_MANAGER, spec.get("io_manager", DEFAULT)
    for index, dep in enumerate(spec.get("deps", [])):
        yield ("spec", "deps", index), Kind.ASSET, dep
    if "scatter" in spec:
        yield ("spec", "scatter", "reader"), Kind.ITEM_READER, spec["scatter"]["reader"]
    for part, kinds in _RUNS_ON.items():
        for key, target in kinds:
            if part in spec:
                yield ("spec", part, key), target, spec[part].get(key, DEFAULT)
    for branch, target in spec.get("routing", {}).get("routes", {}).items():
        yield ("spec", "routing", "routes", branch), Kind.ASSET, target


#: The coordinator and executor each kind of asset runs on, by spec key.
_RUNS_ON: dict[str, tuple[tuple[str, Kind], ...]] = {
    "scatter": (("coordinator", Kind.SCATTER_COORDINATOR), ("executor", Kind.EXECUTOR)),
    "parallel": (("coordinator", Kind.PARALLEL_COORDINATOR), ("executor", Kind.EXECUTOR)),
    "routing": (("coordinator", Kind.ROUTING_COORDINATOR),),
}


def _missing_names(item: Declared, names: Mapping[str, list[str]]) -> Iterator[Issue]:
    for path, kind, name in _references(item.kind, item.data["spec"]):
        declared = names.get(kind, [])
        if name in declared:
            continue
        label = kind_info(kind).label
        listed = ", ".join(sorted(set(declared))) or "none"
        message = (
            f"No {label} named {name!r}{did_you_mean(name, declared)} (declared: {listed}). "
            f"Fix the name, or add a document of kind {kind} named {name!r}."
        )
        yield _issue(item, path, f"ref.unknown_{kind.lower()}", message)


def _callables(spec: Mapping[str, Any]) -> Iterator[tuple[FieldPath, str]]:
    if "compute" in spec:
        yield ("spec", "compute"), spec["compute"]
    for part, keys in (("scatter", ("item", "gather")), ("parallel", ("join",))):
        for key in keys:
            if key in spec.get(part, {}):
                yield ("spec", part, key), spec[part][key]
    if "routing" in spec:
        yield ("spec", "routing", "router"), spec["routing"]["router"]
    for branch, body in spec.get("parallel", {}).get("branches", {}).items():
        yield ("spec", "parallel", "branches", branch, "compute"), body["compute"]


def _denied_callables(asset: Declared, host: HostConfig) -> Iterator[Issue]:
    for path, target in _callables(asset.data["spec"]):
        try:
            host.callables.check(target)
        except FlowStoneError as exc:
            yield _issue(asset, path, "ref.callable_denied", exc.message)


def _cycles(items: Sequence[Declared], field: str) -> Iterator[Issue]:
    """Report each cycle of ``spec.<field>`` references among ``items`` (one kind)."""
    by_name = {item.name: item for item in items}
    graph = {i.name: [d for d in i.data["spec"].get(field, []) if d in by_name] for i in items}
    label = kind_info(items[0].kind).label if items else ""
    for cycle in _find_cycles(graph):
        first = by_name[cycle[0]]
        index = first.data["spec"][field].index(cycle[1])
        message = (
            f"{label.capitalize()}s depend on each other in a cycle: {' -> '.join(cycle)}. "
            "Remove one of these dependencies."
        )
        yield _issue(first, ("spec", field, index), "ref.dependency_cycle", message)


def _find_cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Return one cycle per strongly connected tangle, found by iterative DFS."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []
    for root in graph:
        if root in state:
            continue
        path: list[str] = [root]
        stack: list[Iterator[str]] = [iter(graph[root])]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                cycles.append([*path[path.index(child) :], child])
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append(iter(graph[child]))
    return cycles


def _issue(item: Declared, path: FieldPath, code: str, message: str) -> Issue:
    source = item.origin(path)
    return Issue(source.position(path), path, code, message, source.document.index)
