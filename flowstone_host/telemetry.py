"""Telemetry with the semantics of Elixir's ``:telemetry``: events, spans, handlers.

An event is a tuple of strings under ``("flowstone", ...)``, with a dict of measurements
and a dict of metadata. Handlers are attached by id to an event *prefix* and receive every
event that starts with it::

    attach("log-io", ("flowstone", "io"), lambda event, measurements, metadata, config: ...)
    execute(("flowstone", "io", "store"), {"bytes": 12}, {"asset": "orders"})

    with span(("flowstone", "materialize"), {"asset": "orders"}) as meta:
        ...               # emits ... "start", then "stop" (or "exception") with a duration
        meta["rows"] = 3  # extra metadata for the stop event

A handler that raises is detached and logged; it never breaks the caller. Emitting with no
handler attached costs one lookup. Plugins route events elsewhere by implementing
:class:`~flowstone_host.TelemetryEmitter` and being attached with :func:`attach_emitter`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from .contracts.telemetry_emitter import TelemetryEmitter

__all__ = [
    "Event",
    "Handler",
    "attach",
    "attach_emitter",
    "detach",
    "execute",
    "list_handlers",
    "listening",
    "span",
]

log = logging.getLogger(__name__)

Event = tuple[str, ...]
Handler = Callable[[Event, Mapping[str, Any], Mapping[str, Any], Any], None]


class _Attached(NamedTuple):
    handler_id: str
    prefix: Event
    function: Handler
    config: Any


class _Table(dict[str, _Attached]):
    """The attached handlers, never changed once published, with a cache of the handlers
    of each event seen: the cache lives and dies with the set of handlers it was built
    from, so it can never serve a handler detached since."""

    __slots__ = ("by_event", "by_span")

    def __init__(self, handlers: Mapping[str, _Attached] | None = None) -> None:
        super().__init__(handlers or {})
        self.by_event: dict[Event, tuple[_Attached, ...]] = {}
        self.by_span: dict[Event, bool] = {}


_EMPTY: Mapping[str, Any] = {}
_lock = threading.Lock()
# Copy-on-write: attach and detach publish a new table; readers take no lock.
_attached = _Table()


def attach(handler_id: str, prefix: Event, function: Handler, config: Any = None) -> None:
    """Call ``function(event, measurements, metadata, config)`` for events under ``prefix``.

    Args:
        handler_id: Unique id, used to detach.
        prefix: Event prefix; ``()`` receives every event.
        function: The handler. It runs on the emitting thread, so keep it quick.
        config: Passed back to the handler unchanged.

    Raises:
        ValueError: ``handler_id`` is already attached.
    """
    global _attached
    with _lock:
        if handler_id in _attached:
            raise ValueError(
                f"telemetry handler {handler_id!r} is already attached; detach it first or "
                "choose another id"
            )
        attached = _Attached(handler_id, tuple(prefix), function, config)
        _attached = _Table({**_attached, handler_id: attached})


def detach(handler_id: str) -> bool:
    """Detach a handler; return whether it was attached."""
    global _attached
    with _lock:
        if handler_id not in _attached:
            return False
        _attached = _Table({k: v for k, v in _attached.items() if k != handler_id})
        return True


def list_handlers(prefix: Event = ()) -> list[tuple[str, Event]]:
    """Return ``(handler_id, prefix)`` of every handler whose prefix starts with ``prefix``."""
    n = len(prefix)
    return [(a.handler_id, a.prefix) for a in _attached.values() if a.prefix[:n] == tuple(prefix)]


def _handlers_for(table: _Table, event: Event) -> tuple[_Attached, ...]:
    found = table.by_event.get(event)
    if found is None:
        found = tuple(a for a in table.values() if event[: len(a.prefix)] == a.prefix)
        table.by_event[event] = found  # a benign race: at worst computed twice
    return found


def listening(event: Event) -> bool:
    """Whether any handler receives an event of ``span(event)`` (its start, stop or
    exception). With no handler attached this is one global lookup; otherwise one dict
    lookup per span event, cached with the set of handlers. A hot path may skip a span
    (and the metadata it would build) when this is false.
    """
    table = _attached
    if not table:
        return False
    found = table.by_span.get(event)
    if found is None:
        n = len(event)
        found = any(
            event[: len(a.prefix)] == a.prefix
            or (len(a.prefix) == n + 1 and a.prefix[:n] == event and a.prefix[n] in _SPAN_ENDS)
            for a in table.values()
        )
        table.by_span[event] = found  # a benign race: at worst computed twice
    return found


_SPAN_ENDS = frozenset({"start", "stop", "exception"})


def execute(
    event: Event,
    measurements: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Emit one event to every handler attached to a prefix of it."""
    table = _attached
    if not table:
        return
    handlers = _handlers_for(table, event)
    if handlers:
        _dispatch(handlers, event, measurements or _EMPTY, metadata or _EMPTY)


def _dispatch(
    handlers: tuple[_Attached, ...],
    event: Event,
    measurements: Mapping[str, Any],
    metadata: Mapping[str, Any],
) -> None:
    for attached in handlers:
        try:
            attached.function(event, measurements, metadata, attached.config)
        except Exception:
            if detach(attached.handler_id):
                log.exception(
                    "Telemetry handler %r raised on event %s and was detached; fix it and "
                    "attach it again.",
                    attached.handler_id,
                    ".".join(event),
                )


class span(contextlib.ContextDecorator):
    """Emit ``event + ("start",)``, then ``("stop",)`` or ``("exception",)``, with a duration.

    Use as ``with span(event, metadata) as meta:`` (``meta`` is a dict whose additions go
    into the stop event's metadata) or as a decorator ``@span(event)``. Measurements:
    ``start`` has ``system_time`` and ``monotonic_time`` (ns); ``stop`` and ``exception`` have
    ``duration`` (ns). ``exception`` metadata adds ``kind`` (the exception class name),
    ``reason`` (the exception) and ``stacktrace`` (the traceback), replacing any caller
    keys of those names, as Elixir's ``:telemetry.span`` does; so name a plugin's kind
    ``plugin_kind`` in span metadata. The exception is re-raised.
    """

    __slots__ = ("_live", "_start", "event", "metadata")

    def __init__(self, event: Event, metadata: Mapping[str, Any] | None = None) -> None:
        self.event = tuple(event)
        self.metadata = dict(metadata or {})
        self._start = 0
        self._live = False

    def _recreate_cm(self) -> span:
        return span(self.event, self.metadata)

    def __enter__(self) -> dict[str, Any]:
        # Whether anyone listens is decided once, at the start: a stop is emitted exactly
        # when its start was, even if handlers are attached or detached meanwhile.
        self._live = listening(self.event)
        if self._live:
            self._start = time.monotonic_ns()
            execute(
                (*self.event, "start"),
                {"system_time": time.time_ns(), "monotonic_time": self._start},
                self.metadata,
            )
        return self.metadata

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if not self._live:
            return
        duration = time.monotonic_ns() - self._start
        if exc is None:
            execute((*self.event, "stop"), {"duration": duration}, self.metadata)
        else:
            assert kind is not None
            meta = {**self.metadata, "kind": kind.__name__, "reason": exc, "stacktrace": tb}
            execute((*self.event, "exception"), {"duration": duration}, meta)


def attach_emitter(
    emitter: TelemetryEmitter, handler_id: str, prefix: Event = ("flowstone",)
) -> None:
    """Attach a :class:`~flowstone_host.TelemetryEmitter` plugin under ``prefix``."""

    def forward(
        event: Event, measurements: Mapping[str, Any], metadata: Mapping[str, Any], _: Any
    ) -> None:
        emitter.emit(event, measurements, metadata)

    attach(handler_id, prefix, forward)


@contextlib.contextmanager
def capture(prefix: Event = ()) -> Iterator[list[tuple[Event, dict[str, Any], dict[str, Any]]]]:
    """Collect every event under ``prefix`` while the block runs (for tests and debugging)."""
    events: list[tuple[Event, dict[str, Any], dict[str, Any]]] = []
    handler_id = f"capture-{id(events)}"
    attach(handler_id, prefix, lambda e, m, md, _: events.append((e, dict(m), dict(md))))
    try:
        yield events
    finally:
        detach(handler_id)
