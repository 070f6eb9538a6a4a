"""When an isolated plugin's child is restarted, and when it is given up on."""

from __future__ import annotations

import collections
from dataclasses import dataclass

__all__ = ["CrashWindow", "RestartPolicy"]


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Exponential backoff between restarts, and the circuit breaker.

    The n-th consecutive restart waits ``min(initial_backoff_s * multiplier ** n,
    max_backoff_s)``; a call that succeeds resets the count. ``max_crashes`` deaths within
    ``window_s`` seconds open the circuit: no more restarts, every call fails fast, and the
    plugin reports unhealthy until the host builds it anew (the next reload).

    Attributes:
        initial_backoff_s: Wait before the first restart.
        multiplier: Growth of the wait per consecutive crash.
        max_backoff_s: The longest wait.
        max_crashes: Deaths (crashes, call timeouts, failed restarts) that open the circuit.
        window_s: The window those deaths are counted in.
    """

    initial_backoff_s: float = 0.5
    multiplier: float = 2.0
    max_backoff_s: float = 30.0
    max_crashes: int = 5
    window_s: float = 60.0

    def backoff(self, consecutive: int) -> float:
        """Return the wait before restart number ``consecutive`` (0 for the first)."""
        return min(self.initial_backoff_s * self.multiplier**consecutive, self.max_backoff_s)


class CrashWindow:
    """The deaths of one plugin inside the policy's window; not thread-safe."""

    def __init__(self, policy: RestartPolicy) -> None:
        self._policy = policy
        self._deaths: collections.deque[float] = collections.deque()

    def record(self, now: float) -> bool:
        """Record a death at monotonic time ``now``; return whether the circuit opens."""
        self._deaths.append(now)
        while self._deaths and self._deaths[0] <= now - self._policy.window_s:
            self._deaths.popleft()
        return len(self._deaths) >= self._policy.max_crashes

    def __len__(self) -> int:
        return len(self._deaths)
