"""The memory IO manager honours an asset's io_config passed as **opts."""

from __future__ import annotations

from flowstone_host.plugins.memory_io import MemoryIOManager


def test_copy_in_opts_deep_copies_on_store_and_load() -> None:
    io = MemoryIOManager({"copy": False})
    value = {"lines": [1, 2]}
    io.store("a", value, None, copy=True)
    value["lines"].append(3)  # the caller's change does not reach the stored value
    loaded = io.load("a", None, copy=True)
    assert loaded == {"lines": [1, 2]}
    loaded["lines"].append(4)
    assert io.load("a", None, copy=True) == {"lines": [1, 2]}


def test_opts_override_the_declaration_both_ways() -> None:
    io = MemoryIOManager({"copy": True})
    value = {"n": 1}
    io.store("a", value, None, copy=False)
    assert io.load("a", None, copy=False) is value
    io.store("b", value, None)
    assert io.load("b", None) is not value
