"""Every PostgreSQL plugin passes the conformance kit, on a real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flowstone_host.plugins.postgres.parallel import PostgresParallelCoordinator
from flowstone_host.plugins.postgres.routing import PostgresRoutingCoordinator
from flowstone_host.plugins.postgres.scatter import PostgresScatterCoordinator
from flowstone_host.testing import (
    ParallelCoordinatorContract,
    RoutingCoordinatorContract,
    ScatterCoordinatorContract,
)

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
