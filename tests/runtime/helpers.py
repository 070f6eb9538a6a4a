"""Build snapshots for runtime tests without manifests: entries and assets by hand."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flowstone_host.callables import CallablePolicy
from flowstone_host.graph import AssetGraph
from flowstone_host.manifest.model import Asset, Scatter, freeze
from flowstone_host.plugins.custom_reader import CustomItemReader
from flowstone_host.plugins.local_executor import LocalExecutor
from flowstone_host.plugins.memory_coordinators import (
    MemoryParallelCoordinator,
    MemoryRoutingCoordinator,
    MemoryScatterCoordinator,
)
from flowstone_host.plugins.memory_io import MemoryIOManager
from flowstone_host.registry import Entry, Snapshot

POLICY = CallablePolicy(("tests.runtime.*",))
#: Plugins the helpers built; conftest closes them after each test (threads, files).
OPEN: list[Any] = []
W = "tests.runtime.work:"


def coordinators(kind: str, state: Path) -> list[Entry]:
    if kind == "memory":
        plugins: list[Any] = [
            MemoryScatterCoordinator({}),
            MemoryParallelCoordinator({}),
            MemoryRoutingCoordinator({}),
        ]
    else:
        from flowstone_host.plugins.sqlite import (
            SqliteParallelCoordinator,
            SqliteRoutingCoordinator,
            SqliteScatterCoordinator,
        )

        config = {"path": "coordinators.sqlite"}
        plugins = [
            SqliteScatterCoordinator(config, state_dir=state),
            SqliteParallelCoordinator(config, state_dir=state),
            SqliteRoutingCoordinator(config, state_dir=state),
        ]
    kinds = ("ScatterCoordinator", "ParallelCoordinator", "RoutingCoordinator")
    return [Entry(k, "default", p, plugin=kind) for k, p in zip(kinds, plugins, strict=True)]


def snapshot(
    assets: Iterable[Asset], state: Path, *, coordinator: str = "memory", workers: int = 4
) -> Snapshot:
    def reader(config: Any, deps: Any = None) -> CustomItemReader:
        return CustomItemReader(config, deps, callables=POLICY)

    entries = [
        Entry("IOManager", "default", MemoryIOManager({}), plugin="memory"),
        Entry("ItemReader", "custom", reader, plugin="custom"),
        Entry("Executor", "default", LocalExecutor({"max_workers": workers}), plugin="local"),
        *coordinators(coordinator, state),
    ]
    OPEN.extend(entry.instance for entry in entries if hasattr(entry.instance, "close"))
    return Snapshot.build(entries, assets=AssetGraph(assets))


def scatter_asset(
    name: str, item: str, *, tolerated: Any = None, count: int | None = None, **kw: Any
) -> Asset:
    config: dict[str, Any] = {"function": W + "numbers"}
    if count is not None:
        config["count"] = count
    spec = Scatter(
        reader="custom",
        item=W + item,
        gather=W + "count_results",
        tolerated_failures=freeze(tolerated or {"count": 0}),
        resolved_reader_config=freeze(config),
        **kw,
    )
    return Asset(name, scatter=spec)
