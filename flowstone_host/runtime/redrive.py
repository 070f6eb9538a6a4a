"""Operating runs: redrive the failed items of a run's scatters, retune a running scatter.

``redrive(source, run_id)``: every scatter step of the run whose barrier has failed items
(or was stopped: ``threshold_exceeded``, ``cancelled``) gets them back as pending through
the coordinator's ``retry_failed``, which also clears the reader checkpoint; then the run is
resumed (:func:`~.materialize.materialize` with its ``run_id``). Its scatter reads from
the start, skips every key that has an outcome (completed items keep their results, reused
in the gather) and runs only the retried ones (and any never read). A scatter that had
completed within its tolerated failures was stored: its step, and the steps of this run
that read it, are marked ``redriving`` and materialized again (the resumed run is forced
for the steps it has no finished record of). Each redrive is a ``redrive`` event of the
run: when, which keys were retried, and the outcome. Redrive as many times as needed.

``retune(records, run_id, ...)``: records a ``retune`` event; a scatter of that run reads
the latest one between dispatch waits (see :mod:`.scatter`) and applies it within one
batch, also to later resumes and redrives of the run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..boundary import call
from ..callables import CallablePolicy
from ..contracts.scatter import check_tolerated
from ..errors import Conflict, NotSupported, ValidationError
from ..partitions import parse_partition_key, partition_key
from ..registry import Snapshot
from .materialize import Leasing, RunResult, _leased, _state_dir, materialize
from .progress import Progress
from .records import RunRecord, RunRecords

__all__ = ["KEYS_RECORDED", "RedriveResult", "parse_tolerated", "redrive", "retune"]

#: A redrive's record lists at most this many retried keys (all are counted).
KEYS_RECORDED = 1000
_REOPENED = frozenset({"threshold_exceeded", "cancelled"})
_NONE = partition_key(None)


@dataclass(frozen=True, slots=True)
class RedriveResult:
    """What one redrive did.

    Attributes:
        run_id: The run.
        retried: ``{"asset [partition]": number of keys moved back to pending}``.
        result: The resumed run's result; ``None`` when nothing was left to redrive.
        event: The redrive's record (as in ``RunRecord.redrives``).
    """

    run_id: str
    retried: dict[str, int]
    result: RunResult | None
    event: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the redriven run succeeded (or nothing needed redriving)."""
        return self.result is None or self.result.ok


def parse_tolerated(text: str) -> dict[str, Any]:
    """Parse ``--tolerate``: ``5%`` is ``{"percent": 5.0}``, ``3`` is ``{"count": 3}``.

    Raises:
        ValidationError: neither form, or out of range.
    """
    spelled = text.strip()
    percent = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", spelled)
    if percent:
        tolerated = check_tolerated({"percent": float(percent.group(1))})
    elif re.fullmatch(r"\d+", spelled):
        tolerated = check_tolerated({"count": int(spelled)})
    else:
        raise ValidationError(
            f"--tolerate takes a count (3) or a percentage (5%), got {text!r}.", value=text
        )
    assert tolerated is not None
    return tolerated


def retune(
    records: RunRecords,
    run_id: str,
    *,
    max_concurrency: int | None = None,
    tolerated_failures: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record a retune of run ``run_id``'s scatters; return the recorded event.

    Raises:
        NotFound: no such run.
        ValidationError: nothing to change, ``max_concurrency`` below 1, malformed
            ``tolerated_failures``.
    """
    details: dict[str, Any] = {}
    if max_concurrency is not None:
        if max_concurrency < 1:
            raise ValidationError(f"--max-concurrency is at least 1 (got {max_concurrency}).")
        details["max_concurrency"] = int(max_concurrency)
    if tolerated_failures is not None:
        details["tolerated_failures"] = check_tolerated(tolerated_failures)
    if not details:
        raise ValidationError("Give --max-concurrency and/or --tolerate to retune a run.")
    record = records.get(run_id, steps=False)
    details["run_status"] = record.status
    seq = records.add_event(run_id, "retune", details)
    return next(e for e in records.events(run_id, "retune") if e["seq"] == seq)


def redrive(
    source: Leasing | Snapshot,
    run_id: str,
    *,
    state_dir: str | os.PathLike[str] | None = None,
    callables: CallablePolicy | None = None,
    progress: Progress | None = None,
) -> RedriveResult:
    """Re-run the failed items of run ``run_id``'s scatters, then resume the run.

    Raises:
        NotFound: no such run.
        Conflict: the run is being run by a live process.
        NotSupported: a scatter's coordinator cannot retry failed keys.
    """
    with _leased(source) as snapshot:
        folder = state_dir if state_dir is not None else _state_dir(source)
        records = RunRecords.in_state_dir(folder)
        try:
            record = records.get(run_id)
            if record.owner_alive() and record.pid != os.getpid():
                raise Conflict(
                    f"Run {run_id!r} is being run by process {record.pid} on {record.host}; "
                    "redrive it once it has finished or stopped.",
                    run_id=run_id,
                )
            retried, keys, redriven, stored = _retry(snapshot, record)
            details: dict[str, Any] = {
                "keys_retried": sum(retried.values()),
                "scatters": retried,
                "keys": keys[:KEYS_RECORDED],
            }
            if not retried:
                details["outcome"] = "nothing to redrive"
                seq = records.add_event(run_id, "redrive", details)
                return RedriveResult(run_id, {}, None, _event(records, run_id, seq))
            details["outcome"] = "running"
            seq = records.add_event(run_id, "redrive", details)
            for asset, key in _dependents(snapshot, record, stored):
                records.step_finished(run_id, asset, key, "redriving")
        finally:
            records.close()
        result = materialize(
            snapshot,
            record.assets,
            _partitions(record, redriven),
            force=bool(stored),
            run_id=run_id,
            state_dir=folder,
            callables=callables
            or (None if isinstance(source, Snapshot) else source.config.callables),
            progress=progress,
        )
        records = RunRecords.in_state_dir(folder)
        try:
            outcome: dict[str, Any] = {"outcome": result.status}
            if result.error is not None:
                outcome["error"] = {"code": result.error.code, "message": result.error.message}
            records.update_event(seq, outcome)
            return RedriveResult(run_id, retried, result, _event(records, run_id, seq))
        finally:
            records.close()


Step = tuple[str, str]  # asset, partition key


def _retry(
    snapshot: Snapshot, record: RunRecord
) -> tuple[dict[str, int], list[str], list[Step], list[Step]]:
    """Reset the failed keys of each scatter step; return the counts by step, the keys,
    the steps redriven, and those of them that were stored (complete within their
    tolerated failures)."""
    retried: dict[str, int] = {}
    keys: list[str] = []
    redriven: list[Step] = []
    stored: list[Step] = []
    for step in record.steps:
        barrier = step.details.get("barrier")
        asset = snapshot.assets.get(step.asset)
        if barrier is None or asset is None or asset.scatter is None:
            continue
        coordinator = snapshot.scatter_coordinators.resolve(asset.scatter.coordinator)
        status = call(coordinator, "status", barrier)
        if not status.failed and status.status not in _REOPENED:
            continue
        try:
            reset: list[str] = call(coordinator, "retry_failed", barrier)
        except NotSupported as exc:
            raise NotSupported(
                f"Cannot redrive {step.asset!r}: its scatter coordinator "
                f"{asset.scatter.coordinator!r} cannot retry failed items ({exc.message}).",
                asset=step.asset,
            ) from exc
        unpartitioned = step.partition == _NONE
        where = step.asset if unpartitioned else f"{step.asset} [{step.partition}]"
        retried[where] = len(reset)
        keys.extend(reset[: max(0, KEYS_RECORDED - len(keys))])
        redriven.append((step.asset, step.partition))
        if step.status in ("succeeded", "reused"):
            stored.append((step.asset, step.partition))
    return retried, keys, redriven, stored


def _dependents(snapshot: Snapshot, record: RunRecord, stored: list[Step]) -> list[Step]:
    """The stored scatter steps, and every step of the run of an asset that reads one of
    their assets (transitively): all are materialized again."""
    scatters = {asset for asset, _ in stored}
    readers: set[str] = set()
    todo = list(scatters)
    while todo:
        for child in snapshot.assets.downstream(todo.pop()):
            if child not in readers:
                readers.add(child)
                todo.append(child)
    again = set(stored)
    return [
        (s.asset, s.partition)
        for s in record.steps
        if (s.asset, s.partition) in again or s.asset in readers - scatters
    ]


def _partitions(record: RunRecord, redriven: list[Step]) -> list[Any] | None:
    """The partitions to resume: the run's named ones, or (a streamed run: a range, a
    backfill) those of the redriven scatters."""
    if record.partitions is not None and not any(p.startswith("@") for p in record.partitions):
        return [parse_partition_key(key) for key in record.partitions]
    keys = sorted({key for _, key in redriven if key != _NONE})
    return [parse_partition_key(key) for key in keys] or None


def _event(records: RunRecords, run_id: str, seq: int) -> dict[str, Any]:
    return next(e for e in records.events(run_id, "redrive") if e["seq"] == seq)
