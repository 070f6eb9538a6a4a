"""The child side of an isolated plugin: build it, then answer calls until the host goes.

The host sends one build message (kind, target, config, deps), then one request per call
(``{"method", "args", "kwargs"}``); every reply is ``{"ok": True, "value": ...}`` or
``{"ok": False, "error": FlowStoneError.to_dict()}``. Exceptions the plugin raises are
normalized here, so the host rebuilds them with their code and ``retryable`` flag. When
the host closes the channel, the child returns and exits.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from typing import Any

from ...callables import CallablePolicy
from ...contracts.plugin import Plugin
from ...contracts.versions import CONTRACTS, check_compatibility
from ...errors import FlowStoneError, PluginLoadError, Unavailable, ValidationError, normalize
from ..construct import HostFacts, build_plugin
from .channel import Channel, ChannelClosed, ProtocolViolation
from .child import child_channel
from .codec import RemoteHandle, decode, encode, plain_or_none
from .methods import remote_methods
from .target import describe_target, load_target

__all__ = ["serve"]


def serve(fd: int, init: Mapping[str, Any]) -> None:
    """The isolated child's entry: apply limits, build the plugin, serve its calls."""
    channel = child_channel(fd, init)
    build = decode(channel.recv())
    try:
        served, info = _build(build)
    except Exception as exc:
        channel.send(encode({"ok": False, "error": _load_error(exc, build).to_dict()}))
        return
    channel.send(encode({"ok": True, "info": info}))
    _answer_calls(channel, served, remote_methods(CONTRACTS[build["kind"]].abc))


def _build(build: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    contract = CONTRACTS[build["kind"]]
    label = describe_target(build["target"])
    cls = load_target(build["target"])
    if not (isinstance(cls, type) and issubclass(cls, contract.abc)):
        raise PluginLoadError(
            f"Plugin {label!r} is {cls!r}, not a subclass of {contract.abc.__name__}; it "
            f"cannot serve as a {contract.kind}. Register it in its contract's namespace.",
            plugin=label,
        )
    compatibility = check_compatibility(cls, contract, name=label)
    facts = build.get("facts") or {}
    host = HostFacts(facts.get("state_dir"), CallablePolicy(tuple(facts.get("callables") or ())))
    plugin: Plugin = build_plugin(cls, contract.kind, build["config"], host, build["deps"])
    served: Any = plugin
    if contract.kind == "Resource":
        served = _ResourceHandles(plugin, build["name"], build["incarnation"])
    info = {
        "pid": os.getpid(),
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "contract_version": compatibility.declared,
        "compatibility": compatibility.status,
        "plugin_version": getattr(cls, "plugin_version", None),
        "config_schema": plain_or_none(getattr(cls, "config_schema", None)),
    }
    return served, info


def _load_error(exc: Exception, build: Mapping[str, Any]) -> FlowStoneError:
    if isinstance(exc, FlowStoneError):
        return exc
    label = describe_target(build["target"])
    return PluginLoadError(
        f"Loading plugin {label!r} in its isolated process failed: {type(exc).__name__}: {exc}",
        plugin=label,
        details={"exception": type(exc).__qualname__},
    )


def _answer_calls(channel: Channel, served: Any, allowed: frozenset[str]) -> None:
    try:
        while True:
            request = decode(channel.recv())
            reply = _call(served, allowed, request)
            try:
                channel.send(reply)
            except ProtocolViolation as exc:
                channel.send(
                    _error(
                        ValidationError(
                            f"The reply to {request['method']}() is too large for the plugin "
                            f"channel "
                            f"({exc}); return less data per call or raise the frame cap."
                        )
                    )
                )
    except ChannelClosed:
        return  # the host closed the channel: stop serving


def _call(served: Any, allowed: frozenset[str], request: Mapping[str, Any]) -> bytes:
    method = request["method"]
    if method not in allowed:
        return _error(ValidationError(f"{method!r} is not a method of this plugin's contract"))
    try:
        value = getattr(served, method)(*request["args"], **request["kwargs"])
        return encode({"ok": True, "value": value})
    except Exception as exc:
        return _error(exc)


def _error(exc: BaseException) -> bytes:
    return encode({"ok": False, "error": normalize(exc).to_dict()})


class _ResourceHandles:
    """Keeps a Resource's handles in the child and gives the host opaque references.

    A handle (a client, a pool) cannot cross processes: ``setup`` returns a
    :class:`RemoteHandle`, and ``teardown``/``health_check`` turn it back into the handle.
    A reference from an earlier start of the child is refused: its handle died with it.
    """

    def __init__(self, plugin: Plugin, name: str, incarnation: int) -> None:
        self._plugin = plugin
        self._name = name
        self._incarnation = incarnation
        self._handles: dict[int, Any] = {}
        self._refs = itertools.count(1)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._plugin, name)

    def setup(self, config: Mapping[str, Any]) -> RemoteHandle:
        handle = self._plugin.setup(config)  # type: ignore[attr-defined]
        ref = next(self._refs)
        self._handles[ref] = handle
        return RemoteHandle(self._name, self._incarnation, ref, type(handle).__qualname__)

    def teardown(self, resource: RemoteHandle) -> None:
        self._plugin.teardown(self._resolve(resource))  # type: ignore[attr-defined]
        self._handles.pop(resource.ref, None)

    def health_check(self, resource: RemoteHandle | None = None) -> Any:
        handle = None if resource is None else self._resolve(resource)
        return self._plugin.health_check(handle)  # type: ignore[call-arg]

    def _resolve(self, resource: Any) -> Any:
        if not isinstance(resource, RemoteHandle) or resource.incarnation != self._incarnation:
            raise Unavailable(
                f"Resource handle {resource!r} belongs to an earlier start of isolated plugin "
                f"{self._name!r}, which was restarted; set the resource up again.",
                retryable=False,
            )
        try:
            return self._handles[resource.ref]
        except KeyError:
            raise Unavailable(
                f"Resource handle {resource!r} was already torn down.", retryable=False
            ) from None
