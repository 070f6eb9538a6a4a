"""The real daemon end to end: ``flowstone-host run`` in a subprocess on a temporary plugins.d.

Every test drives the daemon only through files, signals and its admin API, and reads
what happened from ``/status``, ``/readyz``, ``/metrics``, its exit status and the journal
the fixture plugins (``flowstone-fixture-plugins``) write their setups and teardowns to.
Waits poll with generous timeouts; the outcomes asserted are tight.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from flowstone_host.daemon.client import AdminClient, AdminReply

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path("/proc/sys/fs/inotify").exists(), reason="needs inotify"),
]

WAIT_S = 60.0  # generous: only reached when something is wrong (or on a very loaded machine)
POLL_S = 0.02
DEBOUNCE_MS = 100
TOKEN = "s3cret-token"

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], what: str, timeout: float = WAIT_S) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Raises:
        AssertionError: ``timeout`` passed first; the message names ``what`` and the last value.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}; last value: {value!r}")
        time.sleep(POLL_S)


# -- manifests ---------------------------------------------------------------------------


def document(kind: str, name: str, plugin: str, **config: Any) -> str:
    """One manifest document, in YAML's flow style (JSON)."""
    spec: dict[str, Any] = {"plugin": plugin, **({"config": config} if config else {})}
    doc = {"apiVersion": "flowstone/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return json.dumps(doc) + "\n"


def manifest(*documents: str) -> str:
    return "---\n".join(documents)


def io_manager(name: str, **config: Any) -> str:
    """An in-memory IO manager (the built-in ``memory`` plugin)."""
    return document("IOManager", name, "memory", **config)


# -- the workspace and the daemon ------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    """A daemon's folder: ``host.yaml``, ``plugins.d/``, the journal and the daemon's log."""

    root: Path

    @property
    def plugins(self) -> Path:
        return self.root / "plugins.d"

    @property
    def journal(self) -> Path:
        return self.root / "journal.txt"

    def resource(self, name: str, **config: Any) -> str:
        """A journal resource, labelled ``name`` unless ``label`` is given."""
        return document("Resource", name, "journal", **self._journal_config(name, config))

    def journal_io(self, name: str, **config: Any) -> str:
        """A journal IO manager: it journals ``open <label>`` when built, ``close`` when closed."""
        return document("IOManager", name, "journal", **self._journal_config(name, config))

    def _journal_config(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        return {"journal": str(self.journal), "label": name, **config}

    def write(self, file: str, text: str) -> None:
        """Write ``plugins.d/file`` atomically: a temporary file renamed over it."""
        temporary = self.plugins / f".{file}.tmp"
        temporary.write_text(text)
        os.replace(temporary, self.plugins / file)

    def journal_lines(self) -> list[str]:
        return self.journal.read_text().splitlines() if self.journal.exists() else []

    def log(self) -> str:
        return (self.root / "daemon.log").read_text(errors="replace")

    def logged(self) -> list[dict[str, Any]]:
        """The daemon's JSON log records, oldest first."""
        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]


@dataclass
class Daemon:
    """A running ``flowstone-host run`` on a workspace, and its admin API."""

    process: subprocess.Popen[bytes]
    workspace: Workspace
    url: str = ""

    def client(self, token: str | None = None) -> AdminClient:
        return AdminClient(self.url, token=token, timeout=WAIT_S)

    def get(self, path: str) -> AdminReply:
        return self.client().get(path)

    def reload(self, token: str | None = None) -> AdminReply:
        return self.client(token).post("/reload")

    def status(self) -> dict[str, Any]:
        reply = self.get("/status")
        assert reply.status == 200, reply
        return reply.body

    def declaration(self, name: str) -> dict[str, Any] | None:
        """The declaration called ``name`` in ``/status``, or ``None``."""
        found = [d for d in self.status()["declarations"] if d["name"] == name]
        return found[0] if found else None

    def config(self, name: str) -> Any:
        """The (redacted) config ``/status`` shows for ``name``, or ``None`` if not declared."""
        declaration = self.declaration(name)
        return declaration["config"] if declaration else None

    def state(self, name: str) -> str | None:
        """``active``, ``failed`` or ``unhealthy`` from ``/status``, or ``None``."""
        declaration = self.declaration(name)
        return declaration["state"] if declaration else None

    def active(self) -> set[str]:
        """The names of the declarations ``/status`` shows as active."""
        return {d["name"] for d in self.status()["declarations"] if d["state"] == "active"}

    def rejected(self) -> dict[str, list[dict[str, Any]]]:
        """``/status`` rejected files: file name -> its errors."""
        return {Path(f["file"]).name: f["errors"] for f in self.status()["rejected_files"]}

    def reloads(self) -> float:
        """``flowstone_reloads_total`` summed over every outcome, from ``/metrics``."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{self.url}/metrics", timeout=WAIT_S) as response:
            text = response.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "flowstone_reloads_total"
        )

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> int:
        """SIGTERM and wait; return the exit status."""
        self.signal(signal.SIGTERM)
        return self.process.wait(WAIT_S)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(WAIT_S)


def host_config(workspace: Workspace, spec: Mapping[str, Any]) -> None:
    """Write ``host.yaml`` (JSON is YAML): small debounce, frequent rescans and health checks."""
    defaults: dict[str, Any] = {
        "plugins_dir": "plugins.d",
        "state_dir": "state",
        "reload": {"debounce_ms": DEBOUNCE_MS, "rescan_interval_s": 1},
        "health": {"interval_s": 0.5, "timeout_s": 2},
        "shutdown": {"grace_s": 2},
        "admin": {"listen": "127.0.0.1:0", "token": ""},
    }
    spec = {**defaults, **spec}
    doc = {"apiVersion": "flowstone/v1", "kind": "HostConfig", "metadata": {"name": "e2e"}}
    (workspace.root / "host.yaml").write_text(json.dumps({**doc, "spec": spec}, indent=2))


RUN = [sys.executable, "-m", "flowstone_host.cli", "run", "--config", "host.yaml"]
RUN += ["--log-format", "json", "--admin-listen", "127.0.0.1:0"]


def daemon_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "FLOWSTONE_ADMIN_TOKEN"}


def spawn(workspace: Workspace, log_level: str = "INFO") -> subprocess.Popen[bytes]:
    """Start ``flowstone-host run`` on the workspace, its JSON log lines in ``daemon.log``."""
    with open(workspace.root / "daemon.log", "wb") as log:
        return subprocess.Popen(
            [*RUN, "--log-level", log_level],
            cwd=workspace.root,
            env=daemon_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # exited while we looked
            continue
        if int(text.rpartition(")")[2].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def admin_url(daemon: Daemon, *, running: bool = True) -> str:
    """The admin URL the daemon logged, or "" before it did; fails at once if it exited.

    ``running``: only the "running" line counts, which follows the first load; else the
    admin API's "listening" line, which precedes it, does too.
    """
    assert daemon.process.poll() is None, f"the daemon exited:\n{daemon.workspace.log()}"
    for line in daemon.workspace.log().splitlines():
        if line.startswith("{") and "admin_url" in line:
            record = json.loads(line)
            if not running or "is running" in record["message"]:
                url: str = record["admin_url"]
                return url
    return ""


Start = Callable[..., Daemon]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path)
    workspace.plugins.mkdir()
    return workspace


@pytest.fixture
def start(ws: Workspace) -> Iterator[Start]:
    """Start the daemon on ``ws`` once its manifests are written; always kill it afterwards.

    ``start(reload={...})``: keyword arguments replace top-level keys of the host config's
    ``spec``; ``log_level`` is the daemon's ``--log-level``. Returns once the daemon logged
    its admin URL (the first load is done).
    """
    daemons: list[Daemon] = []

    def _start(log_level: str = "INFO", **spec: Any) -> Daemon:
        host_config(ws, spec)
        daemon = Daemon(spawn(ws, log_level), ws)
        daemons.append(daemon)
        daemon.url = wait_until(lambda: admin_url(daemon), "the admin URL in the log")
        return daemon

    yield _start
    for daemon in daemons:
        daemon.kill()


# -- the tests ---------------------------------------------------------------------------

# Reload on watcher events only: what happens is the watcher's doing, not a rescan's.
WATCH_ONLY = {"debounce_ms": DEBOUNCE_MS, "rescan_interval_s": 0}
# Reload only when asked to (SIGHUP, POST /reload): an hour of debounce, no rescans.
ON_REQUEST = {"debounce_ms": 3_600_000, "rescan_interval_s": 0}


def source_file(declaration: dict[str, Any] | None) -> str | None:
    """The file name of a ``/status`` declaration's ``source`` (``path:line:col``)."""
    return Path(declaration["source"].rsplit(":", 2)[0]).name if declaration else None


def test_a_manifest_renamed_into_place_is_active_within_a_second(
    ws: Workspace, start: Start
) -> None:
    ws.write("a.yaml", io_manager("first"))
    daemon = start(reload=WATCH_ONLY)
    assert daemon.active() == {"first"}
    (ws.plugins / ".b.yaml.tmp").write_text(io_manager("second"))
    renamed = time.monotonic()
    os.replace(ws.plugins / ".b.yaml.tmp", ws.plugins / "b.yaml")
    wait_until(lambda: "second" in daemon.active(), "'second' to be active")
    assert time.monotonic() - renamed < 1.0
    assert daemon.active() == {"first", "second"}


def test_dotfiles_in_plugins_d_are_ignored_like_editor_files(ws: Workspace, start: Start) -> None:
    ws.write("a.yaml", io_manager("first"))
    (ws.plugins / ".draft.yaml").write_text(io_manager("draft"))
    daemon = start(reload=WATCH_ONLY)
    assert daemon.active() == {"first"}
    (ws.plugins / "._a.yaml").write_text(io_manager("appledouble"))  # macOS copies leave these
    ws.write("b.yaml", io_manager("second"))
    wait_until(lambda: "second" in daemon.active(), "'second' to be active")
    assert daemon.reload().status == 200  # a manual reload reads every file: still ignored
    assert daemon.active() == {"first", "second"}


def test_an_edit_in_place_replaces_only_what_changed(ws: Workspace, start: Start) -> None:
    ws.write("a.yaml", manifest(ws.resource("db"), io_manager("store", copy=False)))
    daemon = start(reload=WATCH_ONLY)
    (ws.plugins / "a.yaml").write_text(manifest(ws.resource("db"), io_manager("store", copy=True)))
    wait_until(lambda: daemon.config("store") == {"copy": True}, "the edit")
    applied = daemon.status()["last_reload"]
    assert applied["changes"] == [{"kind": "IOManager", "name": "store", "action": "replaced"}]
    assert applied["reused"] == 1
    assert ws.journal_lines() == ["setup db"]  # the resource kept its live instance
    [logged] = [r for r in ws.logged() if r["message"] == "IOManager 'store' replaced"]
    fields = (logged["plugin_kind"], logged["declaration"], logged["action"])
    assert fields == ("IOManager", "store", "replaced")


def test_deleting_a_manifest_tears_down_what_it_declared(ws: Workspace, start: Start) -> None:
    ws.write("a.yaml", ws.resource("db"))
    ws.write("b.yaml", io_manager("store"))
    daemon = start(reload=WATCH_ONLY)
    (ws.plugins / "a.yaml").unlink()
    wait_until(lambda: daemon.declaration("db") is None, "'db' to be gone")
    assert daemon.active() == {"store"}
    wait_until(lambda: ws.journal_lines() == ["setup db", "teardown db"], "db's teardown")


def test_renaming_a_manifest_moves_or_drops_its_declarations(ws: Workspace, start: Start) -> None:
    ws.write("a.yaml", io_manager("store"))
    daemon = start(reload=WATCH_ONLY)
    os.rename(ws.plugins / "a.yaml", ws.plugins / "b.yaml")
    wait_until(lambda: source_file(daemon.declaration("store")) == "b.yaml", "the new source")
    os.rename(ws.plugins / "b.yaml", ws.plugins / "b.yaml.disabled")  # not a manifest name
    wait_until(lambda: daemon.declaration("store") is None, "'store' to be gone")


def configmap_version(folder: Path, stamp: str, text: str) -> None:
    """Write a timestamped folder and swap ``..data`` to it by renaming a symlink (kubelet)."""
    (folder / stamp).mkdir()
    (folder / stamp / "cm.yaml").write_text(text)
    os.symlink(stamp, folder / "..data_tmp")
    os.rename(folder / "..data_tmp", folder / "..data")


def test_a_kubernetes_configmap_swap_takes_effect(ws: Workspace, start: Start) -> None:
    configmap_version(ws.plugins, "..2024_01_01_00_00_00.1", io_manager("cm", copy=False))
    os.symlink("..data/cm.yaml", ws.plugins / "cm.yaml")
    daemon = start(reload=WATCH_ONLY)
    assert daemon.config("cm") == {"copy": False}
    configmap_version(ws.plugins, "..2024_01_01_00_01_00.2", io_manager("cm", copy=True))
    shutil.rmtree(ws.plugins / "..2024_01_01_00_00_00.1")
    wait_until(lambda: daemon.config("cm") == {"copy": True}, "the new version")


INVALID_EDIT = """\
apiVersion: flowstone/v1
kind: IOManager
metadata: {name: store}
spec:
  plugin: memory
  config: {copy: true}
  colour: blue
"""


def test_an_invalid_edit_keeps_the_previous_version_and_says_where(
    ws: Workspace, start: Start
) -> None:
    ws.write("a.yaml", io_manager("store", copy=False))
    ws.write("b.yaml", io_manager("other"))
    daemon = start(reload=WATCH_ONLY)
    (ws.plugins / "a.yaml").write_text(INVALID_EDIT)
    (ws.plugins / "b.yaml").unlink()  # in the same reload, a valid change still applies
    errors = wait_until(lambda: daemon.rejected().get("a.yaml", []), "a.yaml to be rejected")
    assert [(e["line"], e["column"], e["code"]) for e in errors] == [(7, 3, "shape.unknown_key")]
    store = daemon.declaration("store")
    assert store is not None and (store["state"], store["config"]) == ("active", {"copy": False})
    assert daemon.active() == {"store"}
    ws.write("a.yaml", io_manager("store", copy=True))  # fixed: applied, no longer rejected
    wait_until(lambda: daemon.config("store") == {"copy": True}, "the fix")
    assert daemon.rejected() == {}


def test_a_resource_whose_setup_fails_does_not_block_the_others(
    ws: Workspace, start: Start
) -> None:
    ws.write("a.yaml", io_manager("store"))
    daemon = start(reload=WATCH_ONLY)
    ws.write("b.yaml", manifest(ws.resource("broken", fail_setup=True), ws.resource("db")))
    wait_until(lambda: "db" in daemon.active(), "'db' to be active")
    broken = daemon.declaration("broken")
    assert broken is not None and broken["state"] == "failed"
    assert "refuses to start" in broken["reason"]
    assert daemon.active() == {"store", "db"}
    assert ws.journal_lines() == ["setup db"]
    readyz = daemon.get("/readyz")
    assert readyz.status == 503 and "'broken' is failed" in readyz.body["reasons"][0]


@pytest.mark.parametrize("trigger", ["signal", "http"])
def test_sighup_and_post_reload_reload(ws: Workspace, start: Start, trigger: str) -> None:
    ws.write("a.yaml", io_manager("store"))
    daemon = start(reload=ON_REQUEST)
    before, reloads = daemon.status(), daemon.reloads()
    ws.write("b.yaml", io_manager("added"))
    seen = before["watcher"]["events_seen"]
    wait_until(lambda: daemon.status()["watcher"]["events_seen"] > seen, "the watcher to see it")
    assert daemon.active() == {"store"}  # nothing reloads on its own
    if trigger == "signal":
        daemon.signal(signal.SIGHUP)
        report = wait_until(lambda: signalled(daemon.status()["last_reload"]), "the SIGHUP reload")
    else:
        reply = daemon.reload()
        assert reply.status == 200
        report = reply.body
    # This reload is the one that applied the new file, and the only one since startup:
    # none came on its own between the write and the request (its report would be here).
    assert report["trigger"] == trigger and report["outcome"] == "applied"
    assert report["changes"] == [{"kind": "IOManager", "name": "added", "action": "added"}]
    assert report["generation"] == before["host"]["generation"] + 1
    assert daemon.reloads() == reloads + 1
    after = daemon.status()
    assert after["last_reload"] == report and after["watcher"]["triggers_fired"] == 0
    assert daemon.active() == {"store", "added"}


def signalled(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """``report`` if it is a SIGHUP reload's, else ``None``."""
    return report if report is not None and report["trigger"] == "signal" else None


def test_sigterm_tears_down_in_reverse_order_of_setup_and_exits_0(
    ws: Workspace, start: Start
) -> None:
    ws.write("b.yaml", manifest(ws.resource("b1"), ws.resource("b2")))
    daemon = start(reload=WATCH_ONLY)
    ws.write("a.yaml", ws.resource("a"))  # set up after b1 and b2, though its file sorts first
    wait_until(lambda: "a" in daemon.active(), "'a' to be active")
    ws.write("b.yaml", manifest(ws.resource("b1", label="b1-v2"), ws.resource("b2")))
    wait_until(lambda: "teardown b1" in ws.journal_lines(), "b1 to be replaced")
    assert daemon.stop() == 0
    assert ws.journal_lines() == [
        "setup b1",
        "setup b2",
        "setup a",
        "setup b1-v2",
        "teardown b1",
        "teardown b1-v2",
        "teardown a",
        "teardown b2",
    ]
    assert '"message": "Stopped."' in ws.log()


def test_a_thousand_rapid_writes_end_in_the_final_content_after_few_reloads(
    ws: Workspace, start: Start
) -> None:
    ws.write("burst.yaml", ws.journal_io("burst", label="initial"))
    daemon = start(reload=WATCH_ONLY)
    before = daemon.reloads()
    written = []
    for i in range(1000):
        (ws.plugins / "burst.yaml").write_text(ws.journal_io("burst", label=f"v{i}"))
        written.append(time.monotonic())
        time.sleep(0.001)  # the stream lasts longer than the debounce, never going quiet
    final = {"journal": str(ws.journal), "label": "v999", "fail_setup": False, "health_file": None}
    wait_until(lambda: daemon.config("burst") == final, "the final content")
    # A reload on request reads every file and finds the final content already applied.
    # Reloads never overlap, so the one that applied it has been counted by its reply.
    reply = daemon.reload()
    assert reply.status == 200 and reply.body["outcome"] == "unchanged", reply.body
    assert (daemon.state("burst"), daemon.config("burst")) == ("active", final)
    reloads = daemon.reloads() - before - 1  # the watcher's (the last may follow the request)
    opened = [line for line in ws.journal_lines() if line.startswith("open ")]
    assert opened[0] == "open initial" and opened[-1] == "open v999"
    # Debounced: a never-quiet stream reloads once per 10 debounce periods (1 s), then once.
    # On a loaded machine the stream lasts longer and the writer may stall past the
    # debounce: each such pause may end in a reload too, so the bound follows the stream.
    pauses = sum(b - a >= DEBOUNCE_MS / 2000 for a, b in itertools.pairwise(written))
    allowed = 1 + math.ceil((written[-1] - written[0]) / (10 * DEBOUNCE_MS / 1000)) + pauses
    assert 1 <= reloads <= allowed < 100, (reloads, allowed, pauses)
    assert len(opened) - 1 <= reloads, (reloads, opened)


# Valid YAML on its own, declaring 'half'; the rest of the file makes it 'halfdone'.
FIRST_HALF = """\
apiVersion: flowstone/v1
kind: IOManager
spec:
  plugin: memory
metadata:
  name: half"""
SECOND_HALF = "done\n"


def test_a_file_written_in_two_halves_is_never_applied_half_written(
    ws: Workspace, start: Start
) -> None:
    ws.write("a.yaml", io_manager("store"))
    daemon = start()  # rescans every second: some fall into the pause
    seen: set[str] = set()
    with open(ws.plugins / "b.yaml", "w") as writer:
        writer.write(FIRST_HALF)
        writer.flush()
        before, pause_ends = daemon.reloads(), time.monotonic() + 2.0
        while time.monotonic() < pause_ends:
            seen |= daemon.active()
            time.sleep(POLL_S)
        reloads_in_pause = daemon.reloads() - before
        writer.write(SECOND_HALF)
    wait_until(lambda: "halfdone" in daemon.active(), "'halfdone' to be active")
    assert seen == {"store"}
    assert reloads_in_pause >= 1  # the half-written file was looked at, and held back
    assert daemon.active() == {"store", "halfdone"}


BROKEN_YAML = """\
apiVersion: flowstone/v1
kind: IOManager
metadata: {name: x}
spec:
  plugin: [memory
"""


def test_startup_with_a_broken_manifest_still_starts(ws: Workspace, start: Start) -> None:
    ws.write("a.yaml", io_manager("store"))
    ws.write("b.yaml", BROKEN_YAML)
    daemon = start()
    assert daemon.active() == {"store"}
    [error] = daemon.rejected()["b.yaml"]
    assert (error["line"], error["column"], error["code"]) == (6, 1, "yaml.syntax")
    assert daemon.get("/healthz").status == 200
    assert daemon.get("/readyz").status == 200
    watcher = daemon.status()["watcher"]
    assert (watcher["mode"], watcher["last_error"]) == ("inotify", None)


def test_startup_with_an_invalid_host_config_exits_non_zero_with_the_error(
    ws: Workspace,
) -> None:
    host_config(ws, {"reload": {"debounce_ms": -5}})
    done = subprocess.run(
        RUN, cwd=ws.root, env=daemon_env(), capture_output=True, text=True, timeout=WAIT_S
    )
    assert done.returncode == 2
    assert "host.yaml:" in done.stderr and "spec.reload.debounce_ms" in done.stderr


def test_a_second_sigterm_exits_at_once(ws: Workspace, start: Start) -> None:
    ws.write("a.yaml", io_manager("store"))
    daemon = start(sandbox={"limits": {"import_timeout_s": 60}}, reload=WATCH_ONLY)
    # A reload stuck probing a plugin whose import never finishes holds up a clean stop.
    ws.write("stuck.yaml", document("IOManager", "stuck", "hostile-import-hangs"))
    probes = wait_until(lambda: children(daemon.process.pid), "the import probe to start")
    try:
        daemon.signal(signal.SIGTERM)
        # The stop has begun (the watcher is being joined) and waits for the reload.
        wait_until(lambda: "Stopping: no new work" in ws.log(), "the stop to begin")
        assert daemon.process.poll() is None  # still waiting for the reload in progress
        assert '"message": "Stopped."' not in ws.log()
        daemon.signal(signal.SIGTERM)
        second = time.monotonic()
        assert daemon.process.wait(WAIT_S) == 1
        assert time.monotonic() - second < 1.0
        assert "Second stop signal: exiting at once." in ws.log()
        # The probe leads its own process group, yet exiting at once takes it down too.
        wait_until(lambda: not any(_alive(pid) for pid in probes), "the probe to be killed")
    finally:
        for pid in probes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


def test_readyz_follows_the_health_of_resources(ws: Workspace, start: Start) -> None:
    health = ws.root / "db-is-healthy"
    health.touch()
    ws.write("a.yaml", ws.resource("db", health_file=str(health)))
    daemon = start()
    assert daemon.get("/readyz").status == 200
    health.unlink()
    wait_until(lambda: daemon.get("/readyz").status == 503, "/readyz to answer 503")
    reply = daemon.get("/readyz")
    assert reply.body["reasons"] == [f"resource 'db' is unhealthy: {health} is missing"]
    assert daemon.state("db") == "unhealthy"
    health.touch()
    wait_until(lambda: daemon.get("/readyz").status == 200, "/readyz to recover")
    assert daemon.state("db") == "active"


def test_post_reload_needs_the_token_when_one_is_set(ws: Workspace, start: Start) -> None:
    ws.write("a.yaml", io_manager("store"))
    daemon = start(admin={"listen": "127.0.0.1:0", "token": TOKEN}, reload=ON_REQUEST)
    before = daemon.reloads()
    assert daemon.reload().status == 401
    assert daemon.reload("not-the-token").status == 401
    assert daemon.reloads() == before  # refused requests reload nothing
    assert daemon.get("/status").status == 200  # reading needs no token
    reply = daemon.reload(TOKEN)
    assert reply.status == 200 and reply.body["trigger"] == "http"
    assert daemon.reloads() == before + 1
