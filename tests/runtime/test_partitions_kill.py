"""A backfill killed with SIGKILL, then started again, finishes without redoing finished
partitions (a real subprocess, Parquet files as the store).

10,000 daily partitions (2000-01-01 to 2027-05-18), four at a time, as the issue asks.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAYS = 10_000
CONCURRENCY = 4

PIPELINE = """\
apiVersion: flowstone/v1
kind: IOManager
metadata: {name: files}
spec:
  plugin: parquet
  config: {root: "ROOT"}
---
apiVersion: flowstone/v1
kind: Asset
metadata: {name: days}
spec:
  compute: tests.runtime.test_partitions_kill:day_table
  io_manager: files
  partitions: {daily: {start: "START", end: "END"}}
"""


def day_table(ctx: Any) -> Any:
    """A one-row table for the day; appends the day to $FS_TEST_LOG once computed."""
    import pyarrow as pa

    time.sleep(float(os.environ.get("FS_TEST_SLEEP", "0")))
    with open(os.environ["FS_TEST_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{ctx.partition.isoformat()}\n")
    return pa.table({"day": [ctx.partition.isoformat()], "n": [ctx.partition.toordinal()]})


def setup(tmp_path: Path, start: str = "2024-01-01", end: str = "2024-12-31") -> Path:
    """A copy of the shipped config with the `days` asset (daily from ``start`` to ``end``)
    on Parquet files; the host.yaml."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    shutil.copytree(REPO / "plugins.d", tmp_path / "plugins.d", ignore=shutil.ignore_patterns("2*"))
    text = PIPELINE.replace("ROOT", str(tmp_path / "store"))
    text = text.replace("START", start).replace("END", end)
    (tmp_path / "plugins.d" / "30-days.yaml").write_text(text)
    host = tmp_path / "config" / "host.yaml"
    host.write_text(
        host.read_text().replace(
            'allow: ["flowstone_host.examples.*"]',
            'allow: ["flowstone_host.examples.*", "tests.runtime.*"]',
        )
    )
    return host


def _start(host: Path, log: Path, out: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "FS_TEST_LOG": str(log), "FS_TEST_SLEEP": "0", "PYTHONPATH": str(REPO)}
    command = ["materialize", "days", "--missing", "--concurrency", str(CONCURRENCY)]
    return subprocess.Popen(
        [sys.executable, "-m", "flowstone_host.cli", *command, "--config", str(host)],
        env=env,
        cwd=host.parent.parent,
        stdout=out.open("w"),  # a file, not a pipe: 10,000 progress lines would fill it
        stderr=subprocess.STDOUT,
        text=True,
    )


def _lines(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _stored(root: Path) -> set[str]:
    return {p.parent.name.removeprefix("partition=~d") for p in root.rglob("part-0.parquet")}


@pytest.mark.integration
def test_killed_backfill_resumes_without_redoing_finished_partitions(tmp_path: Path) -> None:
    host, log = setup(tmp_path, "2000-01-01", "2027-05-18"), tmp_path / "days.log"
    first = _start(host, log, tmp_path / "first.out")
    # Killed a third of the way in, however long a loaded machine takes to get there (at
    # 20 s, a slow start could leave too few partitions stored to tell a resume).
    deadline = time.monotonic() + 180
    while len(_lines(log)) < DAYS // 3 and time.monotonic() < deadline:
        assert first.poll() is None, (tmp_path / "first.out").read_text()[-2000:]
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    stored_before = _stored(tmp_path / "store")
    computed_before = len(_lines(log))
    assert DAYS // 4 < len(stored_before) < DAYS, "killed partway"

    second = _start(host, log, tmp_path / "second.out")
    second.wait(timeout=300)
    out = (tmp_path / "second.out").read_text()
    assert second.returncode == 0, out[-2000:]
    assert "resuming run" in out

    assert len(_stored(tmp_path / "store")) == DAYS
    redone = Counter(_lines(log)[computed_before:])
    assert not set(redone) & stored_before  # nothing stored before the kill ran again
    assert max(redone.values()) == 1
    executions = Counter(_lines(log))
    assert len(executions) == DAYS
    # Only partitions computed but not yet stored when the kill came ran twice.
    assert sum(n - 1 for n in executions.values()) <= CONCURRENCY
