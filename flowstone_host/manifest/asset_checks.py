"""Layer (b), continued: what the asset runtime can honour, asset by asset.

The schema (layer a) checks each field's shape; this module refuses the combinations the
runtime (:mod:`flowstone_host.runtime`) would ignore or cannot run, each at its field:

- ``partitions`` that define no partitions: a date that is no date, a range ending before
  it starts, an hour the clocks skip, an unknown timezone, a repeated value.
- ``deps`` the runtime cannot map: a step ``(asset, p)`` reads the *same* partition ``p``
  of a partitioned dependency, so that dependency must have every partition the asset has
  (same values, or the same kind of range covering the asset's); an unpartitioned asset
  reads every partition of a partitioned dependency at once (a fan-in), so that
  dependency must have at most :data:`FAN_IN_LIMIT` partitions.
- ``routing.routes`` the router cannot reach: the routing asset itself, an asset that
  depends on the routing asset (it would need the output it is to produce), or a
  partitioned asset that lacks the routing asset's partitions (the chosen route is
  materialized at the routing asset's partition).

(``compute`` beside ``scatter``, ``parallel`` or ``routing``, which the runtime would
ignore, is refused by the schema.)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..config import FieldPath
from ..errors import ValidationError
from ..kinds import Kind
from ..partition_defs import DAILY, HOURLY, PartitionsDef, TimeWindows, partitions_def
from .assembly import Declared
from .issues import Issue

__all__ = ["FAN_IN_LIMIT", "asset_issues"]

#: Most partitions an unpartitioned asset may read of a dependency in one fan-in.
FAN_IN_LIMIT = 10_000

_PARTITIONS: FieldPath = ("spec", "partitions")


def asset_issues(declared: Sequence[Declared]) -> list[Issue]:
    """Return every asset field the runtime could not honour (see the module docstring)."""
    assets = {item.name: item for item in declared if item.kind == Kind.ASSET}
    issues: list[Issue] = []
    defs: dict[str, PartitionsDef | None] = {}
    bad: set[str] = set()
    for item in assets.values():
        found = list(_definition_issues(item))
        issues.extend(found)
        if found:
            bad.add(item.name)
        else:
            defs[item.name] = partitions_def(item.data["spec"].get("partitions"))
    for item in assets.values():
        if item.name in bad:
            continue
        issues.extend(_dep_issues(item, defs))
        issues.extend(_route_issues(item, assets, defs))
    return issues


# -- partitions ---------------------------------------------------------------------------


def _definition_issues(item: Declared) -> Iterator[Issue]:
    spec = item.data["spec"].get("partitions")
    if spec is None:
        return
    if isinstance(spec, Mapping) and _is_window(spec):
        yield from _window_issues(item, spec, _PARTITIONS)
    elif isinstance(spec, Mapping):
        for name, body in spec.items():
            path = (*_PARTITIONS, name)
            if isinstance(body, Mapping):
                yield from _window_issues(item, body, path)
            else:
                yield from _static_issues(item, body, path)
    else:
        yield from _static_issues(item, spec, _PARTITIONS)


def _is_window(spec: Mapping[str, Any]) -> bool:
    """``{daily: {...}}`` or ``{hourly: {...}}``; ``{daily: [a, b]}`` is a dimension."""
    if len(spec) != 1:
        return False
    ((unit, body),) = spec.items()
    return unit in (DAILY, HOURLY) and isinstance(body, Mapping)


def _window_issues(item: Declared, spec: Mapping[str, Any], path: FieldPath) -> Iterator[Issue]:
    ((unit, body),) = spec.items()
    here = (*path, unit)
    zone = body.get("timezone") or "UTC"
    if "timezone" in body:
        try:
            TimeWindows(DAILY, "2000-01-01", None, zone)
        except ValidationError as exc:
            yield _issue(item, (*here, "timezone"), "ref.bad_partitions", exc.message)
            return
    # The start alone first, so that the error points at the field that is wrong.
    for field, end in (("start", None), ("end", body.get("end"))):
        try:
            TimeWindows(unit, body["start"], end, zone)
        except ValidationError as exc:
            yield _issue(item, (*here, field), "ref.bad_partitions", exc.message)
            return


def _static_issues(item: Declared, values: Any, path: FieldPath) -> Iterator[Issue]:
    try:
        partitions_def(list(values))
    except ValidationError as exc:
        yield _issue(item, path, "ref.bad_partitions", exc.message)


# -- deps ---------------------------------------------------------------------------------


def _dep_issues(item: Declared, defs: Mapping[str, PartitionsDef | None]) -> Iterator[Issue]:
    mine = defs.get(item.name)
    for index, dep in enumerate(item.data["spec"].get("deps", [])):
        if dep not in defs:
            continue  # unknown or itself invalid: reported on its own
        theirs = defs[dep]
        problem = mapping_problem(item.name, mine, dep, theirs)
        if problem is not None:
            yield _issue(item, ("spec", "deps", index), "ref.partition_mapping", problem)


def mapping_problem(
    name: str, mine: PartitionsDef | None, dep: str, theirs: PartitionsDef | None
) -> str | None:
    """Why a step of ``name`` could not read dependency ``dep``, or ``None`` if it can."""
    if theirs is None:
        return None
    if mine is None:
        if not theirs.bounded:
            return (
                f"Asset {name!r} is not partitioned, so it would read every partition of "
                f"{dep!r} at once, but {dep!r} is {theirs.describe()}: a set that grows. "
                f"Give the range of {dep!r} an end, or partition {name!r} the same way."
            )
        if theirs.count() > FAN_IN_LIMIT:
            return (
                f"Asset {name!r} is not partitioned, so it would read all {theirs.count()} "
                f"partitions of {dep!r} at once (at most {FAN_IN_LIMIT}). Partition "
                f"{name!r} the same way as {dep!r}."
            )
        return None
    if theirs.covers(mine):
        return None
    return (
        f"Asset {name!r} ({mine.describe()}) reads the same partition of {dep!r} "
        f"({theirs.describe()}), but {dep!r} does not have every partition {name!r} has. "
        f"Give {dep!r} the same partitions (or a range covering them)."
    )


# -- routing ------------------------------------------------------------------------------


def _route_issues(
    item: Declared, assets: Mapping[str, Declared], defs: Mapping[str, PartitionsDef | None]
) -> Iterator[Issue]:
    routes = item.data["spec"].get("routing", {}).get("routes", {})
    for branch, target in routes.items():
        path = ("spec", "routing", "routes", branch)
        if target not in assets:
            continue  # reported as an unknown asset
        if target == item.name:
            message = (
                f"Route {branch!r} of {item.name!r} names {item.name!r} itself: its output "
                "would be the output it is computing. Route to another asset."
            )
            yield _issue(item, path, "ref.route_unreachable", message)
            continue
        chain = _depends_on(target, item.name, assets)
        if chain is not None:
            message = (
                f"Route {branch!r} of {item.name!r} names {target!r}, which depends on "
                f"{item.name!r} ({' -> '.join(chain)}): it cannot be materialized before "
                f"{item.name!r} has chosen it. Route to an asset that does not read "
                f"{item.name!r}."
            )
            yield _issue(item, path, "ref.route_unreachable", message)
            continue
        if target not in defs or defs[target] is None:
            continue
        route, mine = defs[target], defs.get(item.name)
        assert route is not None
        if mine is None or not route.covers(mine):
            have = "is not partitioned" if mine is None else f"is {mine.describe()}"
            message = (
                f"Route {branch!r} of {item.name!r} names {target!r} ({route.describe()}), "
                f"which is materialized at the partition of {item.name!r}, but {item.name!r} "
                f"{have}. Give {target!r} the partitions of {item.name!r}, or none."
            )
            yield _issue(item, path, "ref.route_unreachable", message)


def _depends_on(start: str, target: str, assets: Mapping[str, Declared]) -> list[str] | None:
    """The dependency path from ``start`` to ``target`` through ``deps``, or ``None``."""
    parents: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        name = queue.pop(0)
        for dep in assets[name].data["spec"].get("deps", []) if name in assets else []:
            if dep in parents:
                continue
            parents[dep] = name
            if dep == target:
                path = [dep]
                node: str | None = name
                while node is not None:
                    path.append(node)
                    node = parents[node]
                return list(reversed(path))
            queue.append(dep)
    return None


def _issue(item: Declared, path: FieldPath, code: str, message: str) -> Issue:
    source = item.origin(path)
    return Issue(source.position(path), path, code, message, source.document.index)
