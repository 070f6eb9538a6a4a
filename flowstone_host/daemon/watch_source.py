"""Where the watcher's file events come from: watchdog's inotify observer or its poller.

The watcher sees sources only through :class:`EventSource`, so tests script events
deterministically and a separate set of tests drives the real observer on real files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

from watchdog import events
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

__all__ = ["POLL_INTERVAL_S", "EventHandler", "EventSource", "Mode", "WatchdogSource"]

Mode = Literal["inotify", "polling"]
EventHandler = Callable[[events.FileSystemEvent], None]

POLL_INTERVAL_S = 1.0
# Everything else, so that inotify does not even queue the events of our own reads.
_WANTED: list[type[events.FileSystemEvent]] = [
    events.FileCreatedEvent,
    events.FileDeletedEvent,
    events.FileModifiedEvent,
    events.FileMovedEvent,
    events.FileClosedEvent,
    events.FileAttribEvent,
    events.DirCreatedEvent,
    events.DirDeletedEvent,
    events.DirModifiedEvent,
    events.DirMovedEvent,
    events.DirAttribEvent,
    # The kernel dropped events (inotify queue overflow): everything must be looked at again.
    events.EventsLostEvent,
]


class EventSource(Protocol):
    """Where file-system events come from: watchdog in production, a script in tests."""

    @property
    def mode(self) -> Mode:
        """``"inotify"`` when the source reports open and close events, else ``"polling"``."""

    def start(self, folders: Sequence[Path], handler: EventHandler) -> None:
        """Start calling ``handler`` with events under ``folders``, recursively.

        Raises:
            OSError: The folders cannot be watched (``EMFILE``/``ENOSPC`` at inotify limits).
        """

    def stop(self) -> None:
        """Stop delivering events and join the source's threads; idempotent."""

    def alive(self) -> bool:
        """Return whether the source is started and its threads are still running."""


class WatchdogSource:
    """Deliver events from watchdog's native (inotify) observer, or if ``polling``, its poller."""

    def __init__(self, *, polling: bool = False) -> None:
        self._polling = polling
        self._observer: BaseObserver | None = None

    @property
    def mode(self) -> Mode:
        """``"polling"`` for the polling observer, else ``"inotify"``."""
        return "polling" if self._polling else "inotify"

    def start(self, folders: Sequence[Path], handler: EventHandler) -> None:
        """Schedule every folder recursively and start; on ``OSError`` nothing keeps running."""
        observer = PollingObserver(timeout=POLL_INTERVAL_S) if self._polling else Observer()
        try:
            relay = _Relay(handler)
            for folder in folders:
                observer.schedule(relay, str(folder), recursive=True, event_filter=_WANTED)
            observer.start()
        except BaseException:
            _halt(observer)
            raise
        self._observer = observer

    def stop(self) -> None:
        """Stop the observer and join its threads; idempotent."""
        observer, self._observer = self._observer, None
        if observer is not None:
            _halt(observer)

    def alive(self) -> bool:
        """Return whether the observer and every emitter thread are running."""
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        return all(emitter.is_alive() for emitter in tuple(observer.emitters))


class _Relay(events.FileSystemEventHandler):
    """Hand every event, unfiltered, to one callable."""

    def __init__(self, handler: EventHandler) -> None:
        self._handler = handler

    def dispatch(self, event: events.FileSystemEvent) -> None:
        self._handler(event)


def _halt(observer: BaseObserver) -> None:
    observer.stop()
    if observer.is_alive():
        observer.join()
