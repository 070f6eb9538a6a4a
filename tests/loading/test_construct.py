"""Plugins are built from plain data, with host facts on request, and callables checked."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from flowstone_host import IOManager, PermissionDenied
from flowstone_host.callables import CallablePolicy
from flowstone_host.loading.catalog import installed
from flowstone_host.loading.construct import HostFacts, build_plugin
from flowstone_host.loading.loader import PluginLoader
from flowstone_host.manifest.host_config import HostConfig
from flowstone_host.manifest.model import Declaration, freeze
from flowstone_host.manifest.validate import validate_paths


class Recording(IOManager):
    """Keeps what it was built with."""

    contract_version = "1.0.0"

    def __init__(self, config: Mapping[str, Any] | None = None, *, state_dir: str | None = None):
        super().__init__(config)
        self.state_dir = state_dir

    def load(self, asset: str, partition: Any = None, **opts: Any) -> Any:
        return None

    def store(self, asset: str, data: Any, partition: Any = None, **opts: Any) -> None:
        pass

    def exists(self, asset: str, partition: Any = None, **opts: Any) -> bool:
        return False

    def delete(self, asset: str, partition: Any = None, **opts: Any) -> None:
        pass


def test_config_reaches_a_plugin_as_plain_mutable_data() -> None:
    frozen = freeze({"pool": {"hosts": ["a", "b"], "size": 2}, "tags": ["x"]})
    plugin = build_plugin(Recording, "IOManager", frozen, HostFacts())
    assert plugin.config == {"pool": {"hosts": ["a", "b"], "size": 2}, "tags": ["x"]}
    assert type(plugin.config["pool"]) is dict and type(plugin.config["pool"]["hosts"]) is list
    plugin.config["pool"]["hosts"].append("c")  # its own copy
    assert frozen["pool"]["hosts"] == ("a", "b")


def test_a_loaded_plugin_gets_lists_not_tuples() -> None:
    declaration = Declaration(
        "TelemetryEmitter",
        "log",
        "logging",
        freeze({"logger": "t", "level": "DEBUG", "prefix": ["flowstone", "run"]}),
    )
    entry = PluginLoader(HostConfig.defaults().sandbox).load(declaration)
    assert entry.instance.config["prefix"] == ["flowstone", "run"]
    assert type(entry.instance.config["prefix"]) is list


def test_host_facts_are_passed_only_to_constructors_that_ask() -> None:
    facts = HostFacts(state_dir="/srv/state", resources={"pg": object()})
    assert build_plugin(Recording, "IOManager", {}, facts).state_dir == "/srv/state"
    plain = build_plugin(_Plain, "IOManager", {}, facts)  # no keyword: built as cls(config)
    assert plain.config == {}


class _Plain(Recording):
    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)


# -- callables named in plugin config --------------------------------------------------------


@pytest.mark.parametrize("function", ["os:listdir", "subprocess:run"])
def test_a_reader_function_outside_the_allow_list_is_refused_at_load(function: str) -> None:
    policy = CallablePolicy(("flowstone_host.examples.*",))
    loader = PluginLoader(HostConfig.defaults().sandbox, facts=HostFacts(callables=policy))
    declaration = Declaration("ItemReader", "r", "custom", freeze({"function": function}))
    with pytest.raises(PermissionDenied) as info:
        loader.load(declaration)
    assert "callables.allow: flowstone_host.examples.*" in info.value.message
    assert info.value.details["module"] == function.partition(":")[0]


READER = """\
apiVersion: flowstone/v1
kind: ItemReader
metadata: {{name: lines}}
spec:
  plugin: custom
  config: {{function: "{declared}"}}
---
apiVersion: flowstone/v1
kind: Asset
metadata: {{name: fan}}
spec:
  scatter:
    reader: lines
    reader_config: {{function: "{override}"}}
    item: flowstone_host.examples.demo_assets:enrich
"""


@pytest.mark.parametrize("function", ["os:listdir", "subprocess:run"])
def test_validate_refuses_a_reader_function_outside_the_allow_list(
    tmp_path: Path, function: str
) -> None:
    path = tmp_path / "reader.yaml"
    allowed = "flowstone_host.examples.demo_assets:order_lines"
    path.write_text(READER.format(declared=function, override=allowed))
    report = validate_paths([path], environ={}, catalog=installed())
    denied = [i for i in report.issues if i.code == "ref.callable_denied"]
    assert [(i.position.line, i.path) for i in denied] == [(6, ("spec", "config", "function"))]
    assert "callables.allow: flowstone_host.examples.*" in denied[0].message


def test_validate_refuses_a_denied_function_in_an_assets_reader_config(tmp_path: Path) -> None:
    path = tmp_path / "reader.yaml"
    allowed = "flowstone_host.examples.demo_assets:order_lines"
    path.write_text(READER.format(declared=allowed, override="subprocess:run"))
    report = validate_paths([path], environ={}, catalog=installed())
    denied = [i for i in report.issues if i.code == "ref.callable_denied"]
    assert [i.path for i in denied] == [("spec", "scatter", "reader_config", "function")]
    assert "'subprocess'" in denied[0].message
