"""The current snapshot, leases on it, and teardown of what left once no run needs it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

from ..registry import Entry, Snapshot

__all__ = ["SnapshotKeeper"]


class SnapshotKeeper:
    """Hands out the current snapshot and defers teardown until runs are done with it.

    A run takes a lease (``with keeper.lease() as snapshot:``) and keeps that snapshot for
    its whole life, even across reloads. When a reload swaps in a new snapshot, the entries
    that left are torn down only once no lease on an older generation remains.

    Args:
        initial: The snapshot before the first reload.
        teardown: Called once per retired entry, newest setup first, outside any lock.
    """

    def __init__(self, initial: Snapshot, teardown: Callable[[Entry], None]) -> None:
        self._current = initial
        self._teardown = teardown
        self._cond = threading.Condition()
        self._leases: Counter[int] = Counter()  # generation -> runs holding it
        # (generation whose swap retired them, the entries)
        self._retired: list[tuple[int, Sequence[Entry]]] = []

    def current(self) -> Snapshot:
        """Return the current snapshot (no lock: the reference swap is atomic)."""
        return self._current

    @contextlib.contextmanager
    def lease(self) -> Iterator[Snapshot]:
        """Hold the current snapshot for the duration of the block."""
        with self._cond:
            snapshot = self._current
            self._leases[snapshot.generation] += 1
        try:
            yield snapshot
        finally:
            with self._cond:
                self._leases[snapshot.generation] -= 1
                if not self._leases[snapshot.generation]:
                    del self._leases[snapshot.generation]
                due = self._take_due()
                self._cond.notify_all()
            self._run_teardown(due)

    def swap(self, snapshot: Snapshot, retired: Sequence[Entry]) -> None:
        """Make ``snapshot`` current; tear ``retired`` down once older leases end."""
        with self._cond:
            self._current = snapshot
            if retired:
                self._retired.append((snapshot.generation, list(retired)))
            due = self._take_due()
        self._run_teardown(due)

    def in_flight(self) -> int:
        """Return the number of leases held."""
        with self._cond:
            return sum(self._leases.values())

    def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every lease to end; return whether they all did."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._leases:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def release_all(self) -> None:
        """Tear down everything retired now, leases or not: the host is going away."""
        with self._cond:
            due = [entry for _, entries in self._retired for entry in entries]
            self._retired = []
        self._run_teardown(due)

    def _take_due(self) -> list[Entry]:
        oldest_leased = min(self._leases, default=None)
        due: list[Entry] = []
        keep: list[tuple[int, Sequence[Entry]]] = []
        for generation, entries in self._retired:
            if oldest_leased is None or oldest_leased >= generation:
                due.extend(entries)
            else:
                keep.append((generation, entries))
        self._retired = keep
        return due

    def _run_teardown(self, entries: list[Entry]) -> None:
        for entry in reversed(entries):
            self._teardown(entry)
