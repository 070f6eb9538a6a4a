"""Out-of-process plugins: a supervised child per plugin, a proxy in the host.

Python cannot sandbox code inside one interpreter, so the boundary is a process::

    manager = spawn_plugin("IOManager", "vendor.io:Manager", {"bucket": "b"},
                           name="warehouse", options=IsolationOptions(timeout_s=5))
    manager.store("orders", rows, "2024-01-01")   # runs in the child
    manager.close()                                # plugin close(), then the child stops

Modules, bottom up: :mod:`.channel` (frames), :mod:`.codec` (values), :mod:`.process`
(the child process), :mod:`.server` (the child's side), :mod:`.remote` (one child as the
host sees it), :mod:`.restart` and :mod:`.supervisor` (deaths, restarts, circuit
breaker), :mod:`.proxy` (the contract-shaped front), :mod:`.spawn` (the entry point).
"""

from .codec import RemoteHandle
from .options import IsolationOptions
from .restart import RestartPolicy
from .spawn import spawn_plugin
from .supervisor import Supervisor

__all__ = ["IsolationOptions", "RemoteHandle", "RestartPolicy", "Supervisor", "spawn_plugin"]
