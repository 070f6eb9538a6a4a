"""What the run records hold: :class:`RunRecord` and :class:`StepRecord`, and their rows.

The value types :class:`~.records.RunRecords` returns, the identity of a request
(:func:`what_key`), and the conversions between them and the rows of ``runs.sqlite``.
"""

from __future__ import annotations

import json
import operator
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..processes import pid_alive

__all__ = [
    "RunRecord",
    "RunStatus",
    "StepRecord",
    "dump",
    "plain_steps",
    "run_from_row",
    "step_from_row",
    "what_key",
]

RunStatus = Literal["running", "succeeded", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One ``(asset, partition)`` of a run: ``running``, ``succeeded``, ``reused``, ``failed``."""

    asset: str
    partition: str
    status: str
    started_at: float | None = None
    finished_at: float | None = None
    error: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run: who, what, when, and its outcome."""

    run_id: str
    status: RunStatus
    assets: list[str]
    partitions: list[str] | None
    user: str | None
    host: str | None
    pid: int | None
    created_at: float
    updated_at: float
    finished_at: float | None
    attempts: int
    error: dict[str, Any] | None
    steps: tuple[StepRecord, ...] = ()
    redrives: tuple[dict[str, Any], ...] = ()
    retunes: tuple[dict[str, Any], ...] = ()

    @property
    def finished(self) -> bool:
        """Whether the run ended (succeeded, failed or cancelled)."""
        return self.status != "running"

    def owner_alive(self) -> bool:
        """Whether the process that runs it is alive on this machine (never for finished)."""
        if self.finished or self.pid is None or self.host != socket.gethostname():
            return False
        if self.pid == os.getpid():
            return True
        return pid_alive(self.pid)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe form (for ``runs show --format json``)."""
        skip = ("steps", "redrives", "retunes")
        data = {name: getattr(self, name) for name in self.__slots__ if name not in skip}
        data["steps"] = [{n: getattr(s, n) for n in s.__slots__} for s in self.steps]
        data["redrives"] = [dict(r) for r in self.redrives]
        data["retunes"] = [dict(r) for r in self.retunes]
        return data


def what_key(assets: Sequence[str], partitions: Sequence[str] | None) -> str:
    """Return the identity of a request: its assets and partition keys, order ignored."""
    parts = None if partitions is None else sorted(partitions)
    return json.dumps([sorted(assets), parts], separators=(",", ":"))


def plain_steps(rows: Iterable[tuple[str, str, str, float, float]]) -> tuple[StepRecord, ...]:
    """Return the records :meth:`RunRecords.steps_finished` leaves for ``rows`` (written in
    this order to a run without other step records), in the order :meth:`RunRecords.get`
    lists them: a step written again keeps its first start and takes the last outcome."""
    rows = list(rows)
    if len({(row[0], row[1]) for row in rows}) < len(rows):  # some written again
        by_step: dict[tuple[str, str], tuple[str, str, str, float, float]] = {}
        for row in rows:
            old = by_step.get((row[0], row[1]))
            by_step[row[0], row[1]] = row if old is None else (*row[:3], old[3], row[4])
        rows = list(by_step.values())
    rows.sort(key=_STEP_ORDER)
    return tuple([_plain_step(*row) for row in rows])


_STEP_ORDER = operator.itemgetter(3, 0, 1)  # started, asset, partition: as get() orders
_STEP_FIELDS = ("asset", "partition", "status", "started_at", "finished_at", "error", "details")
assert StepRecord.__slots__ == _STEP_FIELDS, "_plain_step sets every field"
_s0, _s1, _s2, _s3, _s4, _s5, _s6 = (getattr(StepRecord, name).__set__ for name in _STEP_FIELDS)


def _plain_step(
    asset: str, partition: str, status: str, started: float, finished: float
) -> StepRecord:
    """Return ``StepRecord(asset, partition, status, started, finished)`` built through its
    slots: half the cost of the frozen dataclass's ``__init__``, once per step of a run."""
    step: StepRecord = object.__new__(StepRecord)
    _s0(step, asset)
    _s1(step, partition)
    _s2(step, status)
    _s3(step, started)
    _s4(step, finished)
    _s5(step, None)
    _s6(step, {})
    return step


def dump(value: Any) -> str:
    """Return ``value`` as compact JSON, as the records store it (``repr`` of the rest)."""
    return json.dumps(value, separators=(",", ":"), default=repr)


def run_from_row(row: Sequence[Any], steps: tuple[StepRecord, ...]) -> RunRecord:
    """Return the run of a ``runs`` row: ``run_id, status, assets, partitions, user, host,
    pid, created_at, updated_at, finished_at, attempts, error``."""
    run_id, status, assets, partitions, user, host, pid, created, updated, finished = row[:10]
    attempts, error = row[10:]
    return RunRecord(
        run_id,
        status,
        json.loads(assets),
        None if partitions is None else json.loads(partitions),
        user,
        host,
        pid,
        created,
        updated,
        finished,
        attempts,
        None if error is None else json.loads(error),
        steps,
    )


def step_from_row(row: Sequence[Any]) -> StepRecord:
    """Return the step of a ``steps`` row: ``asset, partition, status, started_at,
    finished_at, error, details``."""
    asset, partition, status, started, finished, error, details = row
    parsed_error = None if error is None else json.loads(error)
    # Most steps (every plain one) carry no details: no parse for those.
    parsed = {} if details == "{}" else json.loads(details)
    return StepRecord(asset, partition, status, started, finished, parsed_error, parsed)
