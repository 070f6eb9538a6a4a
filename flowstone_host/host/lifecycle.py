"""The Host: one immutable snapshot of every registry, reloaded as a transaction.

::

    host = Host.from_config("config/host.yaml")
    host.start()                                   # the first load
    entry = host.snapshot().io_managers.resolve("warehouse")
    report = host.reload()                         # what changed, by content
    host.stop()                                    # tear down in reverse order of setup

A reload reads the manifest folders, validates them (a failing file keeps its last good
version), loads and sets up only new or changed declarations (unchanged ones keep their
live instances), health-checks them, swaps the snapshot atomically and tears down what
left once no run holds it. Reloads never overlap, and a trigger that arrives during one is
never lost: it is served by the next.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError, Unavailable
from ..loading import entry_points
from ..loading.catalog import InstalledPlugins
from ..loading.loader import PluginLoader
from ..manifest.host_config import HostConfig, read_host_config
from ..registry import AssetGraph, Entry, Snapshot
from ..telemetry import span
from .emitters import attach_emitters, detach_emitters
from .health import HealthChecker
from .leases import SnapshotKeeper
from .manifest_tree import ManifestTree, Reading
from .metrics import HostMetrics
from .reload_log import log_reload_news, log_report
from .report import DeclarationState, Outcome, ReloadReport
from .status import readiness, status_document
from .tickets import Tickets
from .transaction import Transaction

__all__ = ["Host"]

log = logging.getLogger(__name__)

Key = tuple[str, str]

#: Triggers that retry failed declarations even when no file changed (a distribution
#: may have been installed since): the ones a person sends.
_MANUAL = frozenset({"startup", "manual", "signal", "http"})
#: Triggers of the file watcher itself.
_WATCHER = frozenset({"watch", "rescan"})


class Watcher(Protocol):
    """What the host reads from a file watcher (:class:`~.watcher.ManifestWatcher`)."""

    def busy(self) -> frozenset[Path]:
        """Files with an in-place write still open."""
        ...

    @property
    def health(self) -> dict[str, Any]:
        """Its mode (``inotify`` or ``polling``), last error and counters, JSON-safe."""
        ...


class Host:
    """Loads the plugins the manifests declare and keeps them current.

    Args:
        config: The validated host config.
    """

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self._watcher: Watcher | None = None
        self.metrics = HostMetrics()
        self.loader = PluginLoader.for_host(config)
        self._tree = ManifestTree(config, InstalledPlugins(self.loader))
        self._states: dict[Key, DeclarationState] = {}
        # Live plugin entries by id, oldest setup first: stop() tears down newest first.
        self._setup_order: dict[int, Entry] = {}
        self._rejected: dict[str, Any] = {}
        self._keeper = SnapshotKeeper(Snapshot.build([]), self._retire)
        self._health = HealthChecker(
            self._states_view, self.metrics, config.health.timeout_s, lambda: self._stopping
        )
        self._reload_lock = threading.Lock()
        self._tickets = Tickets()
        self._last: ReloadReport | None = None
        self._stopping = False

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] = "config/host.yaml") -> Host:
        """Read and validate the host config at ``path`` and build a host on it.

        Raises:
            ConfigError: the host config is missing or invalid, with every problem listed.
        """
        if not Path(path).is_file():
            raise ConfigError(
                f"No host config at {os.fspath(path)!r}. Pass --config PATH, or run from the "
                f"project folder, where config/host.yaml is.",
                file=os.fspath(path),
            )
        return cls(read_host_config(path))

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> ReloadReport:
        """Run the first load; a broken manifest is rejected and the rest still loads."""
        return self.reload("startup")

    def begin_stop(self) -> None:
        """Stop taking work, now: ``/healthz`` and ``/readyz`` answer 503, new runs and
        reloads are refused, and a plugin constructor or ``setup()`` being waited for is
        given up on. Safe from a signal handler; :meth:`stop` does the rest."""
        self._stopping = True
        self.loader.cancel()

    def stop(self, grace_s: float | None = None, *, deadline: float | None = None) -> bool:
        """Wait up to ``grace_s`` for runs in flight, then tear everything down in reverse.

        Args:
            grace_s: How long runs in flight may take (``shutdown.grace_s`` if ``None``).
            deadline: A ``time.monotonic()`` by which to be done, whatever the plugins do:
                the wait for runs, for a reload in progress and each teardown are cut to
                it, and a teardown still running then is left behind (and logged).

        Returns:
            Whether every run finished within the grace period.
        """
        self.begin_stop()
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        if deadline is not None:
            grace = min(grace, max(deadline - time.monotonic(), 0.0))
        drained = self._keeper.drain(grace)
        if not drained:
            log.warning("Stopping with %d run(s) still in flight.", self._keeper.in_flight())
        left = _left(deadline)
        locked = self._reload_lock.acquire(timeout=-1 if left is None else left)
        if not locked:
            log.error("A reload is still running at the stop deadline; tearing down without it.")
        try:
            entries = list(self._setup_order.values())
            self._setup_order.clear()
            self._states = {}  # a new dict: /status may be iterating the old one
            last = self.snapshot()
            self._keeper.swap(Snapshot.build([], generation=self.generation + 1, previous=last), [])
            self._keeper.release_all()  # what reloads retired, still held by runs past grace
            for entry in reversed(entries):
                detach_emitters([entry])
                self.loader.teardown(entry, _left(deadline))
            for fallback in last.fallbacks():  # the built-in defaults go last
                self.loader.teardown(fallback, _left(deadline))
        finally:
            if locked:
                self._reload_lock.release()
        self.metrics.close()
        return drained

    def watch_with(self, watcher: Watcher) -> None:
        """Take file-change facts from ``watcher``: files it sees still being written keep
        their last good version until closed, and its state is part of :meth:`status`."""
        self._watcher = watcher

    # -- reading -----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Return the current snapshot (no lock; it never changes once built)."""
        return self._keeper.current()

    @contextmanager
    def lease(self) -> Iterator[Snapshot]:
        """Hold the current snapshot for a run: what it uses is torn down only after it.

        Raises:
            Unavailable: the host is stopping and takes no new work.
        """
        if self._stopping:
            raise Unavailable("The host is stopping and takes no new work; try another host.")
        with self._keeper.lease() as snapshot:
            yield snapshot

    @property
    def generation(self) -> int:
        """The current snapshot's generation: how many reloads changed something."""
        return self.snapshot().generation

    @property
    def last_reload(self) -> ReloadReport | None:
        """The last reload's report."""
        return self._last

    # -- reload --------------------------------------------------------------------------

    def reload(self, trigger: str = "manual") -> ReloadReport:
        """Reload now and return the report; join a reload that started after this call.

        Reloads never overlap. A call made while one runs waits for it, then runs again
        unless a reload that started after this call already covered it. Only a reload a
        person asked for (``manual``, ``signal``, ``http``) covers such a request: it also
        retries what failed, which a watcher's reload does not.
        """
        manual = trigger in _MANUAL
        ticket = self._tickets.take(manual)
        with self._reload_lock:
            if self._stopping:  # nothing may be set up again once teardown has begun
                error = "the host is stopping"
                return ReloadReport(
                    trigger, time.time(), 0.0, "error", self.generation, error=error
                )
            if self._tickets.covered(manual, ticket) and self._last is not None:
                return self._last  # a reload that began after our request covered it
            begun = self._tickets.begin(manual)
            report = self._reload(trigger)
            self._tickets.served(begun)
            self._last = report
        return report

    def _reload(self, trigger: str) -> ReloadReport:
        started, clock = time.time(), time.monotonic()
        with span(("flowstone", "reload"), {"trigger": trigger}) as meta:
            try:
                report = self._converge(trigger, started, clock)
            except Exception as exc:  # a bug must not cost the running configuration
                log.exception("Reload (%s) failed; the running configuration stays.", trigger)
                duration = time.monotonic() - clock
                error = f"{type(exc).__name__}: {exc}"
                report = ReloadReport(
                    trigger, started, duration, "error", self.generation, error=error
                )
            meta["outcome"] = report.outcome
        log_report(report)
        return report

    def _converge(self, trigger: str, started: float, clock: float) -> ReloadReport:
        entry_points.refresh()  # a distribution installed since the last reload is seen
        if trigger in _MANUAL:
            self.loader.retry_timeouts()  # a person asked: a timed-out import gets another go
        # The watcher's triggers (an event, its periodic rescan) skip files still being
        # written, until the busy deadline; a person's reload or the first load reads every
        # file, and a lost-events notice clears every busy mark, so no close hides a change.
        watched = trigger in _WATCHER and self._watcher is not None
        busy = self._watcher.busy() if watched and self._watcher is not None else ()
        reading = self._tree.read(busy)
        if not reading.changed and trigger not in _MANUAL:
            duration = time.monotonic() - clock
            return ReloadReport(trigger, started, duration, "unchanged", self.generation)
        return self._apply(trigger, reading, started, clock)

    def _apply(self, trigger: str, reading: Reading, started: float, clock: float) -> ReloadReport:
        validated = self._tree.validate(reading)
        manifests = validated.report.manifests
        retry = trigger in _MANUAL
        transaction = Transaction(self.loader, self._states, manifests, self._health, retry=retry)
        try:
            transaction.run()
            if self._stopping:  # stop() may not have waited for this reload
                raise Unavailable("the host began stopping during the reload")
        except BaseException:
            for entry in reversed(transaction.added):  # nothing of a failed reload stays up
                self.loader.teardown(entry)
            raise
        self._commit(transaction)
        self._tree.accept(validated, reading)
        log_reload_news(self._states.values(), self._rejected, validated.rejected)
        self._rejected = validated.rejected
        self._health.publish_states()
        if validated.rejected or transaction.failed:
            outcome: Outcome = "partial"
        else:
            outcome = "applied" if transaction.changed else "unchanged"
        duration = time.monotonic() - clock
        changes = tuple(transaction.changes)
        return ReloadReport(
            trigger, started, duration, outcome, self.generation, changes, dict(validated.rejected)
        )

    def _commit(self, transaction: Transaction) -> None:
        """Swap in the transaction's snapshot, if it changes anything."""
        self._states = transaction.states
        if not transaction.changed:
            return
        snapshot = Snapshot.build(
            transaction.entries(),
            assets=AssetGraph(transaction.assets),
            generation=self.generation + 1,
            previous=self.snapshot(),
        )
        detach_emitters(transaction.retired)  # an emitter stops at once; teardown waits for runs
        attach_emitters(transaction.added)
        self._record_setups(transaction)
        self._keeper.swap(snapshot, transaction.retired)
        for change in transaction.changes:
            if change.action == "removed":
                self.metrics.forget(change.kind, change.name)

    def _record_setups(self, transaction: Transaction) -> None:
        """Forget the entries ``transaction`` retired; append those it set up, in order."""
        for entry in transaction.retired:
            self._setup_order.pop(id(entry), None)
        for entry in transaction.added:
            self._setup_order[id(entry)] = entry

    def _retire(self, entry: Entry) -> None:
        self.loader.teardown(entry)

    # -- health and status -------------------------------------------------------------

    def _states_view(self) -> list[DeclarationState]:
        return list(self._states.values())

    def check_health(self) -> None:
        """Health-check every live plugin and resource that can check itself, now (all at
        once; not at all once the host is stopping)."""
        if not self._stopping:
            self._health.check_all()

    def alive(self) -> bool:
        """Whether the host is serving: false once it is stopping."""
        return not self._stopping

    def ready(self) -> tuple[bool, list[str]]:
        """Whether the first load finished and every declared resource has a healthy live
        instance, and why not."""
        return readiness(self._last, self._states_view(), self._stopping)

    @property
    def metrics_registry(self) -> Any:
        """The Prometheus registry the admin API serves on ``/metrics``."""
        return self.metrics.registry

    def status(self) -> dict[str, Any]:
        """Return the JSON-safe, redacted status document served on ``/status``."""
        ready, reasons = self.ready()
        facts = {
            "config": str(self.config.path) if self.config.path else None,
            "pid": os.getpid(),
            "generation": self.generation,
            "runs_in_flight": self._keeper.in_flight(),
            "ready": ready,
            "reasons": reasons,
        }
        watcher = self._watcher.health if self._watcher is not None else None
        return status_document(facts, self._states_view(), self._rejected, self._last, watcher)


def _left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (never below 0), or ``None`` without one."""
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)
