"""Prometheus metrics of one host, fed by the host's telemetry events.

:class:`HostMetrics` owns its own :class:`~prometheus_client.CollectorRegistry` (never the
process-wide default one, so several hosts in one process do not collide) and attaches
telemetry handlers that turn these events into samples:

=====================================================  ============================================
event                                                  metadata read (measurements: ``duration`` ns)
=====================================================  ============================================
``("flowstone", "reload", "stop" | "exception")``      ``outcome`` (``"error"`` when absent)
``("flowstone", "plugin", "call", "stop")``            ``plugin_kind``, ``name``
``("flowstone", "plugin", "call", "exception")``       ``plugin_kind``, ``name``, ``reason``
``("flowstone", "health", "change")``                  ``plugin_kind``, ``name``, ``healthy``
=====================================================  ============================================

The declaration's kind rides under ``plugin_kind``, not ``kind``: :func:`telemetry.span`
overwrites ``kind`` with the exception's class name on ``exception`` events. On a plugin
call's ``exception`` event the error code is ``normalize(metadata["reason"]).code`` (a
:class:`~flowstone_host.FlowStoneError` keeps its own code); ``start`` events are ignored.

Series (all prefixed ``flowstone_``): ``reloads_total{outcome}``,
``reload_duration_seconds``, ``declarations{state}``, ``plugin_calls_total{kind,name}`` (every
call, failed ones included), ``plugin_errors_total{kind,name,code}``,
``plugin_call_duration_seconds{kind,name}`` and ``health_checks{kind,name}`` (1 healthy,
0 unhealthy). ``declarations`` is not event-driven: the host sets it with
:meth:`HostMetrics.set_declarations` after each reload or health change.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .. import telemetry
from ..errors import normalize

__all__ = ["DECLARATION_STATES", "HostMetrics"]

DECLARATION_STATES = ("active", "failed", "unhealthy")
"""States always exported by ``flowstone_declarations``, at 0 when none is in them."""

_RELOAD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_ids = itertools.count(1)


class HostMetrics:
    """The metrics of one host, in a registry of their own, fed by telemetry.

    Creating it attaches its telemetry handlers; :meth:`close` detaches them.

    Attributes:
        registry: The registry to expose (``generate_latest(metrics.registry)``).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._build_series()
        self._handler_prefix = f"flowstone-host-metrics-{next(_ids)}"
        self._handler_ids: list[str] = []
        self._attach("reload", ("flowstone", "reload"))
        self._attach("call", ("flowstone", "plugin", "call"))
        self._attach("health", ("flowstone", "health", "change"))
        self._states: set[str] = set()
        self._states_lock = threading.Lock()
        self._error_codes: dict[tuple[str, str], set[str]] = {}
        self.set_declarations(())

    def _build_series(self) -> None:
        reg = self.registry
        self._reloads = Counter(
            "flowstone_reloads", "Reloads by outcome.", ["outcome"], registry=reg
        )
        self._reload_duration = Histogram(
            "flowstone_reload_duration_seconds",
            "Time a reload took, from trigger to swapped snapshot.",
            buckets=_RELOAD_BUCKETS,
            registry=reg,
        )
        self._declarations = Gauge(
            "flowstone_declarations", "Declarations by state.", ["state"], registry=reg
        )
        self._plugin_calls = Counter(
            "flowstone_plugin_calls", "Calls into plugins.", ["kind", "name"], registry=reg
        )
        self._plugin_errors = Counter(
            "flowstone_plugin_errors",
            "Plugin calls that raised, by normalized error code.",
            ["kind", "name", "code"],
            registry=reg,
        )
        self._plugin_call_duration = Histogram(
            "flowstone_plugin_call_duration_seconds",
            "Time spent in plugin calls.",
            ["kind", "name"],
            registry=reg,
        )
        self._health = Gauge(
            "flowstone_health_checks",
            "Last health check of each declaration: 1 healthy, 0 unhealthy.",
            ["kind", "name"],
            registry=reg,
        )

    def _attach(self, suffix: str, prefix: telemetry.Event) -> None:
        handler_id = f"{self._handler_prefix}.{suffix}"
        telemetry.attach(handler_id, prefix, self._on_event)
        self._handler_ids.append(handler_id)

    def close(self) -> None:
        """Detach the telemetry handlers; the registry keeps its last values."""
        for handler_id in self._handler_ids:
            telemetry.detach(handler_id)
        self._handler_ids.clear()

    def set_declarations(self, states: Iterable[str]) -> None:
        """Set ``flowstone_declarations{state}`` from every declaration's current state.

        Args:
            states: One state per declaration (``"active"``, ``"failed"``, ...). The states
                of :data:`DECLARATION_STATES` are exported at 0 when absent; other states
                are dropped once no declaration is in them.
        """
        counts = Tally(states)
        current = set(DECLARATION_STATES) | set(counts)
        with self._states_lock:
            for state in current:
                self._declarations.labels(state=state).set(counts[state])
            for state in self._states - current:
                self._declarations.remove(state)
            self._states = current

    def forget(self, plugin_kind: str, name: str) -> None:
        """Drop every series of a declaration that was removed: health, calls, durations
        and errors of every code, so that reload churn does not grow ``/metrics``."""
        labels = (str(plugin_kind), str(name))
        with self._states_lock:
            codes = self._error_codes.pop(labels, set())
        for metric in (self._health, self._plugin_calls, self._plugin_call_duration):
            with contextlib.suppress(KeyError):  # never called or never checked
                metric.remove(*labels)
        for code in codes:
            with contextlib.suppress(KeyError):
                self._plugin_errors.remove(*labels, code)

    def _on_event(
        self,
        event: telemetry.Event,
        measurements: Mapping[str, Any],
        metadata: Mapping[str, Any],
        _config: Any,
    ) -> None:
        # Never raise: telemetry detaches a handler that raises, and metrics would go silent.
        if event[1] == "reload" and event[-1] in ("stop", "exception"):
            self._on_reload(measurements, metadata)
        elif event[1] == "plugin" and event[-1] in ("stop", "exception"):
            self._on_call(event[-1] == "exception", measurements, metadata)
        elif event[1] == "health":
            self._health.labels(*_kind_and_name(metadata)).set(1 if metadata.get("healthy") else 0)

    def _on_reload(self, measurements: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
        self._reloads.labels(outcome=str(metadata.get("outcome", "error"))).inc()
        seconds = _seconds(measurements)
        if seconds is not None:
            self._reload_duration.observe(seconds)

    def _on_call(
        self, failed: bool, measurements: Mapping[str, Any], metadata: Mapping[str, Any]
    ) -> None:
        labels = _kind_and_name(metadata)
        self._plugin_calls.labels(*labels).inc()
        seconds = _seconds(measurements)
        if seconds is not None:
            self._plugin_call_duration.labels(*labels).observe(seconds)
        if failed:
            code = _error_code(metadata.get("reason"))
            with self._states_lock:
                self._error_codes.setdefault(labels, set()).add(code)
            self._plugin_errors.labels(*labels, code).inc()


def _kind_and_name(metadata: Mapping[str, Any]) -> tuple[str, str]:
    return str(metadata.get("plugin_kind", "unknown")), str(metadata.get("name", "unknown"))


def _seconds(measurements: Mapping[str, Any]) -> float | None:
    duration = measurements.get("duration")
    if isinstance(duration, int | float) and not isinstance(duration, bool) and duration >= 0:
        return duration / 1e9
    return None


def _error_code(reason: object) -> str:
    if not isinstance(reason, BaseException):
        return "internal_error"
    try:
        return normalize(reason).code
    except Exception:  # a plugin's normalization rule is broken; the call still counts
        return "internal_error"
