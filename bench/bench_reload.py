"""The host's hot reload: rename-to-active latency, and what reusing unchanged declarations saves.

1. **Rename to active.** The daemon's own wiring (:class:`~flowstone_host.daemon.runner.Daemon`:
   watcher, debounce, ``Host.reload``) without its HTTP server, in this process: an editor's
   atomic save of a manifest declaring a new IO manager, timed until the reload that made it
   resolvable in ``host.snapshot()`` ends (its ``("flowstone", "reload", "stop")`` telemetry
   event). In-process rather than through ``/status``, so no HTTP polling interval blurs the
   figure. The floor is a bare watchdog observer delivering the same rename on the same
   machine; the target, as in ``bench_watcher``, is ``floor + debounce + 50 ms``.
2. **One of 500 changed.** ``Host.reload`` over 500 memory IO managers in 50 files after one
   declaration's config changed, against the same reload after all 500 changed (each rebuilt
   and health-checked, the old ones torn down). Target: at most 10% of it.

Every plugin is a built-in in-memory one, so the figures measure the host, not plugins.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench._common import (
    Arrival,
    Result,
    median_rename_latency,
    print_results,
    watchdog_rename_floor,
)
from flowstone_host import telemetry
from flowstone_host.daemon.runner import Daemon
from flowstone_host.host.lifecycle import Host
from flowstone_host.manifest.host_config import HostConfig, read_host_config

TRIALS = 20
DEBOUNCE_MS = 200
SLACK_S = 0.05
FILES, PER_FILE = 50, 10
REPEATS = 7
EMBEDDED = Path(__file__).resolve().parent.parent / "plugins.d" / "00-embedded.yaml"


def _io_manager(name: str, copy: bool = False) -> str:
    spec = {"plugin": "memory", "config": {"copy": copy}}
    doc = {"apiVersion": "flowstone/v1", "kind": "IOManager", "metadata": {"name": name}}
    return json.dumps({**doc, "spec": spec}) + "\n"


def _host_config(root: Path, plugins: Path) -> HostConfig:
    """A host config serving ``plugins``: no rescans, no periodic health checks."""
    spec = {
        "plugins_dir": str(plugins),
        "state_dir": str(root / "state"),
        "reload": {"debounce_ms": DEBOUNCE_MS, "rescan_interval_s": 0},
        "health": {"interval_s": 0},
    }
    doc = {"apiVersion": "flowstone/v1", "kind": "HostConfig", "metadata": {"name": "bench"}}
    path = root / "host.yaml"
    path.write_text(json.dumps({**doc, "spec": spec}))
    return read_host_config(path)


# -- 1. rename to active -------------------------------------------------------------------


def _daemon_latency(root: Path) -> float:
    """Median seconds from the rename of ``a.yaml`` declaring ``trial<i>`` to it being active."""
    plugins = root / "plugins.d"
    plugins.mkdir()
    (plugins / "00-embedded.yaml").write_bytes(EMBEDDED.read_bytes())
    daemon = Daemon(_host_config(root, plugins))
    arrival, expected = Arrival(), [""]

    def on_reload(event: Any, measurements: Any, metadata: Mapping[str, Any], _: Any) -> None:
        if event[-1] == "stop" and expected[0] in daemon.host.snapshot().io_managers:
            arrival.mark()

    def content(i: int) -> str:
        expected[0] = f"trial{i}"
        return _io_manager(expected[0])

    handler_id = "bench-reload-active"
    telemetry.attach(handler_id, ("flowstone", "reload"), on_reload)
    daemon.watcher.start()
    try:
        daemon.host.start()
        return median_rename_latency(plugins, arrival, TRIALS, content)
    finally:
        telemetry.detach(handler_id)
        daemon.watcher.stop()
        daemon.host.stop()


def _rename_to_active() -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "floor").mkdir()
        floor_s = watchdog_rename_floor(root / "floor", TRIALS)
        value_s = _daemon_latency(root)
    return Result(
        f"rename -> active, debounce {DEBOUNCE_MS}ms ({TRIALS} trials)",
        value_s * 1000,
        floor_s * 1000,
        "ms",
        (floor_s + DEBOUNCE_MS / 1000 + SLACK_S) / floor_s,
    )


# -- 2. one of 500 changed -----------------------------------------------------------------


def _write_files(plugins: Path, copy: Mapping[str, bool]) -> None:
    """Write the declarations of ``copy`` (name -> its ``copy`` setting), 10 to a file."""
    names = list(copy)
    for f in range(0, len(names), PER_FILE):
        docs = (_io_manager(n, copy[n]) for n in names[f : f + PER_FILE])
        (plugins / f"{f // PER_FILE:02d}.yaml").write_text("---\n".join(docs))


def _timed_reload(host: Host, expect_replaced: int) -> float:
    start = time.perf_counter()
    report = host.reload("watch")
    took = time.perf_counter() - start
    if report.count("replaced") != expect_replaced or not report.ok:
        raise RuntimeError(f"unexpected reload: {report.summary()}")
    return took


def _one_of_500_changed() -> Result:
    total = FILES * PER_FILE
    copy = {f"io{i:03d}": False for i in range(total)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plugins = root / "plugins.d"
        plugins.mkdir()
        _write_files(plugins, copy)
        host = Host(_host_config(root, plugins))
        host.start()
        try:
            one, every = [], []
            for _ in range(REPEATS):
                copy["io000"] = not copy["io000"]
                _write_files(plugins, copy)
                one.append(_timed_reload(host, 1))
                copy = {name: not value for name, value in copy.items()}
                _write_files(plugins, copy)
                every.append(_timed_reload(host, total))
        finally:
            host.stop()
    return Result(
        f"reload, 1 of {total} changed vs all {total} changed",
        statistics.median(one) * 1000,
        statistics.median(every) * 1000,
        "ms",
        0.10,
    )


def main() -> bool:
    return print_results("reload", [_rename_to_active(), _one_of_500_changed()])
