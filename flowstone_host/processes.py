"""Whether a process id still names a running process on this machine."""

from __future__ import annotations

import os

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """Return whether a process with ``pid`` exists (another user's counts: it exists).

    Says nothing of what the process is: a pid may have been reused.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
