"""The asset runtime: materialize assets through IO managers, readers and coordinators.

::

    from flowstone_host.runtime import materialize

    result = materialize(host, ["report"])          # a started Host
    result.ok, result.run_id, result.record.steps

Modules: :mod:`.materialize` (the run: which one, resume, records), :mod:`.backfill`
(streamed partitions, a page at a time), :mod:`.plan` (steps in dependency order),
:mod:`.steps` (one step: load, compute, store), :mod:`.scatter`, :mod:`.parallel`,
:mod:`.routing` (the three asset shapes), :mod:`.records` (durable run records; their
types in :mod:`.run_record`, events in :mod:`.run_events`, file in :mod:`.record_file`,
pooled connections in :mod:`.record_pool`), :mod:`.context`, :mod:`.keys`,
:mod:`.partitioning`, :mod:`.progress`, :mod:`.spans`.
"""

from __future__ import annotations

from .context import RunContext
from .materialize import RunResult, materialize
from .progress import Progress
from .records import RunRecord, RunRecords, StepRecord

__all__ = [
    "Progress",
    "RunContext",
    "RunRecord",
    "RunRecords",
    "RunResult",
    "StepRecord",
    "materialize",
]
