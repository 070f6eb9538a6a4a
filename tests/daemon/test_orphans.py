# ruff: noqa: F811  (pytest fixtures imported from test_daemon are parameters here)
"""After kill -9 of the host, its isolated children die and its work folders are swept."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from test_daemon import (
    Start,
    Workspace,
    children,
    document,
    start,  # noqa: F401 (a fixture)
    wait_until,
    ws,  # noqa: F401 (a fixture)
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _isolated(name: str) -> str:
    return document("IOManager", name, "memory").replace(
        '"plugin": "memory"', '"plugin": "memory", "isolation": "process"'
    )


def test_isolated_children_die_with_a_killed_host_and_a_start_sweeps_its_folders(
    ws: Workspace, start: Start
) -> None:
    ws.write("a.yaml", _isolated("far"))
    daemon = start()
    assert daemon.state("far") == "active", json.dumps(daemon.status())
    [child] = wait_until(lambda: children(daemon.process.pid), "the isolated child")
    host_pid = daemon.process.pid
    folders = [
        p for p in Path(tempfile.gettempdir()).glob(f"flowstone-*-h{host_pid}-*") if p.is_dir()
    ]
    assert folders, "the child's work folder names its host"
    daemon.kill()  # SIGKILL: no teardown runs
    wait_until(lambda: not _alive(child), "the orphan to exit", 5)
    assert all(p.exists() for p in folders)  # nobody cleaned up after the killed host
    start()
    wait_until(lambda: not any(p.exists() for p in folders), "the sweep", 5)
    assert os.getpid()  # the test process's own folders are never swept
