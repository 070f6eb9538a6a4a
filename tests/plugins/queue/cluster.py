"""A cluster for the queue tests: a fresh database, manifests, worker processes.

Each test gets its own database on the session's PostgreSQL server (the queue's tables,
the coordinators' and the IO manager's in it), a host config whose plugins folder holds
the backends below plus the test's assets, and :meth:`Cluster.worker` to start real
``flowstone-host worker`` processes on it (stopped at the end of the test).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
WORK = "tests.plugins.queue.work"

#: Short stall timeout and fast polling, so that a killed worker's jobs move on quickly.
EXECUTOR_CONFIG = {
    "queue": "flowstone",
    "max_attempts": 3,
    "stall_timeout_s": 2,
    "poll_interval_s": 0.02,
}


def backends(dsn: str, executor: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The declarations every queue test shares: PostgreSQL everything, the queue."""
    pg = {"dsn": dsn, "schema": "flowstone"}
    docs = [
        _doc("IOManager", "default", "postgres", pg),
        _doc("ScatterCoordinator", "default", "postgres", pg),
        _doc("ParallelCoordinator", "default", "postgres", pg),
        _doc("RoutingCoordinator", "default", "postgres", pg),
        _doc("ItemReader", "custom", "custom", {}),
        _doc("Executor", "default", "procrastinate", {"dsn": dsn, **(executor or EXECUTOR_CONFIG)}),
    ]
    return docs


def _doc(kind: str, name: str, plugin: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flowstone/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"plugin": plugin, "config": config},
    }


def asset(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "flowstone/v1", "kind": "Asset", "metadata": {"name": name}, "spec": spec}


@dataclass
class Cluster:
    """A database, a host config on it, and the worker processes started on it."""

    dsn: str
    folder: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.folder / "host.yaml"

    @property
    def trace(self) -> Path:
        return self.folder / "trace"

    def write(self, assets: list[dict[str, Any]], executor: dict[str, Any] | None = None) -> None:
        """Write the host config and the manifests: the backends and ``assets``."""
        plugins = self.folder / "plugins.d"
        plugins.mkdir(exist_ok=True)
        self.trace.mkdir(exist_ok=True)
        (plugins / "00-backends.yaml").write_text(yaml.safe_dump_all(backends(self.dsn, executor)))
        (plugins / "10-assets.yaml").write_text(yaml.safe_dump_all(assets))
        host = {
            "apiVersion": "flowstone/v1",
            "kind": "HostConfig",
            "metadata": {"name": "queue-test"},
            "spec": {
                "plugins_dir": "plugins.d",
                "state_dir": "state",
                "callables": {"allow": ["tests.plugins.queue.*"]},
                "shutdown": {"grace_s": 5},
            },
        }
        self.config.write_text(yaml.safe_dump(host))

    def env(self) -> dict[str, str]:
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        return {**os.environ, "PYTHONPATH": path, "FLOWSTONE_TEST_TRACE": str(self.trace)}

    def worker(self, concurrency: int = 2, *extra: str) -> subprocess.Popen[bytes]:
        """Start a ``flowstone-host worker`` on this cluster's config."""
        index = len(self.workers)
        log = open(self.folder / f"worker-{index}.log", "wb")  # noqa: SIM115 - the process's
        process = subprocess.Popen(
            [sys.executable, "-m", "flowstone_host.cli", "worker", "--config", str(self.config),
             "--concurrency", str(concurrency), *extra],
            cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        self.workers.append(process)
        return process

    def log(self, index: int) -> str:
        return (self.folder / f"worker-{index}.log").read_text(errors="replace")

    def wait_serving(self, timeout: float = 60) -> None:
        """Wait until every started worker logged that it serves its queue."""
        deadline = time.monotonic() + timeout
        for index, process in enumerate(self.workers):
            while "serving queue" not in self.log(index):
                assert process.poll() is None, self.log(index)
                assert time.monotonic() < deadline, self.log(index)
                time.sleep(0.05)

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def calls(self, name: str = "calls") -> dict[int, list[str]]:
        """What the traced callables saw, by process id."""
        traced: dict[int, list[str]] = {}
        for path in self.trace.glob(f"{name}-*.txt"):
            traced[int(path.stem.split("-")[1])] = path.read_text().split()
        return traced
