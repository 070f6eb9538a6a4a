"""The queue executor with real worker processes on a real PostgreSQL (issue 12).

Each test writes its manifests, starts ``flowstone-host worker`` processes, and
materializes from this process through a host on the same config: the scatter chunks and
branches run in the workers, the outcomes meet in the PostgreSQL coordinators.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
import yaml

from flowstone_host.host.lifecycle import Host
from flowstone_host.manifest.host_config import read_host_config
from flowstone_host.runtime import materialize
from tests.plugins.queue.cluster import WORK, Cluster, asset


def _scatter(name: str, source: str, item: str, **spec: Any) -> dict[str, Any]:
    scatter = {
        "reader": "custom",
        "reader_config": {"function": f"{WORK}:{source}"},
        "item": f"{WORK}:{item}",
        "gather": f"{WORK}:gather",
        "batch_size": 512,
        "max_concurrency": 8,
        **spec,
    }
    return asset(name, scatter=scatter)


def _host(cluster: Cluster) -> Host:
    host = Host(read_host_config(cluster.config))
    host.start()
    return host


def _run(cluster: Cluster, name: str) -> tuple[Any, Any]:
    """Materialize ``name`` through a host on the cluster's config: (result, stored value
    or None when the run failed)."""
    host = _host(cluster)
    try:
        result = materialize(host, [name])
        return result, _stored(host, name) if result.ok else None
    finally:
        host.stop(grace_s=0)


def _stored(host: Host, name: str) -> Any:
    entry = host.snapshot().io_managers.resolve("default")
    return entry.instance.load(name, None)


def _barrier(dsn: str) -> tuple[int, int, int]:
    """(completed, failed, total) of the one barrier in the database."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT completed, failed, total FROM flowstone.scatter_barriers"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_three_workers_finish_a_scatter_when_one_is_killed_halfway(cluster: Cluster) -> None:
    cluster.write([_scatter("squares", "ten_thousand", "square")])
    for _ in range(3):
        cluster.worker(concurrency=2)
    cluster.wait_serving()
    victim = cluster.workers[1]
    host = _host(cluster)
    killed = threading.Event()

    def kill_halfway() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            calls = cluster.calls()
            ran = len(calls.get(victim.pid, []))
            done = sum(len(keys) for keys in calls.values())
            if done >= 5_000 and ran % 64:  # halfway, and within a chunk of 64 items
                victim.send_signal(signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_halfway)
    killer.start()
    try:
        result = materialize(host, ["squares"])
        gathered = _stored(host, "squares")
    finally:
        killer.join()
        host.stop(grace_s=0)
    assert killed.is_set() and victim.wait(timeout=10) == -signal.SIGKILL
    assert result.ok, result.error
    assert sorted(gathered) == [f"n{i:05d}" for i in range(10_000)]
    assert all(value["square"] == int(key[1:]) ** 2 for key, value in gathered.items())
    assert _barrier(cluster.dsn) == (10_000, 0, 10_000)
    calls = cluster.calls()
    # The killed worker's in-flight items (called there, recorded elsewhere) ran again on
    # a live worker; no result comes from a process other than the one that recorded it.
    lost = {key for key in calls[victim.pid] if gathered[key]["pid"] != victim.pid}
    assert lost, "the victim had items in flight when it was killed"
    survivors = {pid for pid in calls if pid != victim.pid}
    assert all(gathered[key]["pid"] in survivors for key in lost)
    assert {value["pid"] for value in gathered.values()} <= set(calls)


def test_a_failing_item_counts_once_and_the_threshold_still_stops_the_run(
    cluster: Cluster,
) -> None:
    cluster.write(
        [
            _scatter("lenient", "two_hundred", "square_or_fail", tolerated_failures={"count": 4}),
            _scatter("strict", "two_hundred", "square_or_fail", tolerated_failures={"count": 3}),
        ]
    )
    cluster.worker(concurrency=2)
    cluster.worker(concurrency=2)
    cluster.wait_serving()
    lenient, gathered = _run(cluster, "lenient")
    strict, _ = _run(cluster, "strict")
    assert lenient.ok, lenient.error
    assert len(gathered) == 196 and not {"n00000", "n00050", "n00100", "n00150"} & set(gathered)
    assert not strict.ok and strict.error is not None
    assert strict.error.code == "threshold_exceeded"
    with psycopg.connect(cluster.dsn) as conn:
        rows = conn.execute(
            "SELECT asset, completed, failed, total, status FROM flowstone.scatter_barriers"
            " ORDER BY asset"
        ).fetchall()
    assert rows[0] == ("lenient", 196, 4, 200, "complete")
    assert rows[1][0] == "strict" and rows[1][2] == 4 and rows[1][4] == "threshold_exceeded"


def test_an_item_that_kills_its_worker_is_tried_max_attempts_times_then_fails_once(
    cluster: Cluster,
) -> None:
    executor = {"max_attempts": 2, "stall_timeout_s": 1, "poll_interval_s": 0.02}
    spec = {"batch_size": 1, "max_concurrency": 4, "tolerated_failures": {"count": 1}}
    cluster.write([_scatter("poisoned", "twelve", "square_or_crash", **spec)], executor)
    for _ in range(3):
        cluster.worker(concurrency=1)
    cluster.wait_serving()
    result, gathered = _run(cluster, "poisoned")
    assert result.ok, result.error
    assert sorted(gathered) == [f"n{i:05d}" for i in range(12) if i != 5]
    assert _barrier(cluster.dsn) == (11, 1, 12)
    tries = [key for keys in cluster.calls().values() for key in keys if key == "n00005"]
    assert len(tries) == 2  # max_attempts, each on a worker it then killed
    assert sorted(p.poll() for p in cluster.workers if p.poll() is not None) == [3, 3]


def test_branches_spread_over_workers_and_join_once(cluster: Cluster) -> None:
    branches = {name: {"compute": f"{WORK}:branch"} for name in ("a", "bb", "ccc")}
    cluster.write(
        [
            asset("base", compute=f"{WORK}:base"),
            asset("fanned", deps=["base"], parallel={"branches": branches, "join": f"{WORK}:join"}),
        ]
    )
    for _ in range(3):
        cluster.worker(concurrency=1)
    cluster.wait_serving()
    host = _host(cluster)
    os_trace = dict(os.environ)
    os.environ["FLOWSTONE_TEST_TRACE"] = str(cluster.trace)  # the join runs here
    try:
        result = materialize(host, ["fanned"])
        joined = _stored(host, "fanned")
    finally:
        os.environ.clear()
        os.environ.update(os_trace)
        host.stop(grace_s=0)
    assert result.ok, result.error
    assert {name: value["value"] for name, value in joined.items()} == {"a": 7, "bb": 14, "ccc": 21}
    workers = {p.pid for p in cluster.workers}
    assert {value["pid"] for value in joined.values()} <= workers
    assert len({value["pid"] for value in joined.values()}) >= 2  # each worker holds one
    assert sum(len(keys) for keys in cluster.calls("joins").values()) == 1


def test_a_job_that_fails_for_good_is_split_so_that_only_its_culprit_fails(
    cluster: Cluster,
) -> None:
    executor = {"max_attempts": 2, "stall_timeout_s": 2, "poll_interval_s": 0.02}
    spec = {"batch_size": 4, "max_concurrency": 4, "tolerated_failures": {"count": 1}}
    cluster.write([_scatter("split", "twelve", "square_or_exit", **spec)], executor)
    cluster.worker(concurrency=2)
    cluster.wait_serving()
    result, gathered = _run(cluster, "split")
    assert result.ok, result.error
    assert sorted(gathered) == [f"n{i:05d}" for i in range(12) if i != 5]  # 4, 6, 7 ran
    assert _barrier(cluster.dsn) == (11, 1, 12)


def test_sigterm_gives_the_job_in_hand_back_with_its_finished_items_and_exits_0(
    cluster: Cluster,
) -> None:
    # One job of 12 items of a quarter second; the grace is half the stall timeout (1 s).
    cluster.write([_scatter("slowly", "twelve", "slow", batch_size=16, max_concurrency=4)])
    first = cluster.worker(concurrency=1)
    cluster.wait_serving()
    host = _host(cluster)
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(r=materialize(host, ["slowly"])))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while not cluster.calls().get(first.pid):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=20) == 0
        cluster.worker(concurrency=2)  # the rest waits in the queue for another worker
        runner.join(timeout=60)
        gathered = _stored(host, "slowly")
    finally:
        runner.join()
        host.stop(grace_s=0)
    assert outcome["r"].ok, outcome["r"].error
    assert sorted(gathered) == [f"n{i:05d}" for i in range(12)]
    assert _barrier(cluster.dsn) == (12, 0, 12)
    calls = cluster.calls()
    released = calls[first.pid]
    assert 0 < len(released) < 12  # it stopped between items, before the job's end
    assert {key for key, value in gathered.items() if value["pid"] == first.pid} == set(released)
    assert sum(len(keys) for keys in calls.values()) == 12  # no item ran twice
    assert "Worker" in cluster.log(0) and "stopped" in cluster.log(0)


def test_a_worker_picks_up_an_asset_dropped_in_while_it_runs(cluster: Cluster) -> None:
    cluster.write([asset("base", compute=f"{WORK}:base")])
    cluster.worker(concurrency=1)
    cluster.wait_serving()
    dropped = _scatter("late", "twelve", "square")
    (cluster.folder / "plugins.d" / "20-late.yaml").write_text(yaml.safe_dump(dropped))
    deadline = time.monotonic() + 30
    while "Asset 'late' added" not in cluster.log(0):  # the worker reloaded on its own
        assert time.monotonic() < deadline, cluster.log(0)
        time.sleep(0.05)
    result, gathered = _run(cluster, "late")
    assert result.ok, result.error
    assert len(gathered) == 12
    assert "is queue worker" in cluster.log(0)


def test_a_worker_whose_database_connections_are_cut_still_runs_jobs(cluster: Cluster) -> None:
    cluster.write([_scatter("after", "twelve", "square")])
    worker = cluster.worker(concurrency=1)
    cluster.wait_serving()
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        deadline = time.monotonic() + 60
        listening = "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'"
        while conn.execute(listening).fetchone() == (0,):  # the worker is connected
            assert time.monotonic() < deadline, cluster.log(0)
            time.sleep(0.05)
        cut = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert cut is not None and cut[0] > 0
    result, _ = _run(cluster, "after")  # procrastinate reconnects, or we serve again
    assert result.ok, result.error
    assert worker.poll() is None


def test_serving_that_fails_is_started_again_until_a_stop_signal(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowstone_host.daemon import worker as module
    from flowstone_host.errors import Unavailable

    cluster.write([asset("base", compute=f"{WORK}:base")])
    served: list[float] = []

    class Queue:
        remote = True
        queue = "q"

        def serve(self, handler: Any, **options: Any) -> None:
            served.append(time.monotonic())
            if len(served) < 3:
                raise Unavailable("the database went away")  # then: a stop signal

    monkeypatch.setattr(module.Worker, "_executor", lambda self: SimpleNamespace(instance=Queue()))
    worker = module.Worker(read_host_config(cluster.config))
    worker.host.start()
    try:
        worker._serve()
    finally:
        worker.host.stop(grace_s=0)
    assert len(served) == 3
    assert served[1] - served[0] >= 1.0 and served[2] - served[1] >= 2.0  # backing off
