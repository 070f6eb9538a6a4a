"""What /status and the reload log say about versions, failures and rejections.

Regression tests of issue 14, items 3-5: after an upgrade /status showed the installed
version for an instance running the old code; a reload clearing a rejection logged
nothing; a failed replacement was shown as the declaration's state while the previous
instance served; ``Health.details`` were dropped.
"""

from __future__ import annotations

import logging
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from host_tree import Tree, header

from flowstone_host import Health
from flowstone_host.host.lifecycle import Host
from flowstone_host.host.report import DeclarationState
from flowstone_host.loading import entry_points
from flowstone_host.manifest.model import Declaration
from flowstone_host.registry import Entry

PLUGIN = """
from flowstone_host.plugins.memory_io import MemoryIOManager

class Versioned(MemoryIOManager):
    contract_version = "1.0.0"
    plugin_version = "{version}"
    config_schema = {{"label": {{"type": "string", "default": ""}}}}
"""


class Site:
    """A ``sys.path`` folder holding one distribution that tests upgrade in place."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def install(self, version: str) -> None:
        for old in self.folder.glob("acme_versioned-*.dist-info"):
            shutil.rmtree(old)
        # a bytecode cache keyed by the source's mtime in seconds would outlive the upgrade
        shutil.rmtree(self.folder / "__pycache__", ignore_errors=True)
        (self.folder / "acme_versioned.py").write_text(
            textwrap.dedent(PLUGIN.format(version=version))
        )
        info = self.folder / f"acme_versioned-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: acme-versioned\nVersion: {version}\n"
        )
        (info / "entry_points.txt").write_text(
            "[flowstone.io_managers]\nversioned = acme_versioned:Versioned\n"
        )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    folder = tmp_path / "site"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    try:
        yield Site(folder)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("acme_versioned", None)
        entry_points.refresh()


def _declaration(name: str, isolation: str, label: str = "") -> str:
    spec = f"{{plugin: versioned, isolation: {isolation}, config: {{label: '{label}'}}}}"
    return header("IOManager", name) + f"spec: {spec}\n"


def _state(host: Host, name: str) -> dict[str, Any]:
    return next(d for d in host.status()["declarations"] if d["name"] == name)


@pytest.mark.integration
def test_status_shows_the_version_running_and_that_a_restart_is_required(
    tree: Tree, make_host: Callable[[], Host], site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    site.install("1.0.0")
    tree.write("in.yaml", _declaration("inproc", "inprocess"))
    tree.write("out.yaml", _declaration("isolated", "process"))
    host = make_host()
    host.start()
    assert _state(host, "inproc")["version"] == "1.0.0"
    site.install("2.0.0")
    tree.write("in.yaml", _declaration("inproc", "inprocess", label="changed"))  # loads anew
    tree.write("out.yaml", _declaration("isolated", "process", label="changed"))

    with caplog.at_level(logging.WARNING):
        host.reload("manual")

    inproc = _state(host, "inproc")
    assert (inproc["version"], inproc["plugin_version"]) == ("1.0.0", "1.0.0")  # the old code
    assert inproc["installed_version"] == "2.0.0" and inproc["restart_required"] is True
    isolated = _state(host, "isolated")
    assert (isolated["version"], isolated["plugin_version"]) == ("2.0.0", "2.0.0")
    assert "restart_required" not in isolated
    warnings = [r.getMessage() for r in caplog.records if "restart" in r.getMessage()]
    assert len(warnings) == 1 and "'inproc'" in warnings[0] and "2.0.0" in warnings[0]


def test_a_reload_that_clears_a_rejection_logs_one_line(
    tree: Tree, make_host: Callable[[], Host], caplog: pytest.LogCaptureFixture
) -> None:
    path = tree.write("a.yaml", tree.io("warehouse"))
    host = make_host()
    host.start()
    path.write_text("kind: [unclosed\n")
    host.reload("watch")
    tree.write("a.yaml", tree.io("warehouse"))

    with caplog.at_level(logging.INFO):
        host.reload("watch")

    cleared = [r for r in caplog.records if "accepted again" in r.getMessage()]
    assert len(cleared) == 1 and str(path) in cleared[0].getMessage()
    assert host.status()["rejected_files"] == []


def test_a_failed_replacement_shows_the_serving_instance_first(
    tree: Tree, make_host: Callable[[], Host]
) -> None:
    tree.write("a.yaml", tree.resource("db"))
    host = make_host()
    host.start()
    tree.write("a.yaml", "# moved\n" + tree.resource("db", fail_setup=True))

    host.reload("watch")

    state = _state(host, "db")
    assert (state["state"], state["reason"]) == ("active", None)  # the previous one serves
    assert state["source"].endswith("a.yaml:3:18")
    assert state["distribution"] == "flowstone-fixture-plugins"
    newer = state["newer_version_rejected"]
    assert newer["state"] == "failed" and "refuses to start" in newer["reason"]
    assert newer["source"].endswith("a.yaml:4:18") and newer["config"]["fail_setup"] is True
    keys = list(state)
    assert keys.index("version") < keys.index("newer_version_rejected")


def test_declarations_of_a_rejected_file_say_a_newer_version_was_rejected(
    tree: Tree, make_host: Callable[[], Host]
) -> None:
    path = tree.write("a.yaml", tree.io("warehouse"))
    host = make_host()
    host.start()
    path.write_text(tree.io("warehouse") + "  unknown_key: 1\n")

    host.reload("watch")

    state = _state(host, "warehouse")
    assert state["state"] == "active"
    newer = state["newer_version_rejected"]
    assert newer["file"] == str(path) and newer["errors"]
    assert newer["errors"][0]["code"] == "yaml.syntax"


def test_health_details_are_kept() -> None:
    declaration = Declaration("IOManager", "x", "memory", {})
    entry = Entry("IOManager", "x", object(), {}, "memory")
    state = DeclarationState(declaration, entry)
    state.record(Health.ok(latency_ms=3, server="pg 15"))
    health = state.to_dict()["health"]
    assert health["details"] == {"latency_ms": 3, "server": "pg 15"}
