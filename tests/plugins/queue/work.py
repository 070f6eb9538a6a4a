"""Callables of the queue tests' assets, imported by the host and by worker processes.

Side effects go to files under ``$FLOWSTONE_TEST_TRACE`` (a folder the test makes): one
line per call, so a test can tell which process ran what, and how often.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def _trace(name: str, line: str) -> None:
    folder = os.environ.get("FLOWSTONE_TEST_TRACE")
    if folder:
        with open(Path(folder) / f"{name}-{os.getpid()}.txt", "a") as file:
            file.write(line + "\n")


def ten_thousand(config: Mapping[str, Any], deps: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    return ({"scatter_key": f"n{i:05d}", "n": i} for i in range(10_000))


def two_hundred(config: Mapping[str, Any], deps: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    return ({"scatter_key": f"n{i:05d}", "n": i} for i in range(200))


def twelve(config: Mapping[str, Any], deps: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    return ({"scatter_key": f"n{i:05d}", "n": i} for i in range(12))


def square(ctx: Any, item: Mapping[str, Any]) -> dict[str, int]:
    """A little work per item (a millisecond), traced."""
    _trace("calls", ctx.key)
    time.sleep(0.001)
    return {"square": item["n"] ** 2, "pid": os.getpid()}


def square_or_fail(ctx: Any, item: Mapping[str, Any]) -> dict[str, int]:
    """Fails for every multiple of 50 (4 of 200 items): each time it is called."""
    if item["n"] % 50 == 0:
        raise ValueError(f"item {item['n']} is bad")
    return {"square": item["n"] ** 2, "pid": os.getpid()}


def square_or_crash(ctx: Any, item: Mapping[str, Any]) -> dict[str, int]:
    """Kills the worker process running item 5, every time it is tried."""
    _trace("calls", ctx.key)
    if item["n"] == 5:
        os._exit(3)
    return {"square": item["n"] ** 2, "pid": os.getpid()}


def gather(ctx: Any, results: Mapping[str, Any]) -> dict[str, Any]:
    return dict(results)


def base(ctx: Any) -> int:
    return 7


def branch(ctx: Any, base: int) -> dict[str, int]:
    """A branch that takes a while, so that each worker holds one."""
    time.sleep(0.5)
    return {"value": base * len(ctx.branch), "pid": os.getpid()}


def join(ctx: Any, results: Mapping[str, Any]) -> dict[str, Any]:
    _trace("joins", ctx.asset)
    return dict(results)


def slow(ctx: Any, item: Mapping[str, Any]) -> dict[str, int]:
    """A quarter of a second per item, traced."""
    _trace("calls", ctx.key)
    time.sleep(0.25)
    return {"square": item["n"] ** 2, "pid": os.getpid()}


def square_or_exit(ctx: Any, item: Mapping[str, Any]) -> dict[str, int]:
    """Fails the whole job (not only its item) at item 5, every time: SystemExit is no
    item failure the runtime records, so the job fails and its attempts run out."""
    if item["n"] == 5:
        raise SystemExit(5)
    return {"square": item["n"] ** 2, "pid": os.getpid()}
