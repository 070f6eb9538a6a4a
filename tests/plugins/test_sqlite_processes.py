"""Several real processes share one SQLite coordinator file: nothing lost, nothing doubled."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.pool import Pool
from pathlib import Path

import pytest
import sqlite_workers as workers

from flowstone_host.plugins.sqlite import (
    SqliteParallelCoordinator,
    SqliteRoutingCoordinator,
    SqliteScatterCoordinator,
)

pytestmark = pytest.mark.integration

PROCESSES = 3
KEYS = [f"k{i}" for i in range(300)]
LAST = "k301"  # held back; completes (not a fifth)


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """Three warm spawned processes (spawn, never fork: see CONVENTIONS)."""
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        assert len(pool.map(workers.warm_up, range(PROCESSES))) == PROCESSES
        yield pool


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "shared.sqlite")


def _soon() -> float:
    return time.time() + 0.5


def _expected_results() -> set[str]:
    return {key for key in KEYS if not workers.fails(key)}


def test_processes_racing_outcomes_count_each_key_once_and_finish_once(pool: Pool, db: str) -> None:
    scatter = SqliteScatterCoordinator({"path": db})
    barrier_id = scatter.create_barrier("run", "asset", "p", tolerated_failures={"count": 100})
    scatter.insert_keys(barrier_id, KEYS)
    start_at = _soon()
    reports = pool.starmap(
        workers.report_outcomes, [(db, barrier_id, KEYS, seed, start_at) for seed in range(3)]
    )
    assert sum(counted for counted, _, _ in reports) == len(KEYS), "a key counted twice or lost"
    transitions = [t for _, t, _ in reports]
    assert sum(transitions) == 1, f"transitioned seen per process: {transitions}"
    assert (scatter.status(barrier_id).status, scatter.status(barrier_id).completed) == (
        "complete",
        240,
    )
    assert scatter.status(barrier_id).failed == 60
    gathered = scatter.gather(barrier_id)
    assert set(gathered) == _expected_results()
    assert all(value["key"] == key for key, value in gathered.items())
    scatter.close()


def test_redelivery_from_processes_never_completes_the_barrier_early(pool: Pool, db: str) -> None:
    scatter = SqliteScatterCoordinator({"path": db})
    barrier_id = scatter.create_barrier("run", "asset", "p", tolerated_failures={"count": 100})
    scatter.insert_keys(barrier_id, [*KEYS, LAST])
    start_at = _soon()
    reports = pool.starmap(
        workers.report_outcomes, [(db, barrier_id, KEYS, seed, start_at) for seed in range(3)]
    )
    states = {state for _, _, process_states in reports for state in process_states}
    assert states == {"pending"}, "redelivered outcomes completed the barrier early"
    status = scatter.status(barrier_id)
    assert (status.status, status.completed, status.failed, status.total) == (
        "pending",
        240,
        60,
        301,
    )
    start_at = _soon()
    last = pool.starmap(
        workers.report_outcomes, [(db, barrier_id, [LAST], s, start_at) for s in range(3)]
    )
    assert [t for _, t, _ in last].count(1) == 1, f"the last key finished it {last}"
    assert scatter.status(barrier_id).status == "complete"
    assert set(scatter.gather(barrier_id)) == _expected_results() | {LAST}
    scatter.close()


def test_processes_racing_a_parallel_execution_agree_and_join_once(
    pool: Pool, db: str, tmp_path: Path
) -> None:
    parallel = SqliteParallelCoordinator({"path": db})
    execution_id = parallel.create_execution("run", "asset", ["a", "b", "c"], optional=["c"])
    parallel.schedule_branches(execution_id)
    marker, start_at = str(tmp_path / "joins.txt"), _soon()
    joined = pool.starmap(workers.race_parallel, [(db, execution_id, marker, start_at)] * PROCESSES)
    assert Path(marker).read_text().count("\n") == 1, "join_fn ran more than once"
    assert all(result == joined[0] for result in joined), f"processes disagree: {joined}"
    assert set(joined[0]["branches"]) == {"a", "b"}
    status = parallel.status(execution_id)
    assert (status.status, dict(status.branches)) == (
        "complete",
        {"a": "complete", "b": "complete", "c": "failed"},
    )
    parallel.close()


def test_processes_racing_routing_decisions_leave_the_first_writer(pool: Pool, db: str) -> None:
    partitions = [f"p{i}" for i in range(40)]
    SqliteRoutingCoordinator({"path": db}).close()
    start_at = _soon()
    outcomes = pool.starmap(
        workers.race_routing,
        [(db, "run", partitions, f"branch{i}", start_at) for i in range(PROCESSES)],
    )
    for partition in partitions:
        winners = [i for i, (won, _) in enumerate(outcomes) if won[partition] is not None]
        assert len(winners) == 1, f"{len(winners)} processes won {partition}"
        seen = {got[partition] for _, got in outcomes}
        assert seen == {f"branch{winners[0]}"}, f"processes disagree on {partition}: {seen}"
