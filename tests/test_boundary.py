"""The error boundary around plugin calls: what a plugin raises, the host sees named."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from flowstone_host import telemetry
from flowstone_host.boundary import PLUGIN_CALL, call
from flowstone_host.errors import FlowStoneError, InternalError, NotFound
from flowstone_host.registry import Entry

Seen = list[tuple[tuple[str, ...], dict[str, Any]]]


class Plugin:
    """Does what the test asks: returns, raises or exits."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def load(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append((args, kwargs))
        if self.error is not None:
            raise self.error
        return "loaded"


def entry(plugin: Plugin) -> Entry:
    return Entry("IOManager", "store", plugin, plugin="memory")


@pytest.fixture
def spans() -> Iterator[Seen]:
    """Every event under the plugin-call span, while the test runs."""
    seen: Seen = []

    def record(
        event: tuple[str, ...], _m: Mapping[str, Any], metadata: Mapping[str, Any], _c: Any
    ) -> None:
        seen.append((tuple(event), dict(metadata)))

    telemetry.attach("test-boundary", PLUGIN_CALL, record)
    yield seen
    telemetry.detach("test-boundary")


def test_a_call_passes_arguments_and_returns_what_the_plugin_returns() -> None:
    plugin = Plugin()
    assert call(entry(plugin), "load", "asset", partition="p1") == "loaded"
    assert plugin.calls == [(("asset",), {"partition": "p1"})]


def test_a_flowstone_error_keeps_its_code_and_gains_kind_and_name() -> None:
    raised = NotFound("no such key", retryable=True, key="k")
    with pytest.raises(NotFound) as caught:
        call(entry(Plugin(raised)), "load")
    error = caught.value
    assert error is raised  # passed through, not wrapped
    assert (error.code, error.retryable) == ("not_found", True)
    assert error.context == {"key": "k", "plugin_kind": "IOManager", "name": "store"}


def test_a_flowstone_error_naming_its_own_plugin_keeps_that_name() -> None:
    raised = FlowStoneError("custom", "mine", plugin_kind="Resource", name="inner")
    with pytest.raises(FlowStoneError) as caught:
        call(entry(Plugin(raised)), "load")
    assert caught.value.code == "custom"
    assert caught.value.context == {"plugin_kind": "Resource", "name": "inner"}


def test_any_other_exception_is_normalized_with_its_cause_and_named() -> None:
    original = RuntimeError("disk on fire")
    with pytest.raises(InternalError) as caught:
        call(entry(Plugin(original)), "load")
    error = caught.value
    assert error.code == "internal_error"
    assert error.__cause__ is original
    assert "RuntimeError: disk on fire" in error.message
    assert (error.plugin_kind, error.name) == ("IOManager", "store")


def test_a_registered_rule_applies_at_the_boundary() -> None:
    with pytest.raises(NotFound) as caught:
        call(entry(Plugin(KeyError("gone"))), "load")
    assert isinstance(caught.value.__cause__, KeyError)
    assert caught.value.context["name"] == "store"


@pytest.mark.parametrize("code", [0, 3])
def test_a_plugin_calling_sys_exit_raises_an_error_and_the_host_goes_on(code: int) -> None:
    class Exits(Plugin):
        def load(self, *args: Any, **kwargs: Any) -> str:
            sys.exit(code)

    with pytest.raises(FlowStoneError) as caught:
        call(entry(Exits()), "load")
    assert caught.value.code == "internal_error"
    assert isinstance(caught.value.__cause__, SystemExit)
    assert caught.value.context["name"] == "store"


def test_keyboard_interrupt_is_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt):
        call(entry(Plugin(KeyboardInterrupt())), "load")


def test_no_span_is_built_when_no_handler_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    # Unobservable through telemetry (nobody would receive it): a hot path's saving.
    built: list[tuple[str, ...]] = []

    def no_span(event: tuple[str, ...], metadata: Mapping[str, Any]) -> Any:
        built.append(event)
        raise AssertionError("a span was built with no handler listening")

    monkeypatch.setattr("flowstone_host.boundary.span", no_span)
    elsewhere: list[tuple[str, ...]] = []
    telemetry.attach(
        "test-boundary-elsewhere", ("flowstone", "reload"), lambda e, *_: elsewhere.append(e)
    )
    try:
        assert not telemetry.listening(PLUGIN_CALL)
        assert call(entry(Plugin()), "load") == "loaded"
        with pytest.raises(InternalError) as caught:
            call(entry(Plugin(RuntimeError("bad"))), "load")
    finally:
        telemetry.detach("test-boundary-elsewhere")
    assert built == elsewhere == []
    assert caught.value.context["name"] == "store"  # named all the same


def test_a_listened_call_emits_start_and_stop_with_kind_name_and_method(spans: Seen) -> None:
    assert call(entry(Plugin()), "load") == "loaded"
    metadata = {"plugin_kind": "IOManager", "name": "store", "method": "load"}
    assert [event[-1] for event, _ in spans] == ["start", "stop"]
    assert all(event[:3] == PLUGIN_CALL and meta == metadata for event, meta in spans)


def test_a_listened_failing_call_emits_an_exception_span_and_is_still_normalized(
    spans: Seen,
) -> None:
    original = OSError("no route")
    with pytest.raises(FlowStoneError) as caught:
        call(entry(Plugin(original)), "load")
    assert caught.value.__cause__ is original
    assert caught.value.context["plugin_kind"] == "IOManager"
    assert [event[-1] for event, _ in spans] == ["start", "exception"]
    assert spans[-1][1]["method"] == "load"
