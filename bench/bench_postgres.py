"""The PostgreSQL plugins against raw psycopg on the same server, in the same run.

- ``table`` format: storing a 1,000,000-row, 5-column table vs a raw psycopg COPY of the
  same rows (``Copy.write_row``) into a plain table; the COPY of pre-encoded CSV bytes is
  shown too, as the absolute floor.
- ``arrow`` format: store + load of a 10 MB table vs a raw ``bytea`` upsert + select of
  the same 10 MB of IPC bytes.
- scatter: ``record_outcomes`` in batches of 1,000 vs a bare batched
  ``INSERT ... ON CONFLICT DO NOTHING`` of the same outcomes.

The server is ``FLOWSTONE_TEST_PG_DSN`` when set, else a throwaway cluster
(tests/postgres_server.py).
"""

from __future__ import annotations

import io
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from bench._common import Result, print_results

ROWS = 1_000_000
OUTCOMES = 100_000
BATCH = 1_000


def _median_s(fn: Callable[[], None], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _paired_medians(
    ours: Callable[[], None], floors: list[Callable[[], None]], repeats: int, *, warm: bool = False
) -> list[float]:
    """Median seconds of ``ours`` and of each floor, their runs interleaved.

    Round after round each runs once in turn, so a load spike on a shared machine lands on
    all of them alike instead of on whichever ran during it. ``warm``: one untimed round first.
    """
    runs = [ours, *floors]
    if warm:
        for fn in runs:
            fn()
    samples: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for fn, taken in zip(runs, samples, strict=True):
            start = time.perf_counter()
            fn()
            taken.append(time.perf_counter() - start)
    return [statistics.median(taken) for taken in samples]


def _rows_table() -> pa.Table:
    ids = pa.array(range(ROWS), pa.int64())
    return pa.table(
        {
            "id": ids,
            "qty": pa.array([i % 97 for i in range(ROWS)], pa.int64()),
            "price": pa.array([i * 0.25 for i in range(ROWS)], pa.float64()),
            "name": pa.array([f"item-{i % 5000}" for i in range(ROWS)], pa.string()),
            "flag": pa.array([i % 3 == 0 for i in range(ROWS)], pa.bool_()),
        }
    )


def _table_format(dsn: str, pool: Any) -> list[Result]:
    from flowstone_host.plugins.postgres.io_manager import PostgresIOManager

    manager = PostgresIOManager(
        {"resource": "pg", "schema": "bench", "format": "table"}, resources={"pg": pool}
    )
    table = _rows_table()
    tuples = list(zip(*(col.to_pylist() for col in table.columns), strict=True))
    csv = io.BytesIO()
    pa_csv.write_csv(table, csv, pa_csv.WriteOptions(include_header=False))
    ddl = "(id bigint, qty bigint, price double precision, name text, flag boolean)"

    def raw(write: Callable[[Any], None], options: str) -> Callable[[], None]:
        def run() -> None:
            name = f"raw_{uuid.uuid4().hex[:8]}"
            with pool.connection() as conn, conn.transaction():
                conn.execute(f"CREATE TABLE bench.{name} {ddl}")
                with conn.cursor().copy(f"COPY bench.{name} FROM STDIN {options}") as copy:
                    write(copy)

        return run

    def rows(copy: Any) -> None:
        for row in tuples:
            copy.write_row(row)

    measured, floor_rows, floor_csv = _paired_medians(
        lambda: manager.store(f"t_{uuid.uuid4().hex[:8]}", table, "p"),
        [raw(rows, ""), raw(lambda copy: copy.write(csv.getbuffer()), "(FORMAT csv)")],
        3,
    )
    manager.close()
    return [
        Result("table store 1M x 5 vs psycopg COPY write_row", measured, floor_rows, "s", 1.3),
        Result("table store 1M x 5 vs COPY of ready CSV bytes", measured, floor_csv, "s", 1.6),
    ]


def _arrow_format(pool: Any) -> Result:
    from flowstone_host.plugins.postgres.io_manager import PostgresIOManager

    manager = PostgresIOManager(
        {"resource": "pg", "schema": "bench", "format": "arrow"}, resources={"pg": pool}
    )
    table = pa.table({"v": pa.array([i * 0.5 for i in range(1_310_720)], pa.float64())})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    payload = sink.getvalue().to_pybytes()
    with pool.connection() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench.raw_bytes (k text PRIMARY KEY, v bytea)")

    def raw() -> None:
        with pool.connection() as conn:
            conn.execute(
                "INSERT INTO bench.raw_bytes VALUES ('k', %b) "
                "ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                [payload],
            )
            with conn.cursor(binary=True) as cursor:
                cursor.execute("SELECT v FROM bench.raw_bytes WHERE k = 'k'").fetchone()

    def ours() -> None:
        manager.store("arrow10mb", table, "p")
        manager.load("arrow10mb", "p")

    measured, floor = _paired_medians(ours, [raw], 7, warm=True)
    result = Result("arrow store+load 10 MB vs bytea upsert+select", measured, floor, "s", 1.3)
    manager.close()
    return result


def _scatter(pool: Any) -> Result:
    from flowstone_host.plugins.postgres.scatter import PostgresScatterCoordinator

    coordinator = PostgresScatterCoordinator(
        {"resource": "pg", "schema": "bench"}, resources={"pg": pool}
    )
    keys = [f"k{i:07d}" for i in range(OUTCOMES)]
    barrier = coordinator.create_barrier("bench", "scatter", None)
    coordinator.insert_keys(barrier, keys)
    with pool.connection() as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench.raw_outcomes "
            "(barrier_id text, key text, result jsonb, PRIMARY KEY (barrier_id, key))"
        )

    def ours() -> None:
        for start in range(0, OUTCOMES, BATCH):
            coordinator.record_outcomes(
                barrier, {k: {"ok": k} for k in keys[start : start + BATCH]}
            )

    def raw() -> None:
        run = uuid.uuid4().hex
        for start in range(0, OUTCOMES, BATCH):
            import json

            rows = [(run, k, json.dumps({"ok": k})) for k in keys[start : start + BATCH]]
            with pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO bench.raw_outcomes VALUES (%s, %s, %s::jsonb) "
                    "ON CONFLICT DO NOTHING",
                    rows,
                )

    measured = _median_s(ours, 1) / OUTCOMES * 1e6
    floor = _median_s(raw, 1) / OUTCOMES * 1e6
    coordinator.close()
    return Result(
        "scatter record_outcomes (batches of 1000) vs INSERT ON CONFLICT",
        measured,
        floor,
        "us",
        2.0,
    )


def main() -> bool:
    """Start (or reach) a server, run the three comparisons, print them; True if all met."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from postgres_server import postgres_server

    from flowstone_host.plugins.postgres.resource import PostgresResource

    with postgres_server() as dsn:
        resource = PostgresResource({"dsn": dsn, "max_size": 4})
        pool = resource.setup(resource.config)
        try:
            with pool.connection() as conn:
                conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
            results = [*_table_format(dsn, pool), _arrow_format(pool), _scatter(pool)]
        finally:
            resource.teardown(pool)
    return print_results("postgres plugins vs raw psycopg", results)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
