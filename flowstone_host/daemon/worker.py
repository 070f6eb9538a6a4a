"""``flowstone-host worker``: runs queued scatter chunks and branches until SIGTERM.

A worker is a host without the admin API: it loads the same manifests (and reloads them
on change or SIGHUP, like the daemon), then serves the queue of one remote executor
declaration (``--executor``, default ``default``) with ``--concurrency`` jobs at a time.
Each job runs on a leased snapshot, so a reload never swaps a plugin under a running job.
SIGTERM or SIGINT stops taking jobs; jobs in hand get ``shutdown.grace_s`` to finish
(at most half the executor's ``stall_timeout_s``), then stop between two items and go back
to the queue (their finished items recorded), and the process exits 0; a second signal
exits at once with status 1. A lost database connection does not end the worker: it logs
the error and serves again, backing off. Any number of workers, on any number of
machines, may serve one queue.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from ..contracts.executor import Job
from ..errors import ConfigError
from ..host.lifecycle import Host
from ..manifest.host_config import HostConfig
from ..registry import Entry
from ..runtime.records import RunRecords
from ..runtime.remote import JobRunner
from .watcher import ManifestWatcher

__all__ = ["Worker"]

log = logging.getLogger(__name__)


class Worker:
    """One worker process; :meth:`run` blocks until SIGTERM or SIGINT.

    Args:
        config: The validated host config.
        executor: The remote executor declaration whose queue is served.
        concurrency: Jobs run at once.
        queues: Queue names to serve (default: the executor's own).
    """

    def __init__(
        self,
        config: HostConfig,
        *,
        executor: str = "default",
        concurrency: int = 1,
        queues: Sequence[str] | None = None,
    ) -> None:
        self.config = config
        self.executor_name = executor
        self.concurrency = concurrency
        self.queues = list(queues or [])
        self.host = Host(config)
        self.runner = JobRunner(config.callables, RunRecords.in_state_dir(config.state_dir))
        self._reload = threading.Event()
        self._stopping = threading.Event()
        self.watcher = ManifestWatcher.for_config(config, self._on_change)
        self.host.watch_with(self.watcher)
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def run(self) -> int:
        """Serve jobs until told to stop; return the exit status (0 after a clean stop).

        Raises:
            ConfigError: the named executor is not a queue executor.
        """
        self.watcher.start()
        reloader = threading.Thread(target=self._reloads, name="flowstone-reload", daemon=True)
        try:
            report = self.host.start()
            if report.outcome in ("partial", "error"):
                log.warning("%s", report.summary())
            self._install_signals()
            reloader.start()
            self._serve()
        finally:
            self._stopping.set()
            self._reload.set()
            self.watcher.stop()
            self.host.stop(grace_s=self.config.shutdown_grace_s)
            log.info("Worker %s stopped.", self.name)
        return 0

    def _serve(self) -> None:
        """Serve until a stop signal; a lost database connection (or another failure of
        the queue) is logged and serving starts again, backing off up to 30 s."""
        backoff = 1.0
        while not self._stopping.is_set():
            executor = self._executor()  # the current one: a reload may have replaced it
            log.info(
                "Worker %s serving queue(s) %s with concurrency %d.",
                self.name,
                ", ".join(self.queues or [str(getattr(executor.instance, "queue", "?"))]),
                self.concurrency,
                extra={"worker": self.name, "pid": os.getpid()},
            )
            try:
                executor.instance.serve(
                    self._handle,
                    concurrency=self.concurrency,
                    queues=self.queues or None,
                    grace_s=self.config.shutdown_grace_s,
                )
                return  # a stop signal
            except Exception:
                log.exception("Serving the queue failed; starting again in %g s.", backoff)
            self._install_signals()  # serving replaced them
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)

    def _install_signals(self) -> None:
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM or SIGINT between two attempts to serve (while serving, the queue
        executor handles them): stop."""
        log.info("%s: stopping.", signal.Signals(signum).name)
        self._stopping.set()

    def _executor(self) -> Entry:
        entry = self.host.snapshot().executors.resolve(self.executor_name)
        if not getattr(entry.instance, "remote", False):
            raise ConfigError(
                f"Executor {self.executor_name!r} runs work in the host itself "
                f"(plugin {entry.plugin!r}); a worker serves a queue executor: declare "
                "one with `plugin: procrastinate` (see config/examples/distributed), or "
                "name it with --executor."
            )
        return entry

    def _handle(self, job: Job, stopping: Callable[[], bool]) -> None:
        with self.host.lease() as snapshot:
            self.runner.run(snapshot, job, stopping)

    def _on_change(self, trigger: str) -> None:
        if not self._stopping.is_set():
            self.host.reload(trigger)

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._reload.set()

    def _reloads(self) -> None:
        while True:
            self._reload.wait()
            self._reload.clear()
            if self._stopping.is_set():
                return
            log.info("SIGHUP: reloading.")
            self.host.reload("signal")
