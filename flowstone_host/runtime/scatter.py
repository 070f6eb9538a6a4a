"""Scatter assets: stream items from a reader, run each on the executor, gather.

For each batch the reader returns (read ahead a few batches at once, up to
:data:`GROUP_ITEMS` items): compute each item's stable key (:mod:`.keys`), insert the keys
into the barrier in one call (``final=True`` only with the reader's last batch), skip keys
that already have an outcome (a resumed run), then dispatch the rest in chunks to the
executor, at most ``max_concurrency`` chunks at once. Outcomes are recorded with
``record_outcomes`` in batches, by the dispatching thread between its waits: once a reader
batch of them waits (so a kill re-runs at most that much finished work), once they have
waited :data:`RECORD_INTERVAL_S`, or at once when their failures may cross the threshold.
The reader's checkpoint taken after a batch is saved
with the barrier once every item of that batch and of all earlier ones has a recorded
outcome, so a killed run resumes from it without losing an item, and skips the finished
ones. At the tolerated-failure threshold the run stops dispatching, cancels what is
queued, cancels the barrier and fails.

Live retune: between dispatch waits (at least every :data:`TUNING_INTERVAL_S`) the runner
reads the run's latest retune from its records; a new ``max_concurrency`` bounds the chunks
in flight from the next dispatch on, and new ``tolerated_failures`` are handed to the
barrier (``set_tolerated_failures``), so the coordinator and the runtime judge by the same
threshold. A coordinator without that method keeps its creation threshold: the runtime then
also enforces the new one, cancelling the barrier when it is crossed (a looser one cannot
help before the old one trips).

Redrive: ``retry_failed`` reopens the barrier and clears its checkpoint, so a resumed pass
reads from the start and runs only the keys without an outcome (the retried ones, and any
never read); completed keys keep their results for the gather.

A remote executor (a queue with worker processes) runs the same pass with chunks as
queued jobs: see :mod:`.queued`.

``items_per_call``: the item function gets a list of that many items (fewer in the last
call of a chunk) and returns a list of as many results; each item keeps its own key and
outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..boundary import call
from ..contracts.types import BarrierStatus
from ..errors import NotSupported
from ..manifest.model import Asset, Scatter, thaw
from ..partitions import partition_key
from ..registry import Entry
from .context import RunContext
from .dispatch import Dispatch, stopped
from .queued import QueuedDispatch
from .steps import Run

__all__ = ["run_scatter"]


def run_scatter(
    run: Run, asset: Asset, partition: Any, inputs: Mapping[str, Any], ctx: RunContext
) -> Any:
    """Run the scatter of ``(asset, partition)`` and return its gathered output.

    Raises:
        FlowStoneError: ``threshold_exceeded`` at the threshold, or the normalized error
            of a plugin call.
    """
    spec = asset.scatter
    assert spec is not None
    coordinator = run.snapshot.scatter_coordinators.resolve(spec.coordinator)
    barrier, resumed = _barrier(run, coordinator, asset, partition, spec)
    status: BarrierStatus = call(coordinator, "status", barrier)
    if status.status == "pending":
        if not resumed:  # the step names its barrier from the start: a redrive finds it
            run.records.note(run.run_id, asset.name, partition_key(partition), barrier=barrier)
        executor = run.snapshot.executors.resolve(spec.executor)
        kind = QueuedDispatch if getattr(executor.instance, "remote", False) else Dispatch
        kind(run, asset, partition, inputs, ctx, coordinator, barrier, resumed).execute()
        status = call(coordinator, "status", barrier)
    counts = {"completed": status.completed, "failed": status.failed, "total": status.total}
    run.records.note(run.run_id, asset.name, partition_key(partition), barrier=barrier, **counts)
    if status.status != "complete":
        raise stopped(asset, partition, status, spec.tolerated_failures)
    results = call(coordinator, "gather", barrier)
    if spec.gather is None:
        return results
    return run.callable(spec.gather)(ctx, results)


def _barrier(
    run: Run, coordinator: Entry, asset: Asset, partition: Any, spec: Scatter
) -> tuple[str, bool]:
    try:
        found = call(coordinator, "find_barrier", run.run_id, asset.name, partition)
    except NotSupported:
        found = None
    if found is not None:
        return found, True
    tolerated = thaw(spec.tolerated_failures)
    created = call(
        coordinator,
        "create_barrier",
        run.run_id,
        asset.name,
        partition,
        tolerated_failures=tolerated,
    )
    return created, False
