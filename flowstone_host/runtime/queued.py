"""A scatter's pass on a remote executor: chunks as queued jobs, outcomes from workers.

What differs from :class:`~.dispatch.Dispatch` (the local pass): a chunk is
:data:`JOB_ITEMS` items (or a reader batch, if smaller); each dispatch queues its chunks in
one batch as :class:`~flowstone_host.contracts.Job` references, at most
``max_concurrency`` of them queued or running at once (so the limit holds across every
worker, and a long scatter never sits in the queue whole); a worker records its chunk's
outcomes in the coordinator itself, so the counts come from the barrier; a job that failed
for good (every attempt spent: an item that kills its worker, say) is queued again as one
job per call of its items that no worker recorded, so that only the culprit fails, once,
and its chunk-mates run; and the step notes how many items are queued, running (on which
worker), done and failed.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any

from ..boundary import call
from ..contracts.executor import Job, JobFuture
from ..contracts.types import BarrierStatus
from ..errors import normalize
from ..partitions import partition_key
from .dispatch import RECORD_INTERVAL_S, Dispatch
from .items import Chunk, encode_chunk

__all__ = ["JOB_ITEMS", "QueuedDispatch"]

#: Items per job (fewer at the end of a reader batch).
JOB_ITEMS = 64


class QueuedDispatch(Dispatch):
    """One process's pass over a scatter whose executor is remote."""

    refreshed_at = 0.0
    queue_noted: dict[str, Any] | None = None

    def _chunk_size(self) -> int:
        """A job's items: :data:`JOB_ITEMS` (whole calls), whatever ``max_concurrency``
        is: a queued job costs milliseconds, so it should carry enough work."""
        per_call = self.spec.items_per_call
        return -(-JOB_ITEMS // per_call) * per_call

    def _dispatch(self, todo: list[tuple[int, Chunk]]) -> None:
        where = (self.run.run_id, self.asset.name, partition_key(self.partition), self.barrier)
        jobs = [Job(*where, None, encode_chunk(chunk), len(chunk)) for _, chunk in todo]
        futures = call(self.executor, "enqueue", jobs)
        self.in_flight.update(zip(futures, todo, strict=True))

    def _finished(self, future: Future[Any], seq: int, chunk: Chunk) -> None:
        error = None if future.cancelled() else future.exception()
        if error is None:
            self.batches[seq].remaining -= len(chunk)
            return
        keys = [key for key, _ in chunk]
        finished = set(call(self.coordinator, "finished_keys", self.barrier, keys))
        self.batches[seq].remaining -= len(finished)
        unfinished = [(key, item) for key, item in chunk if key not in finished]
        per_call = self.spec.items_per_call
        if len(unfinished) > per_call:  # find the culprit: its chunk-mates go on alone
            calls = [unfinished[i : i + per_call] for i in range(0, len(unfinished), per_call)]
            self.ready.extendleft((seq, part) for part in reversed(calls))
            return
        lost = normalize(error).to_dict()
        self._buffer(seq, ({}, {key: lost for key, _ in unfinished}))

    def _waited(self) -> None:
        self._refresh()

    def _recorded(self, completed: int, failed: int, state: str) -> None:
        self.refreshed_at = 0.0  # the workers recorded the rest: the barrier has the counts
        self._refresh()

    def _refresh(self) -> None:
        """Take the counts from the barrier, at most every :data:`RECORD_INTERVAL_S`
        while chunks run; stop at the threshold."""
        now = time.monotonic()
        if self.in_flight and now - self.refreshed_at < RECORD_INTERVAL_S:
            return
        self.refreshed_at = now
        status: BarrierStatus = call(self.coordinator, "status", self.barrier)
        self.done, self.failed = status.completed, status.failed
        self._report()
        self._check_threshold(status.status)

    def _observe(self) -> None:
        """Note on the step how many items are queued, running (and on which worker),
        done and failed, when that changed."""
        queued = running = 0
        workers: dict[str, int] = {}
        for future, (_, chunk) in self.in_flight.items():
            if not isinstance(future, JobFuture) or future.state == "queued":
                queued += len(chunk)
            else:
                running += len(chunk)
                worker = future.worker or "?"
                workers[worker] = workers.get(worker, 0) + len(chunk)
        queue = {"queued": queued, "running": running, "workers": workers}
        queue.update(done=self.done, failed=self.failed)
        if queue != self.queue_noted:
            self.queue_noted = queue
            key = partition_key(self.partition)
            self.run.records.note(self.run.run_id, self.asset.name, key, queue=queue)
