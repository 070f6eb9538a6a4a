"""The queue executor (procrastinate) with real ``flowstone-host worker`` processes, against
procrastinate's own throughput on the same database, in the same run.

- Scatter throughput: a scatter of :data:`ITEMS` items whose item function returns its
  item, materialized in this process through the queue executor, with 1, 2 and 4
  ``flowstone-host worker --concurrency 2`` subprocesses (:data:`MAX_CONCURRENCY` jobs
  queued or running, :data:`CHUNK` items per job). The floor: :data:`NOOP_JOBS` no-op jobs
  deferred with procrastinate directly (``batch_defer``, batches of 1,000) and run by as
  many bare procrastinate worker subprocesses with the same concurrency, task options and
  ``delete_jobs``, timed until the last job is gone. Target: items/s within 1.5x of the
  no-op jobs/s (ratio ``>= 0.67x``). A second figure runs one item per job (a job holds
  at most a reader batch: ``batch_size: 1``), so the ratio is job for job.
- Coordinator round trip: what a worker's job adds to its items besides the item function
  (``status``, ``finished_keys`` of the chunk, ``record_outcomes`` of the chunk, on the
  PostgreSQL scatter coordinator), per item for a chunk of :data:`CHUNK`, against what
  procrastinate itself spends per item when a no-op job carries :data:`CHUNK` of them
  (one worker of concurrency 1, jobs back to back). Target within 1.5x.

The machine has 2 cores shared with the server and the coordinator (this process): with
4 workers, processes outnumber cores. The server is ``FLOWSTONE_TEST_PG_DSN`` when set,
else a throwaway cluster (tests/postgres_server.py). ``python -m bench.bench_queue
noop-worker DSN QUEUE CONCURRENCY`` is the floor's worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench._common import Result, print_results

ROOT = Path(__file__).resolve().parents[1]
ITEMS = 12_800
NOOP_JOBS = 1_000
ONE_ITEM_JOBS = 500
WORKERS = (1, 2, 4)
CONCURRENCY = 2
MAX_CONCURRENCY = 16
CHUNK = 64
ROUND_TRIPS = 200
REPEATS = 3
TARGET = 1 / 1.5
NOOP_TASK = "bench.noop"
WORKER_START_S = 60.0


# -- what the workers run ---------------------------------------------------------------


def numbers(config: Any, deps: Any) -> Any:
    """The scatter's items: ``config['count']`` integers (custom reader)."""
    return range(int(config["count"]))


def trivial(ctx: Any, item: Any) -> Any:
    return item


def _noop_worker(dsn: str, queue: str, concurrency: int) -> None:
    """A bare procrastinate worker with the options :class:`QueueExecutor.serve` uses."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn, min_size=1))

    def noop(context: Any, **arguments: Any) -> None:
        context.should_abort()

    app.task(name=NOOP_TASK, pass_context=True, retry=2, queue=queue)(noop)
    app.run_worker(
        queues=[queue],
        concurrency=concurrency,
        update_heartbeat_interval=7.5,
        stalled_worker_timeout=30,
        delete_jobs="successful",
    )


# -- processes ----------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _newest_worker(pool: Any) -> int:
    with pool.connection() as conn:
        newest: int = conn.execute(
            "SELECT coalesce(max(id), 0) FROM procrastinate_workers"
        ).fetchone()[0]
        return newest


def _registered_since(pool: Any, newest: int) -> int:
    with pool.connection() as conn:
        count: int = conn.execute(
            "SELECT count(*) FROM procrastinate_workers WHERE id > %s", (newest,)
        ).fetchone()[0]
        return count


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each child, then SIGKILL the ones still there after 30 s."""
    for child in children:
        child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _watch(children: list[subprocess.Popen[bytes]]) -> tuple[threading.Event, threading.Event]:
    """Return ``(died, stop)``: ``died`` is set when a child exits before ``stop`` is set."""
    died, stop = threading.Event(), threading.Event()

    def watch() -> None:
        while not stop.wait(0.2):
            if any(child.poll() is not None for child in children):
                died.set()
                return

    threading.Thread(target=watch, daemon=True).start()
    return died, stop


@contextlib.contextmanager
def _processes(commands: list[list[str]], pool: Any, logs: Path) -> Iterator[threading.Event]:
    """Start ``commands``, wait until each has registered as a procrastinate worker, and
    stop them with SIGTERM (then SIGKILL) on exit. Yields an event set when one of them
    exits early (a run waiting for jobs would otherwise wait forever)."""
    newest = _newest_worker(pool)
    children = [
        subprocess.Popen(
            command,
            env=_env(),
            cwd=ROOT,
            stdout=(logs / f"worker{i}.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        for i, command in enumerate(commands)
    ]
    died, stop = _watch(children)
    try:
        deadline = time.monotonic() + WORKER_START_S
        while _registered_since(pool, newest) < len(commands):
            if died.is_set() or time.monotonic() > deadline:
                raise RuntimeError(f"workers did not start in {WORKER_START_S}s; see {logs}")
            time.sleep(0.05)
        yield died
    finally:
        stop.set()
        _stop(children)
    if died.is_set():
        raise RuntimeError(f"a worker exited before it was stopped; see {logs}")


# -- the scatter through the queue --------------------------------------------------------

_MANIFESTS = """\
apiVersion: flowstone/v1
kind: Resource
metadata: {{name: pg}}
spec:
  plugin: postgres
  config: {{dsn: "{dsn}", min_size: 1, max_size: 10}}
---
apiVersion: flowstone/v1
kind: IOManager
metadata: {{name: default}}
spec:
  plugin: postgres
  depends_on: [pg]
  config: {{resource: pg, schema: bench_queue, format: json}}
---
apiVersion: flowstone/v1
kind: ScatterCoordinator
metadata: {{name: default}}
spec:
  plugin: postgres
  depends_on: [pg]
  config: {{resource: pg, schema: bench_queue}}
---
apiVersion: flowstone/v1
kind: ItemReader
metadata: {{name: custom}}
spec: {{plugin: custom}}
---
apiVersion: flowstone/v1
kind: Executor
metadata: {{name: default}}
spec:
  plugin: procrastinate
  config: {{dsn: "{dsn}", queue: bench_scatter}}
---
apiVersion: flowstone/v1
kind: Asset
metadata: {{name: chunked}}
spec:
  scatter:
    reader: custom
    reader_config: {{function: "bench.bench_queue:numbers", count: {items}}}
    batch_size: {chunked_batch}
    max_concurrency: {max_concurrency}
    item: "bench.bench_queue:trivial"
---
apiVersion: flowstone/v1
kind: Asset
metadata: {{name: one_per_job}}
spec:
  scatter:
    reader: custom
    reader_config: {{function: "bench.bench_queue:numbers", count: {one_item_jobs}}}
    batch_size: 1
    max_concurrency: {max_concurrency}
    item: "bench.bench_queue:trivial"
"""

_HOST = """\
apiVersion: flowstone/v1
kind: HostConfig
metadata: {name: bench-queue}
spec:
  plugins_dir: plugins.d
  state_dir: state
  callables:
    allow: ["bench.*"]
"""


def _host_config(folder: Path, dsn: str) -> Path:
    (folder / "plugins.d").mkdir()
    (folder / "plugins.d" / "bench.yaml").write_text(
        _MANIFESTS.format(
            dsn=dsn,
            items=ITEMS,
            one_item_jobs=ONE_ITEM_JOBS,
            chunked_batch=CHUNK * MAX_CONCURRENCY,
            max_concurrency=MAX_CONCURRENCY,
        )
    )
    (folder / "host.yaml").write_text(_HOST)
    return folder / "host.yaml"


def _worker_command(config: Path) -> list[str]:
    return [
        str(Path(sys.executable).parent / "flowstone-host"),
        "worker",
        "--config",
        str(config),
        "--concurrency",
        str(CONCURRENCY),
        "--log-level",
        "WARNING",
    ]


def _materialize_s(host: Any, asset: str, expected: int, died: threading.Event) -> float:
    from flowstone_host.runtime import materialize

    start = time.perf_counter()
    result = materialize(host, [asset], force=True, fresh=True, cancel=died)
    elapsed = time.perf_counter() - start
    assert result.ok, result.error
    with host.lease() as snapshot:
        stored = snapshot.io_managers.resolve("default").instance.load(asset, None)
    assert len(stored) == expected, (asset, len(stored))
    return elapsed


# -- the floor: bare procrastinate --------------------------------------------------------


_LEFT = "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'bench_noop'"


def _noop_seconds(app: Any, pool: Any, jobs: int, died: threading.Event) -> float:
    """Defer ``jobs`` no-op jobs in batches of 1,000; seconds until the workers deleted all."""
    deferrer = app.configure_task(NOOP_TASK, queue="bench_noop")
    start = time.perf_counter()
    for first in range(0, jobs, 1000):
        deferrer.batch_defer(*({"n": i} for i in range(first, min(jobs, first + 1000))))
    deadline = start + 600
    while time.perf_counter() < deadline and not died.is_set():
        with pool.connection() as conn:
            left = conn.execute(_LEFT).fetchone()[0]
        if not left:
            return time.perf_counter() - start
        time.sleep(0.005)
    raise RuntimeError("the no-op jobs did not finish: a worker died, or 600 s passed")


def _noop_command(dsn: str, concurrency: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.bench_queue",
        "noop-worker",
        dsn,
        "bench_noop",
        str(concurrency),
    ]


# -- the comparisons ----------------------------------------------------------------------


def _throughput(host: Any, config: Path, dsn: str, app: Any, pool: Any, logs: Path) -> list[Result]:
    results = []
    for count in WORKERS:
        chunked, one, floor = [], [], []
        for _ in range(REPEATS):  # interleaved, so a load spike lands on both alike
            with _processes([_noop_command(dsn, CONCURRENCY)] * count, pool, logs) as died:
                floor.append(NOOP_JOBS / _noop_seconds(app, pool, NOOP_JOBS, died))
            with _processes([_worker_command(config)] * count, pool, logs) as died:
                chunked.append(ITEMS / _materialize_s(host, "chunked", ITEMS, died))
                seconds = _materialize_s(host, "one_per_job", ONE_ITEM_JOBS, died)
                one.append(ONE_ITEM_JOBS / seconds)
        noop = statistics.median(floor)
        label = f"{count} worker(s) x{CONCURRENCY}"
        results.append(
            Result(
                f"{label}: items/s, {CHUNK}/job vs no-op jobs/s",
                statistics.median(chunked),
                noop,
                "",
                TARGET,
                True,
            )
        )
        results.append(
            Result(
                f"{label}: items/s, 1/job vs no-op jobs/s",
                statistics.median(one),
                noop,
                "",
                TARGET,
                True,
            )
        )
    return results


def _round_trip(host: Any, app: Any, pool: Any, dsn: str, logs: Path) -> Result:
    """A chunk's coordinator calls (what a worker's job adds besides the item function),
    per item, vs procrastinate's own cost per item of a no-op job carrying a chunk."""
    keys = [f"k{i:03d}" for i in range(CHUNK)]
    with host.lease() as snapshot:
        coordinator = snapshot.scatter_coordinators.resolve("default").instance
        samples = []
        for round_ in range(ROUND_TRIPS):
            barrier = coordinator.create_barrier(f"rt{round_}", "bench", None)
            coordinator.insert_keys(barrier, keys, final=True)
            start = time.perf_counter()
            coordinator.status(barrier)
            coordinator.finished_keys(barrier, keys)
            coordinator.record_outcomes(barrier, {k: i for i, k in enumerate(keys)}, {})
            samples.append(time.perf_counter() - start)
    with _processes([_noop_command(dsn, 1)], pool, logs) as died:
        noop = statistics.median(_noop_seconds(app, pool, 200, died) / 200 for _ in range(REPEATS))
    chunk = statistics.median(samples)
    print(
        f"coordinator round trip of a chunk of {CHUNK}: {chunk * 1e3:.2f} ms; "
        f"a no-op job, one worker x1: {noop * 1e3:.2f} ms"
    )
    return Result(
        f"coordinator round trip per item vs no-op job ({CHUNK}/job)",
        chunk / CHUNK * 1e6,
        noop / CHUNK * 1e6,
        "us",
        1.5,
    )


def main() -> bool:
    """Start (or reach) a server, run both comparisons, print them; True if all met."""
    sys.path.insert(0, str(ROOT / "tests"))
    import procrastinate
    from postgres_server import postgres_server

    from flowstone_host.host.lifecycle import Host
    from flowstone_host.manifest.host_config import read_host_config

    with postgres_server() as dsn, tempfile.TemporaryDirectory() as folder:
        logs = Path(folder)
        config = _host_config(Path(folder), dsn)
        host = Host(read_host_config(config))
        host.start()  # applies the queue's schema
        connector = procrastinate.SyncPsycopgConnector(conninfo=dsn, min_size=1, max_size=2)
        app = procrastinate.App(connector=connector)
        app.open()
        try:
            load = os.getloadavg()[0]
            results = _throughput(host, config, dsn, app, connector.pool, logs)
            results.append(_round_trip(host, app, connector.pool, dsn, logs))
            print(f"load average at start {load:.1f}, at end {os.getloadavg()[0]:.1f}")
        finally:
            app.close()
            host.stop(grace_s=0)
    return print_results("queue executor vs bare procrastinate, same database", results)


if __name__ == "__main__":
    if sys.argv[1:2] == ["noop-worker"]:
        _noop_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(0 if main() else 1)
