# ruff: noqa: F811  (pytest fixtures imported from test_daemon are parameters here)
"""/status names what holds each isolated declaration's child: a cgroup, or its group."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_daemon import (
    Start,
    Workspace,
    children,
    document,
    start,  # noqa: F401 (a fixture)
    wait_until,
    ws,  # noqa: F401 (a fixture)
)

from flowstone_host.loading.isolation.containment import host_cgroup


def _isolated(name: str) -> str:
    return document("IOManager", name, "memory").replace(
        '"plugin": "memory"', '"plugin": "memory", "isolation": "process"'
    )


def _writable_cgroup() -> bool:
    base = host_cgroup()
    return base is not None and os.access(base, os.W_OK)


def _cgroup(pid: int) -> str:
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    return next(line[3:] for line in lines if line.startswith("0::"))


@pytest.mark.skipif(not _writable_cgroup(), reason="no writable cgroup v2 here")
def test_status_says_an_isolated_child_runs_in_its_own_cgroup(ws: Workspace, start: Start) -> None:
    ws.write("a.yaml", _isolated("far") + "---\n" + document("IOManager", "near", "memory"))
    daemon = start()
    far, near = daemon.declaration("far"), daemon.declaration("near")
    assert far is not None and near is not None, json.dumps(daemon.status())
    assert (far["isolation"], far["containment"]) == ("process", "cgroup")
    assert "containment" not in near  # in-process: nothing to contain
    [child] = wait_until(lambda: children(daemon.process.pid), "the isolated child")
    own = _cgroup(child)
    assert own != _cgroup(daemon.process.pid)
    assert Path(own).name.startswith(f"flowstone-h{daemon.process.pid}-")


def test_status_says_process_group_when_the_fallback_is_forced(
    ws: Workspace, start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSTONE_ISOLATION_CONTAINMENT", "process_group")  # the daemon's env
    ws.write("a.yaml", _isolated("far"))
    daemon = start()
    far = daemon.declaration("far")
    assert far is not None and far["state"] == "active", json.dumps(daemon.status())
    assert far["containment"] == "process_group"
    [child] = wait_until(lambda: children(daemon.process.pid), "the isolated child")
    assert _cgroup(child) == _cgroup(daemon.process.pid)
