"""Atomic rename of a manifest to ``on_change``, against watchdog's own delivery of it.

The floor is a bare watchdog ``Observer`` and handler seeing the same rename on the same
machine. The watcher adds its debounce by design, so the target is an absolute one:
``floor + debounce + 50 ms``, given as the ratio it allows.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench._common import (
    Arrival,
    Result,
    median_rename_latency,
    print_results,
    watchdog_rename_floor,
)
from flowstone_host.daemon.watcher import ManifestWatcher, Trigger

TRIALS = 30
DEBOUNCE_S = 0.2
SLACK_S = 0.05


def _watcher(folder: Path) -> float:
    arrival = Arrival()

    def on_change(trigger: Trigger) -> None:
        arrival.mark()

    watcher = ManifestWatcher([folder], on_change, debounce_s=DEBOUNCE_S, rescan_interval_s=None)
    watcher.start()
    try:
        return median_rename_latency(folder, arrival, TRIALS, lambda i: f"plugins: [{i}]\n")
    finally:
        watcher.stop()


def _rename_to_on_change() -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floor_s, value_s = watchdog_rename_floor(folder, TRIALS), _watcher(folder)
    return Result(
        f"rename -> on_change, debounce {DEBOUNCE_S * 1000:g}ms ({TRIALS} trials)",
        value_s * 1000,
        floor_s * 1000,
        "ms",
        (floor_s + DEBOUNCE_S + SLACK_S) / floor_s,
    )


def main() -> bool:
    return print_results("watcher", [_rename_to_on_change()])
