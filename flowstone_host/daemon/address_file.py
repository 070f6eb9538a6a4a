"""The daemon's address file: how ``status`` and ``reload`` find a running daemon.

``flowstone-host run`` writes ``<state_dir>/daemon.json`` (its admin URL and pid) once the
admin API listens, and removes it when it stops, so a daemon started with
``--admin-listen 127.0.0.1:0`` is found without reading its log. A daemon killed with
SIGKILL leaves the file behind: its pid no longer runs, and readers report it as stale.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..processes import pid_alive

__all__ = ["FILE_NAME", "DaemonAddress", "read_address", "remove_address", "write_address"]

FILE_NAME = "daemon.json"


@dataclass(frozen=True, slots=True)
class DaemonAddress:
    """What a daemon wrote about itself.

    Attributes:
        url: Its admin API's base URL.
        pid: Its process id.
        path: The file it was read from.
    """

    url: str
    pid: int
    path: Path

    @property
    def alive(self) -> bool:
        """Whether a process with that pid still runs (not: whether it is that daemon)."""
        return pid_alive(self.pid)


def write_address(state_dir: Path, url: str, pid: int | None = None) -> Path:
    """Write ``state_dir/daemon.json`` atomically and return its path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / FILE_NAME
    data = json.dumps({"url": url, "pid": os.getpid() if pid is None else pid})
    fd, temporary = tempfile.mkstemp(dir=state_dir, prefix=".daemon.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(data + "\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def remove_address(path: Path, pid: int | None = None) -> None:
    """Remove the address file if it is still this process's (another daemon may have
    started on the same state folder since)."""
    found = _read(path)
    if found is not None and found.pid == (os.getpid() if pid is None else pid):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read_address(state_dir: Path) -> DaemonAddress | None:
    """Return what ``state_dir/daemon.json`` says, or ``None`` if there is no such file or
    it cannot be read."""
    return _read(state_dir / FILE_NAME)


def _read(path: Path) -> DaemonAddress | None:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    url, pid = data.get("url"), data.get("pid")
    if not isinstance(url, str) or not isinstance(pid, int) or isinstance(pid, bool):
        return None
    return DaemonAddress(url, pid, path)
