"""Events, prefixes, spans and the handler error boundary."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from flowstone_host import attach, detach, execute, span
from flowstone_host.plugins.logging_emitter import LoggingEmitter
from flowstone_host.telemetry import attach_emitter, capture, list_handlers


@pytest.fixture(autouse=True)
def _clean_handlers() -> Iterator[None]:
    yield
    for handler_id, _ in list_handlers():
        detach(handler_id)


def test_handlers_receive_events_under_their_prefix_only() -> None:
    seen: list[tuple[Any, ...]] = []
    attach("io", ("flowstone", "io"), lambda e, m, md, cfg: seen.append((e, m, md, cfg)), "cfg")
    execute(("flowstone", "io", "store"), {"bytes": 3}, {"asset": "a"})
    execute(("flowstone", "scatter", "done"), {}, {})
    execute(("flowstone",), {}, {})
    assert seen == [(("flowstone", "io", "store"), {"bytes": 3}, {"asset": "a"}, "cfg")]


def test_empty_prefix_receives_everything_and_detach_stops_delivery() -> None:
    with capture() as events:
        execute(("x",))
        execute(("flowstone", "y"), {"n": 1})
    execute(("z",))
    assert [e for e, _, _ in events] == [("x",), ("flowstone", "y")]
    assert list_handlers() == []


def test_duplicate_handler_id_is_refused_and_detach_reports_presence() -> None:
    attach("h", (), lambda *a: None)
    with pytest.raises(ValueError, match="already attached"):
        attach("h", (), lambda *a: None)
    assert detach("h") is True
    assert detach("h") is False


def test_attaching_after_an_event_was_cached_takes_effect() -> None:
    first: list[Any] = []
    attach("first", ("flowstone",), lambda e, *_: first.append(e))
    execute(("flowstone", "a"))
    with capture(("flowstone", "a")) as later:
        execute(("flowstone", "a"))
    assert len(first) == 2 and len(later) == 1


def test_a_raising_handler_is_detached_and_logged_and_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("handler bug")

    attach("broken", ("flowstone",), broken)
    with capture(("flowstone",)) as events:
        execute(("flowstone", "e"))  # must not raise
        execute(("flowstone", "e"))
    assert len(events) == 2
    assert ("broken", ("flowstone",)) not in list_handlers()
    assert "broken" in caplog.text and "detached" in caplog.text


def test_span_emits_start_and_stop_with_duration_and_stop_metadata() -> None:
    with (
        capture(("flowstone", "job")) as events,
        span(("flowstone", "job"), {"asset": "a"}) as meta,
    ):
        meta["rows"] = 5
    (start, start_m, start_md), (stop, stop_m, stop_md) = events
    assert start == ("flowstone", "job", "start") and stop == ("flowstone", "job", "stop")
    assert {"system_time", "monotonic_time"} <= set(start_m)
    assert stop_m["duration"] >= 0
    assert start_md == {"asset": "a"} and stop_md == {"asset": "a", "rows": 5}


def test_span_emits_exception_and_reraises() -> None:
    with (
        capture(("flowstone", "job")) as events,
        pytest.raises(KeyError),
        span(("flowstone", "job")),
    ):
        raise KeyError("k")
    assert [e[-1] for e, _, _ in events] == ["start", "exception"]
    _, measurements, metadata = events[1]
    assert metadata["kind"] == "KeyError" and isinstance(metadata["reason"], KeyError)
    assert measurements["duration"] >= 0


def test_span_as_decorator_emits_per_call() -> None:
    @span(("flowstone", "fn"), {"k": 1})
    def work(x: int) -> int:
        return x * 2

    with capture(("flowstone", "fn")) as events:
        assert work(2) == 4 and work(3) == 6
    assert [e[-1] for e, _, _ in events] == ["start", "stop", "start", "stop"]


def test_logging_emitter_plugin_logs_events(caplog: pytest.LogCaptureFixture) -> None:
    emitter = LoggingEmitter({"logger": "t.emit", "level": "INFO"})
    attach_emitter(emitter, "log")
    with caplog.at_level(logging.INFO, logger="t.emit"):
        execute(("flowstone", "io", "load"), {"duration": 7}, {"asset": "a"})
        execute(("other", "event"))
    (record,) = [r for r in caplog.records if r.name == "t.emit"]
    assert record.getMessage().startswith("flowstone.io.load")
    assert record.metadata == {"asset": "a"} and record.measurements == {"duration": 7}


def test_a_lookup_racing_a_detach_never_revives_the_detached_handler() -> None:
    from flowstone_host import telemetry

    calls: list[Any] = []
    attach("gone", ("flowstone",), lambda *a: calls.append(a))
    stale = telemetry._attached  # an emitting thread read the table...
    detach("gone")  # ...then another thread detached the handler...
    telemetry._handlers_for(stale, ("flowstone", "x"))  # ...and the first cached its lookup
    execute(("flowstone", "x"))
    assert calls == []


def test_listening_tells_whether_a_handler_receives_a_spans_events() -> None:
    from flowstone_host.telemetry import listening

    event = ("flowstone", "io", "load")
    assert not listening(event)
    attach("other", ("flowstone", "reload"), lambda *_: None)
    assert not listening(event), "a handler of other events does not listen"
    attach("stop-only", (*event, "stop"), lambda *_: None)
    assert listening(event), "a handler of the span's stop event listens"
    detach("stop-only")
    assert not listening(event), "the answer is not cached past a detach"
    attach("prefix", ("flowstone", "io"), lambda *_: None)
    assert listening(event) and not listening(("flowstone", "iox"))


def test_a_span_nobody_listens_to_emits_nothing_even_if_a_handler_comes_midway() -> None:
    seen: list[Any] = []
    with span(("flowstone", "quiet"), {"a": 1}) as meta:
        attach("late", ("flowstone", "quiet"), lambda e, m, md, _: seen.append(e))
        meta["b"] = 2
    assert seen == [], "no stop without its start"
    with span(("flowstone", "quiet")):
        pass
    assert seen == [("flowstone", "quiet", "start"), ("flowstone", "quiet", "stop")]
