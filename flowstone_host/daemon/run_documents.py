"""The run documents the daemon serves and ``flowstone-host runs --local`` prints.

Built from the run records a bounded page at a time: a page of runs, or one run with a page
of its steps; never a whole table.
"""

from __future__ import annotations

from typing import Any, get_args

from ..errors import ValidationError
from ..runtime.records import RunRecord, RunRecords, RunStatus, StepRecord

__all__ = ["MAX_PAGE", "MAX_STEPS", "check_page", "run_document", "runs_page"]

#: Most runs one ``GET /runs`` page holds.
MAX_PAGE = 200
#: Most steps one ``GET /runs/{id}`` answer holds (page with ``steps_offset``).
MAX_STEPS = 1000
_STATUSES = frozenset(get_args(RunStatus))


def _summary(record: RunRecord) -> dict[str, Any]:
    data = record.to_dict()
    del data["steps"]
    return data


def _step(step: StepRecord) -> dict[str, Any]:
    data = {name: getattr(step, name) for name in step.__slots__}
    counts = {k: step.details[k] for k in ("completed", "failed", "total") if k in step.details}
    if counts:
        data["scatter"] = counts
    for key in ("redrives", "queue"):
        if key in step.details:
            data[key] = step.details[key]
    return data


def run_document(
    records: RunRecords, run_id: str, *, steps_limit: int = 100, steps_offset: int = 0
) -> dict[str, Any]:
    """Return one run: its summary, step counts by asset and status (``outcome``), and up
    to ``steps_limit`` of its steps from ``steps_offset`` (each with its ``partition``,
    ``status``, ``error``, ``details``, and ``scatter`` counts, ``redrives`` and
    ``queue`` if any: a queued scatter's items ``queued``, ``running`` (by ``workers``),
    ``done`` and ``failed``).

    Raises:
        NotFound: no such run.
    """
    record = records.get(run_id, steps=False)
    outcome = records.step_counts(run_id)
    total = sum(sum(counts.values()) for counts in outcome.values())
    steps = records.steps(run_id, limit=steps_limit, offset=steps_offset)
    shown = steps_offset + len(steps)
    return {
        **_summary(record),
        "outcome": outcome,
        "steps_total": total,
        "steps": [_step(s) for s in steps],
        "steps_next": shown if shown < total else None,
    }


def runs_page(
    records: RunRecords,
    *,
    limit: int = 20,
    after: str | None = None,
    status: str | None = None,
    asset: str | None = None,
) -> dict[str, Any]:
    """Return ``{"runs": [...], "next": ID or None}``: up to ``limit`` runs older than
    ``after``, newest first; ``next`` is the ``after`` of the following page.

    Raises:
        ValidationError: ``limit`` outside 1..:data:`MAX_PAGE`, or an unknown ``status``.
        NotFound: no run ``after``.
    """
    check_page(limit, status)
    found = records.page(limit=limit + 1, after=after, status=status, asset=asset)
    runs = found[:limit]
    more = len(found) > limit
    return {"runs": [_summary(r) for r in runs], "next": runs[-1].run_id if more else None}


def check_page(limit: int, status: str | None) -> None:
    """Refuse a page size outside 1..:data:`MAX_PAGE` or an unknown status.

    Raises:
        ValidationError: either.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"'limit' is between 1 and {MAX_PAGE} (got {limit}).", field="limit")
    if status is not None and status not in _STATUSES:
        raise ValidationError(
            f"'status' is one of {', '.join(sorted(_STATUSES))} (got {status!r}).", field="status"
        )
