"""Proxies: an instance of a contract's ABC whose methods run in an isolated child.

One class per contract is generated from the ABC itself: every public method (see
:func:`~.methods.remote_methods`) becomes a forwarder with the ABC method's name,
signature and docstring, so a proxy passes ``isinstance`` checks and ``inspect`` shows
the contract. Callers cannot tell a proxy from the plugin except by latency; the one
visible extra is :attr:`isolation`, the supervisor, for status pages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from ...contracts.plugin import Plugin
from ...contracts.types import Health
from ...errors import FlowStoneError
from .methods import remote_methods
from .supervisor import Supervisor

__all__ = ["plugin_proxy_class", "proxy_class"]


def _init(self: Any, supervisor: Supervisor, config: Mapping[str, Any]) -> None:
    self.config = dict(config)
    self.isolation = supervisor


def _repr(self: Any) -> str:
    supervisor: Supervisor = self.isolation
    return (
        f"<isolated {type(self).__bases__[0].__name__} {supervisor.spec.name!r} "
        f"{supervisor.state} pid={supervisor.pid}>"
    )


def _forwarder(name: str, template: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(template, updated=())  # not __dict__: it holds __isabstractmethod__
    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self.isolation.call(name, args, kwargs)

    return forward


def _health_forwarder(template: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(template, updated=())
    def health_check(self: Any, *args: Any, **kwargs: Any) -> Health | None:
        supervisor: Supervisor = self.isolation
        down = supervisor.health()
        if down is not None:
            return down
        try:
            result: Health | None = supervisor.call("health_check", args, kwargs)
        except FlowStoneError as exc:  # health_check never raises
            return Health.unhealthy(str(exc), code=exc.code)
        return result

    return health_check


def _close_forwarder(template: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(template, updated=())
    def close(self: Any) -> None:
        self.isolation.close()

    return close


_SPECIAL = {"health_check": _health_forwarder, "close": _close_forwarder}


@functools.cache
def proxy_class(abc: type[Plugin]) -> type[Plugin]:
    """Return the proxy class for contract ``abc``: a concrete subclass of it.

    Build instances as ``cls(supervisor, config)``.
    """
    namespace: dict[str, Any] = {
        "__init__": _init,
        "__repr__": _repr,
        "__module__": __name__,
        "__doc__": f"{abc.__name__} running in an isolated child process.",
    }
    for name in remote_methods(abc):
        template = getattr(abc, name)
        make = _SPECIAL.get(name)
        namespace[name] = make(template) if make else _forwarder(name, template)
    return type(f"Isolated{abc.__name__}", (abc,), namespace)


def plugin_proxy_class(abc: type[Plugin], info: Mapping[str, Any]) -> type[Plugin]:
    """Return a subclass of :func:`proxy_class` carrying the plugin's declared attributes.

    ``contract_version``, ``plugin_version`` and ``config_schema`` (when it is plain
    data) are what the child read from the plugin class, so ``type(proxy)`` reads like it;
    ``containment`` is what holds the child (``cgroup`` or ``process_group``).
    """
    base = proxy_class(abc)
    keys = ("contract_version", "plugin_version", "config_schema", "containment")
    declared = {k: info.get(k) for k in keys}
    return type(base.__name__, (base,), {"__module__": __name__, **declared})
