"""config/examples/postgres validates: every backend of the demo pipeline on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "examples" / "postgres"


def _validate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "flowstone_host.cli",
            "validate",
            "--config",
            str(EXAMPLE / "host.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )


def test_the_postgres_example_validates_with_its_dsn_from_the_environment() -> None:
    env = {**os.environ, "FLOWSTONE_PG_DSN": "postgresql://postgres@127.0.0.1:5432/postgres"}
    result = _validate(env)
    assert result.returncode == 0, result.stdout + result.stderr
    missing = _validate({k: v for k, v in env.items() if k != "FLOWSTONE_PG_DSN"})
    assert missing.returncode == 1 and "FLOWSTONE_PG_DSN" in missing.stdout + missing.stderr


def test_every_backend_is_postgres_and_depends_on_the_pool() -> None:
    docs = [
        doc
        for path in sorted((EXAMPLE / "plugins.d").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]
    backends = [
        d
        for d in docs
        if d["kind"]
        in ("IOManager", "ScatterCoordinator", "ParallelCoordinator", "RoutingCoordinator")
    ]
    assert {d["kind"] for d in backends} == {
        "IOManager",
        "ScatterCoordinator",
        "ParallelCoordinator",
        "RoutingCoordinator",
    }
    for doc in backends:
        assert doc["spec"]["plugin"] == "postgres"
        assert doc["spec"]["depends_on"] == ["pg"] and doc["spec"]["config"]["resource"] == "pg"
    demo = yaml.safe_load_all((ROOT / "plugins.d" / "20-demo-pipeline.yaml").read_text())
    assets = {d["metadata"]["name"] for d in docs if d["kind"] == "Asset"}
    assert assets == {d["metadata"]["name"] for d in demo}
