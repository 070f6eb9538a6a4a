"""The SQLite coordinators pass the conformance kit, each on a fresh database file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowstone_host.plugins.sqlite import (
    SqliteParallelCoordinator,
    SqliteRoutingCoordinator,
    SqliteScatterCoordinator,
)
from flowstone_host.testing import (
    ParallelCoordinatorContract,
    RoutingCoordinatorContract,
    ScatterCoordinatorContract,
)


class TestSqliteScatterCoordinator(ScatterCoordinatorContract):
    @pytest.fixture
    def scatter_coordinator(self, tmp_path: Path) -> Iterator[SqliteScatterCoordinator]:
        coordinator = SqliteScatterCoordinator({"path": "c.sqlite"}, state_dir=str(tmp_path))
        yield coordinator
        coordinator.close()


class TestSqliteParallelCoordinator(ParallelCoordinatorContract):
    @pytest.fixture
    def parallel_coordinator(self, tmp_path: Path) -> Iterator[SqliteParallelCoordinator]:
        coordinator = SqliteParallelCoordinator({"path": "c.sqlite"}, state_dir=str(tmp_path))
        yield coordinator
        coordinator.close()


class TestSqliteRoutingCoordinator(RoutingCoordinatorContract):
    @pytest.fixture
    def routing_coordinator(self, tmp_path: Path) -> Iterator[SqliteRoutingCoordinator]:
        coordinator = SqliteRoutingCoordinator({"path": "c.sqlite"}, state_dir=str(tmp_path))
        yield coordinator
        coordinator.close()
