"""Atomic rename of a manifest to ``on_change``, against watchdog's own delivery of it.

The floor is a bare watchdog ``Observer`` and handler seeing the same rename on the same
machine. The watcher adds its debounce by design, so the target is an absolute one:
``floor + debounce + 50 ms``, given as the ratio it allows.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from bench._common import Result, print_results
from flowstone_host.host.watcher import ManifestWatcher, Trigger

TRIALS = 30
DEBOUNCE_S = 0.2
SLACK_S = 0.05
TIMEOUT_S = 5.0


def _median_rename_latency(folder: Path, arrived: threading.Event, stamp: list[float]) -> float:
    """Return the median seconds from ``os.replace`` to ``stamp[0]``, set on arrival."""
    manifest, samples = folder / "a.yaml", []
    for i in range(TRIALS):
        temporary = folder / ".a.yaml.tmp"
        temporary.write_text(f"plugins: [{i}]\n")
        arrived.clear()
        start = time.perf_counter()
        os.replace(temporary, manifest)
        if not arrived.wait(TIMEOUT_S):
            raise RuntimeError(f"rename {i} was not seen within {TIMEOUT_S}s")
        samples.append(stamp[0] - start)
    return statistics.median(samples)


def _arrival() -> tuple[threading.Event, list[float], Callable[[], None]]:
    arrived, stamp = threading.Event(), [0.0]

    def mark() -> None:
        stamp[0] = time.perf_counter()
        arrived.set()

    return arrived, stamp, mark


class _OnRename(FileSystemEventHandler):
    def __init__(self, mark: Callable[[], None]) -> None:
        self._mark = mark

    def on_moved(self, event: FileSystemEvent) -> None:
        self._mark()


def _floor(folder: Path) -> float:
    arrived, stamp, mark = _arrival()
    observer = Observer()
    observer.schedule(_OnRename(mark), str(folder), recursive=True)
    observer.start()
    try:
        return _median_rename_latency(folder, arrived, stamp)
    finally:
        observer.stop()
        observer.join()


def _watcher(folder: Path) -> float:
    arrived, stamp, mark = _arrival()

    def on_change(trigger: Trigger) -> None:
        mark()

    watcher = ManifestWatcher([folder], on_change, debounce_s=DEBOUNCE_S, rescan_interval_s=None)
    watcher.start()
    try:
        return _median_rename_latency(folder, arrived, stamp)
    finally:
        watcher.stop()


def _rename_to_on_change() -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floor_s, value_s = _floor(folder), _watcher(folder)
    return Result(
        f"rename -> on_change, debounce {DEBOUNCE_S * 1000:g}ms ({TRIALS} trials)",
        value_s * 1000,
        floor_s * 1000,
        "ms",
        (floor_s + DEBOUNCE_S + SLACK_S) / floor_s,
    )


def main() -> bool:
    return print_results("watcher", [_rename_to_on_change()])
