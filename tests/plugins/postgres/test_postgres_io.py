"""The postgres IO manager, resource and reader on a real server, beyond the kit."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from flowstone_host.errors import FlowStoneError, Unavailable, ValidationError
from flowstone_host.partitions import partition_key
from flowstone_host.plugins.postgres._migrations import MIGRATIONS
from flowstone_host.plugins.postgres.io_manager import PostgresIOManager
from flowstone_host.plugins.postgres.reader import PostgresItemReader
from flowstone_host.plugins.postgres.resource import PostgresResource
from flowstone_host.plugins.postgres.scatter import PostgresScatterCoordinator

pytestmark = pytest.mark.integration

PARTITIONS = [
    None,
    "eu-west",
    "with space/and~tilde",
    -7,
    dt.date(2024, 2, 29),
    dt.datetime(2024, 1, 31, 12, 30, 5, 250),
    dt.datetime(2024, 1, 31, 12, 30, tzinfo=dt.UTC),
    ("eu", 7, dt.date(2024, 1, 1)),
    {"region": "eu", "day": dt.date(2024, 1, 31), "shard": ("a", 1)},
]
FRAME = pd.DataFrame({"id": [1, 2], "name": ["a", None], "score": [0.5, 2.0]})
VALUES = {
    "json": {"rows": [1, 2.5, None], "nested": {"ok": True}},
    "arrow": pa.table({"id": [1, 2], "blob": [b"\x00\x01", None], "tags": [["a"], []]}),
    "table": FRAME,
    "pickle": {("a", 1): {1, 2}},
}


def _equal(expected: Any, loaded: Any) -> bool:
    if isinstance(expected, pd.DataFrame | pa.Table):
        return type(loaded) is type(expected) and bool(expected.equals(loaded))
    return bool(expected == loaded)


@pytest.fixture(scope="module")
def io(pg_resources: dict[str, Any]) -> Any:
    manager = PostgresIOManager(
        {"resource": "pg", "schema": "io_tests", "allow_pickle": True}, resources=pg_resources
    )
    yield manager
    manager.close()


@pytest.mark.parametrize("fmt", list(VALUES))
def test_every_format_round_trips_every_partition_kind(io: Any, fmt: str) -> None:
    asset = f"round_{fmt}_{uuid.uuid4().hex[:6]}"
    for partition in PARTITIONS:
        io.store(asset, VALUES[fmt], partition, format=fmt)
    for partition in PARTITIONS:
        assert _equal(VALUES[fmt], io.load(asset, partition)), (fmt, partition)
        assert io.exists(asset, partition)
    listed = io.list_partitions(asset)
    assert sorted(map(partition_key, listed)) == sorted(map(partition_key, PARTITIONS))
    assert {partition_key(p): p for p in listed} == {partition_key(p): p for p in PARTITIONS}


def test_table_format_is_a_normal_table_for_psql(io: Any, pg_dsn: str) -> None:
    psql = shutil.which("psql")
    assert psql, "psql is needed: install the PostgreSQL client"
    asset = f"sales_{uuid.uuid4().hex[:6]}"
    day = dt.date(2024, 1, 31)
    io.store(asset, FRAME, day, format="table")
    io.store(asset, FRAME.iloc[:1], dt.date(2024, 2, 1), format="table")
    query = (
        f"SELECT id, coalesce(name, 'NULL'), score FROM io_tests.{asset} "
        f"WHERE _partition = '{partition_key(day)}' ORDER BY _row"
    )
    out = subprocess.run(
        [psql, pg_dsn, "-AtX", "-F", ",", "-c", query], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == ["1,a,0.5", "2,NULL,2"]
    count = subprocess.run(
        [psql, pg_dsn, "-AtX", "-c", f"SELECT count(*) FROM io_tests.{asset}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert count.strip() == "3"


def test_a_failed_table_store_leaves_the_old_partition_whole(io: Any) -> None:
    asset = f"atomic_{uuid.uuid4().hex[:6]}"
    io.store(asset, FRAME, "p", format="table")
    bad = pd.DataFrame({"id": [5, 6], "name": ["fine", "nul\x00byte"], "score": [1.0, 2.0]})
    with pytest.raises(FlowStoneError) as caught:
        io.store(asset, bad, "p", format="table")
    assert caught.value.retryable is False
    assert _equal(FRAME, io.load(asset, "p")), "a failed store changed the partition"


def test_pickle_needs_an_explicit_opt_in(pg_resources: dict[str, Any], io: Any) -> None:
    io.store("pickled", {1, 2}, None, format="pickle")
    plain = PostgresIOManager({"resource": "pg", "schema": "io_tests"}, resources=pg_resources)
    with pytest.raises(ValidationError):
        plain.store("pickled", {1}, None, format="pickle")
    with pytest.raises(ValidationError):
        plain.load("pickled", None)
    with pytest.raises(ValidationError):
        PostgresIOManager({"resource": "pg", "format": "pickle"}, resources=pg_resources)


def test_json_format_refuses_what_json_cannot_hold(io: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        io.store("not_json", {1, 2}, None)
    assert caught.value.code == "validation_error" and not caught.value.retryable
    assert not io.exists("not_json", None)


def test_unreachable_server_is_retryable_and_hides_the_password() -> None:
    resource = PostgresResource(
        {"dsn": "postgresql://user:s3cr3t-pw@127.0.0.1:1/db", "timeout_s": 1}
    )
    with pytest.raises(Unavailable) as caught:
        resource.setup(resource.config)
    assert caught.value.retryable is True
    for text in (str(caught.value), repr(caught.value), repr(resource)):
        assert "s3cr3t-pw" not in text


def test_bad_sql_is_not_retryable(pg_dsn: str) -> None:
    reader = PostgresItemReader({"dsn": pg_dsn, "query": "SELEKT 1 AS id", "key": "id"})
    with pytest.raises(ValidationError) as caught:
        reader.read(10)
    assert caught.value.retryable is False and caught.value.details["sqlstate"] == "42601"
    reader.close()


def test_health_checks_run_a_query(pg_pool: Any, io: Any) -> None:
    resource = PostgresResource({"dsn": "unused"})
    assert resource.health_check(pg_pool).healthy
    assert io.health_check().healthy


def test_missing_extra_names_it_and_host_import_stays_free_of_psycopg() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import flowstone_host\n"
        "from flowstone_host.plugins.postgres.scatter import PostgresScatterCoordinator\n"
        "try:\n    PostgresScatterCoordinator({'dsn': 'postgresql://x@127.0.0.1:1/x'})\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "ConfigError" in out and "pip install 'flowstone-host[postgres]'" in out
    pure = subprocess.run(
        [sys.executable, "-c", "import sys, flowstone_host; print('psycopg' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert pure.strip() == "False"


def test_concurrent_setups_apply_each_migration_once(pg_dsn: str, pg_pool: Any) -> None:
    schema = f"migrated_{uuid.uuid4().hex[:6]}"

    def setup(_: int) -> None:
        PostgresScatterCoordinator({"dsn": pg_dsn, "schema": schema, "max_size": 1}).close()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(setup, range(8)))
    with pg_pool.connection() as conn:
        rows = conn.execute(
            f"SELECT component, version FROM {schema}.flowstone_migrations"
        ).fetchall()
    assert rows == [("scatter", v + 1) for v in range(len(MIGRATIONS["scatter"]))]


def test_reader_streams_a_million_rows_in_constant_memory(pg_dsn: str, pg_pool: Any) -> None:
    table = f"million_{uuid.uuid4().hex[:6]}"
    with pg_pool.connection() as conn:
        conn.execute(
            f"CREATE TABLE {table} AS SELECT i::bigint AS id, i % 97 AS v "
            "FROM generate_series(1, 1000000) AS i"
        )
        conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (id)")
    reader = PostgresItemReader({"dsn": pg_dsn, "table": table, "key": "id"})
    assert reader.count() == 1_000_000
    tracemalloc.start()
    seen = total = 0
    try:
        while True:
            batch = reader.read(20_000)
            total += sum(row["v"] for row in batch.items)
            seen += len(batch.items)
            if batch.done:
                break
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        reader.close()
    assert seen == 1_000_000 and total == sum(i % 97 for i in range(1, 1_000_001))
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.1f} MiB: memory grows with the table"
