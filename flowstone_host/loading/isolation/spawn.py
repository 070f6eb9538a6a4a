"""``spawn_plugin``: the front door of process isolation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...contracts.plugin import Plugin
from ...contracts.versions import contract_for
from ...errors import NotSupported
from ...kinds import kind_info
from .options import IsolationOptions
from .proxy import plugin_proxy_class
from .remote import PluginSpec
from .supervisor import Supervisor
from .target import Target, describe_target

__all__ = ["spawn_plugin"]

#: Contracts whose methods take or return host callables or futures, which cannot cross.
_NOT_ISOLABLE = {"Executor": "its submit() runs host callables and returns futures"}


def spawn_plugin(
    kind: str,
    target: Target,
    config: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    deps: Mapping[str, Any] | None = None,
    options: IsolationOptions | None = None,
    facts: Mapping[str, Any] | None = None,
) -> Plugin:
    """Start a plugin in a supervised child process and return a proxy for it.

    The proxy is an instance of the contract's ABC (``isinstance(proxy, IOManager)``);
    its methods run in the child, within ``options.timeout_s`` each. The child is
    restarted after a crash or timeout with exponential backoff, and circuit-broken after
    ``options.restart.max_crashes`` deaths in ``options.restart.window_s``. Call the
    proxy's ``close()`` to call the plugin's ``close()`` and stop the child.

    Item readers: call this once per reader instance, with ``deps``. A reader's child is
    not restarted (the read position lives in it); after a crash, build a new reader and
    ``restore()`` your last checkpoint. Resources: ``setup`` returns a
    :class:`~.codec.RemoteHandle`; the real handle stays in the child.

    Args:
        kind: The manifest kind, e.g. ``"IOManager"``.
        target: The entry point's ``"module:attr"`` value, or ``(namespace, name)``.
        config: The plugin's merged config (plain data).
        name: The declaration's name, for logs and errors (default: the target).
        deps: Dependency values for an item reader's constructor.
        options: Environment, limits, timeouts and restart policy.
        facts: Host facts for the constructor, as plain data (``state_dir``, and the
            ``callables`` allow patterns).

    Returns:
        The proxy.

    Raises:
        NotSupported: the contract cannot run out of process (``Executor``).
        PluginLoadError: importing, checking or building the plugin failed in the child;
            ``IncompatibleContract`` for a contract version this host cannot run.
        KeyError: ``kind`` is not a contract.
    """
    contract = contract_for(kind)
    if contract.kind in _NOT_ISOLABLE:
        raise NotSupported(
            f"{contract.kind} plugins cannot run out of process: {_NOT_ISOLABLE[contract.kind]}. "
            f"Declare isolation: inprocess."
        )
    spec = PluginSpec(
        contract.kind, target, name or describe_target(target), dict(config or {}), deps, facts
    )
    per_run = kind_info(contract.kind).per_run  # a reader's position lives in its child
    supervisor = Supervisor(spec, options or IsolationOptions(), restart=not per_run)
    info = supervisor.start()
    cls: Any = plugin_proxy_class(contract.abc, info)
    proxy: Plugin = cls(supervisor, spec.config)
    return proxy
