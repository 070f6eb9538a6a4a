"""What a probe reads of a plugin class is enough to check it: its base class and its config.

Regression tests of issue 14, items 1 and 2: a process-isolated plugin whose cerberus
schema coerces with a callable had its config check silently skipped, and a class
registered under the wrong namespace was listed as compatible and its manifest validated.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from loader_helpers import SitePackages, site, write_declaration

from flowstone_host.cli.plugins import list_plugins
from flowstone_host.loading.catalog import InstalledPlugins
from flowstone_host.loading.loader import PluginLoader
from flowstone_host.loading.probe import ProbeCache
from flowstone_host.loading.schema_wire import from_wire, to_wire
from flowstone_host.manifest.host_config import HostConfig
from flowstone_host.manifest.validate import validate_paths

__all__ = ["site"]

IO = "flowstone.io_managers"

COERCING = """
from typing import Any
from flowstone_host.plugins.memory_io import MemoryIOManager

class Coercing(MemoryIOManager):
    contract_version = "1.0.0"
    config_schema = {
        "indent": {"type": "integer", "coerce": int, "default": 2},
        "ratio": {"type": "float", "coerce": float, "default": 0.5},
    }

class Lambda(MemoryIOManager):
    contract_version = "1.0.0"
    config_schema = {"indent": {"type": "integer", "coerce": lambda v: int(v)}}

class NotAnIOManager:
    contract_version = "1.0.0"
    def __init__(self, config: Any = None) -> None:
        self.config = config
"""


@pytest.fixture
def installed_site(site: SitePackages) -> SitePackages:
    site.install(
        "acme-coercing",
        {"acme_coercing": COERCING},
        {
            IO: {
                "coercing": "acme_coercing:Coercing",
                "lambda": "acme_coercing:Lambda",
                "not-io": "acme_coercing:NotAnIOManager",
            }
        },
    )
    return site


def _validate(tmp_path: Path, plugin: str, config: dict[str, Any], isolation: str) -> Any:
    folder = tmp_path / "plugins.d"
    write_declaration(folder, "x", plugin, config=config, isolation=isolation)
    host = HostConfig.defaults()
    catalog = InstalledPlugins(PluginLoader(host.sandbox, ProbeCache()))
    return validate_paths([folder], host, catalog=catalog)


@pytest.mark.integration
@pytest.mark.parametrize("isolation", ["process", "inprocess"])
def test_a_misspelt_key_is_refused_with_or_without_isolation(
    installed_site: SitePackages, tmp_path: Path, isolation: str
) -> None:
    report = _validate(tmp_path, "coercing", {"indnet": 2}, isolation)
    assert [i.code for i in report.issues] == ["plugin.config"]
    assert "'indnet' is not a config key" in report.issues[0].message
    assert "did you mean 'indent'" in report.issues[0].message.lower()


@pytest.mark.integration
@pytest.mark.parametrize("isolation", ["process", "inprocess"])
def test_an_isolated_config_is_normalized_by_the_real_schema(
    installed_site: SitePackages, tmp_path: Path, isolation: str
) -> None:
    report = _validate(tmp_path, "coercing", {"indent": "4"}, isolation)
    assert report.issues == ()
    (declaration,) = report.manifests.declarations.values()
    assert dict(declaration.config) == {"indent": 4, "ratio": 0.5}  # coerced, defaults filled


@pytest.mark.integration
def test_a_schema_that_cannot_leave_the_child_refuses_the_declaration(
    installed_site: SitePackages, tmp_path: Path
) -> None:
    report = _validate(tmp_path, "lambda", {"indent": 2}, "process")
    (issue,) = report.issues
    assert issue.code == "plugin.schema_uncheckable"
    assert "cannot be checked" in issue.message and "'indent'" in issue.message
    assert report.manifests.declarations == {}
    # in process the real schema checks it
    assert _validate(tmp_path / "in", "lambda", {"indent": "2"}, "inprocess").issues == ()


@pytest.mark.integration
@pytest.mark.parametrize("isolation", ["process", "inprocess"])
def test_validate_reports_a_class_that_is_not_of_the_contract(
    installed_site: SitePackages, tmp_path: Path, isolation: str
) -> None:
    report = _validate(tmp_path, "not-io", {}, isolation)
    (issue,) = report.issues
    assert issue.code == "plugin.wrong_class"
    assert "acme_coercing:NotAnIOManager is not a subclass of IOManager" in issue.message or (
        "is a NotAnIOManager, not a subclass of IOManager" in issue.message
    )


@pytest.mark.integration
def test_plugins_lists_a_wrong_class_as_such(installed_site: SitePackages) -> None:
    # Every installed plugin is probed, the hostile one whose import burns CPU for ever
    # too: the CPU limit ends it after 5 s of CPU instead of the 10 s default timeout, and
    # the others (well under 1 s of CPU each) get 30 s on a loaded machine.
    defaults = HostConfig.defaults()
    host = dataclasses.replace(
        defaults, sandbox=dataclasses.replace(defaults.sandbox, import_timeout_s=30, cpu_s=5)
    )
    lines = [line for line in list_plugins(host) if "acme-coercing" in line]
    verdicts = {line.split()[0]: line for line in lines}
    assert (
        "WRONG CLASS" in verdicts["not-io"] and "not a subclass of IOManager" in verdicts["not-io"]
    )
    assert "compatible" in verdicts["coercing"] and "WRONG" not in verdicts["coercing"]
    assert "refused with isolation: process" in verdicts["lambda"]


def test_standard_coercions_travel_by_name_and_come_back() -> None:
    schema = {"a": {"coerce": int}, "b": {"schema": {"c": {"coerce": [str, float]}}}}
    plain, problems = to_wire(schema)
    assert problems == []
    assert plain["a"] == {"coerce": {"$callable": "int"}}
    assert from_wire(plain) == {
        "a": {"coerce": int},
        "b": {"schema": {"c": {"coerce": [str, float]}}},
    }


def test_other_callables_are_named_as_the_problem() -> None:
    def parse(value: Any) -> Any:
        return value

    plain, problems = to_wire({"a": {"check_with": parse}})
    assert plain is None
    assert problems and "config_schema['a']['check_with']" in problems[0]
