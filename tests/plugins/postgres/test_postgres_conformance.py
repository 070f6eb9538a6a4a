"""Every PostgreSQL plugin passes the conformance kit, on a real server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from flowstone_host.plugins.postgres.io_manager import PostgresIOManager
from flowstone_host.plugins.postgres.parallel import PostgresParallelCoordinator
from flowstone_host.plugins.postgres.reader import PostgresItemReader
from flowstone_host.plugins.postgres.resource import PostgresResource
from flowstone_host.plugins.postgres.routing import PostgresRoutingCoordinator
from flowstone_host.plugins.postgres.scatter import PostgresScatterCoordinator
from flowstone_host.testing import (
    IOManagerContract,
    ItemReaderContract,
    ParallelCoordinatorContract,
    ResourceContract,
    RoutingCoordinatorContract,
    ScatterCoordinatorContract,
)
from flowstone_host.testing._checks import unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shared_scatter(pg_resources: dict[str, Any]) -> Iterator[PostgresScatterCoordinator]:
    coordinator = PostgresScatterCoordinator({"resource": "pg"}, resources=pg_resources)
    yield coordinator
    coordinator.close()


@pytest.fixture(scope="module")
def standalone_scatter(pg_dsn: str) -> Iterator[PostgresScatterCoordinator]:
    coordinator = PostgresScatterCoordinator({"dsn": pg_dsn, "schema": "standalone"})
    yield coordinator
    coordinator.close()


@pytest.fixture(scope="module")
def shared_parallel(pg_resources: dict[str, Any]) -> Iterator[PostgresParallelCoordinator]:
    coordinator = PostgresParallelCoordinator({"resource": "pg"}, resources=pg_resources)
    yield coordinator
    coordinator.close()


@pytest.fixture(scope="module")
def shared_routing(pg_resources: dict[str, Any]) -> Iterator[PostgresRoutingCoordinator]:
    coordinator = PostgresRoutingCoordinator({"resource": "pg"}, resources=pg_resources)
    yield coordinator
    coordinator.close()


class TestPostgresScatterCoordinator(ScatterCoordinatorContract):
    @pytest.fixture
    def scatter_coordinator(self, shared_scatter: Any) -> Any:
        return shared_scatter


class TestPostgresScatterCoordinatorOwnPool(ScatterCoordinatorContract):
    """Standalone: the coordinator's own pool from a DSN, in a schema of its own."""

    @pytest.fixture
    def scatter_coordinator(self, standalone_scatter: Any) -> Any:
        return standalone_scatter


class TestPostgresParallelCoordinator(ParallelCoordinatorContract):
    @pytest.fixture
    def parallel_coordinator(self, shared_parallel: Any) -> Any:
        return shared_parallel


class TestPostgresRoutingCoordinator(RoutingCoordinatorContract):
    @pytest.fixture
    def routing_coordinator(self, shared_routing: Any) -> Any:
        return shared_routing


def _frames_equal(expected: Any, loaded: Any) -> bool:
    if isinstance(expected, pd.DataFrame):
        return isinstance(loaded, pd.DataFrame) and expected.equals(loaded)
    return isinstance(loaded, pa.Table) and expected.equals(loaded)


def _tables() -> list[Any]:
    """Values the arrow and table formats hold: pyarrow tables and pandas DataFrames."""
    day = dt.date(2024, 1, 31)
    return [
        pa.table({"id": [1, 2, 3], "name": ["a", "", None], "score": [1.5, None, -2.25]}),
        pa.table({"id": [9], "name": ["z"], "score": [0.0]}),
        pd.DataFrame({"id": [1, 2], "day": [day, day], "ok": [True, False]}),
        pa.table(
            {"at": pa.array([dt.datetime(2024, 1, 31, 12, 30, 5, 123456)], pa.timestamp("us"))}
        ),
        pa.table({"id": pa.array([], pa.int64())}),
    ]


class TestPostgresResource(ResourceContract):
    @pytest.fixture
    def resource_plugin(self, pg_dsn: str) -> PostgresResource:
        return PostgresResource({"dsn": pg_dsn, "min_size": 1, "max_size": 2})


class _OnSharedPool:
    """A postgres IO manager built as the host builds it on the shared `pg` pool."""

    io_manager_class = pytest.fixture(lambda self: PostgresIOManager)

    @pytest.fixture
    def io_keywords(self, pg_resources: dict[str, Any]) -> dict[str, Any]:
        return {"resources": pg_resources}


class TestPostgresIOManagerJson(_OnSharedPool, IOManagerContract):
    @pytest.fixture
    def io_config(self) -> dict[str, Any]:
        return {"resource": "pg", "format": "json"}


class TestPostgresIOManagerPickle(_OnSharedPool, IOManagerContract):
    @pytest.fixture
    def io_config(self) -> dict[str, Any]:
        return {"resource": "pg", "format": "pickle", "allow_pickle": True}

    @pytest.fixture
    def io_values(self) -> list[Any]:
        return [{1, 2}, ("tuple", dt.date(2024, 1, 1)), b"bytes", 42]


class TestPostgresIOManagerArrow(IOManagerContract):
    io_manager_class = pytest.fixture(lambda self: PostgresIOManager)

    @pytest.fixture
    def io_config(self, pg_dsn: str) -> dict[str, Any]:
        return {"dsn": pg_dsn, "format": "arrow", "schema": "arrow_values"}

    @pytest.fixture
    def io_values(self) -> list[Any]:
        return _tables()

    @pytest.fixture
    def io_equal(self) -> Callable[[Any, Any], bool]:
        return _frames_equal


class TestPostgresIOManagerTable(_OnSharedPool, IOManagerContract):
    """One table per asset: every partition of an asset has the same columns."""

    @pytest.fixture
    def io_config(self) -> dict[str, Any]:
        return {"resource": "pg", "format": "table"}

    @pytest.fixture
    def io_values(self) -> list[Any]:
        return [
            pa.table({"id": [1, 2, 3], "name": ["a", "", None], "score": [1.5, None, -2.25]}),
            pd.DataFrame({"id": [7, 8], "name": ["x", "y"], "score": [0.1, 1e300]}),
            pa.table({"id": [9], "name": ['q"u,o\nte'], "score": [float("inf")]}),
            pd.DataFrame(
                {
                    "id": pd.Series([], dtype="int64"),
                    "name": pd.Series([], dtype=str),
                    "score": pd.Series([], dtype="float64"),
                }
            ),
        ]

    @pytest.fixture
    def io_equal(self) -> Callable[[Any, Any], bool]:
        return _frames_equal


class TestPostgresItemReader(ItemReaderContract):
    @pytest.fixture
    def make_item_reader(
        self, pg_pool: Any, pg_resources: dict[str, Any]
    ) -> Callable[[list[Any]], PostgresItemReader]:
        def make(items: list[Any]) -> PostgresItemReader:
            table = unique_name("reader_items")
            with pg_pool.connection() as conn:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY, name text)"
                )
                with conn.cursor() as cursor:
                    cursor.executemany(
                        f"INSERT INTO {table} VALUES (%(id)s, %(name)s) ON CONFLICT DO NOTHING",
                        items,
                    )
            return PostgresItemReader({"resource": "pg", "table": table, "key": "id"}, pg_resources)

        return make


class TestPostgresItemReaderQuery(ItemReaderContract):
    """A query as the source: rows made by generate_series, no table."""

    @pytest.fixture
    def make_item_reader(self, pg_dsn: str) -> Callable[[list[Any]], PostgresItemReader]:
        def make(items: list[Any]) -> PostgresItemReader:
            query = (
                "SELECT i::bigint AS id, 'item-' || i AS name "
                f"FROM generate_series(0, {len(items) - 1}) AS i"
            )
            return PostgresItemReader({"dsn": pg_dsn, "query": query, "key": "id"})

        return make
