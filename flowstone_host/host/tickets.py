"""Reload tickets: which reload requests a reload has covered, so none is lost."""

from __future__ import annotations

import threading

__all__ = ["Tickets"]


class Tickets:
    """Which reload requests a reload has covered, so that none is lost and few repeat.

    A request is covered by a reload that began after it was made, if that reload was of
    the same sort or a person's: a person's reload does all a watcher's does, and more.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made = {False: 0, True: 0}  # requests made, by whether a person made them
        self._served = {False: 0, True: 0}

    def take(self, manual: bool) -> int:
        """Record a request; return its ticket."""
        with self._lock:
            self._made[manual] += 1
            return self._made[manual]

    def covered(self, manual: bool, ticket: int) -> bool:
        """Whether a reload that began after ``ticket`` was taken has finished."""
        with self._lock:
            return self._served[manual] >= ticket

    def begin(self, manual: bool) -> dict[bool, int]:
        """Note a reload beginning now: what it will have covered once it finishes."""
        with self._lock:
            return dict(self._made) if manual else {False: self._made[False]}

    def served(self, covered: dict[bool, int]) -> None:
        """Record that a reload begun with :meth:`begin` finished."""
        with self._lock:
            for sort, ticket in covered.items():
                self._served[sort] = max(self._served[sort], ticket)
