"""``materialize()``: one run of some assets, recorded, resumable, on a leased snapshot.

Which run: ``run_id`` names one (an existing one is resumed, or replayed when it had
succeeded: stored outputs are reused and recorded routing decisions replayed). Without it,
an unfinished run of the same assets and partitions (``running`` after a kill, or
``failed``) is resumed, unless ``fresh``; otherwise a new run starts. A run whose process
is still alive on this machine is never taken over.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..callables import CallablePolicy
from ..errors import Conflict, FlowStoneError, normalize
from ..manifest.host_config import HostConfig
from ..partitions import partition_key
from ..registry import Snapshot
from . import partitioning
from .plan import Step
from .progress import Progress
from .records import RunRecord, RunRecords, RunStatus
from .steps import Run

__all__ = ["Leasing", "RunResult", "materialize"]


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
        status: ``succeeded`` or ``failed``.
        resumed: Whether an earlier attempt of this run existed.
        error: The normalized error of a failed run.
        record: The run's durable record, with its steps.
    """

    run_id: str
    status: str
    resumed: bool
    error: FlowStoneError | None
    record: RunRecord

    @property
    def ok(self) -> bool:
        """Whether the run succeeded."""
        return self.status == "succeeded"


def materialize(
    source: Leasing | Snapshot,
    assets: Sequence[str],
    partitions: Sequence[Any] | None = None,
    *,
    force: bool = False,
    fresh: bool = False,
    run_id: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    callables: CallablePolicy | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Materialize ``assets`` (at ``partitions``, or all of theirs) and what they read.

    Args:
        source: A started :class:`~flowstone_host.Host` (its snapshot is leased for the
            run; its state folder and callables policy are used) or a snapshot.
        assets: Target asset names.
        partitions: Partition values of the targets (strings as typed are matched, see
            :func:`.partitioning.parse`); ``None``: every partition of each target.
        force: Materialize again what is already stored.
        fresh: Start a new run even when an unfinished one of the same request exists.
        run_id: Name the run; an existing one is resumed or replayed.
        state_dir: Where run records live (default: the host's state folder; required
            with a snapshot).
        callables: The policy callables are resolved under (default: the host's; with a
            snapshot, one that allows nothing named by string).
        progress: Told what happens.

    Returns:
        The run's result; a failed run is a result too, never an exception.

    Raises:
        Conflict: ``run_id`` is being run by a live process.
        FlowStoneError: the request itself is wrong (unknown asset or partition).
    """
    with _leased(source) as snapshot:
        folder = state_dir if state_dir is not None else _state_dir(source)
        policy = callables or (None if isinstance(source, Snapshot) else source.config.callables)
        records = RunRecords.in_state_dir(folder)
        try:
            targets = _targets(snapshot, assets, partitions)
            keys = sorted({partition_key(p) for _, p in targets}) if partitions else None
            record, resumed = _choose(records, list(assets), keys, run_id, fresh)
            run = Run(
                record.run_id,
                snapshot,
                policy or CallablePolicy(),
                records,
                progress or Progress(),
                force,
            )
            return _execute(run, targets, resumed, record.attempts)
        finally:
            records.close()


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


def _execute(run: Run, targets: list[Step], resumed: bool, attempts: int) -> RunResult:
    run.progress.run_started(run.run_id, resumed, attempts)
    error: FlowStoneError | None = None
    try:
        run.ensure(targets)
    except Exception as exc:
        error = normalize(exc)
    run.flush()
    status: RunStatus = "succeeded" if error is None else "failed"
    run.records.finish(run.run_id, status, error)
    return RunResult(run.run_id, status, resumed, error, run.records.get(run.run_id))
