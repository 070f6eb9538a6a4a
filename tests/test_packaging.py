"""A non-editable install works on its own: entry points, schemas and config ship inside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration

PROBE = """
import json, sys
import stevedore
import flowstone_host
from importlib import resources
from flowstone_host.contracts import CONTRACTS
from flowstone_host.loading.entry_points import discover
# Listed without importing: the test environment also holds the hostile fixture plugins.
found = {
    c.registry: sorted(i.name for i in discover(c.namespace) if i.distribution == "flowstone-host")
    for c in CONTRACTS.values()
}
schema = resources.files("flowstone_host") / "schemas" / "manifest.schema.json"
print(json.dumps({
    "package": flowstone_host.__file__,
    "memory": stevedore.DriverManager("flowstone.io_managers", "memory").driver.__module__,
    "found": found,
    "schema": json.loads(schema.read_text())["$schema"],
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        # hatchling (the build backend) is in the test extra: no index is reached
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    [built] = out.glob("flowstone_host-*.whl")
    return built


def test_the_wheel_carries_the_schemas_and_the_entry_points(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "flowstone_host/schemas/manifest.schema.json" in names
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[flowstone.io_managers]" in text and "memory = flowstone_host.plugins.memory_io" in text
    assert not [n for n in names if n.startswith("tests/")]


def test_an_installed_copy_is_found_by_stevedore_from_anywhere(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    facts = json.loads(out.stdout)
    assert facts["package"].startswith(str(target))  # the installed copy, not the checkout
    assert facts["memory"] == "flowstone_host.plugins.memory_io"
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert facts["found"] == {
        namespace: sorted(declared.get(f"flowstone.{namespace}", {}))
        for namespace in facts["found"]
    }
    assert set(facts["found"]) == {n.removeprefix("flowstone.") for n in declared}
    assert "memory" in facts["found"]["io_managers"] and "local" in facts["found"]["executors"]
    assert facts["schema"] == "https://json-schema.org/draft/2020-12/schema"
    schema = subprocess.run(
        [sys.executable, "-m", "flowstone_host.cli", "schema", "IOManager"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert schema.returncode == 0, schema.stderr
    assert json.loads(schema.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
