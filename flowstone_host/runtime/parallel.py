"""Parallel assets: named branches on the executor, tracked by the parallel coordinator.

The execution is created once per ``(run, asset, partition)`` and its id kept in the run
records, so a resumed run finds it again: branches a killed process left ``running`` run
again (a branch's first outcome is final, so a late duplicate changes nothing), and a join
that raised is tried again (the execution stayed ``ready_for_join``). The join receives
``{branch: result}`` with each failed optional branch as its normalized error (a
:class:`~flowstone_host.FlowStoneError`); a failed required branch fails the step.

On a remote executor each branch is a queued job that names the run, asset, partition,
execution and branch; the worker loads the inputs through the IO managers (which must
then be shared ones, not the in-memory one), runs the branch and records its outcome, and
the join runs here once every branch has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, wait
from typing import Any

from ..boundary import call
from ..contracts.executor import Job
from ..contracts.types import ExecutionStatus
from ..errors import FlowStoneError, normalize
from ..manifest.model import Asset, Parallel
from ..partitions import partition_key
from ..registry import Entry
from .context import RunContext
from .failures import BranchFailed
from .steps import Run

__all__ = ["run_parallel"]


def run_parallel(
    run: Run, asset: Asset, partition: Any, inputs: Mapping[str, Any], ctx: RunContext
) -> Any:
    """Run the branches of ``(asset, partition)`` and return the join's result.

    Raises:
        FlowStoneError: ``branch_failed`` when a required branch failed; the join's own
            error when it raised (the execution stays ready for another try).
    """
    spec = asset.parallel
    assert spec is not None
    coordinator = run.snapshot.parallel_coordinators.resolve(spec.coordinator)
    execution = _execution(run, coordinator, asset, partition, spec)
    status: ExecutionStatus = call(coordinator, "status", execution)
    errors: dict[str, FlowStoneError] = {}
    if status.status in ("pending", "running"):
        errors = _run_branches(run, coordinator, execution, spec, inputs, ctx)
        status = call(coordinator, "status", execution)
    if status.status == "failed":
        raise _branch_failed(asset, spec, status, errors)
    join = run.callable(spec.join)

    def join_fn(results: Mapping[str, Any]) -> Any:
        failed = {
            name: errors.get(name) or _unknown_failure(name)
            for name, state in status.branches.items()
            if state == "failed"
        }
        return join(ctx, {**results, **failed})

    return call(coordinator, "execute_join", execution, join_fn)


def _execution(run: Run, coordinator: Entry, asset: Asset, partition: Any, spec: Parallel) -> str:
    key = partition_key(partition)
    step = run.records.step(run.run_id, asset.name, key)
    known = None if step is None else step.details.get("execution")
    if isinstance(known, str):
        return known
    optional = [name for name, branch in spec.branches.items() if not branch.required]
    execution: str = call(
        coordinator,
        "create_execution",
        run.run_id,
        asset.name,
        list(spec.branches),
        optional=optional,
    )
    run.records.note(run.run_id, asset.name, key, execution=execution)
    return execution


def _run_branches(
    run: Run,
    coordinator: Entry,
    execution: str,
    spec: Parallel,
    inputs: Mapping[str, Any],
    ctx: RunContext,
) -> dict[str, FlowStoneError]:
    """Run what ``schedule_branches`` hands out, and what a killed run left running."""
    before: ExecutionStatus = call(coordinator, "status", execution)
    orphans = [name for name, state in before.branches.items() if state == "running"]
    names = list(dict.fromkeys([*call(coordinator, "schedule_branches", execution), *orphans]))
    executor = run.snapshot.executors.resolve(spec.executor)
    if getattr(executor.instance, "remote", False):
        return _queue_branches(run, coordinator, executor, execution, names, ctx)
    futures: dict[Future[Any], str] = {}
    for name in names:
        function = run.callable(spec.branches[name].compute)
        future = call(executor, "submit", function, ctx.for_branch(name), **inputs)
        futures[future] = name
    wait(list(futures))
    errors: dict[str, FlowStoneError] = {}
    for future, name in futures.items():
        try:
            result = future.result()
        except Exception as exc:
            errors[name] = normalize(exc)
            call(coordinator, "fail_branch", execution, name, errors[name].to_dict())
        else:
            call(coordinator, "complete_branch", execution, name, result)
    return errors


def _queue_branches(
    run: Run,
    coordinator: Entry,
    executor: Entry,
    execution: str,
    names: list[str],
    ctx: RunContext,
) -> dict[str, FlowStoneError]:
    """Queue one job per branch on a remote executor; its worker loads the inputs and
    records the branch's outcome. A job that failed for good fails its branch, unless a
    worker recorded an outcome first (the first outcome is final)."""
    key = partition_key(ctx.partition)
    jobs = [Job(run.run_id, ctx.asset, key, execution, branch=name) for name in names]
    futures = call(executor, "enqueue", jobs)
    wait(futures)
    errors: dict[str, FlowStoneError] = {}
    for future, name in zip(futures, names, strict=True):
        error = None if future.cancelled() else future.exception()
        if error is not None:
            errors[name] = normalize(error)
            call(coordinator, "fail_branch", execution, name, errors[name].to_dict())
    return errors


def _unknown_failure(branch: str) -> FlowStoneError:
    return BranchFailed(f"Branch {branch!r} failed in an earlier attempt of this run.")


def _branch_failed(
    asset: Asset, spec: Parallel, status: ExecutionStatus, errors: Mapping[str, FlowStoneError]
) -> FlowStoneError:
    failed = [
        name
        for name, state in status.branches.items()
        if state == "failed" and spec.branches[name].required
    ]
    reasons = "; ".join(f"{name}: {errors[name].message}" for name in failed if name in errors)
    return BranchFailed(
        f"Required branch(es) {', '.join(failed)} of parallel asset {asset.name!r} failed"
        f"{': ' + reasons if reasons else ''}. Fix them, then materialize with --fresh.",
        details={"failed": failed, "errors": {n: e.to_dict() for n, e in errors.items()}},
        asset=asset.name,
    )
