"""What the child processes of test_sqlite_processes.py run (importable by spawned children).

Each function opens its own coordinator on the shared file, waits until ``start_at`` (so
the processes really race), does its part and returns plain data for the parent to check.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from flowstone_host.errors import Conflict
from flowstone_host.plugins.sqlite import (
    SqliteParallelCoordinator,
    SqliteRoutingCoordinator,
    SqliteScatterCoordinator,
)

CONFIG_TIMEOUT_MS = 60_000


def fails(key: str) -> bool:
    """Whether ``key`` (``k<i>``) is one that fails: every fifth."""
    return int(key[1:]) % 5 == 0


def _wait(start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))


def _batches(keys: list[str], seed: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every key reported 1-3 times, shuffled, in batches of 1-20."""
    rng = random.Random(seed)
    reports = [key for key in keys for _ in range(rng.randint(1, 3))]
    rng.shuffle(reports)
    batches, start = [], 0
    while start < len(reports):
        size = rng.randint(1, 20)
        completed: dict[str, Any] = {}
        failed: dict[str, Any] = {}
        for key in reports[start : start + size]:
            if fails(key):
                failed[key] = {"error": key, "pid": os.getpid()}
            else:
                completed[key] = {"key": key, "pid": os.getpid()}
        batches.append((completed, failed))
        start += size
    return batches


def report_outcomes(
    path: str, barrier_id: str, keys: list[str], seed: int, start_at: float
) -> tuple[int, int, list[str]]:
    """Report every key 1-3 times; return (counted, transitions, states returned)."""
    coordinator = SqliteScatterCoordinator({"path": path, "busy_timeout_ms": CONFIG_TIMEOUT_MS})
    batches = _batches(keys, seed)
    counted = transitions = 0
    states = []
    _wait(start_at)
    for completed, failed in batches:
        recorded = coordinator.record_outcomes(barrier_id, completed, failed)
        counted += recorded.counted
        transitions += recorded.transitioned
        states.append(recorded.state)
    coordinator.close()
    return counted, transitions, states


def _join(marker: str, results: Any) -> dict[str, Any]:
    with open(marker, "a") as file:  # one line per run of the join, whoever runs it
        file.write(f"{os.getpid()}\n")
    time.sleep(0.3)  # long enough for the other process to find the join claimed
    return {"branches": dict(results)}


def race_parallel(path: str, execution_id: str, marker: str, start_at: float) -> Any:
    """Finish every branch (first writer wins), then join; return the join's result."""
    coordinator = SqliteParallelCoordinator({"path": path, "busy_timeout_ms": CONFIG_TIMEOUT_MS})
    _wait(start_at)
    coordinator.complete_branch(execution_id, "a", {"pid": os.getpid()})
    coordinator.fail_branch(execution_id, "c", {"pid": os.getpid()})
    coordinator.complete_branch(execution_id, "b", {"pid": os.getpid()})
    result = coordinator.execute_join(execution_id, lambda results: _join(marker, results))
    coordinator.close()
    return result


def race_routing(
    path: str, run_id: str, partitions: list[str], branch: str, start_at: float
) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """Record ``branch`` for every partition; return (decision id or None, what get says)."""
    coordinator = SqliteRoutingCoordinator({"path": path, "busy_timeout_ms": CONFIG_TIMEOUT_MS})
    _wait(start_at)
    won: dict[str, str | None] = {}
    for partition in partitions:
        try:
            won[partition] = coordinator.record(run_id, "router", partition, branch)
        except Conflict:
            won[partition] = None
    seen = {p: coordinator.get(run_id, "router", p) for p in partitions}
    coordinator.close()
    return won, seen


def warm_up(_: int) -> int:
    """Return this process's id (its imports are done by then)."""
    return os.getpid()
