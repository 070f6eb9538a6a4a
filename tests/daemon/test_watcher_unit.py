"""ManifestWatcher with scripted events: no real file system, no inotify timing."""

from __future__ import annotations

import errno
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from watchdog.events import (
    DirModifiedEvent,
    EventsLostEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
)

from flowstone_host.daemon.watch_source import POLL_INTERVAL_S, Mode
from flowstone_host.daemon.watcher import ManifestWatcher, PendingChanges, Trigger

Start = Callable[..., ManifestWatcher]
WAIT_S = 5.0  # generous: only reached when something is wrong
A = Path("/plugins.d/a.yaml")


class ScriptedSource:
    """An EventSource whose events, failures and death are scripted by the test."""

    def __init__(self, mode: Mode = "inotify", fail: OSError | None = None) -> None:
        self._mode: Mode = mode
        self.fail = fail
        self.running = False
        self.handler: Callable[[FileSystemEvent], None] | None = None

    @property
    def mode(self) -> Mode:
        return self._mode

    def start(self, folders: Sequence[Path], handler: Callable[[FileSystemEvent], None]) -> None:
        if self.fail is not None:
            raise self.fail
        self.handler, self.running = handler, True

    def stop(self) -> None:
        self.running = False

    def alive(self) -> bool:
        return self.running

    def emit(self, *events: FileSystemEvent) -> None:
        assert self.handler is not None
        for event in events:
            self.handler(event)


class FakeClock:
    """A monotonic clock the test moves by hand, which knows when the watcher has caught up.

    The watcher thread reads the clock at the top of every pass of its loop (to decide
    whether a trigger is due), after each ``on_change`` (to schedule the next rescan) and
    when checking its source (once or twice). So between two of its "is anything due?"
    reads there are at most two others, and once it has read the clock seven times after
    :meth:`advance`, it has twice decided, at the new time, whether to trigger, and every
    ``on_change`` those decisions led to has returned. No real time needs to pass.
    """

    PASSES_READS = 7
    # Read by nobody: an open (without writing) is ignored by the watcher, but wakes it.
    POKE = FileOpenedEvent("/plugins.d/.poke")

    def __init__(self) -> None:
        self.now = 1000.0
        self._reads = 0
        self._cond = threading.Condition()

    def __call__(self) -> float:
        with self._cond:
            if threading.current_thread().name == "flowstone-watcher":
                self._reads += 1
                self._cond.notify_all()
            return self.now

    def advance(self, seconds: float) -> None:
        with self._cond:
            self.now += seconds

    def settle(self, source: ScriptedSource) -> None:
        """Return once the watcher has acted on the current time: see the class docstring."""
        with self._cond:
            target = self._reads + self.PASSES_READS
        deadline = time.monotonic() + WAIT_S
        while True:
            source.emit(self.POKE)
            with self._cond:
                if self._cond.wait_for(lambda: self._reads >= target, 0.01):
                    return
            assert time.monotonic() < deadline, "the watcher thread stopped reading the clock"


class Calls:
    """Records on_change calls and lets the test wait for them."""

    def __init__(self, action: Callable[[Trigger], None] | None = None) -> None:
        self.triggers: list[Trigger] = []
        self._cond = threading.Condition()
        self._action = action

    def __call__(self, trigger: Trigger) -> None:
        with self._cond:
            self.triggers.append(trigger)
            self._cond.notify_all()
        if self._action is not None:
            self._action(trigger)

    def wait(self, count: int) -> list[Trigger]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.triggers) >= count, WAIT_S), self.triggers
            return list(self.triggers)


@pytest.fixture
def source() -> ScriptedSource:
    return ScriptedSource()


def make_watcher(calls: Calls, source: ScriptedSource, **kwargs: object) -> ManifestWatcher:
    options: dict[str, object] = {"debounce_s": 0.02, "rescan_interval_s": None, "source": source}
    options.update(kwargs)
    return ManifestWatcher([Path("/plugins.d")], calls, **options)  # type: ignore[arg-type]


@pytest.fixture
def started() -> Iterator[Start]:
    watchers: list[ManifestWatcher] = []

    def start(calls: Calls, source: ScriptedSource, **kwargs: object) -> ManifestWatcher:
        watcher = make_watcher(calls, source, **kwargs)
        watchers.append(watcher)
        watcher.start()
        return watcher

    yield start
    for watcher in watchers:
        watcher.stop()


# -- PendingChanges: the timing rules, on a fake clock ---------------------------------


def pending() -> PendingChanges:
    return PendingChanges(debounce_s=0.2, busy_timeout_s=5.0)


def test_nothing_is_due_before_any_event() -> None:
    assert pending().due_at(0.0) is None


def test_a_burst_coalesces_into_one_trigger_after_the_last_event() -> None:
    p = pending()
    for i in range(1000):
        p.record(FileModifiedEvent(str(A)), i * 0.001)
        p.record(FileClosedEvent(str(A)), i * 0.001)
    assert p.due_at(0.999) == pytest.approx(0.999 + 0.2)
    p.take()
    assert p.due_at(2.0) is None


def test_a_stream_that_never_goes_quiet_still_triggers_after_ten_quiet_periods() -> None:
    p = pending()
    for i in range(100):
        p.record(FileCreatedEvent(f"/plugins.d/{i}.yaml"), i * 0.1)
    assert p.due_at(9.9) == pytest.approx(2.0)


def test_reads_are_not_changes() -> None:
    p = pending()
    p.record(FileOpenedEvent(str(A)), 0.0)
    p.record(FileClosedNoWriteEvent(str(A)), 0.0)
    assert p.due_at(0.0) is None
    assert not p.busy


def test_a_file_modified_and_not_closed_is_busy_and_holds_the_trigger() -> None:
    p = pending()
    p.record(FileOpenedEvent(str(A)), 0.0)
    p.record(FileModifiedEvent(str(A)), 0.0)
    assert p.busy == {A: 0.0}
    assert p.due_at(0.5) == pytest.approx(5.0)  # held until close (or the timeout)
    p.record(FileClosedEvent(str(A)), 1.0)
    assert not p.busy
    assert p.due_at(1.0) == pytest.approx(1.2)


def test_a_file_held_open_too_long_stops_holding_triggers_but_stays_busy() -> None:
    p = pending()
    p.record(FileModifiedEvent(str(A)), 0.0)
    p.record(FileModifiedEvent(str(A)), 4.0)  # further writes do not restart the clock
    assert p.due_at(4.5) == pytest.approx(5.0)
    assert p.due_at(5.0) == pytest.approx(2.0)  # due at once: the writer holds no more
    p.take()
    assert A in p.busy
    p.record(FileCreatedEvent("/plugins.d/b.yaml"), 6.0)
    assert p.due_at(6.0) == pytest.approx(6.2)  # an expired writer no longer holds others


def test_busy_follows_renames_and_ends_with_deletion() -> None:
    p = pending()
    b = Path("/plugins.d/b.yaml")
    p.record(FileModifiedEvent(str(A)), 0.0)
    p.record(FileMovedEvent(str(A), str(b)), 0.1)
    assert p.busy == {b: 0.0}
    p.record(FileDeletedEvent(str(b)), 0.2)
    assert not p.busy


def test_directory_events_count_but_never_make_anything_busy() -> None:
    p = pending()
    p.record(DirModifiedEvent("/plugins.d"), 0.0)
    assert p.due_at(0.0) == pytest.approx(0.2)
    assert not p.busy


def test_polling_mode_waits_a_poll_longer_and_tracks_writers_until_a_quiet_poll() -> None:
    p = pending()
    p.use_mode("polling")
    p.record(FileModifiedEvent(str(A)), 1.0)
    assert p.due_at(1.0) == pytest.approx(1.0 + 0.2 + POLL_INTERVAL_S)
    assert p.busy_now(1.5) == {A}  # polling sees no close: busy while it keeps changing
    p.record(FileModifiedEvent(str(A)), 2.0)
    assert p.busy_now(2.0 + 0.2 + POLL_INTERVAL_S - 0.01) == {A}
    assert p.busy_now(2.0 + 0.2 + POLL_INTERVAL_S) == frozenset()  # a quiet poll: done


def test_a_rename_over_a_busy_file_clears_it() -> None:
    p = pending()
    p.record(FileModifiedEvent(str(A)), 0.0)  # os.truncate() by path: no close ever comes
    p.record(FileMovedEvent(str(A.parent / ".a.yaml.tmp"), str(A)), 0.1)
    assert p.busy_now(0.1) == frozenset()


def test_lost_events_clear_every_busy_file_and_make_the_next_trigger_a_rescan() -> None:
    p = pending()
    p.record(FileModifiedEvent(str(A)), 0.0)
    p.record(EventsLostEvent(str(A.parent), is_directory=True), 0.1)
    assert p.busy_now(0.1) == frozenset()
    assert p.take() is True  # the watcher turns this trigger into a "rescan"
    assert p.take() is False


def test_a_busy_file_has_a_deadline() -> None:
    p = pending()
    p.record(FileModifiedEvent(str(A)), 0.0)
    assert p.busy_now(4.9) == {A}
    assert p.busy_now(5.0) == frozenset()  # read anyway; a torn file is rejected then


# -- ManifestWatcher: threading, errors, rescans, fallback -----------------------------


def test_a_scripted_burst_gives_one_watch_trigger(started: Start, source: ScriptedSource) -> None:
    calls, clock = Calls(), FakeClock()
    started(calls, source, debounce_s=0.1, clock=clock)
    source.emit(*[FileModifiedEvent(str(A)), FileClosedEvent(str(A))] * 500)
    clock.advance(0.099)
    clock.settle(source)
    assert calls.triggers == []  # not quiet for a debounce period yet
    clock.advance(0.001)
    clock.settle(source)
    assert calls.triggers == ["watch"]
    clock.advance(3600.0)  # past any debounce, quiet period, deadline: a late one would be due
    clock.settle(source)
    assert calls.triggers == ["watch"]


def test_no_trigger_while_busy_and_one_after_close(started: Start, source: ScriptedSource) -> None:
    calls, clock = Calls(), FakeClock()
    watcher = started(calls, source, clock=clock)  # a busy file holds triggers for up to 5 s
    source.emit(FileOpenedEvent(str(A)), FileModifiedEvent(str(A)))
    assert watcher.busy() == {A}
    clock.advance(4.99)  # about 250 debounce periods, just short of the busy deadline
    clock.settle(source)
    assert calls.triggers == []
    assert watcher.busy() == {A}
    source.emit(FileClosedEvent(str(A)))
    assert watcher.busy() == frozenset()
    clock.advance(0.02)
    clock.settle(source)
    assert calls.triggers == ["watch"]


def test_a_writer_that_never_closes_is_waited_for_only_so_long(
    started: Start, source: ScriptedSource
) -> None:
    calls = Calls()
    watcher = started(calls, source, busy_timeout_s=0.2)
    source.emit(FileModifiedEvent(str(A)))
    assert calls.wait(1) == ["watch"]
    assert watcher.busy() == frozenset()  # past its deadline a busy file is read anyway


def test_on_change_is_never_called_concurrently_with_itself(
    started: Start, source: ScriptedSource
) -> None:
    running = threading.Semaphore(1)
    overlaps: list[Trigger] = []

    def slow(trigger: Trigger) -> None:
        if not running.acquire(blocking=False):
            overlaps.append(trigger)
            return
        time.sleep(0.05)
        running.release()

    calls = Calls(slow)
    started(calls, source, debounce_s=0.001)
    for _ in range(20):
        source.emit(FileCreatedEvent(str(A)))
        time.sleep(0.01)
    calls.wait(2)
    assert overlaps == []


def test_a_failing_callback_does_not_stop_the_watcher(
    started: Start, source: ScriptedSource, caplog: pytest.LogCaptureFixture
) -> None:
    def fail_first(trigger: Trigger) -> None:
        if len(calls.triggers) == 1:
            raise RuntimeError("bad reload")

    calls = Calls(fail_first)
    started(calls, source)
    source.emit(FileCreatedEvent(str(A)))
    calls.wait(1)
    source.emit(FileDeletedEvent(str(A)))
    assert calls.wait(2) == ["watch", "watch"]
    assert "bad reload" in caplog.text


def test_an_event_the_handler_chokes_on_still_triggers(
    started: Start, source: ScriptedSource, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()
    watcher = started(calls, source)
    source.emit(FileModifiedEvent(None))  # type: ignore[arg-type]
    assert calls.wait(1) == ["watch"]
    assert "could not read event" in caplog.text
    source.emit(FileCreatedEvent(str(A)))
    assert calls.wait(2) == ["watch", "watch"]
    assert watcher.health["events_seen"] == 2


def test_rescan_triggers_periodically_without_events(
    started: Start, source: ScriptedSource
) -> None:
    calls = Calls()
    watcher = started(calls, source, rescan_interval_s=0.05)
    assert calls.wait(2)[:2] == ["rescan", "rescan"]
    assert watcher.health["triggers_fired"] >= 2


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EMFILE])
def test_inotify_limits_at_start_fall_back_to_polling(
    started: Start, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    fallback = ScriptedSource(mode="polling")
    calls = Calls()
    limit = OSError(code, "inotify limit reached")
    watcher = started(calls, ScriptedSource(fail=limit), fallback=fallback)
    assert watcher.mode == "polling"
    assert fallback.running
    health = watcher.health
    assert health["mode"] == "polling"
    assert "inotify limit reached" in health["last_error"]
    assert "inotify limit reached" in caplog.text
    calls.wait(1)  # the fallback announces that events may have been missed
    fallback.emit(FileModifiedEvent(str(A)))
    assert watcher.busy() == {A}  # polling: busy until a poll interval passes quietly


def test_other_start_errors_are_raised() -> None:
    failing = ScriptedSource(fail=FileNotFoundError(errno.ENOENT, "no plugins.d"))
    watcher = make_watcher(Calls(), failing)
    with pytest.raises(FileNotFoundError):
        watcher.start()
    watcher.stop()


def test_a_dead_source_is_replaced_by_polling(started: Start, source: ScriptedSource) -> None:
    fallback = ScriptedSource(mode="polling")
    calls = Calls()
    watcher = started(calls, source, fallback=fallback)
    assert watcher.mode == "inotify"
    source.running = False  # the observer thread died
    assert calls.wait(1) == ["watch"]
    assert watcher.health["mode"] == "polling"
    assert "stopped running" in watcher.health["last_error"]


def test_a_failing_fallback_is_retried(started: Start, source: ScriptedSource) -> None:
    fallback = ScriptedSource(mode="polling", fail=OSError(errno.ENOENT, "gone"))
    calls = Calls()
    watcher = started(calls, source, fallback=fallback)
    source.running = False
    deadline = time.monotonic() + WAIT_S
    while "gone" not in (watcher.health["last_error"] or "") and time.monotonic() < deadline:
        time.sleep(0.01)
    fallback.fail = None
    while not fallback.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fallback.running
    assert calls.wait(1) == ["watch"]


def test_stop_is_idempotent_and_works_from_inside_on_change(source: ScriptedSource) -> None:
    watcher: ManifestWatcher | None = None

    def stop_now(trigger: Trigger) -> None:
        assert watcher is not None
        watcher.stop()

    calls = Calls(stop_now)
    watcher = make_watcher(calls, source)
    watcher.start()
    source.emit(FileCreatedEvent(str(A)))
    calls.wait(1)
    watcher.stop()
    watcher.stop()
    assert not source.running


def test_start_twice_is_an_error(started: Start, source: ScriptedSource) -> None:
    watcher = started(Calls(), source)
    with pytest.raises(RuntimeError, match="already"):
        watcher.start()


def test_health_is_json_safe(started: Start, source: ScriptedSource) -> None:
    watcher = started(Calls(), source)
    source.emit(FileModifiedEvent(str(A)))
    assert json.loads(json.dumps(watcher.health)) == {
        "mode": "inotify",
        "last_error": None,
        "events_seen": 1,
        "triggers_fired": 0,
        "busy": [str(A)],
    }


def test_folders_are_resolved(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    seen: list[tuple[Path, ...]] = []

    class Recording(ScriptedSource):
        def start(self, folders: Sequence[Path], handler: Callable[..., None]) -> None:
            seen.append(tuple(folders))
            super().start(folders, handler)

    watcher = ManifestWatcher([tmp_path / "link"], Calls(), source=Recording())
    watcher.start()
    watcher.stop()
    assert seen == [((tmp_path / "real").resolve(),)]
