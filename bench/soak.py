"""Soak the real daemon: reload churn, SIGHUPs, slow clients and a crashing isolated plugin.

``make soak`` (or ``python -m bench.soak``) runs ``flowstone-host run`` for
``FLOWSTONE_SOAK_MINUTES`` minutes (default 10) and prints, once a minute and at the end:
resident memory, threads and open file descriptors of the daemon, how many stale-manifest
checks failed (``/status`` not showing what was last written, 3 s after writing it), and
the p99 of ``/healthz`` latency. Exits 1 if a stale manifest was seen or the daemon died.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

MINUTES = float(os.environ.get("FLOWSTONE_SOAK_MINUTES", "10"))
#: Set to 1 to run the daemon under tracemalloc and print what grew between the
#: snapshot at minute 2 and the last one (slower: not for the latency figures).
TRACE = os.environ.get("FLOWSTONE_SOAK_TRACEMALLOC", "") == "1"
SLOW_CLIENTS = 200

# The daemon under tracemalloc: the first SIGUSR2 starts tracing (after start-up, whose
# imports it would slow tenfold), each later one dumps a snapshot to <prefix>.<n>.
_TRACED = """\
import runpy, signal, sys, tracemalloc
prefix, dumps = sys.argv.pop(1), [0]
def dump(signum, frame):
    if not tracemalloc.is_tracing():
        tracemalloc.start(10)
        return
    dumps[0] += 1
    tracemalloc.take_snapshot().dump(f"{prefix}.{dumps[0]}")
signal.signal(signal.SIGUSR2, dump)
runpy.run_module("flowstone_host.cli", run_name="__main__", alter_sys=True)
"""
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _doc(kind: str, name: str, plugin: str, **spec: Any) -> str:
    body = {"apiVersion": "flowstone/v1", "kind": kind, "metadata": {"name": name}}
    return json.dumps({**body, "spec": {"plugin": plugin, **spec}}) + "\n"


def _write(folder: Path, name: str, text: str) -> None:
    temporary = folder / f".{name}.tmp"
    temporary.write_text(text)
    os.replace(temporary, folder / name)


def _get(url: str) -> tuple[int, Any]:
    try:
        with OPENER.open(url, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _proc(pid: int) -> dict[str, int]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed meanwhile
            continue
    return {
        "rss_kb": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(targets),
        # the slow clients come and go (cut off after 10 s, then reconnecting): what must
        # stay flat is everything else
        "fds_not_sockets": sum(not t.startswith("socket:") for t in targets),
    }


def _growth(prefix: Path) -> None:
    """Print the traced heap at each snapshot, and what grew most from minute 2 to the end
    (tracing started at minute 0, once the daemon was up)."""
    import tracemalloc

    dumps = sorted(prefix.parent.glob(prefix.name + ".*"), key=lambda p: int(p.suffix[1:]))
    snapshots = [tracemalloc.Snapshot.load(str(p)) for p in dumps]
    for minute, snapshot in enumerate(snapshots, 1):
        size = sum(trace.size for trace in snapshot.traces) / 1024
        print(f"tracemalloc minute {minute}: {size:.0f} KiB in {len(snapshot.traces)} blocks")
    if len(snapshots) < 3:
        return
    grown = sorted(snapshots[-1].compare_to(snapshots[1], "traceback"), key=lambda s: -s.size_diff)
    print("grew most from minute 2 to the end:")
    for stat in grown[:5]:
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks")
        print("    " + "\n    ".join(stat.traceback.format()[-6:]))


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _slow_client(address: tuple[str, int], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with socket.create_connection(address, timeout=5) as sock:
                for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n":
                    if stop.wait(1.0):
                        return
                    sock.sendall(bytes([byte]))
        except OSError:
            stop.wait(0.5)


def main() -> int:  # noqa: C901 - one script, read top to bottom
    root = Path(tempfile.mkdtemp(prefix="flowstone-soak-"))
    plugins = root / "plugins.d"
    plugins.mkdir()
    spec = {
        "plugins_dir": "plugins.d",
        "state_dir": "state",
        "reload": {"debounce_ms": 100, "rescan_interval_s": 5},
        "health": {"interval_s": 1, "timeout_s": 2},
        "shutdown": {"grace_s": 2},
        "admin": {"listen": "127.0.0.1:0", "token": ""},
    }
    head = {"apiVersion": "flowstone/v1", "kind": "HostConfig", "metadata": {"name": "soak"}}
    (root / "host.yaml").write_text(json.dumps({**head, "spec": spec}))
    _write(plugins, "crashy.yaml", _doc("IOManager", "crashy", "memory", isolation="process"))
    log = open(root / "daemon.log", "wb")  # noqa: SIM115 - the daemon's whole life
    trace_prefix = root / "tracemalloc"
    launch = ["-c", _TRACED, str(trace_prefix)] if TRACE else ["-m", "flowstone_host.cli"]
    daemon = subprocess.Popen(
        [
            *(sys.executable, *launch, "run", "--config", "host.yaml"),
            *("--log-format", "json", "--admin-listen", "127.0.0.1:0"),
        ],
        cwd=root,
        stdout=log,
        stderr=log,
    )
    url = ""
    deadline = time.monotonic() + 30
    while not url and time.monotonic() < deadline:
        for line in (root / "daemon.log").read_text(errors="replace").splitlines():
            if line.startswith("{") and "admin_url" in line:
                url = json.loads(line)["admin_url"]
        time.sleep(0.1)
    if not url:
        print("the daemon did not start", file=sys.stderr)
        return 1
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    stop = threading.Event()
    slow = [
        threading.Thread(target=_slow_client, args=((host, int(port)), stop), daemon=True)
        for _ in range(SLOW_CLIENTS)
    ]
    for thread in slow:
        thread.start()
    latencies: list[float] = []
    samples: list[dict[str, Any]] = []
    stale = checks = crashes = 0
    started = time.monotonic()
    end = started + MINUTES * 60
    next_sample = started
    cycle = 0
    try:
        while time.monotonic() < end and daemon.poll() is None:
            cycle += 1
            label = f"v{cycle}"
            _write(plugins, "churn.yaml", _doc("IOManager", f"churn{cycle % 50}", "memory"))
            _write(
                plugins,
                "edit.yaml",
                _doc("IOManager", "edited", "memory", config={"copy": cycle % 2 == 0}),
            )
            if cycle % 10 == 0:
                daemon.send_signal(signal.SIGHUP)
            if cycle % 15 == 0:  # the isolated plugin's child crashes
                for child in _children(daemon.pid):
                    os.kill(child, signal.SIGKILL)
                    crashes += 1
            for _ in range(10):
                began = time.perf_counter()
                _get(f"{url}/healthz")
                latencies.append(time.perf_counter() - began)
                time.sleep(0.1)
            time.sleep(1.5)
            status, body = _get(f"{url}/status")
            checks += 1
            names = {d["name"]: d for d in (body or {}).get("declarations", [])}
            want = {"copy": cycle % 2 == 0}
            if (
                status != 200
                or f"churn{cycle % 50}" not in names
                or (names.get("edited", {}).get("config") != want)
            ):
                stale += 1
                print(f"stale at cycle {cycle} ({label}): status {status}", file=sys.stderr)
            if time.monotonic() >= next_sample:
                sample = {
                    "minute": round((time.monotonic() - started) / 60, 1),
                    **_proc(daemon.pid),
                }
                samples.append(sample)
                print(json.dumps(sample), flush=True)
                if TRACE:
                    daemon.send_signal(signal.SIGUSR2)
                next_sample += 60
        samples.append({"minute": round((time.monotonic() - started) / 60, 1), **_proc(daemon.pid)})
    finally:
        stop.set()
        daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            code = -9
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 100 else None
    summary = {
        "minutes": MINUTES,
        "reload_cycles": cycle,
        "stale_checks_failed": stale,
        "stale_checks": checks,
        "child_crashes": crashes,
        "healthz_p99_ms": round(p99, 2) if p99 is not None else None,
        "first": samples[0] if samples else None,
        "last": samples[-1] if samples else None,
        "exit_status": code,
    }
    print(json.dumps(summary, indent=2))
    if TRACE:
        _growth(trace_prefix)
    return 0 if stale == 0 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
