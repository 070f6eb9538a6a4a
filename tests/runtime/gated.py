"""Scatter items that wait, for tests that act on a run while it runs (cancel, reload)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

#: Items of ``wait_item`` wait for this; tests set it to let them finish.
GATE = threading.Event()
#: Set once the first item started.
STARTED = threading.Event()


def wait_item(ctx: Any, item: Mapping[str, int]) -> int:
    STARTED.set()
    if not GATE.wait(10):
        raise TimeoutError("the test never opened the gate")
    return item["n"]


def slow_item(ctx: Any, item: Mapping[str, int]) -> int:
    STARTED.set()
    time.sleep(0.005)
    return item["n"]
