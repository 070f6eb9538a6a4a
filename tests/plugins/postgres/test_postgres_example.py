"""config/examples/postgres: the demo pipeline with every backend on PostgreSQL, by YAML alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
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


@pytest.mark.integration  # the CLI in subprocesses
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
    assert not [d for d in docs if d["kind"] == "Asset"]  # the shipped pipeline, not a copy


@pytest.mark.integration  # the CLI in subprocesses on a real PostgreSQL
def test_the_demo_pipeline_runs_on_postgres_by_config_alone(pg_dsn: str, tmp_path: Path) -> None:
    import psycopg
    from psycopg.conninfo import make_conninfo

    database = f"example_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    dsn = make_conninfo(pg_dsn, dbname=database)
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "plugins.d", tmp_path / "plugins.d")
    config = "config/examples/postgres/host.yaml"
    command = [sys.executable, "-m", "flowstone_host.cli", "materialize", "report"]
    env = {**os.environ, "FLOWSTONE_PG_DSN": dsn}
    run = subprocess.run(
        [*command, "--config", config], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    with psycopg.connect(dsn) as conn:
        stored = {row[0] for row in conn.execute("SELECT asset FROM flowstone.io_values")}
        counts = {
            table: conn.execute(f"SELECT count(*) FROM flowstone.{table}").fetchone()[0]  # type: ignore[index]
            for table in ("scatter_barriers", "parallel_executions", "routing_decisions")
        }
    assert {"orders", "order_totals", "enriched_lines", "order_stats", "report"} <= stored
    assert stored & {"standard_report", "high_value_report"}  # the routed one
    assert all(counts.values()), counts  # every coordinator is PostgreSQL's
    again = subprocess.run(
        [*command, "--config", config], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stdout + again.stderr
