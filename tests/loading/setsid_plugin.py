"""An IO manager for the containment tests, run isolated by its ``module:attr`` target.

``load("escapee", None)`` starts a grandchild that calls ``setsid()`` (leaving the plugin's
session and process group), ignores SIGTERM and sleeps; it returns the grandchild's pid.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from flowstone_host.plugins.memory_io import MemoryIOManager

_ESCAPEE = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


class SetsidIOManager(MemoryIOManager):
    def load(self, asset: str, partition: Any, **opts: Any) -> Any:
        if asset == "escapee":
            child = subprocess.Popen([sys.executable, "-c", _ESCAPEE], start_new_session=True)
            return child.pid
        return super().load(asset, partition, **opts)
