"""The one table of kinds."""

from __future__ import annotations

from flowstone_host.contracts import CONTRACTS
from flowstone_host.kinds import KINDS, PLUGIN_KINDS, Kind, has_fallback, kind_info


def test_every_kind_has_one_row_and_plugin_kinds_are_the_contracts() -> None:
    assert set(KINDS) == set(Kind)
    assert set(PLUGIN_KINDS) == set(CONTRACTS) == set(Kind) - {Kind.ASSET}
    for kind in PLUGIN_KINDS:
        info = KINDS[kind]
        assert info.namespace == f"flowstone.{info.registry}" == CONTRACTS[kind].namespace


def test_kinds_equal_their_yaml_spelling() -> None:
    assert Kind.ASSET == "Asset" and kind_info("IOManager") is KINDS[Kind.IO_MANAGER]


def test_only_item_readers_are_built_per_run() -> None:
    assert [k for k, i in KINDS.items() if i.per_run] == [Kind.ITEM_READER]


def test_fallbacks_stand_for_an_undeclared_default_only() -> None:
    assert {k: i.fallback for k, i in KINDS.items() if i.fallback} == {
        Kind.IO_MANAGER: "memory",
        Kind.SCATTER_COORDINATOR: "memory",
        Kind.PARALLEL_COORDINATOR: "memory",
        Kind.ROUTING_COORDINATOR: "memory",
        Kind.EXECUTOR: "local",
    }
    assert has_fallback("IOManager", "default") and not has_fallback("IOManager", "lake")
    assert not has_fallback("Resource", "default")
