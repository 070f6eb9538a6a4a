"""Worker processes for the PostgreSQL integration tests: ``python pg_workers.py ROLE ARGS``.

``ARGS`` is the path of a JSON file holding the role's arguments.

Each role prints one JSON line with what it saw. They are separate programs (not threads)
so that the tests exercise what several host processes sharing one database would do.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from flowstone_host.errors import Conflict
from flowstone_host.plugins.postgres.reader import PostgresItemReader
from flowstone_host.plugins.postgres.routing import PostgresRoutingCoordinator
from flowstone_host.plugins.postgres.scatter import PostgresScatterCoordinator


def _wait_until(start_at: float) -> None:
    """Start together with the other workers: at an agreed wall-clock time."""
    time.sleep(max(0.0, start_at - time.time()))


def scatter(args: dict[str, Any]) -> dict[str, Any]:
    """Record this worker's outcomes in batches; report what the calls returned."""
    coordinator = PostgresScatterCoordinator({"dsn": args["dsn"], "max_size": 1})
    reports: list[list[Any]] = args["reports"]
    counted = transitions = 0
    _wait_until(args["start_at"])
    for start in range(0, len(reports), args["batch"]):
        completed: dict[str, Any] = {}
        failed: dict[str, Any] = {}
        for key, ok in reports[start : start + args["batch"]]:
            (completed if ok else failed)[key] = {"key": key} if ok else "boom"
        recorded = coordinator.record_outcomes(args["barrier_id"], completed, failed)
        counted += recorded.counted
        transitions += recorded.transitioned
    coordinator.close()
    return {"counted": counted, "transitions": transitions}


def routing(args: dict[str, Any]) -> dict[str, Any]:
    """Record this worker's branch for every partition; report who won each."""
    coordinator = PostgresRoutingCoordinator({"dsn": args["dsn"], "max_size": 1})
    outcomes: dict[str, Any] = {}
    _wait_until(args["start_at"])
    for partition in args["partitions"]:
        try:
            won: Any = coordinator.record(args["run_id"], "router", partition, args["branch"])
        except Conflict:
            won = None
        outcomes[partition] = [won, coordinator.get(args["run_id"], "router", partition)]
    coordinator.close()
    return outcomes


def reader(args: dict[str, Any]) -> dict[str, Any]:
    """Read batches, appending each batch with its checkpoint as one line; slow on purpose."""
    items = PostgresItemReader({"dsn": args["dsn"], "table": args["table"], "key": "id"})
    if args.get("checkpoint"):
        items.restore(args["checkpoint"])
    with open(args["out"], "a", encoding="utf-8") as out:
        while True:
            batch = items.read(args["batch"])
            ids = [row["id"] for row in batch.items]
            out.write(json.dumps({"ids": ids, "checkpoint": items.checkpoint()}) + "\n")
            out.flush()
            if batch.done:
                break
            time.sleep(args.get("pause_s", 0))
    items.close()
    return {"done": True}


ROLES = {"scatter": scatter, "routing": routing, "reader": reader}

if __name__ == "__main__":
    role, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as file:
        arguments = json.load(file)
    print(json.dumps(ROLES[role](arguments)), flush=True)
