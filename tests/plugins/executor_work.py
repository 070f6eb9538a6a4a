"""Module-level work for the process-pool executor tests (picklable by reference)."""

from __future__ import annotations

import os
import time

from flowstone_host import NotFound


def pid() -> int:
    return os.getpid()


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def missing(key: str) -> None:
    raise NotFound(f"no {key}", details={"key": key})
