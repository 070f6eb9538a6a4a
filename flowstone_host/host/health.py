"""Health checks of live plugins and resources: bounded in time, never raising.

A check runs ``health_check()`` (``health_check(handle)`` for a resource) behind the error
boundary on a worker thread, so a plugin that hangs costs one thread and reports
unhealthy after ``timeout_s``. Checks run concurrently: :meth:`HealthChecker.check_all`
starts every one before it waits for any, so slow checks cost one ``timeout_s`` together,
and a host that is stopping stops waiting for them. A reason longer than
:data:`~.report.MAX_TEXT` characters is cut, with a marker. A change of health emits
``("flowstone", "health", "change")`` (the first result too, so gauges start right) and
moves the declaration between ``active`` and ``unhealthy``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..boundary import call
from ..contracts.resource import Resource
from ..contracts.types import Health
from ..errors import FlowStoneError
from ..kinds import Kind, kind_info
from ..registry import Entry
from ..telemetry import execute
from .metrics import HostMetrics
from .report import DeclarationState, capped

__all__ = ["HEALTH_CHANGE", "HealthChecker"]

log = logging.getLogger(__name__)

#: Emitted when a declaration's health flips.
HEALTH_CHANGE = ("flowstone", "health", "change")


class HealthChecker:
    """Checks entries on demand and all live declarations periodically.

    Args:
        states: Returns the host's current declaration states.
        metrics: Where declaration states are published (``None``: nowhere, as in
            ``flowstone-host check``).
        timeout_s: How long one check may take before it counts as unhealthy.
        stopping: Returns whether the host is stopping: waits for checks then end at once.
    """

    def __init__(
        self,
        states: Callable[[], list[DeclarationState]],
        metrics: HostMetrics | None,
        timeout_s: float,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._states = states
        self._metrics = metrics
        self._timeout_s = timeout_s
        self._stopping = stopping
        self._running: dict[int, threading.Thread] = {}  # by entry id: checks not finished

    def check(self, entry: Entry) -> Health | None:
        """Return ``entry``'s health, ``None`` if it does not check itself; never raises.

        The check runs on a daemon thread of its own: one that hangs is reported unhealthy
        after ``timeout_s``, is not started again while it still runs, and never keeps the
        process from exiting.
        """
        return self.start(entry)()

    def start(self, entry: Entry) -> Callable[[], Health | None]:
        """Start checking ``entry`` and return at once; call the result for the verdict
        (it waits what remains of ``timeout_s``). See :meth:`check`."""
        if kind_info(entry.kind).per_run:  # a factory, not an instance to check
            return _none
        previous = self._running.get(id(entry))
        if previous is not None and previous.is_alive():
            unhealthy = Health.unhealthy("its previous health check has not returned yet")
            return lambda: unhealthy
        outcome: dict[str, Any] = {}
        worker = threading.Thread(
            target=_run_check, args=(entry, outcome), name=f"health-{entry.name}", daemon=True
        )
        self._running[id(entry)] = worker
        deadline = time.monotonic() + self._timeout_s
        worker.start()

        def verdict() -> Health | None:
            while worker.is_alive() and not self._stopping():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                worker.join(min(remaining, 0.05))
            if worker.is_alive():
                if self._stopping() and time.monotonic() < deadline:
                    return Health.unhealthy("health check given up on: the host is stopping")
                return Health.unhealthy(f"health check took longer than {self._timeout_s:g} s")
            self._running.pop(id(entry), None)
            return _verdict(outcome)

        return verdict

    def check_all(self) -> None:
        """Check every live declaration, all at once, and publish what changed."""
        started = [
            (state, self.start(state.entry))
            for state in self._states()
            if state.entry is not None  # a failed new version's predecessor still serves
        ]
        for state, verdict in started:
            self.observe(state, verdict())
        self.publish_states()

    def observe(self, state: DeclarationState, health: Health | None) -> None:
        """Record a check's result on ``state``; announce the first result and every flip."""
        if health is None:
            return
        previous = state.health
        state.record(health)
        if state.state != "failed":  # "failed" speaks of the new version: it stays
            state.state = "active" if health.healthy else "unhealthy"
            state.reason = None if health.healthy else health.reason
        if previous is None or previous.healthy != health.healthy:
            self._announce(state, health, flipped=previous is not None)

    def _announce(self, state: DeclarationState, health: Health, *, flipped: bool) -> None:
        if flipped or not health.healthy:
            level = logging.INFO if health.healthy else logging.WARNING
            verdict = "healthy" if health.healthy else f"unhealthy: {health.reason}"
            log.log(level, "%s %r is %s", state.kind, state.name, verdict)
        execute(
            HEALTH_CHANGE,
            {},
            {"plugin_kind": state.kind, "name": state.name, "healthy": health.healthy},
        )

    def publish_states(self) -> None:
        """Publish every declaration's state to the metrics."""
        if self._metrics is not None:
            self._metrics.set_declarations(
                [s.state for s in self._states() if s.kind != Kind.ASSET]
            )


def _none() -> None:
    return None


def _run_check(entry: Entry, outcome: dict[str, Any]) -> None:
    args = (entry.handle,) if isinstance(entry.instance, Resource) else ()
    try:
        outcome["result"] = call(entry, "health_check", *args)
    except BaseException as exc:  # even KeyboardInterrupt: it can only be the plugin's
        outcome["error"] = exc


def _verdict(outcome: dict[str, Any]) -> Health | None:
    error = outcome.get("error")
    if error is not None:
        message = error.message if isinstance(error, FlowStoneError) else repr(error)
        return Health.unhealthy(capped(f"health check raised: {message}"))
    result = outcome.get("result")
    if result is not None and not isinstance(result, Health):
        return Health.unhealthy(f"health check returned {type(result).__name__}, not Health")
    if result is not None and result.reason is not None and capped(result.reason) != result.reason:
        return dataclasses.replace(result, reason=capped(result.reason))
    return result
