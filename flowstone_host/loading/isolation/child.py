"""What every child entry function does first, before any plugin code is imported.

Kept apart from :mod:`.process` so a child imports only this, not the host's process
machinery (subprocess, threads, temp folders).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from ..limits import Limits
from .channel import Channel

__all__ = ["child_channel"]


def child_channel(fd: int, init: Mapping[str, Any]) -> Channel:
    """Apply the limits of the start frame and return the channel to the host.

    The channel blocks: the child waits for the host's calls without deadlines, and the
    host's lifeline ends it if the host goes.
    """
    Limits.from_wire(init["limits"]).apply()
    sock = socket.socket(fileno=fd)
    return Channel(sock, max_frame=int(init["max_frame"]), blocking=True)
