"""One process's pass over a scatter: read, insert, dispatch, record, checkpoint.

:func:`~.scatter.run_scatter` finds or creates the barrier and gathers; :class:`Dispatch`
does the work in between, as the module docstring of :mod:`.scatter` describes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
import uuid
from collections import deque
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any

from ..boundary import call
from ..contracts.scatter import threshold_exceeded
from ..contracts.types import BarrierStatus
from ..errors import Conflict, FlowStoneError, NotSupported, normalize
from ..manifest.model import Asset, Scatter, thaw
from ..partitions import partition_key
from ..registry import Entry
from .context import RunContext
from .failures import Cancelled, ThresholdExceeded
from .items import STOPPED, Chunk, Outcomes, run_chunk
from .keys import scatter_key
from .steps import Run

__all__ = ["RECORD_INTERVAL_S", "TUNING_INTERVAL_S", "Dispatch", "stopped"]

#: Least time between two checkpoint saves; an older checkpoint only re-reads more.
CHECKPOINT_INTERVAL_S = 0.2
#: Longest time finished outcomes wait in memory before they are recorded. At most one
#: reader batch of them waits (a kill re-runs at most that much finished work).
RECORD_INTERVAL_S = 0.1
#: Items read ahead (in whole reader batches) whose keys are inserted in one call.
GROUP_ITEMS = 4096
#: Longest time between two reads of the run's retune while the scatter runs.
TUNING_INTERVAL_S = 0.1


@dataclass
class _Batch:
    remaining: int
    checkpoint: dict[str, Any] | None


def stopped(asset: Asset, partition: Any, status: BarrierStatus, tolerated: Any) -> FlowStoneError:
    where = asset.name if partition is None else f"{asset.name} [{partition_key(partition)}]"
    tolerated = None if tolerated is None else dict(tolerated)
    return ThresholdExceeded(
        f"Scatter {where} stopped ({status.status}): {status.failed} item(s) failed of "
        f"{status.total} read, {status.completed} completed; tolerated_failures is "
        f"{tolerated}. Fix the failing items (see the run's errors), then "
        "`flowstone-host redrive RUN` re-runs only the failed ones (or materialize with "
        "--fresh to start a new run).",
        details={
            "status": status.status,
            "completed": status.completed,
            "failed": status.failed,
            "total": status.total,
            "tolerated_failures": tolerated,
        },
        asset=asset.name,
    )


class Dispatch:
    """One process's pass over a scatter: read, insert, dispatch, record, checkpoint."""

    def __init__(
        self,
        run: Run,
        asset: Asset,
        partition: Any,
        inputs: Mapping[str, Any],
        ctx: RunContext,
        coordinator: Entry,
        barrier: str,
        resumed: bool,
    ) -> None:
        spec = asset.scatter
        assert spec is not None
        self.run, self.asset, self.partition, self.spec = run, asset, partition, spec
        self.ctx, self.coordinator, self.barrier, self.resumed = ctx, coordinator, barrier, resumed
        self.executor = run.snapshot.executors.resolve(spec.executor)
        self.reader = _open_reader(run, spec, inputs)
        self.token = f"{run.run_id}:{uuid.uuid4().hex}"
        self.ready: deque[tuple[int, Chunk]] = deque()
        self.in_flight: dict[Future[Outcomes], tuple[int, Chunk]] = {}
        self.batches: dict[int, _Batch] = {}
        self.seq = itertools.count()
        self.buffer: list[tuple[int, Outcomes]] = []
        self.buffered = self.buffered_failed = 0
        self.recorded_at = time.monotonic()
        self.done = self.failed = 0
        self.reader_done = False
        self.saved_at = 0.0
        self.pending_checkpoint: dict[str, Any] | None = None
        # Live tuning: the run's latest retune applies on top of the spec.
        self.max_concurrency = spec.max_concurrency
        self.tolerated: dict[str, Any] | None = thaw(spec.tolerated_failures)
        self.enforce_tolerated = False  # the barrier kept its threshold: the runtime judges
        self.tuning_seq = 0
        self.tuned_at = 0.0
        self.total = self._count()

    def _count(self) -> int | None:
        count = call(self.reader, "count")
        return None if count is None else int(count)

    # -- the loop ----------------------------------------------------------------------

    def execute(self) -> None:
        try:
            self._restore()
            self._tune(force=True)
            while self._step():
                pass
            self._flush(force_checkpoint=True)
        finally:
            self._stop_work()
            self.run.progress.scatter_finished(self.asset.name, self.partition)
            call(self.reader, "close")

    def _step(self) -> bool:
        """Dispatch what may run, wait for one outcome, record; false when all is done."""
        if self.run.cancelled.is_set():  # between batches: record what finished, then stop
            self._flush(force_checkpoint=True)
            raise Cancelled(f"Run {self.run.run_id!r} was cancelled.", run_id=self.run.run_id)
        todo = self._take()
        if todo:
            self._dispatch(todo)
        if not self.in_flight:
            return False
        finished, _ = wait(
            list(self.in_flight), timeout=TUNING_INTERVAL_S, return_when=FIRST_COMPLETED
        )
        for future in finished:
            seq, chunk = self.in_flight.pop(future)
            self._finished(future, seq, chunk)
        if self._record_due():
            self._flush()
        if finished:
            self._waited()
        self._tune()
        return True

    def _take(self) -> list[tuple[int, Chunk]]:
        """Take the chunks that may start now, reading more when none are ready."""
        todo: list[tuple[int, Chunk]] = []
        while len(self.in_flight) + len(todo) < self.max_concurrency:
            if not self.ready and not self.reader_done:
                self._read()
                continue
            if not self.ready:
                break
            todo.append(self.ready.popleft())
        return todo

    def _dispatch(self, todo: list[tuple[int, Chunk]]) -> None:
        """Start ``todo`` (chunks with their reader batch's number)."""
        function = self.run.callable(self.spec.item)
        for seq, chunk in todo:
            future = call(
                self.executor,
                "submit",
                run_chunk,
                function,
                self.ctx,
                chunk,
                self.token,
                self.spec.items_per_call,
            )
            self.in_flight[future] = (seq, chunk)

    def _finished(self, future: Future[Any], seq: int, chunk: Chunk) -> None:
        """Take the outcomes of a chunk that ended."""
        self._buffer(seq, _outcomes(future, chunk))

    def _waited(self) -> None:
        """Called after a wait that saw chunks end (their outcomes are taken)."""

    def _observe(self) -> None:
        """Called at most every :data:`TUNING_INTERVAL_S` while the scatter runs."""

    def _recorded(self, completed: int, failed: int, state: str) -> None:
        """Count outcomes this process recorded; ``state`` is the barrier's after them."""
        self.done += completed
        self.failed += failed
        self._report()
        self._check_threshold(state)

    def _buffer(self, seq: int, outcomes: Outcomes) -> None:
        self.buffer.append((seq, outcomes))
        self.buffered += len(outcomes[0]) + len(outcomes[1])
        self.buffered_failed += len(outcomes[1])

    def _tune(self, force: bool = False) -> None:
        """Apply the run's latest retune when there is a new one (read at most every
        :data:`TUNING_INTERVAL_S`, or at once with ``force``)."""
        now = time.monotonic()
        if not force and now - self.tuned_at < TUNING_INTERVAL_S:
            return
        self.tuned_at = now
        self._observe()
        latest = self.run.records.tuning(self.run.run_id)
        if latest is None or latest[0] == self.tuning_seq:
            return
        self.tuning_seq, tuning = latest
        applied: dict[str, Any] = {}
        if tuning.get("max_concurrency") is not None:
            self.max_concurrency = max(1, int(tuning["max_concurrency"]))
            applied["max_concurrency"] = self.max_concurrency
        state = "pending"
        if "tolerated_failures" in tuning:
            self.tolerated = tuning["tolerated_failures"]
            applied["tolerated_failures"] = self.tolerated
            try:
                state = call(
                    self.coordinator, "set_tolerated_failures", self.barrier, self.tolerated
                )
                self.enforce_tolerated = False
            except NotSupported:
                self.enforce_tolerated = True
        key = partition_key(self.partition)
        self.run.records.note(self.run.run_id, self.asset.name, key, tuning=applied)
        if "tolerated_failures" in applied:
            self._check_threshold(state)  # a tighter threshold may be crossed already

    def _record_due(self) -> bool:
        """Whether to record the buffered outcomes now: when enough wait or for long
        enough, or when their failures may cross the threshold (so a stop is as prompt as
        if every outcome were recorded at once). The last ones are recorded when the loop
        ends."""
        if self.buffered >= self.spec.batch_size:
            return True
        if self.buffered_failed and threshold_exceeded(
            self.failed + self.buffered_failed,
            self.total or 0,
            self.tolerated,
            final=self.total is not None,
        ):
            return True
        return time.monotonic() - self.recorded_at >= RECORD_INTERVAL_S

    def _chunk_size(self) -> int:
        size = max(1, min(64, self.spec.batch_size // max(1, self.max_concurrency)))
        per_call = self.spec.items_per_call
        return -(-size // per_call) * per_call  # whole calls only

    # -- reading -----------------------------------------------------------------------

    def _restore(self) -> None:
        if not self.resumed:
            return
        try:
            checkpoint = call(self.coordinator, "load_checkpoint", self.barrier)
        except NotSupported:
            return
        if checkpoint is not None:
            call(self.reader, "restore", checkpoint)

    def _read(self) -> None:
        """Read batches until about :data:`GROUP_ITEMS` items (at least one batch), insert
        their keys in one call, then queue their chunks."""
        groups: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        count = 0
        while not self.reader_done and (not groups or count < GROUP_ITEMS):
            batch = call(self.reader, "read", self.spec.batch_size)
            self.reader_done = bool(batch.done)
            items = {scatter_key(item): item for item in batch.items}
            groups.append((items, _checkpoint(self.reader)))
            count += len(items)
        keys = list(dict.fromkeys(key for items, _ in groups for key in items))
        try:
            call(self.coordinator, "insert_keys", self.barrier, keys, final=self.reader_done)
        except Conflict:
            if not self.resumed:  # a resumed barrier may be final already: keys are in
                raise
        finished: set[str] = set()
        if self.resumed and keys:
            finished = set(call(self.coordinator, "finished_keys", self.barrier, keys))
        size = self._chunk_size()
        for items, checkpoint in groups:
            todo = [(key, item) for key, item in items.items() if key not in finished]
            seq = next(self.seq)
            self.batches[seq] = _Batch(len(todo), checkpoint)
            for first in range(0, len(todo), size):
                self.ready.append((seq, todo[first : first + size]))
        self._advance()

    # -- recording ---------------------------------------------------------------------

    def _flush(self, force_checkpoint: bool = False) -> None:
        if self.buffer:
            completed: dict[str, Any] = {}
            failed: dict[str, Any] = {}
            for seq, (done, bad) in self.buffer:
                completed.update(done)
                failed.update(bad)
                self.batches[seq].remaining -= len(done) + len(bad)
            self.buffer, self.buffered, self.buffered_failed = [], 0, 0
            self.recorded_at = time.monotonic()
            recorded = call(self.coordinator, "record_outcomes", self.barrier, completed, failed)
            self._recorded(len(completed), len(failed), recorded.state)
        self._advance(force_checkpoint)

    def _report(self) -> None:
        self.run.progress.scatter(
            self.asset.name, self.partition, self.done, self.failed, self.total
        )

    def _advance(self, force: bool = False) -> None:
        """Move the saved checkpoint past every leading batch whose items all finished."""
        while self.batches:
            first = min(self.batches)
            if self.batches[first].remaining > 0:
                break
            self.pending_checkpoint = self.batches.pop(first).checkpoint or self.pending_checkpoint
        now = time.monotonic()
        due = force or now - self.saved_at >= CHECKPOINT_INTERVAL_S
        if self.pending_checkpoint is not None and due:
            with contextlib.suppress(NotSupported):
                call(self.coordinator, "save_checkpoint", self.barrier, self.pending_checkpoint)
            self.pending_checkpoint, self.saved_at = None, now

    def _check_threshold(self, state: str) -> None:
        tolerated = self.tolerated
        early = False
        if self.total is not None:
            early = threshold_exceeded(self.failed, self.total, tolerated)
        elif self.enforce_tolerated:  # the barrier judges by its creation threshold
            total = call(self.coordinator, "status", self.barrier).total
            early = threshold_exceeded(self.failed, total, tolerated, final=self.reader_done)
        if state == "pending" and not early:
            return
        self._stop_work()
        if state == "pending":  # the coordinator cannot judge before the key set is final
            call(self.coordinator, "cancel", self.barrier)
        status = call(self.coordinator, "status", self.barrier)
        if early and status.status == "cancelled":
            status = dataclasses.replace(status, status="threshold_exceeded")
        if status.status != "complete":
            raise stopped(self.asset, self.partition, status, self.tolerated)

    def _stop_work(self) -> None:
        """Cancel queued chunks; running ones stop before their next item."""
        STOPPED.add(self.token)
        self.ready.clear()
        for future in list(self.in_flight):
            future.cancel()
        wait(list(self.in_flight))
        self.in_flight.clear()
        STOPPED.discard(self.token)


def _outcomes(future: Future[Outcomes], chunk: Chunk) -> Outcomes:
    """Return a chunk's outcomes; an executor failure fails every item of the chunk."""
    try:
        return future.result()
    except Exception as exc:
        error = normalize(exc).to_dict()
        return {}, {key: error for key, _ in chunk}


def _open_reader(run: Run, spec: Scatter, inputs: Mapping[str, Any]) -> Entry:
    factory = run.snapshot.item_readers.resolve(spec.reader)
    deps = {**run.resources, **inputs}
    reader = call(factory, "__call__", thaw(spec.resolved_reader_config), deps)
    return dataclasses.replace(factory, instance=reader)


def _checkpoint(reader: Entry) -> dict[str, Any] | None:
    try:
        checkpoint: dict[str, Any] = call(reader, "checkpoint")
    except NotSupported:
        return None
    return checkpoint
