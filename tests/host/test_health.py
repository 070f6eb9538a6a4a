"""Health checks are bounded in time and never raise, whatever the plugin does."""

from __future__ import annotations

import threading
from typing import Any

from flowstone_host import Health, IOManager
from flowstone_host.host.health import HealthChecker
from flowstone_host.plugins.memory_io import MemoryIOManager
from flowstone_host.registry import Entry


class Hangs(MemoryIOManager):
    """Hangs until released; each instance has its own event, so no test sets another's."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def health_check(self) -> Health | None:
        self.release.wait(10)
        return Health.ok()


class Interrupts(MemoryIOManager):
    def health_check(self) -> Health | None:
        raise KeyboardInterrupt


class Lies(MemoryIOManager):
    def health_check(self) -> Any:
        return "fine"


def _entry(plugin: IOManager) -> Entry:
    return Entry("IOManager", type(plugin).__name__.lower(), plugin, plugin="test")


def _checker() -> HealthChecker:
    return HealthChecker(list, None, timeout_s=0.2)


def test_a_hanging_check_is_unhealthy_in_time_and_not_started_twice() -> None:
    plugin = Hangs()
    checker, entry = _checker(), _entry(plugin)
    try:
        first = checker.check(entry)
        assert first is not None and first.reason == "health check took longer than 0.2 s"
        second = checker.check(entry)
        assert (
            second is not None and second.reason == "its previous health check has not returned yet"
        )
        assert sum(t.name == "health-hangs" for t in threading.enumerate()) == 1
        assert all(t.daemon for t in threading.enumerate() if t.name == "health-hangs")
    finally:
        plugin.release.set()
        # The check returns (and emits its telemetry) now, not during a later test.
        for thread in threading.enumerate():
            if thread.name == "health-hangs":
                thread.join(5)
    assert not any(t.name == "health-hangs" for t in threading.enumerate())


def test_a_check_that_raises_anything_is_unhealthy() -> None:
    health = _checker().check(_entry(Interrupts()))
    assert health is not None and not health.healthy
    assert health.reason is not None and "KeyboardInterrupt" in health.reason


def test_a_check_that_returns_something_else_is_unhealthy() -> None:
    health = _checker().check(_entry(Lies()))
    assert health == Health.unhealthy("health check returned str, not Health")


def test_plugins_that_do_not_check_themselves_give_none() -> None:
    assert _checker().check(_entry(MemoryIOManager())) is None
