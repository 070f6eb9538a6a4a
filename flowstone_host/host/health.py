"""Health checks of live plugins and resources: bounded in time, never raising.

A check runs ``health_check()`` (``health_check(handle)`` for a resource) behind the error
boundary on a worker thread, so a plugin that hangs costs one thread and reports
unhealthy after ``timeout_s``. A change of health emits ``("flowstone", "health",
"change")`` (the first result too, so gauges start right) and moves the declaration
between ``active`` and ``unhealthy``.
"""

from __future__ import annotations

import logging
import threading
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
from .report import DeclarationState

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
    """

    def __init__(
        self,
        states: Callable[[], list[DeclarationState]],
        metrics: HostMetrics | None,
        timeout_s: float,
    ) -> None:
        self._states = states
        self._metrics = metrics
        self._timeout_s = timeout_s
        self._running: dict[int, threading.Thread] = {}  # by entry id: checks not finished

    def check(self, entry: Entry) -> Health | None:
        """Return ``entry``'s health, ``None`` if it does not check itself; never raises.

        The check runs on a daemon thread of its own: one that hangs is reported unhealthy
        after ``timeout_s``, is not started again while it still runs, and never keeps the
        process from exiting.
        """
        if kind_info(entry.kind).per_run:  # a factory, not an instance to check
            return None
        previous = self._running.get(id(entry))
        if previous is not None and previous.is_alive():
            return Health.unhealthy("its previous health check has not returned yet")
        outcome: dict[str, Any] = {}
        worker = threading.Thread(
            target=_run_check, args=(entry, outcome), name=f"health-{entry.name}", daemon=True
        )
        self._running[id(entry)] = worker
        worker.start()
        worker.join(self._timeout_s)
        if worker.is_alive():
            return Health.unhealthy(f"health check took longer than {self._timeout_s:g} s")
        del self._running[id(entry)]
        return _verdict(outcome)

    def check_all(self) -> None:
        """Check every live declaration and publish what changed."""
        for state in self._states():
            if state.entry is not None:  # a failed new version's predecessor still serves
                self.observe(state, self.check(state.entry))
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
        return Health.unhealthy(f"health check raised: {message}")
    result = outcome.get("result")
    if result is not None and not isinstance(result, Health):
        return Health.unhealthy(f"health check returned {type(result).__name__}, not Health")
    return result
