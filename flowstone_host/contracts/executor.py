"""The executor contract: where scatter items and parallel branches run."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ..errors import NotSupported
from .plugin import Plugin

__all__ = ["Executor", "Job", "JobFuture", "JobHandler"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Job:
    """Work for a worker process, by reference: the worker looks each name up in its own
    snapshot (same manifests), loads what it needs through the IO managers and records
    outcomes in the coordinators. Loaded inputs and results never travel in a job.

    Attributes:
        run_id: The run the work belongs to.
        asset: The scatter or parallel asset.
        partition: The partition's key (:func:`~flowstone_host.partitions.partition_key`).
        target: The scatter barrier or the parallel execution.
        branch: The branch to run (parallel jobs); ``None`` for a scatter chunk.
        items: The chunk's ``(key, item)`` pairs as the runtime encoded them (opaque to
            the executor): what the reader yielded, typically references such as row ids
            or object keys.
        size: How many items ``items`` holds (``1`` for a branch).
    """

    run_id: str
    asset: str
    partition: str
    target: str
    branch: str | None = None
    items: str = ""
    size: int = 1


class JobFuture(Future[None]):
    """The future of a queued :class:`Job`: resolves when the job ends (its outcomes are
    then in the coordinator); fails when the job failed for good (every retry spent).

    Attributes:
        job: The job.
        state: ``queued`` or ``running`` while it is not done.
        worker: The worker holding it while it runs.
    """

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job
        self.state = "queued"
        self.worker: str | None = None


#: What a worker runs for each job it takes: the job, and a function telling whether the
#: worker is stopping (the handler then stops between items; the job is retried).
JobHandler = Callable[[Job, Callable[[], bool]], None]


class Executor(Plugin):
    """Runs callables and hands back futures: local threads by default, a queue later.

    Invariants:

    - Every submitted callable runs at most once, and its future resolves with its result
      or its exception.
    - No more than the configured concurrency run at the same time.
    - After ``close()`` no new work is accepted; work already submitted finishes.

    A *remote* executor (``remote = True``, contract 1.1) runs work in other processes:
    the runtime hands it :class:`Job` references with :meth:`enqueue` instead of callables,
    and worker processes run them with :meth:`serve`.
    """

    #: Whether work runs in worker processes from :class:`Job` references.
    remote: ClassVar[bool] = False

    @abstractmethod
    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)`` and return its future.

        Raises:
            Conflict: the executor was closed.
        """

    def enqueue(self, jobs: Sequence[Job]) -> list[JobFuture]:
        """Queue ``jobs`` (in one batch) and return their futures, in order. Cancelling a
        future takes its job off the queue if no worker took it yet.

        Raises:
            NotSupported: the executor is not remote.
        """
        raise NotSupported(f"{type(self).__name__} runs callables, not queued jobs.")

    def serve(
        self,
        handler: JobHandler,
        *,
        concurrency: int,
        queues: Sequence[str] | None = None,
        grace_s: float = 30.0,
    ) -> None:
        """Run queued jobs with ``handler``, ``concurrency`` at a time, until SIGTERM or
        SIGINT; jobs in hand then get up to ``grace_s`` to finish, then go back to the
        queue.

        Raises:
            NotSupported: the executor is not remote.
        """
        raise NotSupported(f"{type(self).__name__} has no worker processes.")
