"""A third-party distribution, written from the README alone, is tested with the kit.

``tests/fixtures/dists/flowstone-example-io`` is installed into the test environment by
``make install`` (every folder under ``tests/fixtures/dists`` is).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from stevedore import DriverManager

from flowstone_host import IOManager
from flowstone_host.contracts import check_compatibility, contract_for

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "tests" / "fixtures" / "dists" / "flowstone-example-io"

pytestmark = pytest.mark.integration


def test_stevedore_finds_the_example_io_manager() -> None:
    manager = DriverManager("flowstone.io_managers", "example", invoke_on_load=False)
    plugin = manager.driver
    assert issubclass(plugin, IOManager)
    assert check_compatibility(plugin, contract_for("IOManager")).status == "compatible"
    assert plugin.__module__ == "flowstone_example_io"


def test_the_distributions_own_conformance_tests_pass(tmp_path: Path) -> None:
    # This checkout's flowstone_host comes first, so the kit under test is the one run.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(DIST / "tests"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(tmp_path / "basetemp"),
        ],
        cwd=DIST,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) > 0, output
    assert " failed" not in output and " error" not in output, output
