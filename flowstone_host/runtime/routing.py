"""Routing assets: a router picks a branch once per run, and replays never call it again.

``get`` the recorded decision first; on ``NotFound`` call the router and ``record`` its
choice; on ``Conflict`` (another process recorded first) ``get`` again and follow that.
The chosen route's asset is materialized at the same partition (reused when stored) and
its value is this asset's output; the decision's record (``to_output``) goes into the run
records. A router that chooses no branch (``None``) makes the decision record the output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..boundary import call
from ..errors import Conflict, NotFound, ValidationError
from ..manifest.model import Asset
from ..partitions import partition_key
from .context import RunContext
from .steps import Run

__all__ = ["run_routing"]


def run_routing(
    run: Run, asset: Asset, partition: Any, inputs: Mapping[str, Any], ctx: RunContext
) -> Any:
    """Decide (or replay) the route of ``(asset, partition)`` and return its output.

    Raises:
        ValidationError: the router returned a name that is not a route.
    """
    spec = asset.routing
    assert spec is not None
    coordinator = run.snapshot.routing_coordinators.resolve(spec.coordinator)
    try:
        branch = call(coordinator, "get", run.run_id, asset.name, partition)
    except NotFound:
        branch = _decide(run, asset, inputs, ctx)
        try:
            call(coordinator, "record", run.run_id, asset.name, partition, branch)
        except Conflict:
            branch = call(coordinator, "get", run.run_id, asset.name, partition)
    decision_id = call(coordinator, "record", run.run_id, asset.name, partition, branch)
    decision = call(coordinator, "to_output", decision_id)
    run.records.note(run.run_id, asset.name, partition_key(partition), decision=decision)
    if branch is None:
        return decision
    route = run.snapshot.assets.resolve(spec.routes[branch])
    run.ensure([(route.name, partition if route.partitions is not None else None)])
    return run.load(route, partition if route.partitions is not None else None)


def _decide(run: Run, asset: Asset, inputs: Mapping[str, Any], ctx: RunContext) -> str | None:
    spec = asset.routing
    assert spec is not None
    branch = run.callable(spec.router)(ctx, **inputs)
    if branch is not None and branch not in spec.routes:
        raise ValidationError(
            f"Router of {asset.name!r} chose {branch!r}, which is not one of its routes "
            f"({', '.join(spec.routes)}); return one of them or None.",
            asset=asset.name,
        )
    return None if branch is None else str(branch)
