"""SQLite scatter ``record_outcomes`` against the raw SQL it needs, batched the same way.

Floor: a bare ``INSERT ... ON CONFLICT DO NOTHING`` plus a counter ``UPDATE`` per item, one
``BEGIN IMMEDIATE`` transaction per batch of 100, on a file with the same pragmas (WAL,
``synchronous=NORMAL``, busy timeout). Measured: ``SqliteScatterCoordinator.record_outcomes``
in batches of 100 (JSON encoding, key checks and threshold settling included). Both report
microseconds per item; target within 2x.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bench._common import Result, print_results
from flowstone_host.plugins.sqlite import SqliteScatterCoordinator

ITEMS = 20_000
BATCH = 100
REPEATS = 5


def _floor_us_per_item(path: Path) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE outcomes (barrier_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT, "
        "PRIMARY KEY (barrier_id, key)) WITHOUT ROWID"
    )
    conn.execute("CREATE TABLE barriers (barrier_id TEXT PRIMARY KEY, completed INTEGER)")
    conn.execute("INSERT INTO barriers VALUES ('b', 0)")
    keys = [f"k{i}" for i in range(ITEMS)]
    start = time.perf_counter()
    for first in range(0, ITEMS, BATCH):
        conn.execute("BEGIN IMMEDIATE")
        for key in keys[first : first + BATCH]:
            conn.execute("INSERT INTO outcomes VALUES ('b', ?, '1') ON CONFLICT DO NOTHING", (key,))
            conn.execute("UPDATE barriers SET completed = completed + 1 WHERE barrier_id = 'b'")
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / ITEMS * 1e6


def _measured_us_per_item(path: Path) -> float:
    coordinator = SqliteScatterCoordinator({"path": str(path)})
    barrier_id = coordinator.create_barrier("run", "asset", None)
    keys = [f"k{i}" for i in range(ITEMS)]
    coordinator.insert_keys(barrier_id, keys)
    batches = [dict.fromkeys(keys[i : i + BATCH], 1) for i in range(0, ITEMS, BATCH)]
    record = coordinator.record_outcomes
    start = time.perf_counter()
    for batch in batches:
        record(barrier_id, batch)
    elapsed = time.perf_counter() - start
    status = coordinator.status(barrier_id)
    assert (status.status, status.completed) == ("complete", ITEMS), status
    coordinator.close()
    return elapsed / ITEMS * 1e6


def _record_outcomes_vs_raw_sql() -> Result:
    floors, measured = [], []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(REPEATS):
            floors.append(_floor_us_per_item(Path(folder) / f"floor{i}.sqlite"))
            measured.append(_measured_us_per_item(Path(folder) / f"measured{i}.sqlite"))
    return Result(
        f"sqlite record_outcomes, batches of {BATCH} (us/item)",
        statistics.median(measured),
        statistics.median(floors),
        "us",
        2.0,
    )


def main() -> bool:
    return print_results("sqlite coordinators", [_record_outcomes_vs_raw_sql()])


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
