"""Item functions of the redrive, retune and items_per_call tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

#: Whether the failing item function is fixed yet.
FIXED = {"on": False}
#: Keys of the items that completed (returned a result), in order.
COMPLETED: list[str] = []
#: Items running now, the most seen, and (completed count, running) samples.
LIVE = {"running": 0, "done": 0}
SAMPLES: list[tuple[int, int]] = []
_LOCK = threading.Lock()


def reset() -> None:
    FIXED["on"] = False
    COMPLETED.clear()
    SAMPLES.clear()
    LIVE.update(running=0, done=0)


def fail_3pct_until_fixed(ctx: Any, item: Mapping[str, int]) -> int:
    """Items whose number is a multiple of 33 fail (31 of 1,000: 3.1%) until fixed."""
    if item["n"] % 33 == 0 and not FIXED["on"]:
        raise ValueError(f"bad item {item['n']}")
    with _LOCK:
        COMPLETED.append(ctx.key)
    return item["n"]


def tracked(ctx: Any, item: Mapping[str, int]) -> int:
    """A 5 ms item that samples how many items run at once."""
    with _LOCK:
        LIVE["running"] += 1
        SAMPLES.append((LIVE["done"], LIVE["running"]))
    time.sleep(0.005)
    with _LOCK:
        LIVE["running"] -= 1
        LIVE["done"] += 1
    return item["n"]


def doubles(ctx: Any, items: Sequence[Mapping[str, int]]) -> list[int]:
    assert ctx.key is None
    with _LOCK:
        SAMPLES.append((len(items), 0))
    return [item["n"] * 2 for item in items]


def doubles_failing_on_7(ctx: Any, items: Sequence[Mapping[str, int]]) -> list[int]:
    if any(item["n"] % 7 == 0 for item in items):
        raise ValueError("a multiple of 7 in this call")
    return [item["n"] * 2 for item in items]


def one_short(ctx: Any, items: Sequence[Mapping[str, int]]) -> Any:
    if items[0]["n"] == 0:
        return [0] * (len(items) - 1)
    if items[0]["n"] == len(items):
        return "not a list"
    return [item["n"] * 2 for item in items]


def reads_s(ctx: Any, s: Mapping[str, int]) -> int:
    return s["count"] + s["sum"] + 1
