"""The queue executor: scatter chunks and branches as procrastinate jobs on PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, ClassVar, TypeVar

from ...contracts.executor import Executor, Job, JobFuture, JobHandler
from ...contracts.types import Health
from ...errors import Conflict, NotSupported, Unavailable, ValidationError
from .._extras import require
from ._tracker import QueuedFuture, Tracker

__all__ = ["TASK", "QueueExecutor"]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: The one procrastinate task every job runs: a :class:`Job` reference as its arguments.
TASK = "flowstone.job"
#: Held while the queue's schema is checked and applied, so that workers starting
#: together do not apply it twice.
_SCHEMA_LOCK = 0x666C6F77  # "flow"
_FIELDS = {f.name: f.type for f in dataclasses.fields(Job)}
# procrastinate logs two INFO lines per job, each with the job's arguments: at 10,000
# items that drowns the host's own lines. Its warnings and errors still show.
_PROCRASTINATE_LOG = logging.getLogger("procrastinate")
if _PROCRASTINATE_LOG.level == logging.NOTSET:
    _PROCRASTINATE_LOG.setLevel(logging.WARNING)


class QueueExecutor(Executor):
    """Queues work on PostgreSQL for ``flowstone-host worker`` processes (extra
    ``distributed``, procrastinate).

    A job carries references only (run, asset, partition, barrier or execution, the
    chunk's items or the branch name); workers load the same manifests, run the job and
    record its outcomes in the asset's coordinators, which must be shared ones
    (PostgreSQL; SQLite only when every worker runs on the host's machine).

    Config:
        dsn: The PostgreSQL server of the queue (its tables are created when missing).
        queue: The queue's name (default ``flowstone``); a worker serves the queues of
            the queue executors in its manifests, or those given with ``--queues``.
        max_attempts: Attempts a job gets in all (default 3): a worker that stops
            mid-job, dies or falls silent uses one.
        stall_timeout_s: A worker whose heartbeat is older than this holds its jobs no
            more: they go to another worker (default 30; workers beat 4 times as often).
        poll_interval_s: How often the dispatching process reads its jobs' states
            (default 0.05).
    """

    contract_version = "1.1.0"
    plugin_version = "1.0.0"
    remote: ClassVar[bool] = True
    config_schema: ClassVar[dict[str, Any]] = {
        "dsn": {"type": "string", "required": True, "empty": False},
        "queue": {"type": "string", "regex": r"[A-Za-z0-9_.-]{1,64}", "default": "flowstone"},
        "max_attempts": {"type": "integer", "min": 1, "max": 100, "default": 3},
        "stall_timeout_s": {"type": "number", "min": 0.5, "max": 86400, "default": 30},
        "poll_interval_s": {"type": "number", "min": 0.005, "max": 10, "default": 0.05},
    }

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        procrastinate = require("procrastinate")
        self.dsn = str(self.config["dsn"])
        self.queue = str(self.config.get("queue") or "flowstone")
        self.max_attempts = int(self.config.get("max_attempts") or 3)
        self.stall_timeout_s = float(self.config.get("stall_timeout_s") or 30)
        self._connector = procrastinate.SyncPsycopgConnector(
            conninfo=self.dsn, min_size=1, max_size=4, kwargs={"application_name": "flowstone"}
        )
        self._app = procrastinate.App(connector=self._connector)
        self._app.open()
        try:
            _apply_schema_if_missing(self._connector.pool, procrastinate)
        except BaseException:
            self._app.close()
            raise
        self._deferrer = self._app.configure_task(TASK, queue=self.queue)
        self._tracker = Tracker(
            self._connector.pool.connection,
            poll_interval_s=float(self.config.get("poll_interval_s") or 0.05),
            stall_timeout_s=self.stall_timeout_s,
            max_attempts=self.max_attempts,
        )
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        raise NotSupported(
            "The queue executor runs queued jobs (scatter chunks and branches), not callables."
        )

    def enqueue(self, jobs: Sequence[Job]) -> list[JobFuture]:
        if self._closed:
            raise Conflict("The queue executor is closed; no new work is accepted.")
        if not jobs:
            return []
        ids = self._deferrer.batch_defer(*(dataclasses.asdict(job) for job in jobs))
        futures = [
            QueuedFuture(job, job_id, self._tracker) for job, job_id in zip(jobs, ids, strict=True)
        ]
        self._tracker.track(futures)
        return list(futures)

    def serve(
        self,
        handler: JobHandler,
        *,
        concurrency: int,
        queues: Sequence[str] | None = None,
        grace_s: float = 30.0,
    ) -> None:
        """Run jobs until SIGTERM or SIGINT. Jobs in hand then get ``grace_s`` to end, but
        never more than half of ``stall_timeout_s`` (the heartbeat stops while they are
        waited for: past the stall timeout another worker would take them); a job still
        running is then told to stop, records the items it finished and goes back to the
        queue (one of its attempts used)."""
        procrastinate = require("procrastinate")
        connector = procrastinate.PsycopgConnector(
            conninfo=self.dsn, min_size=1, max_size=concurrency + 2
        )  # a connection per job in hand, one to fetch, one for the heartbeat
        app = procrastinate.App(connector=connector)
        retries = self.max_attempts - 1

        announced: list[int] = []

        def run(context: Any, **arguments: Any) -> None:
            worker_id = context.job.worker_id
            if worker_id is not None and not announced:  # ``runs show`` names workers so
                announced.append(worker_id)
                log.info("This process is queue worker %s.", worker_id)
            handler(job_from(arguments), context.should_abort)

        app.task(name=TASK, pass_context=True, retry=retries or False, queue=self.queue)(run)

        options = {
            "queues": list(queues or [self.queue]),
            "concurrency": concurrency,
            "update_heartbeat_interval": max(0.1, self.stall_timeout_s / 4),
            "stalled_worker_timeout": self.stall_timeout_s,
            "shutdown_graceful_timeout": min(grace_s, self.stall_timeout_s / 2),
            "delete_jobs": "successful",
            "install_signal_handlers": False,
        }
        if not asyncio.run(_work_until_signalled(app, options)):
            raise Unavailable("The queue worker stopped without a stop signal; see the log.")

    def health_check(self) -> Health | None:
        try:
            with self._connector.pool.connection() as conn:
                conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE false").fetchone()
        except Exception as exc:
            return Health.unhealthy(f"The queue's database does not answer: {exc}")
        return Health.ok(queue=self.queue)

    def close(self) -> None:
        self._closed = True
        self._tracker.close()
        self._app.close()


async def _work_until_signalled(app: Any, options: dict[str, Any]) -> bool:
    """Run a procrastinate worker until SIGTERM or SIGINT (then stop it gracefully and
    return true) or until it stops on its own (a side task failed: return false). A second
    signal exits the process at once with status 1."""
    async with app.open_async():
        return await _run(app, options)


async def _run(app: Any, options: dict[str, Any]) -> bool:
    loop = asyncio.get_running_loop()
    worker = asyncio.ensure_future(app.run_worker_async(**options))
    signalled = False

    def stop() -> None:
        nonlocal signalled
        if signalled:
            os.write(2, b"Second stop signal: exiting at once.\n")
            os._exit(1)
        signalled = True
        log.info("Stop signal: finishing or giving back the jobs in hand.")
        worker.cancel()  # procrastinate then stops gracefully, within its timeout

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    try:
        await worker
    except asyncio.CancelledError:
        if not signalled:
            raise
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return signalled


def job_from(arguments: dict[str, Any]) -> Job:
    """Return the :class:`Job` a queued job's arguments describe.

    Raises:
        ValidationError: the arguments are not a job's (a forged or foreign row).
    """
    if set(arguments) != set(_FIELDS):
        raise ValidationError(
            f"A queued job's arguments are not a flowstone job: {sorted(arguments)}"
        )
    for name in ("run_id", "asset", "partition", "target", "items"):
        if not isinstance(arguments[name], str):
            raise ValidationError(f"A queued job's {name!r} is not a string.")
    if arguments["branch"] is not None and not isinstance(arguments["branch"], str):
        raise ValidationError("A queued job's 'branch' is not a string.")
    if not isinstance(arguments["size"], int):
        raise ValidationError("A queued job's 'size' is not an integer.")
    return Job(**arguments)


def _apply_schema_if_missing(pool: Any, procrastinate: Any) -> None:
    """Create the queue's tables when the database has none (under an advisory lock)."""
    with pool.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        found = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0]
        if found is None:
            log.info("Creating the job queue's tables (procrastinate).")
            conn.execute(procrastinate.schema.SchemaManager.get_schema())
