"""Immutable registry snapshots."""

from __future__ import annotations

import pytest

from flowstone_host import Conflict, NotFound
from flowstone_host.kinds import KINDS, PLUGIN_KINDS
from flowstone_host.manifest.model import Asset
from flowstone_host.plugins.local_executor import LocalExecutor
from flowstone_host.plugins.memory_coordinators import MemoryScatterCoordinator
from flowstone_host.plugins.memory_io import MemoryIOManager
from flowstone_host.registry import AssetGraph, Entry, ReaderRegistry, Registry, Snapshot


def _io(name: str, **config: object) -> Entry:
    return Entry(
        "IOManager", name, MemoryIOManager(), config, "memory", f"plugins.d/io.yaml:{len(name)}"
    )


def test_resolve_returns_the_entry_and_unknown_names_list_what_exists() -> None:
    registry = Registry("IOManager", [_io("default"), _io("warehouse")])
    assert registry.resolve("warehouse").name == "warehouse"
    with pytest.raises(NotFound) as info:
        registry.resolve("warehose")
    err = info.value
    assert err.code == "not_found" and err.details["declared"] == ["default", "warehouse"]
    assert "No IO manager named 'warehose' (declared: default, warehouse)" in err.message
    assert "Did you mean 'warehouse'?" in err.message


def test_default_falls_back_to_memory_and_a_declared_default_wins() -> None:
    empty = Snapshot.build([])
    fallback = empty.io_managers.default()
    assert isinstance(fallback.instance, MemoryIOManager) and fallback.source is None
    assert empty.io_managers.resolve("default") is fallback
    assert fallback.name == "default" and fallback.plugin == "memory"
    declared = _io("default")
    assert Snapshot.build([declared]).io_managers.default() is declared


def test_coordinators_and_executor_fall_back_to_memory_and_local() -> None:
    empty = Snapshot.build([])
    assert isinstance(empty.scatter_coordinators.default().instance, MemoryScatterCoordinator)
    assert isinstance(empty.executors.resolve("default").instance, LocalExecutor)
    assert empty.resources.fallback is None
    with pytest.raises(NotFound, match="No resource named 'default'"):
        empty.resources.resolve("default")


def test_a_registry_without_a_fallback_has_no_default() -> None:
    with pytest.raises(NotFound, match="No IO manager named 'default' \\(declared: x\\)"):
        Registry("IOManager", [_io("x")]).default()


def test_snapshot_can_keep_the_fallback_and_its_data_across_swaps() -> None:
    first = Snapshot.build([])
    first.io_managers.default().instance.store("a", 1, None)
    second = Snapshot.build([], generation=1, previous=first)
    assert second.io_managers.default().instance.load("a", None) == 1
    assert Snapshot.build([]).io_managers.default().instance.exists("a", None) is False


def test_reader_config_merges_deeply_with_the_asset_winning() -> None:
    entry = Entry("ItemReader", "orders", object, {"bucket": "b", "page": {"size": 10, "max": 5}})
    registry = ReaderRegistry([entry])
    merged = registry.resolve_with_config("orders", {"page": {"size": 50}, "prefix": "2024/"})
    assert dict(merged.config) == {"bucket": "b", "page": {"size": 50, "max": 5}, "prefix": "2024/"}
    assert registry.resolve("orders").config["page"] == {"size": 10, "max": 5}
    assert registry.resolve_with_config("orders", None) is entry


def test_entries_are_immutable() -> None:
    entry = _io("x", pool={"size": 1})
    with pytest.raises(AttributeError):
        entry.name = "y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        entry.config["pool"] = {}  # type: ignore[index]


def test_duplicate_names_and_wrong_kinds_are_refused() -> None:
    with pytest.raises(Conflict, match="Two IO managers are named 'x'"):
        Registry("IOManager", [_io("x"), _io("x")])
    with pytest.raises(ValueError, match="IOManager entry 'x' in the Resource registry"):
        Registry("Resource", [_io("x")])


def test_snapshot_groups_by_kind_with_attributes_named_after_kinds() -> None:
    reader = Entry("ItemReader", "r", object)
    asset = Asset("orders", compute="m:f")
    snapshot = Snapshot.build([_io("default"), reader], assets=AssetGraph([asset]), generation=3)
    assert snapshot.generation == 3
    assert snapshot.io_managers.names() == ["default"]
    assert snapshot.item_readers.resolve("r") is reader
    assert snapshot.assets.resolve("orders") is asset
    assert snapshot.registry("ItemReader") is snapshot.item_readers
    assert len(snapshot.resources) == 0 and "orders" in snapshot.assets
    assert {e.name for e in snapshot.entries()} == {"default", "r"}
    with pytest.raises(KeyError, match="Asset is not a plugin kind"):
        snapshot.registry("Asset")  # assets are a graph, not plugin entries
    with pytest.raises(AttributeError):
        snapshot.assets = snapshot.resources  # type: ignore[misc]


def test_get_returns_a_declared_entry_or_none_never_the_fallback() -> None:
    warehouse = _io("warehouse")
    registry = Snapshot.build([warehouse]).io_managers
    assert registry.get("warehouse") is warehouse
    assert registry.get("lake") is None
    assert registry.get("default") is None  # undeclared: only resolve() falls back
    assert registry.resolve("default") is registry.fallback
    assert "default" not in registry and "warehouse" in registry
    assert list(registry) == [warehouse] and len(registry) == 1


def test_only_default_falls_back() -> None:
    registry = Snapshot.build([]).io_managers
    assert registry.fallback is not None
    with pytest.raises(NotFound) as info:
        registry.resolve("warehouse")
    assert info.value.details["declared"] == [] and "(declared: none)" in info.value.message


@pytest.mark.parametrize(
    ("kind", "plugin"),
    [
        ("IOManager", "memory"),
        ("ScatterCoordinator", "memory"),
        ("ParallelCoordinator", "memory"),
        ("RoutingCoordinator", "memory"),
        ("Executor", "local"),
    ],
)
def test_each_fallback_entry_is_named_default_after_its_kind_s_plugin(
    kind: str, plugin: str
) -> None:
    from flowstone_host.kinds import Kind
    from flowstone_host.registry import fallback_entry

    entry = fallback_entry(Kind(kind))
    assert (entry.kind, entry.name, entry.plugin) == (kind, "default", plugin)
    assert entry.source is None and dict(entry.config) == {}
    registry = Snapshot.build([]).registry(kind)
    assert registry.default().name == "default" and registry.default().plugin == plugin
    assert registry.names() == []


def test_kinds_without_a_fallback_have_no_fallback_entry() -> None:
    from flowstone_host.kinds import Kind
    from flowstone_host.registry import fallback_entry

    for kind in (Kind.RESOURCE, Kind.TELEMETRY_EMITTER, Kind.ITEM_READER):
        with pytest.raises(KeyError, match=f"{kind} has no fallback"):
            fallback_entry(kind)
        assert Snapshot.build([]).registry(kind).fallback is None


def test_names_are_sorted_and_the_repr_lists_them() -> None:
    registry = Registry("IOManager", [_io("zeta"), _io("alpha")])
    assert registry.names() == ["alpha", "zeta"]
    assert repr(registry) == "<Registry IOManager: alpha, zeta>"
    assert repr(Registry("Resource")) == "<Registry Resource: empty>"
    assert registry.kind == "IOManager" and registry.label == "IO manager"


def test_a_far_name_gets_no_suggestion() -> None:
    with pytest.raises(NotFound) as info:
        Registry("IOManager", [_io("warehouse")]).resolve("zzz")
    assert "Did you mean" not in info.value.message
    assert (info.value.kind, info.value.name) == ("IOManager", "zzz")


def test_a_new_snapshot_builds_fresh_fallbacks_unless_given_the_previous_one() -> None:
    first = Snapshot.build([])
    kept = Snapshot.build([], previous=first)
    fresh = Snapshot.build([])
    for kind in ("IOManager", "ScatterCoordinator", "Executor"):
        assert kept.registry(kind).fallback is first.registry(kind).fallback
        assert fresh.registry(kind).fallback is not first.registry(kind).fallback
    assert kept.assets == AssetGraph() and kept.generation == 0


def test_a_snapshot_lists_one_fallback_per_kind_that_has_one() -> None:
    snapshot = Snapshot.build([])
    fallbacks = list(snapshot.fallbacks())
    assert [(e.kind, e.plugin) for e in fallbacks] == [
        (kind, KINDS[kind].fallback) for kind in PLUGIN_KINDS if KINDS[kind].fallback
    ]
    assert len(fallbacks) == 5 and all(e.name == "default" for e in fallbacks)
    assert all(e is snapshot.registry(e.kind).fallback for e in fallbacks)
