"""Runs through the real daemon: ``POST /runs`` on ``flowstone-host run`` in a subprocess.

The workspace holds a copy of the shipped plugins.d (the embedded defaults and the demo
pipeline) and a module of its own, ``gated_work`` (the daemon's working folder is on its
``sys.path``), whose scatter items wait for a file the test creates: so a run can be kept
in flight while the test reloads under it.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from test_daemon import ON_REQUEST, Daemon, Start, Workspace, start, wait_until, ws

from flowstone_host.daemon.client import AdminReply

__all__ = ["start", "ws"]  # the fixtures, shared with test_daemon

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CALLABLES = {"allow": ["flowstone_host.examples.*", "gated_work"]}

GATED_WORK = """
import os
import time

import pyarrow


def items(config, deps):
    return ({"scatter_key": f"item-{n}", "n": n} for n in range(3))


def wait_for_gate(ctx, item):
    open("started", "a").close()
    deadline = time.monotonic() + 20
    while not os.path.exists("gate"):
        if time.monotonic() > deadline:
            raise TimeoutError("no gate file")
        time.sleep(0.01)
    return item["n"]


def table(ctx, results):
    return pyarrow.table({"n": sorted(results.values())})
"""


def warehouse(root: Path) -> str:
    """The parquet IO manager ``warehouse`` at ``root``, and the asset stored there."""
    io = {"apiVersion": "flowstone/v1", "kind": "IOManager", "metadata": {"name": "warehouse"}}
    io["spec"] = {"plugin": "parquet", "config": {"root": str(root)}}
    asset = {"apiVersion": "flowstone/v1", "kind": "Asset", "metadata": {"name": "gathered"}}
    asset["spec"] = {
        "io_manager": "warehouse",
        "scatter": {
            "reader": "custom",
            "reader_config": {"function": "gated_work:items"},
            "item": "gated_work:wait_for_gate",
            "gather": "gated_work:table",
        },
    }
    return f"{json.dumps(io)}\n---\n{json.dumps(asset)}\n"


@pytest.fixture
def shipped(ws: Workspace) -> Workspace:
    for manifest in sorted((REPO / "plugins.d").glob("*.yaml")):
        shutil.copy(manifest, ws.plugins / manifest.name)
    (ws.root / "gated_work.py").write_text(GATED_WORK)
    return ws


def started_run(daemon: Daemon, body: dict[str, Any]) -> str:
    begun = time.monotonic()
    reply = daemon.client().post("/runs", body)
    assert reply.status == 202, reply
    assert time.monotonic() - begun < 2.0  # an answer at once, not after the run
    run_id: str = reply.body["run_id"]
    return run_id


def ended(daemon: Daemon, run_id: str, timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        reply: AdminReply = daemon.get(f"/runs/{run_id}")
        assert reply.status == 200, reply
        return reply.body if reply.body["status"] != "running" else None

    result: dict[str, Any] = wait_until(done, f"run {run_id} to end", timeout)
    return result


def test_post_runs_of_the_demo_report_returns_at_once_and_succeeds(
    shipped: Workspace, start: Start
) -> None:
    daemon = start(reload=ON_REQUEST, callables=CALLABLES)
    run_id = started_run(daemon, {"asset": "report"})
    run = ended(daemon, run_id)
    assert run["status"] == "succeeded", run
    assert {"orders", "enriched_lines", "order_stats", "report"} <= set(run["outcome"])
    scatter = [s["scatter"] for s in run["steps"] if s["asset"] == "enriched_lines"]
    assert scatter == [{"completed": 50, "failed": 0, "total": 50}]
    listing = daemon.get("/runs?status=succeeded&asset=report").body
    assert [r["run_id"] for r in listing["runs"]] == [run_id]


def test_a_run_survives_a_reload_that_replaces_its_io_manager(
    shipped: Workspace, start: Start
) -> None:
    first, second = shipped.root / "first", shipped.root / "second"
    shipped.write("30-warehouse.yaml", warehouse(first))
    daemon = start(reload=ON_REQUEST, callables=CALLABLES)
    run_id = started_run(daemon, {"asset": "gathered"})
    wait_until(lambda: (shipped.root / "started").exists(), "the first item to start")

    shipped.write("30-warehouse.yaml", warehouse(second))
    reload = daemon.reload()
    assert reload.status == 200, reload
    assert daemon.config("warehouse")["root"] == str(second)  # the new declaration serves
    assert daemon.get(f"/runs/{run_id}").body["status"] == "running"

    (shipped.root / "gate").touch()
    run = ended(daemon, run_id)
    assert run["status"] == "succeeded", run
    # the values went to the IO manager instance the run started with, not the new one
    assert pq.read_table(first / "gathered" / "part-0.parquet").column("n").to_pylist() == [
        0,
        1,
        2,
    ]
    assert not (second / "gathered").exists()

    later = ended(daemon, started_run(daemon, {"asset": "gathered", "force": True}))
    assert later["status"] == "succeeded", later
    assert (second / "gathered" / "part-0.parquet").exists()  # later runs use the new one


def test_the_runs_command_asks_the_daemon_and_cancels_through_it(
    shipped: Workspace,
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from flowstone_host.cli.main import main

    shipped.write("30-warehouse.yaml", warehouse(shipped.root / "first"))
    daemon = start(reload=ON_REQUEST, callables=CALLABLES)
    monkeypatch.chdir(shipped.root)
    monkeypatch.delenv("FLOWSTONE_ADMIN_TOKEN", raising=False)
    run_id = started_run(daemon, {"asset": "gathered"})
    config = ["--config", "host.yaml"]

    assert main(["runs", "show", run_id, "--format", "json", *config]) == 0
    assert json.loads(capsys.readouterr().out)["live"] is True  # the daemon answered
    assert main(["runs", "show", run_id, "--format", "json", "--local", *config]) == 0
    assert "live" not in json.loads(capsys.readouterr().out)  # the state folder did
    assert main(["runs", *config]) == 0
    assert f"{run_id}  running" in capsys.readouterr().out

    assert main(["runs", "cancel", run_id, *config]) == 0
    assert capsys.readouterr().out.strip() == f"run {run_id}: cancelling"
    (shipped.root / "gate").touch()  # the items in flight end; no new batch is dispatched
    assert ended(daemon, run_id)["status"] == "cancelled"
    assert main(["runs", "cancel", run_id, *config]) == 1  # finished already
    assert main(["runs", "show", "nope", *config]) == 1
