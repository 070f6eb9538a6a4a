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

``items_per_call``: the item function gets a list of that many items (fewer in the last
call of a chunk) and returns a list of as many results; each item keeps its own key and
outcome.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any

from ..boundary import call
from ..contracts.scatter import threshold_exceeded
from ..contracts.types import BarrierStatus
from ..errors import Conflict, FlowStoneError, NotSupported, ValidationError, normalize
from ..manifest.model import Asset, Scatter, thaw
from ..partitions import partition_key
from ..registry import Entry
from ..telemetry import listening, span
from .context import RunContext
from .failures import Cancelled, ThresholdExceeded
from .keys import scatter_key
from .spans import SCATTER_ITEM, metadata
from .steps import Run

__all__ = ["TUNING_INTERVAL_S", "run_calls", "run_chunk", "run_scatter"]

#: Tokens of scatters being stopped: threads of this process stop between items.
_STOPPED: set[str] = set()
#: Least time between two checkpoint saves; an older checkpoint only re-reads more.
CHECKPOINT_INTERVAL_S = 0.2
#: Longest time finished outcomes wait in memory before they are recorded. At most one
#: reader batch of them waits (a kill re-runs at most that much finished work).
RECORD_INTERVAL_S = 0.1
#: Items read ahead (in whole reader batches) whose keys are inserted in one call.
GROUP_ITEMS = 4096
#: Longest time between two reads of the run's retune while the scatter runs.
TUNING_INTERVAL_S = 0.1

Chunk = list[tuple[str, Any]]
Outcomes = tuple[dict[str, Any], dict[str, Any]]


def run_chunk(
    function: Callable[..., Any], ctx: RunContext, chunk: Chunk, token: str, per_call: int = 1
) -> Outcomes:
    """Run ``function(ctx, item)`` over ``chunk``; return ``({key: result}, {key: error})``.

    Runs on the executor (a thread, or a process: then it must stay picklable). Stops
    between items once the scatter's ``token`` is stopped; the items not run are in
    neither mapping. Each item runs in a ``scatter.item`` span when a telemetry handler
    listens for it (whether one does is read once per chunk). With ``per_call`` above 1,
    see :func:`run_calls`.
    """
    if per_call > 1:
        return run_calls(function, ctx, chunk, token, per_call)
    completed: dict[str, Any] = {}
    failed: dict[str, Any] = {}
    if listening(SCATTER_ITEM):
        base = metadata(ctx.run_id, ctx.asset, ctx.partition)
        for key, item in chunk:
            if token in _STOPPED:
                break
            try:
                with span(SCATTER_ITEM, {**base, "key": key}) as live:
                    try:
                        completed[key] = function(ctx.for_item(key), item)
                    except Exception as exc:
                        live["error"] = normalize(exc)
                        raise
            except Exception as exc:
                failed[key] = normalize(exc).to_dict()
        return completed, failed
    for key, item in chunk:  # nothing listens for the item spans: none are built
        if token in _STOPPED:
            break
        try:
            completed[key] = function(ctx.for_item(key), item)
        except Exception as exc:
            failed[key] = normalize(exc).to_dict()
    return completed, failed


def run_calls(
    function: Callable[..., Any], ctx: RunContext, chunk: Chunk, token: str, per_call: int
) -> Outcomes:
    """Run ``function(ctx, [item, ...])`` over ``chunk``, ``per_call`` items a call.

    ``ctx.key`` is ``None`` (a call has several keys). The call returns one result per
    item, in order; an exception fails every item of the call, and a result that is not a
    list (or tuple) of as many results fails each of them with a ``validation_error``.
    """
    completed: dict[str, Any] = {}
    failed: dict[str, Any] = {}
    traced = listening(SCATTER_ITEM)
    base = metadata(ctx.run_id, ctx.asset, ctx.partition) if traced else {}
    for first in range(0, len(chunk), per_call):
        if token in _STOPPED:
            break
        part = chunk[first : first + per_call]
        keys = [key for key, _ in part]
        try:
            if traced:
                with span(SCATTER_ITEM, {**base, "key": keys[0], "keys": len(keys)}) as live:
                    try:
                        results = function(ctx, [item for _, item in part])
                    except Exception as exc:
                        live["error"] = normalize(exc)
                        raise
            else:
                results = function(ctx, [item for _, item in part])
        except Exception as exc:
            error = normalize(exc).to_dict()
            failed.update(dict.fromkeys(keys, error))
            continue
        if not isinstance(results, list | tuple) or len(results) != len(part):
            got = (
                f"{len(results)} results"
                if isinstance(results, list | tuple)
                else repr(type(results).__name__)
            )
            error = ValidationError(
                f"The item function of {ctx.asset!r} (items_per_call) was given {len(part)} "
                f"items and returned {got}: it must return a list of one result per item, "
                "in order.",
                asset=ctx.asset,
            ).to_dict()
            failed.update(dict.fromkeys(keys, error))
            continue
        completed.update(zip(keys, results, strict=True))
    return completed, failed


@dataclass
class _Batch:
    remaining: int
    checkpoint: dict[str, Any] | None


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
        dispatch = _Dispatch(run, asset, partition, inputs, ctx, coordinator, barrier, resumed)
        dispatch.execute()
        status = call(coordinator, "status", barrier)
    counts = {"completed": status.completed, "failed": status.failed, "total": status.total}
    run.records.note(run.run_id, asset.name, partition_key(partition), barrier=barrier, **counts)
    if status.status != "complete":
        raise _stopped(asset, partition, status, spec.tolerated_failures)
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


def _stopped(asset: Asset, partition: Any, status: BarrierStatus, tolerated: Any) -> FlowStoneError:
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


class _Dispatch:
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
        self.function = run.callable(spec.item)
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
        while len(self.in_flight) < self.max_concurrency:
            if not self.ready and not self.reader_done:
                self._read()
                continue
            if not self.ready:
                break
            seq, chunk = self.ready.popleft()
            future = call(
                self.executor,
                "submit",
                run_chunk,
                self.function,
                self.ctx,
                chunk,
                self.token,
                self.spec.items_per_call,
            )
            self.in_flight[future] = (seq, chunk)
        if not self.in_flight:
            return False
        finished, _ = wait(
            list(self.in_flight), timeout=TUNING_INTERVAL_S, return_when=FIRST_COMPLETED
        )
        for future in finished:
            seq, chunk = self.in_flight.pop(future)
            outcomes = _outcomes(future, chunk)
            self.buffer.append((seq, outcomes))
            self.buffered += len(outcomes[0]) + len(outcomes[1])
            self.buffered_failed += len(outcomes[1])
        if self._record_due():
            self._flush()
        self._tune()
        return True

    def _tune(self, force: bool = False) -> None:
        """Apply the run's latest retune when there is a new one (read at most every
        :data:`TUNING_INTERVAL_S`, or at once with ``force``)."""
        now = time.monotonic()
        if not force and now - self.tuned_at < TUNING_INTERVAL_S:
            return
        self.tuned_at = now
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
            self.done += len(completed)
            self.failed += len(failed)
            self.run.progress.scatter(
                self.asset.name, self.partition, self.done, self.failed, self.total
            )
            self._check_threshold(recorded.state)
        self._advance(force_checkpoint)

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
            raise _stopped(self.asset, self.partition, status, self.tolerated)

    def _stop_work(self) -> None:
        """Cancel queued chunks; running ones stop before their next item."""
        _STOPPED.add(self.token)
        self.ready.clear()
        for future in list(self.in_flight):
            future.cancel()
        wait(list(self.in_flight))
        self.in_flight.clear()
        _STOPPED.discard(self.token)


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
