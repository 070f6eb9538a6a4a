"""Watch manifest folders and tell the host when to look at them again.

The host decides *what* changed by comparing contents; the watcher decides *when* to look.
Any event inside the watched folders (recursively, whatever the name) counts, because an
atomic save delivers only a "moved" event and a Kubernetes ConfigMap swap names no manifest.
After ``debounce_s`` without events, ``on_change("watch")`` is called from one thread, and
``on_change("rescan")`` every ``rescan_interval_s`` as a safety net.

A file is *busy* from its first "modified" event until its "closed" (after write) event, a
rename over it or its deletion, and no trigger fires while one is, so a half-written file is
never announced as ready. Busy has a deadline: past ``busy_timeout_s`` the file is no longer
reported busy and is read anyway (a torn file is then rejected and its last good version
kept), because a close may never come (``os.truncate()`` by path) or may be lost. When the
kernel drops events (inotify queue overflow), every busy mark is cleared and a full
``"rescan"`` is triggered. Opening and reading a file triggers nothing. At inotify limits
(``EMFILE``/``ENOSPC``) or if its thread dies, the watcher logs it and polls instead;
polling reports no closes, so a file counts as busy until a poll interval passes without
it changing.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from watchdog import events

from ..manifest.host_config import HostConfig
from .watch_source import POLL_INTERVAL_S, EventSource, Mode, WatchdogSource

__all__ = ["ManifestWatcher", "PendingChanges", "Trigger"]

log = logging.getLogger(__name__)

Trigger = Literal["watch", "rescan"]

# A stream of events that never goes quiet still triggers every this many quiet periods.
_MAX_WAIT_QUIET_PERIODS = 10
# How often the watcher thread checks that its event source is still alive.
_HEALTH_INTERVAL_S = 0.5
_LIMIT_ERRNOS = frozenset({errno.EMFILE, errno.ENOSPC})
# Reads (ours included) open and close files without writing: never a reason to reload.
_IGNORED = (events.FileOpenedEvent, events.FileClosedNoWriteEvent)


@dataclass
class PendingChanges:
    """What the watcher saw since its last trigger, and when the next one is due.

    Pure bookkeeping: times are passed in, so tests can drive it with any clock. Not
    thread-safe; :class:`ManifestWatcher` guards it with its lock.

    Args:
        debounce_s: Quiet time after the last event before a trigger is due.
        busy_timeout_s: How long a file open for writing may hold triggers back.
    """

    debounce_s: float
    busy_timeout_s: float
    quiet_s: float = field(init=False)
    tracks_writers: bool = field(init=False, default=True)
    first_at: float | None = field(init=False, default=None)
    last_at: float | None = field(init=False, default=None)
    busy: dict[Path, float] = field(init=False, default_factory=dict)
    last_write: dict[Path, float] = field(init=False, default_factory=dict)
    lost: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.quiet_s = self.debounce_s

    def use_mode(self, mode: Mode) -> None:
        """Adapt to a source: polling reports no closes, so wait one poll longer instead."""
        self.tracks_writers = mode == "inotify"
        self.quiet_s = self.debounce_s + (0.0 if self.tracks_writers else POLL_INTERVAL_S)

    def record(self, event: events.FileSystemEvent, now: float) -> None:
        """Note one event at ``now``; opens and closes without writing are ignored.

        Raises:
            TypeError: A path is neither ``str`` nor ``bytes`` (the event still counts).
        """
        if isinstance(event, _IGNORED):
            return
        self.mark_dirty(now)
        if isinstance(event, events.EventsLostEvent):
            # Closes and renames may be among the lost events: forget every busy mark and
            # have the next trigger read everything.
            self.busy.clear()
            self.last_write.clear()
            self.lost = True
        elif not event.is_directory:
            self._track_writer(event, now)

    def mark_dirty(self, now: float) -> None:
        """Make a trigger due after the usual quiet time, as if an event had arrived."""
        if self.first_at is None:
            self.first_at = now
        self.last_at = now

    def _track_writer(self, event: events.FileSystemEvent, now: float) -> None:
        path = Path(os.fsdecode(event.src_path))
        if isinstance(event, events.FileModifiedEvent):
            self.busy.setdefault(path, now)
            self.last_write[path] = now
        elif isinstance(event, events.FileClosedEvent | events.FileDeletedEvent):
            self._clear(path)
        elif isinstance(event, events.FileMovedEvent):
            # A rename over a file replaces it: whoever was writing the old one is not
            # writing this name any more. A writer still holding the source keeps it busy
            # under the new name, where its close will arrive.
            since, last = self.busy.get(path), self.last_write.get(path)
            self._clear(path)
            if event.dest_path:
                dest = Path(os.fsdecode(event.dest_path))
                self._clear(dest)
                if since is not None and last is not None:
                    self.busy[dest], self.last_write[dest] = since, last

    def _clear(self, path: Path) -> None:
        self.busy.pop(path, None)
        self.last_write.pop(path, None)

    def busy_now(self, now: float) -> frozenset[Path]:
        """Return the files still being written at ``now``; forget those past their deadline.

        With inotify a file is busy until closed, for at most ``busy_timeout_s``; polling
        sees no closes, so a file is busy until one poll interval passes without a change.
        """
        for path, since in list(self.busy.items()):
            quiet_since = now - self.last_write.get(path, since)
            expired = now - since >= self.busy_timeout_s
            if expired or (not self.tracks_writers and quiet_since >= self.quiet_s):
                self._clear(path)
        return frozenset(self.busy)

    def due_at(self, now: float) -> float | None:
        """Return when the next "watch" trigger is due (maybe in the past), or ``None``."""
        if self.first_at is None or self.last_at is None:
            return None
        quiet = self.last_at + self.quiet_s
        due = min(quiet, self.first_at + _MAX_WAIT_QUIET_PERIODS * self.quiet_s)
        held = [since + self.busy_timeout_s for since in self.busy.values()]
        if not self.tracks_writers:
            held = []  # the quiet time already covers one poll interval
        return max([due, *(until for until in held if until > now)])

    def take(self) -> bool:
        """Forget the events a trigger now covers (busy files stay busy); return whether
        events were lost since the last trigger, so that this one must read everything."""
        self.first_at = self.last_at = None
        lost, self.lost = self.lost, False
        return lost


class ManifestWatcher:
    """Call ``on_change`` when files under ``folders`` change, debounced, from one thread.

    Args:
        folders: Folders to watch recursively; symlinks are resolved to the real folders.
        on_change: Called with ``"watch"`` or ``"rescan"``, never concurrently with
            itself. Exceptions are logged and the watcher keeps going.
        debounce_s: Quiet time after the last event before ``on_change("watch")``;
            ``None`` takes the host config's default (``reload.debounce_ms``).
        rescan_interval_s: Call ``on_change("rescan")`` when nothing was triggered for this
            long; ``None`` disables it.
        busy_timeout_s: How long a file left open after writing may hold triggers back.
        source: Event source; defaults to watchdog's native (inotify) observer.
        fallback: Used when ``source`` hits inotify limits or dies; defaults to polling.
        clock: Monotonic seconds; tests pass a fake one to drive debounce and deadlines.
    """

    @classmethod
    def for_config(
        cls, config: HostConfig, on_change: Callable[[Trigger], None]
    ) -> ManifestWatcher:
        """Return a watcher of ``config``'s manifest folders that exist, with its reload
        settings (debounce, rescan interval)."""
        return cls(
            [folder for folder in config.manifest_folders if folder.is_dir()],
            on_change,
            debounce_s=config.reload.debounce_ms / 1000,
            rescan_interval_s=config.reload.rescan_interval_s or None,
        )

    def __init__(
        self,
        folders: Sequence[Path],
        on_change: Callable[[Trigger], None],
        *,
        debounce_s: float | None = None,
        rescan_interval_s: float | None = 30.0,
        busy_timeout_s: float = 5.0,
        source: EventSource | None = None,
        fallback: EventSource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._folders = tuple(Path(f).resolve() for f in folders)
        self._on_change = on_change
        self._rescan_interval_s = rescan_interval_s
        self._source: EventSource = source or WatchdogSource()
        self._fallback: EventSource = fallback or WatchdogSource(polling=True)
        self._cond = threading.Condition()
        if debounce_s is None:
            debounce_s = HostConfig.defaults().reload.debounce_ms / 1000
        self._pending = PendingChanges(debounce_s, busy_timeout_s)
        self._next_rescan: float | None = None
        self._next_health_check = 0.0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
        self._events_seen = 0
        self._triggers_fired = 0

    @property
    def mode(self) -> Mode:
        """``"inotify"``, or ``"polling"`` after a fallback."""
        return self._source.mode

    @property
    def health(self) -> dict[str, Any]:
        """``mode``, ``last_error``, ``events_seen``, ``triggers_fired``, ``busy``: JSON-safe."""
        with self._cond:
            return {
                "mode": self.mode,
                "last_error": self._last_error,
                "events_seen": self._events_seen,
                "triggers_fired": self._triggers_fired,
                "busy": sorted(str(p) for p in self._pending.busy),
            }

    def busy(self) -> frozenset[Path]:
        """Return the resolved paths of files modified in place and not yet closed.

        The host should skip these (keeping their last good version) and compare with
        ``Path(file).resolve()``: a ConfigMap file is busy under its ``..data`` target.
        """
        with self._cond:
            return self._pending.busy_now(self._clock())

    def start(self) -> None:
        """Start watching; falls back to polling at inotify limits.

        Raises:
            RuntimeError: The watcher was already started.
            OSError: The folders cannot be watched at all (for instance, one is missing).
        """
        if self._thread is not None:
            raise RuntimeError("ManifestWatcher.start() was already called")
        self._pending.use_mode(self.mode)
        try:
            self._source.start(self._folders, self._on_event)
        except OSError as exc:
            if exc.errno not in _LIMIT_ERRNOS:
                raise
            self._fall_back(f"cannot start {self.mode} watcher: {exc}")
        self._schedule_rescan()
        self._thread = threading.Thread(target=self._run, name="flowstone-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and join the watcher thread (after a running ``on_change``) and the source.

        Idempotent, and safe to call from inside ``on_change``.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._source.stop()

    def _on_event(self, event: events.FileSystemEvent) -> None:
        with self._cond:
            self._events_seen += 1
            try:
                self._pending.record(event, self._clock())
            except Exception:
                log.exception("Watcher could not read event %r; triggering anyway", event)
            self._cond.notify()

    def _run(self) -> None:
        # ``stop()`` may be called from inside ``on_change``: check before each step.
        while not self._stopping:
            trigger = self._next_trigger()
            if trigger is not None and not self._stopping:
                self._call(trigger)
            elif not self._stopping:
                self._check_source()

    def _next_trigger(self) -> Trigger | None:
        """Return the trigger due now, or wait until one may be due and return ``None``."""
        with self._cond:
            now = self._clock()
            due = self._pending.due_at(now)
            rescan = self._next_rescan
            trigger: Trigger | None = None
            if due is not None and due <= now:
                trigger = "watch"
            elif rescan is not None and rescan <= now:
                trigger = "rescan"
            if trigger is not None:
                if self._pending.take():
                    trigger = "rescan"  # events were lost: look at every file again
                self._triggers_fired += 1
                return trigger
            wake = min(t for t in (due, rescan, self._next_health_check) if t is not None)
            if not self._stopping:
                self._cond.wait(max(0.0, wake - now))
            return None

    def _call(self, trigger: Trigger) -> None:
        try:
            self._on_change(trigger)
        except Exception:
            log.exception("Reload callback failed (trigger %s); still watching", trigger)
        self._schedule_rescan()

    def _schedule_rescan(self) -> None:
        with self._cond:
            if self._rescan_interval_s is not None:
                self._next_rescan = self._clock() + self._rescan_interval_s

    def _check_source(self) -> None:
        now = self._clock()
        if now < self._next_health_check:
            return
        self._next_health_check = now + _HEALTH_INTERVAL_S
        if not self._source.alive():
            self._fall_back(f"{self.mode} watcher stopped running")

    def _fall_back(self, reason: str) -> None:
        """Replace the current source by the polling fallback, or restart the fallback."""
        self._source.stop()
        self._source = self._fallback
        with self._cond:
            self._pending.use_mode(self.mode)
        try:
            self._source.start(self._folders, self._on_event)
        except OSError as exc:
            # Retried at the next health check; the same message is logged only once.
            self._note_error(f"{reason}; cannot start polling watcher either: {exc}")
            return
        self._note_error(f"{reason}; watching by polling every {POLL_INTERVAL_S:g}s")
        with self._cond:
            # Events may have been lost while the source was failing.
            self._pending.mark_dirty(self._clock())
            self._cond.notify()

    def _note_error(self, message: str) -> None:
        with self._cond:
            repeated = message == self._last_error
            self._last_error = message
        if not repeated:
            log.error("%s", message, extra={"mode": self.mode})
