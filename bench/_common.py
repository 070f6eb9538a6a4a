"""Shared timing helpers: every figure is printed next to the raw floor from the same run."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

__all__ = [
    "Arrival",
    "Result",
    "median_ns_per_op",
    "median_rename_latency",
    "print_results",
    "watchdog_rename_floor",
]

RENAME_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Result:
    """One benchmark figure against its floor.

    ``ratio`` is ``value / floor``. When lower is better (a time) the target is a ceiling
    (``<= 1.50x``); when higher is better (a rate) it is a floor (``>= 0.50x``).
    """

    name: str
    value: float
    floor: float
    unit: str
    target: float
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        return self.value / self.floor if self.floor else float("inf")

    @property
    def ok(self) -> bool:
        if self.higher_is_better:
            return self.ratio >= self.target
        return self.ratio <= self.target

    @property
    def target_text(self) -> str:
        """The target with its direction, e.g. ``<= 1.50x`` or ``>= 0.50x``."""
        return f"{'>=' if self.higher_is_better else '<='} {self.target:.2f}x"


def median_ns_per_op(fn: Callable[[int], None], loops: int, repeats: int = 7) -> float:
    """Return the median over ``repeats`` of the ns per iteration of ``fn(loops)``."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn(loops)
        samples.append((time.perf_counter_ns() - start) / loops)
    return statistics.median(samples)


def print_results(title: str, results: list[Result]) -> bool:
    """Print a table of results; return whether every one met its target."""
    print(f"\n== {title}")
    print(f"{'benchmark':<48} {'value':>12} {'floor':>12} {'ratio':>7} {'target':>9}")
    for r in results:
        mark = "ok" if r.ok else "MISSED"
        print(
            f"{r.name:<48} {r.value:>10.1f}{r.unit:<2} {r.floor:>10.1f}{r.unit:<2} "
            f"{r.ratio:>6.2f}x {r.target_text:>9} {mark}"
        )
    return all(r.ok for r in results)


@dataclass
class Arrival:
    """Stamps the moment something arrived; :func:`median_rename_latency` waits for it."""

    event: threading.Event = field(default_factory=threading.Event)
    at: float = 0.0

    def mark(self) -> None:
        """Note the arrival now (``time.perf_counter``)."""
        self.at = time.perf_counter()
        self.event.set()


def median_rename_latency(
    folder: Path, arrival: Arrival, trials: int, content: Callable[[int], str]
) -> float:
    """Return the median seconds from renaming ``content(i)`` over ``a.yaml`` to ``arrival``.

    Each trial writes a temporary file in ``folder``, then ``os.replace``s it over
    ``folder/a.yaml`` (an editor's atomic save) and waits for ``arrival.mark()``.

    Raises:
        RuntimeError: A trial did not arrive within :data:`RENAME_TIMEOUT_S`.
    """
    manifest, samples = folder / "a.yaml", []
    for i in range(trials):
        temporary = folder / ".a.yaml.tmp"
        temporary.write_text(content(i))
        arrival.event.clear()
        start = time.perf_counter()
        os.replace(temporary, manifest)
        if not arrival.event.wait(RENAME_TIMEOUT_S):
            raise RuntimeError(f"rename {i} was not seen within {RENAME_TIMEOUT_S}s")
        samples.append(arrival.at - start)
    return statistics.median(samples)


class _OnRename(FileSystemEventHandler):
    def __init__(self, arrival: Arrival) -> None:
        self._arrival = arrival

    def on_moved(self, event: FileSystemEvent) -> None:
        self._arrival.mark()


def watchdog_rename_floor(folder: Path, trials: int) -> float:
    """Return the median seconds a bare watchdog observer takes to deliver a rename."""
    arrival = Arrival()
    observer = Observer()
    observer.schedule(_OnRename(arrival), str(folder), recursive=True)
    observer.start()
    try:
        return median_rename_latency(folder, arrival, trials, lambda i: f"plugins: [{i}]\n")
    finally:
        observer.stop()
        observer.join()
