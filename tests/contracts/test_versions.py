"""Contract versions and the compatibility check."""

from __future__ import annotations

from typing import Any

import pytest

from flowstone_host import IncompatibleContract, IOManager
from flowstone_host.contracts import CONTRACTS, contract_for
from flowstone_host.contracts.versions import (
    check_compatibility,
    parse_version,
)
from flowstone_host.plugins.memory_io import MemoryIOManager

IO = CONTRACTS["IOManager"]


def _plugin(**attrs: Any) -> type[IOManager]:
    return type("P", (MemoryIOManager,), attrs)


def test_every_contract_accepts_1_0_0_with_its_namespace() -> None:
    assert set(CONTRACTS) == {
        "IOManager",
        "ItemReader",
        "ScatterCoordinator",
        "ParallelCoordinator",
        "RoutingCoordinator",
        "Resource",
        "TelemetryEmitter",
        "Executor",
    }
    for contract in CONTRACTS.values():
        assert contract.minimum == "1.0.0"
        # scatter 1.1 and 1.2, executor 1.1 added optional methods only: 1.0 plugins stay
        # compatible
        expected = {"ScatterCoordinator": "1.2.0", "Executor": "1.1.0"}.get(contract.kind, "1.0.0")
        assert contract.current == expected
        assert contract.namespace == f"flowstone.{contract.registry}"
    assert contract_for(MemoryIOManager) is IO


@pytest.mark.parametrize("declared", ["1.0.0", "1.4.2", "1.0", "1.2.0-rc.1"])
def test_same_major_at_or_above_minimum_is_compatible(declared: str) -> None:
    result = check_compatibility(_plugin(contract_version=declared), IO)
    assert (result.status, result.declared) == ("compatible", declared)


def test_original_designs_version_function_is_read() -> None:
    plugin = _plugin(contract_version=None, version=staticmethod(lambda: "2.0.0"))
    with pytest.raises(IncompatibleContract):
        check_compatibility(plugin, IO)


@pytest.mark.parametrize("declared", ["2.0.0", "0.9.0", "banana"])
def test_other_major_below_minimum_or_garbage_is_refused_naming_both_sides(declared: str) -> None:
    with pytest.raises(IncompatibleContract) as info:
        check_compatibility(_plugin(contract_version=declared), IO, name="warehouse")
    err = info.value
    assert err.code == "incompatible_contract"
    assert (err.plugin, err.declared, err.supported) == ("warehouse", declared, ">=1.0.0,<2.0.0")
    assert (
        "warehouse" in err.message and declared in err.message and ">=1.0.0,<2.0.0" in err.message
    )


def test_minimum_above_current_major_zero_is_refused() -> None:
    contract = IO.__class__(IO.kind, IO.registry, IO.namespace, IO.abc, "1.3.0", "1.2.0")
    with pytest.raises(IncompatibleContract):
        check_compatibility(_plugin(contract_version="1.1.9"), contract)
    assert check_compatibility(_plugin(contract_version="1.2.0"), contract).status == "compatible"


def test_legacy_plugin_is_accepted_with_a_warning_to_show() -> None:
    result = check_compatibility(_plugin(contract_version=None), IO, name="old")
    assert result.status == "legacy" and result.declared is None
    assert result.warning is not None and "contract_version = '1.0.0'" in result.warning
    assert check_compatibility(_plugin(contract_version="1.0.0"), IO).warning is None


def test_parse_version() -> None:
    assert parse_version("1.2.3") == (1, 2, 3)
    assert parse_version("2.0") == (2, 0, 0)
    with pytest.raises(ValueError):
        parse_version("v1")
