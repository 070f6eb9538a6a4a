# ruff: noqa: F811  (pytest fixtures imported from test_daemon are parameters here)
"""Plugins that stall or flood: the real daemon stays reachable, bounded and stoppable.

A resource whose ``setup()`` hangs fails its declaration after ``setup_timeout_s`` (its
previous instance kept) while the admin API answers; SIGTERM flips readiness at once and
the process exits within ``shutdown.grace_s`` whatever the plugin does; slow health checks
overlap; a huge health reason is cut; a key the plugin's schema marks secret is redacted.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_daemon import (
    Daemon,
    Start,
    Workspace,
    document,
    host_config,
    io_manager,
    manifest,
    spawn,
    start,  # noqa: F401 (a fixture)
    wait_until,
    ws,  # noqa: F401 (a fixture)
)

pytestmark = pytest.mark.integration

GRACE_S = 2.0
SLACK_S = 1.0  # the stop's own margin, as the daemon logs it
#: How long the process may take to be gone after SIGTERM, as the test sees it: on a loaded
#: machine starting, scheduling and reaping a process can take seconds the daemon does not
#: control. Still far from the hour a stalled plugin would hold it for. The daemon's own
#: bound (``grace_s``) is checked on the times it logs (:func:`stop_took`).
EXIT_S = 30.0


def stalling(name: str, **config: Any) -> str:
    """A ``hostile-stalling`` resource: sleeps in setup/teardown/health as configured."""
    return document("Resource", name, "hostile-stalling", **config)


ON_REQUEST = {"debounce_ms": 3_600_000, "rescan_interval_s": 0}


def limits(setup_timeout_s: float) -> dict[str, Any]:
    return {"sandbox": {"limits": {"setup_timeout_s": setup_timeout_s}}}


def stop_took(ws: Workspace) -> float:
    """Seconds from the daemon's "SIGTERM: stopping." record to its last record (its
    "Stopped." or the error of a stop past the grace), by the times it logged them."""
    records = ws.logged()
    began = next(r["ts"] for r in records if r["message"].endswith(": stopping."))
    return _seconds(records[-1]["ts"]) - _seconds(began)


def _seconds(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def launch(ws: Workspace) -> Iterator[Any]:
    """Start the daemon and return as soon as its admin API listens (before the first load
    is done); always kill it afterwards."""
    daemons: list[Daemon] = []

    def _launch(**spec: Any) -> Daemon:
        host_config(ws, spec)
        daemon = Daemon(spawn(ws), ws)
        daemons.append(daemon)
        daemon.url = wait_until(lambda: listening(daemon), "the admin API")
        return daemon

    yield _launch
    for daemon in daemons:
        daemon.kill()


def listening(daemon: Daemon) -> str:
    """The admin URL ``state/daemon.json`` gives once the API listens, or ""."""
    assert daemon.process.poll() is None, f"the daemon exited:\n{daemon.workspace.log()}"
    try:
        url: str = json.loads((daemon.workspace.root / "state" / "daemon.json").read_text())["url"]
    except (OSError, ValueError):
        return ""
    return url


def running_logged(ws: Workspace) -> bool:
    return any("is running" in r["message"] for r in ws.logged())


def test_a_hung_setup_at_startup_fails_after_the_timeout_while_the_admin_api_answers(
    ws: Workspace, launch: Any
) -> None:
    started = ws.root / "started"
    ws.write("a.yaml", manifest(stalling("stuck", setup_s=3600, started=str(started))))
    ws.write("b.yaml", io_manager("other"))
    daemon = launch(**limits(2))
    wait_until(started.exists, "setup() to begin")
    assert daemon.get("/healthz").status == 200  # bound before the first load
    ready = daemon.get("/readyz")
    assert ready.status == 503 and "the first load has not finished" in json.dumps(ready.body)
    assert not running_logged(ws)  # the "running" line still means the first load is done
    wait_until(lambda: running_logged(ws), "the first load to give up on setup()")
    stuck = daemon.declaration("stuck")
    assert stuck is not None and stuck["state"] == "failed"
    assert "did not return within 2 s" in stuck["reason"]
    assert "setup_timeout_s" in stuck["reason"]
    assert daemon.active() == {"other"}
    [call] = daemon.status()["abandoned_calls"]
    assert "'stuck'" in call["call"] and "setup()" in call["call"]
    assert daemon.stop() == 0


def test_a_hung_setup_on_reload_keeps_the_previous_instance_and_the_api_answers(
    ws: Workspace, start: Start
) -> None:
    ws.write("a.yaml", stalling("db", label="v1"))
    daemon = start(reload=ON_REQUEST, **limits(2))
    assert daemon.active() == {"db"}
    started = ws.root / "started"
    ws.write("a.yaml", stalling("db", label="v2", setup_s=3600, started=str(started)))
    replies: list[Any] = []
    reloading = threading.Thread(target=lambda: replies.append(daemon.reload()))
    began = time.monotonic()
    reloading.start()
    wait_until(started.exists, "the new setup() to begin")
    probe = time.monotonic()
    assert daemon.get("/healthz").status == 200
    assert daemon.get("/readyz").status == 200  # v1 still serves
    assert time.monotonic() - probe < 1.0
    reloading.join(10)
    assert time.monotonic() - began < 2 + 3  # the timeout, not the hour
    [reply] = replies
    assert reply.status == 409 and reply.body["outcome"] == "partial"
    [change] = reply.body["changes"]
    assert change["action"] == "failed" and change["previous_version_kept"] is True
    db = daemon.declaration("db")
    assert db is not None and db["state"] == "active"
    assert "setup_timeout_s" in db["newer_version_rejected"]["reason"]
    assert daemon.get("/readyz").status == 200
    # a manual reload while the abandoned setup still runs does not start another
    again = daemon.reload()
    assert again.status == 409 and "has still not returned" in json.dumps(again.body)
    assert len(daemon.status()["abandoned_calls"]) == 1


def test_sigterm_during_a_hung_setup_flips_readiness_at_once_and_exits_within_grace(
    ws: Workspace, start: Start
) -> None:
    ws.write("a.yaml", stalling("db", label="v1"))
    spec = {"reload": ON_REQUEST, **limits(600)}
    daemon = start(shutdown={"grace_s": GRACE_S}, **spec)
    started = ws.root / "started"
    ws.write("a.yaml", stalling("db", label="v2", setup_s=3600, started=str(started)))
    daemon.signal(signal.SIGHUP)  # the main thread reloads, and hangs in setup()
    wait_until(started.exists, "the new setup() to begin")
    daemon.signal(signal.SIGTERM)
    # "At once": while the setup still hangs and before the grace runs out, not after the
    # setup returns (in an hour). Polled: the handler runs a moment after the signal.
    wait_until(lambda: daemon.get("/readyz").status == 503, "readiness to flip", GRACE_S)
    assert daemon.get("/healthz").status == 503
    assert daemon.process.wait(GRACE_S + EXIT_S) == 0
    assert stop_took(ws) < GRACE_S + SLACK_S


def test_sigterm_during_a_hung_first_load_exits_within_grace(ws: Workspace, launch: Any) -> None:
    started = ws.root / "started"
    ws.write("a.yaml", stalling("stuck", setup_s=3600, started=str(started)))
    daemon = launch(shutdown={"grace_s": GRACE_S}, **limits(600))
    wait_until(started.exists, "setup() to begin")
    daemon.signal(signal.SIGTERM)
    daemon.process.wait(GRACE_S + EXIT_S)
    assert stop_took(ws) < GRACE_S + SLACK_S


def test_a_hung_teardown_cannot_hold_the_stop_past_grace(ws: Workspace, start: Start) -> None:
    ws.write("a.yaml", manifest(stalling("db", teardown_s=3600), io_manager("other")))
    daemon = start(shutdown={"grace_s": GRACE_S}, **limits(600))
    daemon.signal(signal.SIGTERM)
    assert daemon.process.wait(GRACE_S + EXIT_S) == 0
    assert stop_took(ws) < GRACE_S + SLACK_S
    assert any("teardown did not return" in r["message"] for r in ws.logged())


def test_slow_health_checks_run_together_at_startup(ws: Workspace, start: Start) -> None:
    names = [f"slow{i}" for i in range(5)]
    ws.write("a.yaml", manifest(*(stalling(name, health_s=1.5) for name in names)))
    daemon = start(health={"interval_s": 0, "timeout_s": 3}, reload=ON_REQUEST)
    assert daemon.active() == set(names)
    took = daemon.status()["last_reload"]["duration_s"]
    assert 1.5 <= took < 3.5, took  # one check's time, not five


def test_a_huge_health_reason_is_cut_in_status_and_in_the_log(ws: Workspace, start: Start) -> None:
    ws.write("a.yaml", stalling("flood", reason_bytes=20_000_000))
    daemon = start(health={"interval_s": 0, "timeout_s": 10})
    reply = daemon.get("/status")
    text = json.dumps(reply.body)
    assert len(text) < 100_000
    flood = daemon.declaration("flood")
    assert flood is not None and flood["state"] == "unhealthy"
    assert flood["health"]["reason"].endswith("more characters]")
    assert "[cut: " in flood["reason"]
    assert daemon.stop() == 0
    log = (ws.root / "daemon.log").read_text()
    assert max(len(line) for line in log.splitlines()) < 100_000


def test_keys_the_plugin_schema_marks_secret_are_redacted_in_status(
    ws: Workspace, start: Start
) -> None:
    ws.write("a.yaml", stalling("db", opaque="hunter2", nested={"pin": "8642"}, label="plain"))
    daemon = start()
    config = daemon.config("db")
    assert config["opaque"] == "<redacted>" and config["nested"] == {"pin": "<redacted>"}
    assert config["label"] == "plain"
    ws.write("a.yaml", stalling("db", opaque="hunter3", setup_s="not a number"))
    assert daemon.reload().status == 409  # a failed new version shows its config too
    assert "hunter" not in json.dumps(daemon.status())
    assert "8642" not in json.dumps(daemon.status())
