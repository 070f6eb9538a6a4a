"""HostMetrics: telemetry events become Prometheus samples in a registry of the host's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from flowstone_host import NotFound, telemetry
from flowstone_host.host.metrics import HostMetrics


@pytest.fixture
def metrics() -> Iterator[HostMetrics]:
    m = HostMetrics()
    yield m
    m.close()


def _value(m: HostMetrics, sample: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(sample, labels)


def _call(kind: str, name: str, fail: BaseException | None = None) -> None:
    try:
        with telemetry.span(("flowstone", "plugin", "call"), {"plugin_kind": kind, "name": name}):
            if fail is not None:
                raise fail
    except BaseException as exc:
        if exc is not fail:
            raise


def test_plugin_calls_count_errors_by_code_and_time_every_call(metrics: HostMetrics) -> None:
    _call("io_manager", "warehouse")
    _call("io_manager", "warehouse")
    _call("io_manager", "warehouse", NotFound("no such partition"))
    _call("io_manager", "warehouse", KeyError("k"))
    _call("io_manager", "warehouse", RuntimeError("bug"))
    labels = {"kind": "io_manager", "name": "warehouse"}
    assert _value(metrics, "flowstone_plugin_calls_total", **labels) == 5
    assert _value(metrics, "flowstone_plugin_errors_total", **labels, code="not_found") == 2
    assert _value(metrics, "flowstone_plugin_errors_total", **labels, code="internal_error") == 1
    assert _value(metrics, "flowstone_plugin_call_duration_seconds_count", **labels) == 5


def test_reloads_by_outcome_and_duration(metrics: HostMetrics) -> None:
    telemetry.execute(("flowstone", "reload", "start"), {}, {"trigger": "signal"})
    telemetry.execute(("flowstone", "reload", "stop"), {"duration": 2_000_000}, {"outcome": "ok"})
    telemetry.execute(("flowstone", "reload", "stop"), {"duration": 3}, {"outcome": "partial"})
    telemetry.execute(("flowstone", "reload", "exception"), {"duration": 7}, {"reason": OSError()})
    assert _value(metrics, "flowstone_reloads_total", outcome="ok") == 1
    assert _value(metrics, "flowstone_reloads_total", outcome="partial") == 1
    assert _value(metrics, "flowstone_reloads_total", outcome="error") == 1
    assert _value(metrics, "flowstone_reload_duration_seconds_count") == 3
    assert _value(metrics, "flowstone_reload_duration_seconds_bucket", le="0.005") == 3


def test_health_changes_and_forget(metrics: HostMetrics) -> None:
    event = ("flowstone", "health", "change")
    telemetry.execute(event, {}, {"plugin_kind": "resource", "name": "pg", "healthy": True})
    assert _value(metrics, "flowstone_health_checks", kind="resource", name="pg") == 1
    telemetry.execute(event, {}, {"plugin_kind": "resource", "name": "pg", "healthy": False})
    assert _value(metrics, "flowstone_health_checks", kind="resource", name="pg") == 0
    metrics.forget("resource", "pg")
    metrics.forget("resource", "never-checked")
    assert _value(metrics, "flowstone_health_checks", kind="resource", name="pg") is None


def test_declarations_by_state(metrics: HostMetrics) -> None:
    assert _value(metrics, "flowstone_declarations", state="active") == 0
    metrics.set_declarations(["active", "active", "failed", "loading"])
    assert _value(metrics, "flowstone_declarations", state="active") == 2
    assert _value(metrics, "flowstone_declarations", state="failed") == 1
    assert _value(metrics, "flowstone_declarations", state="unhealthy") == 0
    assert _value(metrics, "flowstone_declarations", state="loading") == 1
    metrics.set_declarations(["active"])
    assert _value(metrics, "flowstone_declarations", state="loading") is None
    assert _value(metrics, "flowstone_declarations", state="failed") == 0


def test_malformed_events_neither_raise_nor_detach(metrics: HostMetrics) -> None:
    telemetry.execute(("flowstone", "plugin", "call", "stop"), {"duration": "soon"}, {})
    telemetry.execute(("flowstone", "plugin", "call", "exception"), {}, {"reason": "text"})
    telemetry.execute(("flowstone", "reload", "stop"), {"duration": -1}, {"outcome": "ok"})
    assert len(telemetry.list_handlers(("flowstone",))) >= 3
    unknown = {"kind": "unknown", "name": "unknown"}
    assert _value(metrics, "flowstone_plugin_calls_total", **unknown) == 2
    assert _value(metrics, "flowstone_plugin_errors_total", **unknown, code="internal_error") == 1


def test_two_hosts_keep_separate_registries_and_close_detaches() -> None:
    first, second = HostMetrics(), HostMetrics()
    try:
        telemetry.execute(("flowstone", "reload", "stop"), {"duration": 1}, {"outcome": "ok"})
        first.close()
        telemetry.execute(("flowstone", "reload", "stop"), {"duration": 1}, {"outcome": "ok"})
        assert _value(first, "flowstone_reloads_total", outcome="ok") == 1
        assert _value(second, "flowstone_reloads_total", outcome="ok") == 2
    finally:
        first.close()
        second.close()
    assert not [h for h, _ in telemetry.list_handlers() if h.startswith("flowstone-host-metrics")]


def test_exposition_parses_with_every_series(metrics: HostMetrics) -> None:
    _call("executor", "local")
    telemetry.execute(("flowstone", "reload", "stop"), {"duration": 1}, {"outcome": "ok"})
    text = generate_latest(metrics.registry).decode()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "flowstone_reloads",
        "flowstone_reload_duration_seconds",
        "flowstone_declarations",
        "flowstone_plugin_calls",
        "flowstone_plugin_errors",
        "flowstone_plugin_call_duration_seconds",
        "flowstone_health_checks",
    } <= names


def test_forget_removes_every_series_of_a_declaration(metrics: HostMetrics) -> None:
    call = ("flowstone", "plugin", "call")
    for name in ("gone", "kept"):
        meta = {"plugin_kind": "IOManager", "name": name, "method": "load"}
        telemetry.execute((*call, "stop"), {"duration": 1000}, meta)
        telemetry.execute(
            (*call, "exception"), {"duration": 1000}, {**meta, "reason": NotFound("x")}
        )
        telemetry.execute(("flowstone", "health", "change"), {}, {**meta, "healthy": True})
    metrics.forget("IOManager", "gone")
    text = generate_latest(metrics.registry).decode()
    assert 'name="gone"' not in text
    assert 'name="kept"' in text
