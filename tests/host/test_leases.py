"""Runs keep their snapshot; what left is torn down only after they finish."""

from __future__ import annotations

import threading

from flowstone_host.host.leases import SnapshotKeeper
from flowstone_host.registry import Entry, Snapshot


def _entry(name: str) -> Entry:
    return Entry("Resource", name, object())


def _snapshot(generation: int, *entries: Entry) -> Snapshot:
    return Snapshot.build(entries, generation=generation)


def test_retired_entries_wait_for_older_leases_then_tear_down_newest_first() -> None:
    torn: list[str] = []
    a, b = _entry("a"), _entry("b")
    keeper = SnapshotKeeper(_snapshot(0, a, b), lambda e: torn.append(e.name))
    with keeper.lease() as held:
        keeper.swap(_snapshot(1), [a, b])
        assert keeper.current().generation == 1
        assert held.generation == 0 and "a" in held.resources
        assert torn == []  # the run still uses them
    assert torn == ["b", "a"]


def test_without_leases_teardown_is_immediate_and_newer_leases_do_not_block() -> None:
    torn: list[str] = []
    old = _entry("old")
    keeper = SnapshotKeeper(_snapshot(0, old), lambda e: torn.append(e.name))
    keeper.swap(_snapshot(1), [])
    with keeper.lease():
        keeper.swap(_snapshot(2), [old])  # retired by gen 2; only a gen-1 lease is held
        assert torn == []
    assert torn == ["old"]
    with keeper.lease():
        keeper.swap(_snapshot(3), [_entry("x")])
        assert torn == ["old"]
    assert torn == ["old", "x"]


def test_drain_waits_for_runs_in_flight() -> None:
    keeper = SnapshotKeeper(_snapshot(0), lambda e: None)
    started, release = threading.Event(), threading.Event()

    def run() -> None:
        with keeper.lease():
            started.set()
            release.wait(5)

    worker = threading.Thread(target=run)
    worker.start()
    started.wait(5)
    assert keeper.in_flight() == 1
    assert keeper.drain(0.05) is False
    release.set()
    assert keeper.drain(5) is True
    worker.join(5)
    assert keeper.in_flight() == 0


def test_release_all_tears_down_what_leases_still_hold() -> None:
    torn: list[str] = []
    old = _entry("old")
    keeper = SnapshotKeeper(_snapshot(0, old), lambda e: torn.append(e.name))
    with keeper.lease():
        keeper.swap(_snapshot(1), [old])
        assert torn == []
        keeper.release_all()  # the host is stopping and the run overstayed its grace
        assert torn == ["old"]
    assert torn == ["old"]  # not twice
