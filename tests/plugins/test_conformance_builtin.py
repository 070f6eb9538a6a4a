"""Every built-in plugin passes the conformance kit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flowstone_host.plugins.custom_reader import CustomItemReader
from flowstone_host.plugins.memory_coordinators import (
    MemoryParallelCoordinator,
    MemoryRoutingCoordinator,
    MemoryScatterCoordinator,
)
from flowstone_host.plugins.memory_io import MemoryIOManager
from flowstone_host.testing import (
    IOManagerContract,
    ItemReaderContract,
    ParallelCoordinatorContract,
    RoutingCoordinatorContract,
    ScatterCoordinatorContract,
)


class TestMemoryIOManager(IOManagerContract):
    @pytest.fixture(params=[False, True], ids=["shared", "copying"])
    def io_config(self, request: pytest.FixtureRequest) -> dict[str, Any]:
        return {"copy": request.param}

    @pytest.fixture
    def io_manager(self, io_config: dict[str, Any]) -> MemoryIOManager:
        return MemoryIOManager(io_config)


def _pages(items: list[Any]) -> Callable[..., tuple[list[Any], int | None]]:
    """A page function over ``items`` for the custom reader's paged mode."""

    def page(
        cursor: int | None, batch_size: int, config: Any, deps: Any
    ) -> tuple[list[Any], int | None]:
        start = cursor or 0
        end = start + batch_size
        return items[start:end], (end if end < len(items) else None)

    return page


class TestCustomItemReader(ItemReaderContract):
    @pytest.fixture
    def make_item_reader(self) -> Callable[[list[Any]], CustomItemReader]:
        return lambda items: CustomItemReader({"function": lambda config, deps: iter(items)})


class TestCustomItemReaderCounted(ItemReaderContract):
    @pytest.fixture
    def make_item_reader(self) -> Callable[[list[Any]], CustomItemReader]:
        return lambda items: CustomItemReader(
            {"function": lambda config, deps: (item for item in items), "count": len(items)}
        )


class TestCustomItemReaderPaged(ItemReaderContract):
    @pytest.fixture
    def make_item_reader(self) -> Callable[[list[Any]], CustomItemReader]:
        return lambda items: CustomItemReader({"function": _pages(items), "paged": True})


class TestMemoryScatterCoordinator(ScatterCoordinatorContract):
    @pytest.fixture
    def scatter_coordinator(self) -> MemoryScatterCoordinator:
        return MemoryScatterCoordinator()


class TestMemoryParallelCoordinator(ParallelCoordinatorContract):
    @pytest.fixture
    def parallel_coordinator(self) -> MemoryParallelCoordinator:
        return MemoryParallelCoordinator()


class TestMemoryRoutingCoordinator(RoutingCoordinatorContract):
    @pytest.fixture
    def routing_coordinator(self) -> MemoryRoutingCoordinator:
        return MemoryRoutingCoordinator()
