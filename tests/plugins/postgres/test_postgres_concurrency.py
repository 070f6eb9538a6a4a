"""Several processes on one database: scatter barriers, routing races, a killed reader."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from flowstone_host.plugins.postgres.scatter import PostgresScatterCoordinator

pytestmark = pytest.mark.integration

WORKERS = Path(__file__).with_name("pg_workers.py")


def _spawn(role: str, args: dict[str, Any], tmp_path: Path) -> subprocess.Popen[str]:
    path = tmp_path / f"{role}-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(args))
    return subprocess.Popen(
        [sys.executable, str(WORKERS), role, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _results(workers: list[subprocess.Popen[str]], timeout: float = 120) -> list[Any]:
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=timeout)
        assert worker.returncode == 0, f"worker failed ({worker.returncode}): {err}"
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _reports(keys: list[str], workers: int, seed: int) -> list[list[list[Any]]]:
    """Deal every key to 1-3 random workers (same outcome each time), shuffled per worker."""
    rng = random.Random(seed)
    dealt: list[list[list[Any]]] = [[] for _ in range(workers)]
    for i, key in enumerate(keys):
        for _ in range(rng.randint(1, 3)):
            dealt[rng.randrange(workers)].append([key, i % 10 != 0])
    for reports in dealt:
        rng.shuffle(reports)
    return dealt


def _run_barrier(
    pg_dsn: str, tmp_path: Path, keys: int, tolerated: dict[str, int], seed: int
) -> tuple[PostgresScatterCoordinator, str, list[Any]]:
    coordinator = PostgresScatterCoordinator({"dsn": pg_dsn})
    barrier_id = coordinator.create_barrier(
        f"run-{seed}", "scattered", None, tolerated_failures=tolerated
    )
    names = [f"k{i:06d}" for i in range(keys)]
    coordinator.insert_keys(barrier_id, names, final=True)
    start_at = time.time() + 2.0
    workers = [
        _spawn(
            "scatter",
            {
                "dsn": pg_dsn,
                "barrier_id": barrier_id,
                "reports": reports,
                "batch": 500,
                "start_at": start_at,
            },
            tmp_path,
        )
        for reports in _reports(names, 8, seed)
    ]
    return coordinator, barrier_id, _results(workers)


def test_eight_processes_complete_a_100k_key_barrier_exactly(pg_dsn: str, tmp_path: Path) -> None:
    coordinator, barrier_id, results = _run_barrier(
        pg_dsn, tmp_path, 100_000, {"count": 10_000}, seed=1
    )
    status = coordinator.status(barrier_id)
    assert (status.status, status.completed, status.failed, status.total) == (
        "complete",
        90_000,
        10_000,
        100_000,
    )
    assert sum(r["counted"] for r in results) == 100_000, "a redelivered outcome counted twice"
    assert sum(r["transitions"] for r in results) == 1, "exactly one call sees the transition"
    streamed = [key for key, _ in coordinator.iter_results(barrier_id)]
    assert streamed == sorted(streamed) and len(streamed) == len(set(streamed)) == 90_000
    gathered = coordinator.gather(barrier_id)
    expected = {f"k{i:06d}": {"key": f"k{i:06d}"} for i in range(100_000) if i % 10}
    assert gathered == expected
    coordinator.close()


def test_eight_processes_trip_the_threshold_once(pg_dsn: str, tmp_path: Path) -> None:
    coordinator, barrier_id, results = _run_barrier(
        pg_dsn, tmp_path, 20_000, {"count": 100}, seed=2
    )
    status = coordinator.status(barrier_id)
    assert status.status == "threshold_exceeded"
    assert status.failed == 101, "failures after the tripping one must not count"
    assert sum(r["counted"] for r in results) == status.completed + status.failed
    assert sum(r["transitions"] for r in results) == 1
    coordinator.close()


def test_two_processes_racing_a_routing_decision_agree(pg_dsn: str, tmp_path: Path) -> None:
    run_id = f"race-{uuid.uuid4().hex}"
    partitions = [f"p{i}" for i in range(200)]
    start_at = time.time() + 1.5
    workers = [
        _spawn(
            "routing",
            {
                "dsn": pg_dsn,
                "run_id": run_id,
                "partitions": partitions,
                "branch": branch,
                "start_at": start_at,
            },
            tmp_path,
        )
        for branch in ("left", "right")
    ]
    left, right = _results(workers)
    winners = {"left": 0, "right": 0}
    for partition in partitions:
        (left_id, left_seen), (right_id, right_seen) = left[partition], right[partition]
        assert left_seen == right_seen, f"{partition}: the processes disagree"
        assert (left_id is None) != (right_id is None), f"{partition}: not exactly one winner"
        winners[left_seen] += 1
        assert (left_id is not None) == (left_seen == "left")
    assert sum(winners.values()) == len(partitions)


def _read_log(path: Path) -> tuple[list[int], dict[str, Any] | None]:
    """Return the ids of every complete line and the last checkpoint; drop a torn line."""
    ids: list[int] = []
    checkpoint = None
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            break  # torn by the kill: neither its items nor its checkpoint count
        ids += entry["ids"]
        checkpoint = entry["checkpoint"]
    return ids, checkpoint


def test_a_killed_reader_resumes_from_its_checkpoint(
    pg_dsn: str, pg_pool: Any, tmp_path: Path
) -> None:
    table = f"killed_{uuid.uuid4().hex[:8]}"
    with pg_pool.connection() as conn:
        conn.execute(
            f"CREATE TABLE {table} AS SELECT (i * 7)::bigint AS id, md5(i::text) AS v "
            "FROM generate_series(1, 20000) AS i"
        )
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    args = {"dsn": pg_dsn, "table": table, "batch": 97, "pause_s": 0.01}
    victim = _spawn("reader", {**args, "out": str(first_log)}, tmp_path)
    deadline = time.monotonic() + 30
    while not first_log.exists() or len(first_log.read_text().splitlines()) < 20:
        assert time.monotonic() < deadline and victim.poll() is None, "reader did not start"
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    before, checkpoint = _read_log(first_log)
    assert checkpoint is not None and 0 < len(before) < 20000
    _results(
        [
            _spawn(
                "reader",
                {**args, "pause_s": 0, "out": str(second_log), "checkpoint": checkpoint},
                tmp_path,
            )
        ]
    )
    after, _ = _read_log(second_log)
    assert before + after == [i * 7 for i in range(1, 20001)], "rows lost or repeated"
