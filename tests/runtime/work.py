"""Asset callables of the runtime tests (named as ``tests.runtime.work:...``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

CALLS: list[str] = []


def numbers(config: Mapping[str, Any], deps: Mapping[str, Any]) -> Iterator[dict[str, int]]:
    total = int(os.environ.get("FS_TEST_ITEMS", config.get("count") or 10_000))
    return ({"n": n} for n in range(total))


def double(ctx: Any, item: Mapping[str, int]) -> int:
    return item["n"] * 2


def fail_2pct(ctx: Any, item: Mapping[str, int]) -> int:
    if item["n"] % 50 == 0:
        raise ValueError(f"bad item {item['n']}")
    CALLS.append(ctx.key)
    return item["n"]


def fail_10pct(ctx: Any, item: Mapping[str, int]) -> int:
    CALLS.append(ctx.key)
    if item["n"] % 10 == 0:
        raise ValueError(f"bad item {item['n']}")
    return item["n"]


def logged(ctx: Any, item: Mapping[str, int]) -> int:
    """Append the item's key to $FS_TEST_LOG once its work is done (a slow item)."""
    time.sleep(float(os.environ.get("FS_TEST_SLEEP", "0.002")))
    with open(os.environ["FS_TEST_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{ctx.key}\n")
    return item["n"]


def count_results(ctx: Any, results: Mapping[str, Any]) -> dict[str, Any]:
    return {"count": len(results), "sum": sum(results.values())}


def source(ctx: Any) -> int:
    CALLS.append(f"source:{ctx.partition}")
    return 1 if ctx.partition is None else len(str(ctx.partition))


def plus_one(ctx: Any, source: Any) -> Any:
    CALLS.append("plus_one")
    return (sum(source.values()) if isinstance(source, dict) else source) + 1


def times_ten(ctx: Any, plus_one: int) -> int:
    CALLS.append("times_ten")
    return plus_one * 10


def branch_ok(ctx: Any, **inputs: Any) -> str:
    return f"{ctx.branch}:ok"


def branch_fails(ctx: Any, **inputs: Any) -> str:
    raise RuntimeError(f"{ctx.branch} broke")


def join_all(ctx: Any, results: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.code if hasattr(v, "code") else v) for k, v in sorted(results.items())}


JOIN_FAILS = {"on": True}


def join_flaky(ctx: Any, results: Mapping[str, Any]) -> str:
    if JOIN_FAILS["on"]:
        raise RuntimeError("join broke")
    return "joined"


def router(ctx: Any, source: Any) -> str:
    CALLS.append("router")
    return "big"


def big(ctx: Any, source: Any) -> str:
    return "big route"


def small(ctx: Any, source: Any) -> str:
    return "small route"
