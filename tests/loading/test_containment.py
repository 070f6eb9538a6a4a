"""What holds an isolated child: its own cgroup where the host may make one, else its group.

The cgroup tests run real children in real cgroups; they need a writable cgroup v2 (root,
a delegated systemd unit or container), which the development machine has.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_helpers import pid_alive, wait_until

from flowstone_host import PluginCrashed
from flowstone_host.loading.isolation import IsolationOptions, RestartPolicy, spawn_plugin
from flowstone_host.loading.isolation.containment import (
    default_containment,
    host_cgroup,
    sweep_cgroups,
)

pytestmark = pytest.mark.integration

SETSID = "setsid_plugin:SetsidIOManager"  # tests/loading/setsid_plugin.py, on sys.path


def _cgroup_writable() -> bool:
    base = host_cgroup()
    if base is None:
        return False
    probe = base / f"flowstone-test-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


CGROUP_WRITABLE = _cgroup_writable()
requires_cgroup = pytest.mark.skipif(
    not CGROUP_WRITABLE,
    reason="no writable cgroup v2 here (needs root, or a delegated systemd unit or container)",
)


def options(containment: str | None = None) -> IsolationOptions:
    return IsolationOptions(
        timeout_s=10.0,
        stop_grace_s=0.5,
        restart=RestartPolicy(initial_backoff_s=0.05),
        containment=containment,
    )


@pytest.fixture
def escapees() -> Iterator[list[int]]:
    """Grandchildren a test started; any still alive at its end is killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _v2_path(pid: int | str) -> str:
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    return next(line[3:] for line in lines if line.startswith("0::"))


def cgroup_of(pid: int) -> Path:
    """The folder of the cgroup v2 ``pid`` is in."""
    base, own = str(host_cgroup()), _v2_path("self").rstrip("/")
    return Path(base[: len(base) - len(own)] + _v2_path(pid))


@requires_cgroup
def test_a_grandchild_that_calls_setsid_dies_with_its_plugin(escapees: list[int]) -> None:
    proxy = spawn_plugin("IOManager", SETSID, name="setsid", options=options())
    assert proxy.isolation.containment == "cgroup"
    assert type(proxy).containment == "cgroup"  # what /status reports
    child = proxy.isolation.pid
    cgroup = cgroup_of(child)
    assert cgroup.name.startswith(f"flowstone-h{os.getpid()}-") and cgroup.is_dir()
    grandchild = proxy.load("escapee", None)
    escapees.append(grandchild)
    assert os.getsid(grandchild) != os.getsid(child)  # it left the plugin's session and group
    assert os.getpgid(grandchild) != child
    assert cgroup_of(grandchild) == cgroup  # but not its cgroup
    proxy.close()
    assert wait_until(lambda: not pid_alive(grandchild), 5)
    assert not pid_alive(child)
    assert not cgroup.exists()  # removed once empty


@requires_cgroup
def test_a_killed_child_takes_its_cgroup_down_on_restart(escapees: list[int]) -> None:
    proxy = spawn_plugin("IOManager", SETSID, name="setsid-crash", options=options())
    first = proxy.isolation.pid
    cgroup = cgroup_of(first)
    grandchild = proxy.load("escapee", None)
    escapees.append(grandchild)
    os.kill(first, signal.SIGKILL)  # the plugin dies; its restart reaps it
    with pytest.raises(PluginCrashed):
        proxy.exists("x", None)
    assert wait_until(lambda: proxy.isolation.state == "running", 10)
    assert wait_until(lambda: not pid_alive(grandchild), 5)
    assert not cgroup.exists()
    assert cgroup_of(proxy.isolation.pid) != cgroup  # the new child has a cgroup of its own
    proxy.close()


@requires_cgroup
def test_a_killed_host_takes_the_setsid_grandchild_down_too(escapees: list[int]) -> None:
    host = (
        "import sys; sys.path[:0] = sys.argv[1:]\n"
        "from flowstone_host.loading.isolation import spawn_plugin\n"
        f"proxy = spawn_plugin('IOManager', {SETSID!r})\n"
        "print(proxy.isolation.pid, proxy.load('escapee', None), flush=True)\n"
        "sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", host, *sys.path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    child, grandchild = map(int, process.stdout.readline().split())
    escapees.append(grandchild)
    cgroup = cgroup_of(grandchild)
    assert cgroup.name.startswith(f"flowstone-h{process.pid}-")
    process.kill()  # no teardown runs in the host
    process.wait()
    # the orphaned child kills its cgroup on its way out: the setsid grandchild goes too
    assert wait_until(lambda: not pid_alive(child) and not pid_alive(grandchild), 10)
    assert cgroup in sweep_cgroups(cgroup.parent)  # a next start removes what is left
    assert process.stdin is not None
    process.stdin.close()


def test_the_process_group_fallback_is_what_is_reported_when_forced(
    escapees: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSTONE_ISOLATION_CONTAINMENT", "process_group")
    proxy = spawn_plugin("IOManager", SETSID, name="setsid-group", options=options())
    assert proxy.isolation.containment == "process_group"
    assert type(proxy).containment == "process_group"
    child = proxy.isolation.pid
    assert cgroup_of(child) == cgroup_of(os.getpid())  # no cgroup of its own
    grandchild = proxy.load("escapee", None)
    escapees.append(grandchild)
    proxy.close()
    assert wait_until(lambda: not pid_alive(child), 5)
    # The limit the fallback has, and the reason for the cgroup: setsid escapes the group.
    assert pid_alive(grandchild)


def test_the_options_force_the_fallback_too() -> None:
    proxy = spawn_plugin("IOManager", SETSID, name="setsid-opt", options=options("process_group"))
    try:
        assert proxy.isolation.containment == "process_group"
        assert proxy.exists("x", None) is False
    finally:
        proxy.close()


def test_an_unknown_containment_is_refused() -> None:
    assert default_containment({}) == "auto"
    assert default_containment({"FLOWSTONE_ISOLATION_CONTAINMENT": "process_group"}) == (
        "process_group"
    )
    with pytest.raises(ValueError, match="expected one of auto, process_group"):
        default_containment({"FLOWSTONE_ISOLATION_CONTAINMENT": "jail"})


def test_no_cgroup_v2_mount_falls_back_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from flowstone_host.loading.isolation import containment

    (tmp_path / "cgroup").write_text("4:memory:/x\n0::/a/b\n")
    (tmp_path / "mountinfo").write_text("30 1 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw\n")
    assert host_cgroup(str(tmp_path)) is None
    (tmp_path / "mountinfo").write_text(
        "30 1 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw\n"
        "31 1 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    )
    assert host_cgroup(str(tmp_path)) == Path("/sys/fs/cgroup/unified/a/b")
    (tmp_path / "mountinfo").write_text("31 1 0:27 /a /mnt/cg rw - cgroup2 cgroup2 rw\n")
    assert host_cgroup(str(tmp_path)) == Path("/mnt/cg/b")  # a namespaced mount's root

    with caplog.at_level(logging.WARNING):
        monkey = pytest.MonkeyPatch()
        monkey.setattr(containment, "host_cgroup", lambda: None)
        monkey.setattr(containment, "_WARNED", set())
        try:
            held = [containment.contain("x", os.getpid()) for _ in range(3)]
        finally:
            monkey.undo()
    assert {h.kind for h in held} == {"process_group"}
    warnings = [r for r in caplog.records if "not a cgroup" in r.getMessage()]
    assert len(warnings) == 1 and "no cgroup v2 mount" in warnings[0].getMessage()


@requires_cgroup
def test_a_start_sweeps_the_cgroups_of_dead_hosts() -> None:
    base = host_cgroup()
    assert base is not None
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    dead_pid = int(dead.stdout)
    left = base / f"flowstone-h{dead_pid}-1-left"
    mine = base / f"flowstone-h{os.getpid()}-999999-mine"
    left.mkdir()
    mine.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        (left / "cgroup.procs").write_text(str(sleeper.pid))
        removed = sweep_cgroups(base)
        assert left in removed and mine not in removed
        assert sleeper.wait(5) == -signal.SIGKILL
        assert not left.exists() and mine.exists()  # a live host's cgroups are left alone
    finally:
        sleeper.kill()
        mine.rmdir()
        if left.exists():
            left.rmdir()
