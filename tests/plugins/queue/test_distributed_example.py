"""config/examples/distributed: the demo pipeline's scatter and branches on worker
processes, and back in-process, by changing only the Executor manifest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[3]
CONFIG = "config/examples/distributed/host.yaml"


@pytest.fixture
def example(pg_dsn: str, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of the config tree and the shipped manifests, on a database of its own."""
    database = f"example_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "plugins.d", tmp_path / "plugins.d")
    env = {**os.environ, "FLOWSTONE_PG_DSN": make_conninfo(pg_dsn, dbname=database)}
    try:
        yield tmp_path, env
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "flowstone_host.cli", *args, "--config", CONFIG]


def _queued(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if row is None or row[0] is None:
            return 0
        found = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"
        ).fetchone()
    return int(found[0]) if found else 0


def test_the_demo_pipeline_moves_to_the_queue_and_back_by_its_executor_manifest(
    example: tuple[Path, dict[str, str]],
) -> None:
    folder, env = example
    dsn = env["FLOWSTONE_PG_DSN"]
    run = subprocess.Popen(
        _cli("materialize", "report", "--run-id", "queued"),
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    worker = None
    try:
        deadline = time.monotonic() + 60
        while _queued(dsn) == 0:  # no worker yet: the scatter's chunks wait in the queue
            assert run.poll() is None and time.monotonic() < deadline, run.stdout
            time.sleep(0.05)
        shown = subprocess.run(
            _cli("runs", "show", "queued", "--local"),
            cwd=folder, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "enriched_lines [~n]: running" in shown.stdout
        assert "queued, 0 running" in shown.stdout, shown.stdout
        worker = subprocess.Popen(
            _cli("worker", "--concurrency", "2"),
            cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        output, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
        if worker is not None:
            worker.terminate()
            assert worker.wait(timeout=30) == 0
    assert run.returncode == 0, output
    assert "run queued succeeded" in output
    # Back to the local executor: only the Executor manifest goes; no worker runs.
    (folder / "config/examples/distributed/plugins.d/10-queue.yaml").unlink()
    local = subprocess.run(
        _cli("materialize", "report", "--fresh", "--force"),
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert local.returncode == 0, local.stdout + local.stderr
    assert "enriched_lines: succeeded" in local.stdout and _queued(dsn) == 0


def test_a_worker_without_a_queue_executor_says_which_plugin_it_needs(
    example: tuple[Path, dict[str, str]],
) -> None:
    folder, env = example
    (folder / "config/examples/distributed/plugins.d/10-queue.yaml").unlink()
    result = subprocess.run(
        _cli("worker"), cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "plugin: procrastinate" in result.stderr and "'local'" in result.stderr
