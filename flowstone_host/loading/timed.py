"""Plugin calls under a deadline: each on a daemon thread of its own, waited for a while.

An in-process constructor, ``setup()``, ``teardown()`` or ``close()`` runs here under
``sandbox.limits.setup_timeout_s``: one that does not return in time is left behind on its
thread and reported (a log line, and :func:`abandoned_calls` for ``/status``), and what it
returns late is handed to its ``late`` callback to let go. The same key (a declaration's
step) is not started again while an abandoned call of it still runs.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import PluginLoadError

__all__ = ["Late", "TimedCall", "TimedOut", "abandoned_calls", "call_in_time"]

# The loader's log: operators filter these lines under the name they have always had.
log = logging.getLogger("flowstone_host.loading.loader")


#: What lets go of a call's outcome that came after it was given up on: called with
#: whether it returned (else raised) and what it returned.
Late = Callable[[bool, Any], None]


class TimedOut(PluginLoadError):
    """A plugin call did not return within ``setup_timeout_s``."""


#: Calls given up on whose thread still runs, by key (declaration and step).
_ABANDONED: dict[str, TimedCall] = {}
_ABANDONED_LOCK = threading.Lock()


def abandoned_calls() -> list[dict[str, Any]]:
    """Return the plugin calls given up on that have still not returned, oldest first:
    what they were, since when (epoch seconds) and their thread's name, JSON-safe."""
    with _ABANDONED_LOCK:
        for key in [k for k, c in _ABANDONED.items() if c.finished]:
            del _ABANDONED[key]
        calls = sorted(_ABANDONED.values(), key=lambda c: c.started)
    return [{"call": c.what, "running_since": c.started, "thread": c.thread.name} for c in calls]


def _still_running(key: str) -> bool:
    with _ABANDONED_LOCK:
        call = _ABANDONED.get(key)
        if call is not None and call.finished:
            del _ABANDONED[key]
            return False
        return call is not None


def call_in_time(
    owner: str,
    doing: str,
    key: str,
    call: Callable[[], Any],
    late: Late,
    timeout_s: float,
    cancel: threading.Event,
) -> TimedCall:
    """Run ``call``, ``owner``'s step ``doing``, under ``timeout_s``; return it finished,
    its :meth:`~TimedCall.outcome` what it returned or raised. ``late`` is handed what it
    returns after it was given up on.

    Raises:
        PluginLoadError: not started: an abandoned call of ``key`` still runs, or
            ``cancel`` is set (the host is stopping).
        TimedOut: it did not return in time, or ``cancel`` was set while it ran.
    """
    what = f"{owner}: {doing}"
    if _still_running(key):
        raise PluginLoadError(
            f"{what} was not started: the previous {doing} of this declaration, given up "
            f"on after {timeout_s:g} s, has still not returned."
        )
    if cancel.is_set():
        raise PluginLoadError(f"{what} was not started: the host is stopping.")
    timed = TimedCall(what, key, call, late)
    if timed.run(timeout_s, cancel):
        return timed
    if cancel.is_set():
        raise TimedOut(f"{what} was given up on: the host is stopping.")
    raise TimedOut(
        f"{what} did not return within {timeout_s:g} s "
        "(sandbox.limits.setup_timeout_s); it was left running on its own thread, and "
        "what it returns will be let go."
    )


class TimedCall:
    """One plugin call on a daemon thread of its own; :meth:`run` waits for it a while."""

    def __init__(self, what: str, key: str, call: Callable[[], Any], late: Late) -> None:
        self.what, self.key = what, key
        self._call, self._late = call, late
        self._lock = threading.Lock()
        self._result: Any = None
        self._error: BaseException | None = None
        self.finished = False
        self._abandoned = False
        self.started = time.time()
        context = contextvars.copy_context()  # its spans and telemetry, as if called here
        self.thread = threading.Thread(
            target=context.run, args=(self._work,), name=f"flowstone-plugin-{key}", daemon=True
        )

    def run(self, timeout_s: float, cancel: threading.Event | None = None) -> bool:
        """Start the call and wait up to ``timeout_s`` (less if ``cancel`` is set); return
        whether it returned."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        self.thread.start()
        while True:
            left = deadline - time.monotonic()
            self.thread.join(max(min(left, 0.05 if cancel is not None else left), 0.0))
            if not self.thread.is_alive() or left <= 0 or (cancel is not None and cancel.is_set()):
                break
        with self._lock:
            if self.finished:
                return True
            self._abandoned = True
        with _ABANDONED_LOCK:
            _ABANDONED[self.key] = self
        log.error(
            "%s did not return %s; its thread %s is left behind.",
            self.what,
            f"within {timeout_s:g} s" if cancel is None or not cancel.is_set() else "(stopping)",
            self.thread.name,
            extra={"plugin_thread": self.thread.name},
        )
        return False

    def outcome(self) -> Any:
        """Return what the call returned, or raise what it raised."""
        if self._error is not None:
            raise self._error
        return self._result

    def _work(self) -> None:
        try:
            self._result = self._call()
        except BaseException as exc:  # the caller raises it, or it is logged as late
            self._error = exc
        with self._lock:
            self.finished = True
            abandoned = self._abandoned
        if abandoned:
            log.warning(
                "%s returned after it was given up on (%s); letting go of what it returned.",
                self.what,
                "raised " + type(self._error).__name__ if self._error else "returned",
            )
            self._late(self._error is None, self._result)
