"""A queued job, run in a worker process: the host's steps, found by reference.

A worker holds the same manifests as the host that queued the job. It looks the job's
asset up in its own leased snapshot, resolves the item or branch callable under its own
callables policy, and records outcomes in the coordinators the asset names, which must be
shared with the host (PostgreSQL, or SQLite on one machine): the coordinator decides
fan-in, exactly once, whichever worker and however many attempts ran an item.

- **Scatter chunk**: nothing runs once the barrier is no longer pending (stopped at the
  threshold, cancelled, or complete); keys that already have an outcome (an earlier
  attempt recorded them before it died) are skipped; the rest run one call at a time
  (``items_per_call`` items), their outcomes recorded in one call when the chunk ends (a
  worker killed mid-chunk loses them: the next attempt runs the chunk's items again). A
  worker told to stop records what finished and gives the job back (:class:`Released`)
  after the current call.
- **Branch**: skipped once the branch has an outcome; otherwise its inputs are loaded
  through the IO managers, it runs, and its result or error is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..boundary import call
from ..callables import CallablePolicy
from ..contracts.executor import Job
from ..errors import ConfigError, Unavailable, normalize
from ..manifest.model import Asset
from ..partitions import parse_partition_key
from ..registry import Snapshot
from .items import decode_chunk, run_chunk
from .records import RunRecords
from .steps import Run

__all__ = ["JobRunner", "Released"]


class Released(Unavailable):
    """The worker is stopping: the job goes back to the queue, its finished items kept."""


class JobRunner:
    """Runs :class:`~flowstone_host.contracts.Job` references on a worker's snapshots.

    Args:
        policy: The worker's callables policy.
        records: Run records of the worker's state folder (a step's inputs are loaded
            through a :class:`~.steps.Run` on them; nothing of the host's run is written).
    """

    def __init__(self, policy: CallablePolicy, records: RunRecords) -> None:
        self.policy = policy
        self.records = records

    def run(self, snapshot: Snapshot, job: Job, stopping: Callable[[], bool]) -> None:
        """Run ``job`` on ``snapshot``.

        Raises:
            Released: the worker is stopping (what finished is recorded).
            FlowStoneError: the asset is unknown here or is not a scatter or parallel
                asset, or a coordinator call failed.
        """
        asset = snapshot.assets.resolve(job.asset)
        run = Run(job.run_id, snapshot, self.policy, self.records)
        partition = parse_partition_key(job.partition)
        if job.branch is None:
            _scatter_chunk(run, asset, partition, job, stopping)
        else:
            _branch(run, asset, partition, job)


def _scatter_chunk(
    run: Run, asset: Asset, partition: Any, job: Job, stopping: Callable[[], bool]
) -> None:
    spec = asset.scatter
    if spec is None:
        raise ConfigError(
            f"Asset {asset.name!r} is not a scatter asset in this worker's manifests."
        )
    coordinator = run.snapshot.scatter_coordinators.resolve(spec.coordinator)
    if call(coordinator, "status", job.target).status != "pending":
        return
    chunk = decode_chunk(job.items)
    finished = set(call(coordinator, "finished_keys", job.target, [key for key, _ in chunk]))
    todo = [(key, item) for key, item in chunk if key not in finished]
    function = run.callable(spec.item)
    ctx = run.context(asset, partition)
    completed: dict[str, Any] = {}
    failed: dict[str, Any] = {}
    released = False
    step = spec.items_per_call
    for first in range(0, len(todo), step):
        if stopping():
            released = True
            break
        done, bad = run_chunk(function, ctx, todo[first : first + step], "", step)
        completed.update(done)
        failed.update(bad)
    if completed or failed:
        call(coordinator, "record_outcomes", job.target, completed, failed)
    if released:
        raise Released(f"The worker is stopping; job for {asset.name!r} goes back to the queue.")


def _branch(run: Run, asset: Asset, partition: Any, job: Job) -> None:
    spec = asset.parallel
    name = job.branch or ""
    if spec is None or name not in spec.branches:
        raise ConfigError(
            f"Asset {asset.name!r} has no parallel branch {name!r} in this worker's manifests."
        )
    coordinator = run.snapshot.parallel_coordinators.resolve(spec.coordinator)
    if call(coordinator, "status", job.target).branches.get(name) in ("complete", "failed"):
        return
    ctx = run.context(asset, partition).for_branch(name)
    try:
        result = run.callable(spec.branches[name].compute)(ctx, **run.inputs(asset, partition))
    except Exception as exc:
        call(coordinator, "fail_branch", job.target, name, normalize(exc).to_dict())
        return
    call(coordinator, "complete_branch", job.target, name, result)
