# ruff: noqa: F811  (pytest fixtures imported from test_daemon are parameters here)
"""The real daemon never keeps a stale manifest: lost closes, lost events, FIFOs.

Each test reproduces one way a manifest stayed stale forever (issue 15, items 1 and 4),
on a real daemon, real files and real inotify, and reads the outcome from ``/status``.
"""

from __future__ import annotations

import os
import signal

from test_daemon import (
    ON_REQUEST,
    WATCH_ONLY,
    Start,
    Workspace,
    io_manager,
    start,  # noqa: F401 (a fixture)
    wait_until,
    ws,  # noqa: F401 (a fixture)
)


def test_a_file_truncated_by_path_then_saved_atomically_is_not_stale(
    ws: Workspace, start: Start
) -> None:
    ws.write("a.yaml", io_manager("store", copy=False))
    daemon = start(reload=WATCH_ONLY)
    os.truncate(ws.plugins / "a.yaml", 0)  # a modification with no close event
    ws.write("a.yaml", io_manager("store", copy=True))  # renamed over the "busy" file
    wait_until(lambda: daemon.config("store") == {"copy": True}, "the saved version")
    assert daemon.status()["watcher"]["busy"] == []


def test_a_manual_reload_never_skips_a_file_whose_bytes_changed(
    ws: Workspace, start: Start
) -> None:
    ws.write("a.yaml", io_manager("store", copy=False))
    daemon = start(reload=ON_REQUEST)
    path = ws.plugins / "a.yaml"
    os.truncate(path, 0)
    with open(path, "r+b") as handle:  # opened, written and never closed while we reload
        handle.write(io_manager("store", copy=True).encode())
        handle.flush()
        wait_until(lambda: daemon.status()["watcher"]["busy"], "the file to be busy")
        assert daemon.reload().status == 200
        assert daemon.config("store") == {"copy": True}


def test_a_writer_that_never_closes_is_read_after_the_busy_deadline(
    ws: Workspace, start: Start
) -> None:
    ws.write("a.yaml", io_manager("store", copy=False))
    daemon = start(reload=WATCH_ONLY)
    with open(ws.plugins / "a.yaml", "r+b") as handle:
        handle.truncate(0)
        handle.write(io_manager("store", copy=True).encode())
        handle.flush()
        wait_until(lambda: daemon.config("store") == {"copy": True}, "the deadline")


def test_lost_inotify_events_mark_everything_dirty(ws: Workspace, start: Start) -> None:
    ws.write("a.yaml", io_manager("store", copy=False))
    noise = ws.plugins / "noise"
    noise.mkdir()
    # DEBUG: a rescan that finds nothing new is logged at DEBUG, and the busy deadline (a
    # "watch" reload) may apply the change before the rescan that the lost events call for.
    daemon = start(reload=WATCH_ONLY, log_level="DEBUG")
    handle = open(ws.plugins / "a.yaml", "r+b")  # noqa: SIM115 (closed while the daemon sleeps)
    handle.truncate(0)
    handle.write(io_manager("store", copy=True).encode())
    handle.flush()
    wait_until(lambda: daemon.status()["watcher"]["busy"], "the file to be busy")
    daemon.signal(signal.SIGSTOP)  # the kernel queue fills while nobody reads it
    try:
        fds = [os.open(noise / f"n{i}.txt", os.O_WRONLY | os.O_CREAT) for i in (0, 1)]
        for i in range(20000):  # alternating files so inotify cannot merge the events
            os.write(fds[i % 2], b"x")
        for fd in fds:
            os.close(fd)
        handle.close()  # past the queue's 16,384 events: this close is lost in the overflow
    finally:
        daemon.signal(signal.SIGCONT)
    wait_until(lambda: "Inotify queue overflowed" in ws.log(), "the overflow")
    wait_until(lambda: daemon.config("store") == {"copy": True}, "a full rescan")
    # The lost events call for a full rescan: told by the reload's own log line after the
    # overflow notice, which no load can fake the way a stopwatch can be. (The busy
    # deadline, a "watch" reload, may apply the change first, even before the watcher is
    # handed the lost-events notice that the log line announces; the rescan follows it.)

    def rescanned_after_the_overflow() -> bool:
        logged = ws.logged()
        start = next(i for i, r in enumerate(logged) if "Inotify queue overflowed" in r["message"])
        return any(r.get("trigger") == "rescan" for r in logged[start:])

    wait_until(rescanned_after_the_overflow, "a rescan after the overflow")
