"""Out-of-process plugins: a supervised child per plugin, a proxy in the host.

Python cannot sandbox code inside one interpreter, so the boundary is a process::

    manager = spawn_plugin("IOManager", "vendor.io:Manager", {"bucket": "b"},
                           name="warehouse", options=IsolationOptions(timeout_s=5))
    manager.store("orders", rows, "2024-01-01")   # runs in the child
    manager.close()                                # plugin close(), then the child stops

Modules, bottom up: :mod:`.channel` (frames), :mod:`.codec` (values), :mod:`.process`
(the child process), :mod:`.child` and :mod:`.server` (the child's side), :mod:`.remote`
(one child as the host sees it), :mod:`.restart` and :mod:`.supervisor` (deaths,
restarts, circuit breaker), :mod:`.proxy` (the contract-shaped front), :mod:`.spawn`.

The names below are imported on first use: a child process imports modules of this
package too, and must not pay for the host's supervision machinery at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .codec import RemoteHandle
    from .options import IsolationOptions
    from .restart import RestartPolicy
    from .spawn import spawn_plugin
    from .supervisor import Supervisor

__all__ = ["IsolationOptions", "RemoteHandle", "RestartPolicy", "Supervisor", "spawn_plugin"]

_HOMES = {
    "IsolationOptions": "options",
    "RemoteHandle": "codec",
    "RestartPolicy": "restart",
    "Supervisor": "supervisor",
    "spawn_plugin": "spawn",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
