"""``materialize()``: one run of some assets, recorded, resumable, on a leased snapshot.

Which run: ``run_id`` names one (an existing one is resumed, or replayed when it had
succeeded: stored outputs are reused and recorded routing decisions replayed). Without it,
an unfinished run of the same assets and partitions (``running`` after a kill, or
``failed``) is resumed, unless ``fresh``; otherwise a new run starts. A run whose process
is still alive on this machine is never taken over.

Which partitions: those named (``partitions``), or every one of each target streamed a
page at a time (:data:`.backfill.PAGE`), narrowed to a range (``partition_range="A..B"``) and/or to
those its IO manager does not store yet (``missing``: a backfill). A streamed run is
recorded by what it asks for (``@range FIRST LAST``, ``@missing``), not by a list of
partitions, so starting it again resumes it: what is stored is found stored. Partitions
run ``concurrency`` at a time, each with what it reads at that partition; what they
share (an unpartitioned dependency) runs first, once. The first failed partition stops
the dispatch of new ones; those in flight finish, and the run fails with its error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..callables import CallablePolicy
from ..errors import Conflict, FlowStoneError, ValidationError, normalize
from ..manifest.host_config import HostConfig
from ..partitions import partition_key
from ..registry import Snapshot
from . import partitioning
from .backfill import Backfill, stream
from .failures import Cancelled
from .plan import Step
from .progress import Progress
from .records import RunRecord, RunRecords, RunStatus
from .steps import Run

__all__ = ["RESULT_STEPS", "Leasing", "RunResult", "materialize"]

#: A run result carries its steps up to this many (a large backfill's are in the records).
RESULT_STEPS = 10_000


class Leasing(Protocol):
    """What a run needs of a started host: its config, and a lease on its snapshot
    (:class:`~flowstone_host.Host` is one; the runtime sits below the host)."""

    config: HostConfig

    def lease(self) -> contextlib.AbstractContextManager[Snapshot]:
        """Hold the current snapshot for the run."""
        ...


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended.

    Attributes:
        run_id: The run.
        status: ``succeeded``, ``failed`` or ``cancelled``.
        resumed: Whether an earlier attempt of this run existed.
        error: The normalized error of a failed run.
        record: The run's durable record, with its steps (without them when this attempt
            ran more than :data:`RESULT_STEPS` partitions: read those from the records).
        partitions: How many target partitions this attempt went through.
    """

    run_id: str
    status: str
    resumed: bool
    error: FlowStoneError | None
    record: RunRecord
    partitions: int = 0

    @property
    def ok(self) -> bool:
        """Whether the run succeeded."""
        return self.status == "succeeded"


def materialize(
    source: Leasing | Snapshot,
    assets: Sequence[str],
    partitions: Sequence[Any] | None = None,
    *,
    partition_range: str | None = None,
    missing: bool = False,
    concurrency: int = 1,
    force: bool = False,
    fresh: bool = False,
    run_id: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    callables: CallablePolicy | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> RunResult:
    """Materialize ``assets`` (at ``partitions``, or all of theirs) and what they read.

    Args:
        source: A started :class:`~flowstone_host.Host` (its snapshot is leased for the
            run; its state folder and callables policy are used) or a snapshot.
        assets: Target asset names.
        partitions: Partition values of the targets (strings as typed are matched, see
            :func:`.partitioning.parse`); ``None``: every partition of each target.
        partition_range: ``FIRST..LAST`` (both included; either end may be left out):
            only the targets' partitions in that range.
        missing: Only the partitions the targets' IO managers do not store (a backfill).
        concurrency: How many partitions run at once (each with what it reads).
        force: Materialize again what is already stored.
        fresh: Start a new run even when an unfinished one of the same request exists.
        run_id: Name the run; an existing one is resumed or replayed.
        state_dir: Where run records live (default: the host's state folder; required
            with a snapshot).
        callables: The policy callables are resolved under (default: the host's; with a
            snapshot, one that allows nothing named by string).
        progress: Told what happens.
        cancel: Set it to stop the run: it stops before its next step or scatter batch
            and is recorded ``cancelled`` (resuming it continues where it stopped).

    Returns:
        The run's result; a failed run is a result too, never an exception.

    Raises:
        Conflict: ``run_id`` is being run by a live process.
        FlowStoneError: the request itself is wrong (unknown asset or partition, a
            partition given with a range or ``missing``, a concurrency below 1).
    """
    if concurrency < 1:
        raise ValidationError(f"Concurrency is at least 1 (got {concurrency}).")
    if partitions and (partition_range is not None or missing):
        raise ValidationError("Name partitions, or ask for a range or the missing ones, not both.")
    with _leased(source) as snapshot:
        folder = state_dir if state_dir is not None else _state_dir(source)
        policy = callables or (None if isinstance(source, Snapshot) else source.config.callables)
        records = RunRecords.in_state_dir(folder)
        try:
            if partitions:
                request = _Request(_targets(snapshot, assets, partitions), [])
                request.what = sorted({partition_key(p) for _, p in request.named or ()})
            else:
                request = _streamed(snapshot, assets, partition_range, missing)
            record, resumed = _choose(records, list(assets), request.what, run_id, fresh)
            run = Run(
                record.run_id,
                snapshot,
                policy or CallablePolicy(),
                records,
                progress or Progress(),
                force,
                cancelled=cancel or threading.Event(),
            )
            return _execute(run, request, resumed, record.attempts, concurrency)
        finally:
            records.close()


@dataclass
class _Request:
    """What a run asks for: ``named`` steps, or ``streams`` of each target's partitions
    (``(asset, positions, only missing)``); ``what`` identifies it in the records."""

    named: list[Step] | None
    streams: list[tuple[Any, tuple[int, int] | None, bool]]
    what: list[str] | None = None


def _streamed(
    snapshot: Snapshot, assets: Sequence[str], partition_range: str | None, missing: bool
) -> _Request:
    streams: list[tuple[Any, tuple[int, int] | None, bool]] = []
    what: list[str] = []
    for name in assets:
        asset = snapshot.assets.resolve(name)
        span = None
        if partition_range is not None:
            span = partitioning.parse_range(asset, partition_range)
            assert asset.partitions is not None
            fixed = asset.partitions.fixed()
            ends = (fixed.value_at(span[0]), fixed.value_at(span[1] - 1))
            what.append(f"@range {name} {partition_key(ends[0])} {partition_key(ends[1])}")
        streams.append((asset, span, missing))
    if missing:
        what.append("@missing")
    return _Request(None, streams, what or None)


@contextlib.contextmanager
def _leased(source: Leasing | Snapshot) -> Iterator[Snapshot]:
    if isinstance(source, Snapshot):
        yield source
    else:
        with source.lease() as snapshot:
            yield snapshot


def _state_dir(source: Leasing | Snapshot) -> Path:
    if not isinstance(source, Snapshot):
        return Path(source.config.state_dir)
    raise FlowStoneError(
        "config_error", "materialize() of a snapshot needs state_dir= for its run records."
    )


def _targets(
    snapshot: Snapshot, assets: Sequence[str], partitions: Sequence[Any] | None
) -> list[Step]:
    targets: list[Step] = []
    for name in assets:
        asset = snapshot.assets.resolve(name)
        if partitions is None:
            targets.extend((name, p) for p in partitioning.expand(asset))
        elif asset.partitions is None:
            targets.append((name, None))
        else:
            texts = [p for p in partitions if isinstance(p, str)]
            values = [p for p in partitions if not isinstance(p, str)]
            targets.extend((name, p) for p in [*partitioning.parse(asset, texts), *values])
    return targets


def _choose(
    records: RunRecords,
    assets: list[str],
    partitions: list[str] | None,
    run_id: str | None,
    fresh: bool,
) -> tuple[RunRecord, bool]:
    """Return the run to execute, taken over by this process, and whether it resumes."""
    existing = records.find(run_id) if run_id else None
    if existing is None and run_id is None and not fresh:
        existing = records.unfinished(assets, partitions)
    if existing is None:
        return records.create(run_id or _new_run_id(), assets, partitions), False
    if existing.owner_alive() and existing.pid != os.getpid():
        raise Conflict(
            f"Run {existing.run_id!r} is being run by process {existing.pid} on "
            f"{existing.host}; wait for it, or pass --fresh for a new run.",
            run_id=existing.run_id,
        )
    return records.take_over(existing.run_id), True


def _new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _execute(
    run: Run, request: _Request, resumed: bool, attempts: int, concurrency: int
) -> RunResult:
    run.progress.run_started(run.run_id, resumed, attempts)
    error: FlowStoneError | None = None
    backfill = Backfill(run, concurrency)
    try:
        if request.named is not None:
            run.ensure(request.named)
            backfill.count = len(request.named)
        else:
            backfill.execute(stream(run.snapshot, request.streams))
    except Exception as exc:
        error = normalize(exc)
    backfill.flush()
    status: RunStatus = "succeeded" if error is None else "failed"
    if isinstance(error, Cancelled):
        status = "cancelled"
    run.records.finish(run.run_id, status, error)
    return RunResult(
        run.run_id, status, resumed, error, _record(run, backfill, resumed), backfill.count
    )


def _record(run: Run, backfill: Backfill, resumed: bool) -> RunRecord:
    """Return the run's record; the steps a fresh run wrote alone as it wrote them."""
    if backfill.count > RESULT_STEPS:
        return run.records.get(run.run_id, steps=False)
    steps = None if resumed or backfill.workers else run.written()
    if steps is None:
        return run.records.get(run.run_id)
    return dataclasses.replace(run.records.get(run.run_id, steps=False), steps=steps)
