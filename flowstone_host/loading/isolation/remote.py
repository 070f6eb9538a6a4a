"""One running child serving one plugin instance, as the host sees it.

Calls are serialized (one in flight per child) and bounded by a deadline. The failures
that matter to the supervisor are raised as the internal exceptions below; errors the
plugin raised come back as the :class:`FlowStoneError` it raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import FlowStoneError, InternalError, PluginLoadError, ValidationError
from .channel import ChannelClosed, ChannelError, ChannelTimeout
from .codec import decode, encode
from .options import IsolationOptions
from .process import ChildProcess
from .target import Target, describe_target

__all__ = ["CallTimedOut", "ChildDied", "ChildGone", "PluginSpec", "QueueTimedOut", "RemotePlugin"]

_SERVE = "flowstone_host.loading.isolation.server:serve"


class ChildGone(Exception):
    """The child was already dead; the call was not sent."""


class ChildDied(Exception):
    """The child died or broke the protocol during the call; it may have taken effect."""


class CallTimedOut(Exception):
    """The call ran past its deadline; the child is in an unknown state."""


class QueueTimedOut(Exception):
    """Other calls held the child until the deadline; this one was not sent."""


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """What to run in the child.

    Attributes:
        kind: The manifest kind (``"IOManager"``).
        target: The entry point's ``"module:attr"`` value, or ``(namespace, name)``.
        name: The declaration's name, for logs, errors and telemetry.
        config: The plugin's merged config.
        deps: Loaded dependency values, for item readers.
        facts: Host facts as plain data (``state_dir``, ``callables`` patterns).
    """

    kind: str
    target: Target
    name: str
    config: Mapping[str, Any]
    deps: Mapping[str, Any] | None = None
    facts: Mapping[str, Any] | None = None


class RemotePlugin:
    """A started child with its plugin built; use :meth:`start`."""

    def __init__(self, child: ChildProcess, spec: PluginSpec, info: Mapping[str, Any]) -> None:
        self.child = child
        self.spec = spec
        self.info = dict(info)
        self.started_at = time.monotonic()
        self.dead = False
        self._lock = threading.Lock()

    @classmethod
    def start(cls, spec: PluginSpec, options: IsolationOptions, incarnation: int) -> RemotePlugin:
        """Spawn the child, build the plugin in it, and return once it is ready.

        Raises:
            FlowStoneError: the plugin failed to load, as the child reported it
                (``PluginLoadError``, ``IncompatibleContract``, ...).
            PluginLoadError: the child died, hung or misbehaved while loading.
        """
        child = ChildProcess.start(
            spec.name,
            _SERVE,
            limits=options.limits,
            env=options.env,
            max_frame=options.max_frame,
            containment=options.containment,
        )
        deadline = time.monotonic() + options.start_timeout_s
        build = {
            "kind": spec.kind,
            "target": spec.target,
            "name": spec.name,
            "config": dict(spec.config),
            "deps": dict(spec.deps or {}),
            "facts": dict(spec.facts or {}),
            "incarnation": incarnation,
        }
        try:
            child.channel.send(encode(build), deadline)
            reply = decode(child.channel.recv(deadline))
        except BaseException as exc:
            raise _start_failure(child, spec, options, exc) from None
        if not (isinstance(reply, Mapping) and reply.get("ok")):
            child.stop(options.stop_grace_s)
            raise _rebuild_error(reply, spec.name)
        info = reply.get("info")
        info = {
            **(info if isinstance(info, Mapping) else {}),
            "containment": child.containment.kind,
        }
        return cls(child, spec, info)

    def call(
        self, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], deadline: float
    ) -> Any:
        """Run ``method`` in the child and return its value, or raise the plugin's error.

        Raises:
            ValidationError: the arguments cannot cross the boundary or are too large.
            ChildGone, ChildDied, CallTimedOut, QueueTimedOut: see their docstrings.
            FlowStoneError: what the plugin raised.
        """
        request = encode({"method": method, "args": list(args), "kwargs": dict(kwargs)})
        if len(request) > self.child.channel.max_frame:
            raise ValidationError(
                f"The arguments of {method}() are {len(request)} bytes, over the plugin channel's "
                f"cap of {self.child.channel.max_frame}; pass less data per call or raise "
                f"max_frame."
            )
        frame = self._exchange(request, deadline)
        try:
            reply = decode(frame, deadline)
            ok = reply["ok"]
        except Exception as exc:
            self.dead = True
            raise ChildDied(f"sent an unreadable reply ({exc})") from None
        if ok:
            return reply.get("value")
        raise _rebuild_error(reply, self.spec.name)

    def _exchange(self, request: bytes, deadline: float) -> bytes | bytearray:
        lock = self._lock  # free, as a rule: take it without the timed wait's clock reads
        if not lock.acquire(False) and not lock.acquire(
            timeout=max(0.0, deadline - time.monotonic())
        ):
            raise QueueTimedOut()
        try:
            if self.dead:
                raise ChildGone()
            self.child.channel.send(request, deadline)
            return self.child.channel.recv(deadline)
        except ChannelTimeout:
            self.dead = True
            raise CallTimedOut() from None
        except ChannelError as exc:  # closed, or a frame over the cap
            self.dead = True
            raise ChildDied(str(exc)) from None
        finally:
            self._lock.release()

    def describe_death(self) -> str:
        """Reap the dead child (waiting a moment for it to finish exiting) and say how it ended."""
        self.child.wait_exit(1.0)
        self.child.kill()
        return self.child.exit_description()

    def stop(self, grace_s: float) -> None:
        """Stop the child: close its channel (it exits on its own), then SIGTERM, SIGKILL."""
        self.dead = True
        self.child.channel.close()
        self.child.wait_exit(min(grace_s, 1.0))
        self.child.stop(grace_s)


def _rebuild_error(reply: Any, name: str) -> FlowStoneError:
    try:
        error = FlowStoneError.from_dict(reply["error"])
    except Exception:
        return InternalError(f"Isolated plugin {name!r} sent a malformed error: {reply!r:.200}")
    error.context.setdefault("plugin", name)
    return error


def _start_failure(
    child: ChildProcess, spec: PluginSpec, options: IsolationOptions, exc: BaseException
) -> BaseException:
    label = f"Isolated plugin {spec.name!r} ({describe_target(spec.target)})"
    if isinstance(exc, ChannelTimeout):
        child.kill()
        what = f"did not load within {options.start_timeout_s:g} s; killed"
    elif isinstance(exc, ChannelClosed):
        child.wait_exit(1.0)
        child.kill()
        what = f"{child.exit_description()} while loading"
    elif isinstance(exc, ChannelError | ValueError):
        child.kill()
        what = f"broke the protocol while loading ({exc})"
    else:
        child.kill()
        return exc
    tail = child.output.tail()[-5:]
    return PluginLoadError(
        f"{label} {what}." + (f" Last output: {' | '.join(tail)}" if tail else ""),
        plugin=spec.name,
        details={"output_tail": tail},
    )
