"""``make test`` keeps its fixture plugins out of the environment ``make run`` uses.

Regression test of issue 14, item 11: the tests installed hostile fixture distributions
into ``.venv``, after which ``flowstone-host plugins`` there listed them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _planned(target: str) -> str:
    """The commands ``make TARGET`` would run from scratch, in throwaway folder names."""
    return subprocess.run(
        ["make", "-n", "-B", target, "VENV=/nonexistent/run", "TEST_VENV=/nonexistent/test"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_installs_no_fixture_distribution() -> None:
    run = _planned("run")
    assert "tests/fixtures/dists" not in run
    assert "/nonexistent/test" not in run


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_test_installs_the_fixtures_into_its_own_environment() -> None:
    test = _planned("test")
    installs = [line for line in test.splitlines() if "tests/fixtures/dists" in line]
    assert installs and all("/nonexistent/test/bin/python" in line for line in installs)
    assert "/nonexistent/run" not in test
