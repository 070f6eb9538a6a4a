"""Helpers of the sandbox tests: the hostile distribution's marker, process checks."""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable

import pytest

HOSTILE = "flowstone_hostile"


def _hostile_installed() -> bool:
    try:
        importlib.metadata.distribution("flowstone-hostile")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


requires_hostile = pytest.mark.skipif(
    not _hostile_installed(),
    reason="tests/fixtures/dists/flowstone-hostile is not installed (make install does it)",
)


def pid_alive(pid: int) -> bool:
    """Return whether ``pid`` runs (a zombie waiting for a reaper counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; return its last value."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        time.sleep(0.01)
    return True
