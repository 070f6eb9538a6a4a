"""Which steps a materialization takes, in dependency order.

A step is ``(asset, partition)``. The plan of some targets holds them and every step they
read, transitively through ``deps`` (see :mod:`.partitioning` for which partitions of a
dependency a step reads), each once, ordered as the asset graph orders assets. A routing
asset's routes are not planned: only the route its router picks is materialized, when the
router has picked it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..graph import AssetGraph
from ..partitions import partition_key
from . import partitioning

__all__ = ["Step", "plan"]

Step = tuple[str, Any]  # asset name, partition value


def plan(graph: AssetGraph, targets: Iterable[Step]) -> list[Step]:
    """Return the steps of ``targets`` and all they read, each after what it reads.

    Raises:
        NotFound: a target names no asset.
    """
    wanted: dict[str, dict[str, Any]] = {}
    none_key = partition_key(None)
    resolve = graph.resolve
    stack = [(resolve(name).name, partition) for name, partition in targets]
    while stack:
        name, partition = stack.pop()
        key = none_key if partition is None else partition_key(partition)
        by_key = wanted.get(name)
        if by_key is None:
            wanted[name] = {key: partition}
        elif key in by_key:
            continue
        else:
            by_key[key] = partition
        for dep in resolve(name).deps:
            dep_asset = resolve(dep)
            if dep_asset.partitions is None:  # read at None: the common case
                stack.append((dep, None))
            else:
                stack.extend((dep, p) for p in partitioning.reads(dep_asset, partition))
    steps: list[Step] = []
    for name in graph.order:
        by_key = wanted.get(name)
        if by_key is None:
            continue
        if len(by_key) == 1:  # nothing to sort
            (partition,) = by_key.values()
            steps.append((name, partition))
        else:
            steps.extend((name, partition) for _, partition in sorted(by_key.items()))
    return steps
