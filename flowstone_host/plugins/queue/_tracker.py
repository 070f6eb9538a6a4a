"""The futures of queued jobs: resolved by polling the queue, stalled jobs given back.

One thread per executor, started with the first job and stopped when none is left. Every
``poll_interval_s`` it reads the state of the jobs it waits for in one query: a job taken
by a worker is ``running`` on that worker; one that succeeded resolves its future; one that
failed for good fails it. Every ``stall_timeout_s / 2`` it looks for its jobs held by
a worker whose heartbeat is older than ``stall_timeout_s`` (a worker killed with SIGKILL,
or cut off): such a job goes back to the queue for another worker, or fails once it has
used ``max_attempts``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ...contracts.executor import Job, JobFuture
from ...errors import FlowStoneError, Unavailable

__all__ = ["QueuedFuture", "Tracker"]

log = logging.getLogger(__name__)

_STATES = "SELECT id, status::text, worker_id FROM procrastinate_jobs WHERE id = ANY(%s)"
_STALLED = """
SELECT job.id, job.attempts FROM procrastinate_jobs job
  LEFT JOIN procrastinate_workers worker ON worker.id = job.worker_id
 WHERE job.id = ANY(%s) AND job.status = 'doing'
   AND (job.worker_id IS NULL
        OR worker.last_heartbeat < NOW() - make_interval(secs => %s))
"""
_RETRY = "SELECT procrastinate_retry_job_v2(%s, NOW(), NULL, NULL, NULL)"
_FAIL = "SELECT procrastinate_finish_job_v1(%s, 'failed', false)"
_CANCEL = (
    "UPDATE procrastinate_jobs SET status = 'cancelled' WHERE id = %s AND status = 'todo'"
    " RETURNING id"
)


class QueuedFuture(JobFuture):
    """A job's future; cancelling it takes the job off the queue if no worker took it."""

    def __init__(self, job: Job, job_id: int, tracker: Tracker) -> None:
        super().__init__(job)
        self.job_id = job_id
        self._tracker = tracker

    def cancel(self) -> bool:
        if self.done():
            return self.cancelled()
        if not self._tracker.cancel(self.job_id):
            return False  # a worker has it: its future resolves when it ends
        return super().cancel()


class Tracker:
    """Resolves :class:`QueuedFuture` objects from the queue's tables.

    Args:
        connection: Returns a context manager yielding a psycopg connection (autocommit
            is not assumed: each use commits).
        poll_interval_s: Time between two reads of the jobs' states.
        stall_timeout_s: A worker silent this long holds its jobs no more.
        max_attempts: Attempts a job gets in all, stalls included.
    """

    def __init__(
        self,
        connection: Callable[[], Any],
        *,
        poll_interval_s: float,
        stall_timeout_s: float,
        max_attempts: int,
    ) -> None:
        self._connection = connection
        self._poll = poll_interval_s
        self._stall = stall_timeout_s
        self._max_attempts = max_attempts
        self._lock = threading.Lock()
        self._waiting: dict[int, QueuedFuture] = {}
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._stall_checked = time.monotonic()

    def track(self, futures: list[QueuedFuture]) -> None:
        """Wait for ``futures``' jobs, starting the polling thread if it is not running."""
        with self._lock:
            self._waiting.update((f.job_id, f) for f in futures)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="flowstone-queue", daemon=True
                )
                self._thread.start()

    def cancel(self, job_id: int) -> bool:
        """Cancel the job if it is still queued; whether it was."""
        with self._connection() as conn:
            cancelled = conn.execute(_CANCEL, (job_id,)).fetchone() is not None
            conn.commit()
        if cancelled:
            with self._lock:
                self._waiting.pop(job_id, None)
        return cancelled

    def close(self) -> None:
        """Stop polling; futures still waiting fail with ``unavailable``."""
        self._closed.set()
        with self._lock:
            thread, waiting, self._waiting = self._thread, self._waiting, {}
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        for future in waiting.values():
            if not future.done():
                future.set_exception(Unavailable("The queue executor was closed."))

    # -- the thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._closed.wait(self._poll):
            with self._lock:
                ids = list(self._waiting)
            if not ids:
                with self._lock:  # stop unless jobs arrived meanwhile
                    if not self._waiting:
                        self._thread = None
                        return
                continue
            try:
                self._check(ids)
            except Exception:  # the database is away: keep waiting, say so once a poll
                log.warning("Cannot read the queue's job states; retrying.", exc_info=True)

    def _check(self, ids: list[int]) -> None:
        with self._connection() as conn:
            rows = conn.execute(_STATES, (ids,)).fetchall()
            stalled: list[tuple[int, int]] = []
            now = time.monotonic()
            if now - self._stall_checked >= self._stall / 2:
                self._stall_checked = now
                stalled = conn.execute(_STALLED, (ids, self._stall)).fetchall()
            for job_id, attempts in stalled:
                if attempts + 1 >= self._max_attempts:
                    conn.execute(_FAIL, (job_id,))
                    log.warning("Job %d was held by a silent worker on its last attempt.", job_id)
                else:
                    conn.execute(_RETRY, (job_id,))
                    log.warning("Job %d was held by a silent worker; queued again.", job_id)
            conn.commit()
        seen = {job_id for job_id, _, _ in rows}
        for job_id, status, worker in rows:
            self._update(job_id, status, worker)
        for job_id in ids:
            if job_id not in seen:  # workers delete the jobs that succeeded
                self._update(job_id, "succeeded", None)

    def _update(self, job_id: int, status: str, worker: int | None) -> None:
        with self._lock:
            future = self._waiting.get(job_id)
            if future is None:
                return
            if status in ("todo", "doing"):
                future.state = "queued" if status == "todo" else "running"
                future.worker = None if worker is None else str(worker)
                return
            del self._waiting[job_id]
        if future.done():
            return
        if status == "succeeded":
            future.set_result(None)
            return
        future.set_exception(
            FlowStoneError(
                "job_failed",
                f"Queued job {job_id} ({status}) ended without finishing its work after its "
                "attempts; the workers' logs say why.",
                details={"job_id": job_id, "status": status},
            )
        )
