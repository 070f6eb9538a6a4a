"""Fakes for the admin API tests: the smallest HostAPI, with canned answers."""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry

from flowstone_host.host.metrics import HostMetrics


class DictReport(dict[str, Any]):
    """A reload report as a plain dict, shaped like the host's ReloadReport."""

    @property
    def ok(self) -> bool:
        return bool(self["ok"])

    def to_dict(self) -> dict[str, Any]:
        return dict(self)


class FakeHost:
    """The smallest HostAPI: canned answers, and a record of reload triggers."""

    def __init__(self) -> None:
        self.metrics = HostMetrics()
        self.is_alive = True
        self.readiness: tuple[bool, list[str]] = (True, [])
        self.report: dict[str, Any] = {"ok": True, "outcome": "ok", "changes": []}
        self.fail_with: Exception | None = None
        self.triggers: list[str] = []
        self.gate: threading.Event | None = None  # when set, status() and reload() wait on it

    def _wait(self) -> None:
        if self.gate is not None:
            self.gate.wait(timeout=30)

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self.metrics.registry

    def alive(self) -> bool:
        return self.is_alive

    def ready(self) -> tuple[bool, list[str]]:
        return self.readiness

    def status(self) -> dict[str, Any]:
        self._wait()
        if self.fail_with is not None:
            raise self.fail_with
        return {"declarations": [{"kind": "io_manager", "name": "memory", "state": "active"}]}

    def reload(self, trigger: str) -> DictReport:
        self.triggers.append(trigger)
        self._wait()
        if self.fail_with is not None:
            raise self.fail_with
        return DictReport(self.report)
