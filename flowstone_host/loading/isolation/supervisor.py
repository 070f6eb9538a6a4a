"""Keeps one isolated plugin alive: calls, deaths, restarts with backoff, the circuit breaker.

States: ``running`` (a child serves calls), ``restarting`` (the child died; a new one is
started after the backoff), ``broken`` (the circuit is open: calls fail fast until the
host builds the plugin anew), ``stopped`` (closed by the host). Calls that arrive while
restarting wait for the new child within their own timeout, then fail with a retryable
``Unavailable``.

Telemetry, each with metadata ``plugin``, ``kind``, ``pid`` and ``reason``:
``("flowstone", "plugin", "died")`` (measurement ``uptime_s``),
``("flowstone", "plugin", "restarted")`` (``attempt``, ``backoff_s``) and
``("flowstone", "plugin", "circuit_open")`` (``crashes``).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any, Literal

from ...contracts.types import Health
from ...errors import FlowStoneError, PluginCrashed, Timeout, Unavailable
from ...telemetry import execute
from .options import IsolationOptions
from .remote import CallTimedOut, ChildDied, ChildGone, PluginSpec, QueueTimedOut, RemotePlugin
from .restart import CrashWindow

__all__ = ["State", "Supervisor"]

log = logging.getLogger(__name__)

State = Literal["running", "restarting", "broken", "stopped"]

_LIVE: weakref.WeakSet[Supervisor] = weakref.WeakSet()


class Supervisor:
    """Owns the child of one isolated plugin for the plugin's whole life.

    Args:
        spec: What the child runs.
        options: Limits, timeouts and the restart policy.
        restart: Whether a dead child is restarted; item readers are not (their position
            died with the child), so their first death opens the circuit.
    """

    def __init__(
        self, spec: PluginSpec, options: IsolationOptions, *, restart: bool = True
    ) -> None:
        self.spec = spec
        self.options = options
        self._restart = restart
        self._cond = threading.Condition()
        self._state: State = "restarting"
        self._reason = "starting"
        self._remote: RemotePlugin | None = None
        self._incarnation = 0
        self._consecutive = 0
        self._crashes = CrashWindow(options.restart)
        self._stopping = threading.Event()
        # telemetry decided under the lock, emitted after it: handlers must not block calls
        self._events: list[tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Mapping[str, Any]:
        """Start the first child and build the plugin; return what the child reported.

        Raises:
            FlowStoneError: the plugin failed to load (see :meth:`RemotePlugin.start`).
        """
        remote = RemotePlugin.start(self.spec, self.options, self._incarnation)
        with self._cond:
            self._remote, self._state = remote, "running"
        _LIVE.add(self)
        return remote.info

    def close(self) -> None:
        """Call the plugin's ``close()``, then stop the child politely. Idempotent."""
        if self._state == "running":
            try:
                self.call("close", (), {})
            except FlowStoneError as exc:
                log.warning("Isolated plugin %s failed to close: %s", self.spec.name, exc)
        self.stop()

    def stop(self) -> None:
        """Stop the child without calling the plugin (at host exit). Idempotent."""
        with self._cond:
            self._state, self._reason = "stopped", "closed"
            remote, self._remote = self._remote, None
            self._stopping.set()
            self._cond.notify_all()
        if remote is not None:
            remote.stop(self.options.stop_grace_s)
        _LIVE.discard(self)

    # -- calls -------------------------------------------------------------------------------

    def call(self, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """Run ``method`` in the child within the per-call timeout.

        Raises:
            PluginCrashed: the child died during the call (retryable; it is restarted).
            Timeout: the call ran past ``timeout_s`` (retryable; the child is restarted).
            Unavailable: restarting and not back in time (retryable), or the circuit is
                open or the plugin closed (not retryable).
            FlowStoneError: what the plugin raised, with its code and ``retryable``.
        """
        deadline = time.monotonic() + self.options.timeout_s
        while True:
            remote = self._wait_running(deadline)
            try:
                value = remote.call(method, args, kwargs, deadline)
            except ChildGone:
                self._on_death(remote, "died during another call")
                continue
            except QueueTimedOut:
                raise self._timeout(method, "waiting for other calls to the plugin") from None
            except CallTimedOut:
                remote.child.kill()  # hung: no grace, the call's deadline has passed
                self._on_death(remote, f"{method}() ran past {self.options.timeout_s:g} s")
                raise self._timeout(method, "running") from None
            except ChildDied as died:
                reason = self._on_death(remote, f"died during {method}() ({died})")
                raise PluginCrashed(
                    f"Isolated plugin {self.spec.name!r} {reason}; it is being restarted, "
                    f"retry the call.",
                    plugin=self.spec.name,
                    method=method,
                ) from None
            self._consecutive = 0
            return value

    def _timeout(self, method: str, doing: str) -> Timeout:
        return Timeout(
            f"Isolated plugin {self.spec.name!r} timed out after {self.options.timeout_s:g} s "
            f"{doing} {method}(); raise its timeout_s if the plugin is slow.",
            plugin=self.spec.name,
            method=method,
        )

    def _wait_running(self, deadline: float) -> RemotePlugin:
        remote = self._remote  # running, as a rule: no lock (a stale child is ChildGone)
        if remote is not None and self._state == "running":
            return remote
        with self._cond:
            while True:
                if self._state == "running" and self._remote is not None:
                    return self._remote
                if self._state in ("broken", "stopped"):
                    raise self._unavailable()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Unavailable(
                        f"Isolated plugin {self.spec.name!r} is restarting after it "
                        f"{self._reason}; retry shortly.",
                        plugin=self.spec.name,
                    )
                self._cond.wait(remaining)

    def _unavailable(self) -> Unavailable:
        if self._state == "stopped":
            return Unavailable(
                f"Isolated plugin {self.spec.name!r} was closed.",
                retryable=False,
                plugin=self.spec.name,
            )
        return Unavailable(
            f"Isolated plugin {self.spec.name!r} is circuit-broken: {self._reason}. Calls "
            f"fail until the plugin is loaded again (reload the host).",
            retryable=False,
            plugin=self.spec.name,
            circuit="open",
        )

    # -- deaths and restarts -----------------------------------------------------------------

    def _on_death(self, remote: RemotePlugin, what: str) -> str:
        """Reap a dead or hung child once, and schedule its restart or open the circuit."""
        description = remote.describe_death()  # kills the group if still alive
        reason = f"{what}: {description}" if description not in what else what
        with self._cond:
            if self._remote is not remote:
                return reason  # another thread already handled this death
            self._remote = None
            self._note_death(reason, remote)
        self._emit()
        return reason

    def _note_death(self, reason: str, remote: RemotePlugin | None) -> None:
        # Called with the lock held.
        now = time.monotonic()
        uptime = now - remote.started_at if remote else 0.0
        pid = remote.child.pid if remote else None
        log.error("Isolated plugin %s (pid %s) %s", self.spec.name, pid, reason)
        self._events.append(
            (("flowstone", "plugin", "died"), {"uptime_s": uptime}, self._meta(pid, reason))
        )
        if self._crashes.record(now) or not self._restart:
            self._open_circuit(reason, pid)
        else:
            self._schedule_restart(reason)
        self._cond.notify_all()

    def _open_circuit(self, reason: str, pid: int | None) -> None:
        crashes = len(self._crashes)
        policy = self.options.restart
        why = (
            f"{crashes} deaths within {policy.window_s:g} s"
            if self._restart
            else "it is not restarted (its state died with it)"
        )
        self._state, self._reason = "broken", f"{why}; last: {reason}"
        log.error("Isolated plugin %s is circuit-broken: %s", self.spec.name, self._reason)
        self._events.append(
            (("flowstone", "plugin", "circuit_open"), {"crashes": crashes}, self._meta(pid, reason))
        )

    def _schedule_restart(self, reason: str) -> None:
        backoff = self.options.restart.backoff(self._consecutive)
        self._consecutive += 1
        self._state, self._reason = "restarting", reason
        log.warning("Restarting isolated plugin %s in %.2f s", self.spec.name, backoff)
        threading.Thread(
            target=self._restart_after,
            args=(backoff,),
            name=f"restart-{self.spec.name}",
            daemon=True,
        ).start()

    def _restart_after(self, backoff: float) -> None:
        if self._stopping.wait(backoff):
            return
        incarnation = self._incarnation + 1
        try:
            remote = RemotePlugin.start(self.spec, self.options, incarnation)
        except Exception as exc:  # counts as one more death
            with self._cond:
                if self._state == "restarting":
                    self._note_death(f"failed to restart: {exc}", None)
            self._emit()
            return
        with self._cond:
            if self._state != "restarting":  # closed meanwhile
                remote.stop(self.options.stop_grace_s)
                return
            self._remote, self._state, self._incarnation = remote, "running", incarnation
            self._cond.notify_all()
        log.warning("Isolated plugin %s restarted as pid %d", self.spec.name, remote.child.pid)
        execute(
            ("flowstone", "plugin", "restarted"),
            {"attempt": self._consecutive, "backoff_s": backoff},
            self._meta(remote.child.pid, self._reason),
        )

    def _emit(self) -> None:
        with self._cond:
            events, self._events = self._events, []
        for event in events:
            execute(*event)

    def _meta(self, pid: int | None, reason: str) -> dict[str, Any]:
        return {"plugin": self.spec.name, "kind": self.spec.kind, "pid": pid, "reason": reason}

    # -- status ------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """``running``, ``restarting``, ``broken`` or ``stopped``."""
        return self._state

    @property
    def pid(self) -> int | None:
        """The running child's pid, or ``None``."""
        remote = self._remote
        return remote.child.pid if remote else None

    @property
    def containment(self) -> str | None:
        """What holds the running child: ``cgroup`` or ``process_group``; ``None`` without one."""
        remote = self._remote
        return remote.child.containment.kind if remote else None

    def health(self) -> Health | None:
        """Return why the plugin cannot serve, or ``None`` while a child runs."""
        state = self._state
        if state == "running":
            return None
        return Health.unhealthy(f"{state}: {self._reason}", state=state, plugin=self.spec.name)


@atexit.register
def _stop_all() -> None:
    # Children lead their own process groups: nothing else stops them when the host exits.
    for supervisor in list(_LIVE):
        supervisor.stop()
