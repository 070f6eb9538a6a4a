"""What the SQLite coordinators add to their contracts: files, schema, JSON, locks, restarts."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cerberus  # type: ignore[import-untyped]
import pytest

from flowstone_host.errors import StorageError, Unavailable, ValidationError
from flowstone_host.plugins.sqlite import (
    SqliteParallelCoordinator,
    SqliteRoutingCoordinator,
    SqliteScatterCoordinator,
)
from flowstone_host.plugins.sqlite import parallel as sqlite_parallel
from flowstone_host.plugins.sqlite.schema import SCHEMA_VERSION

CLASSES = [SqliteScatterCoordinator, SqliteParallelCoordinator, SqliteRoutingCoordinator]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_relative_path_lands_in_the_state_folder_which_is_created(
    tmp_path: Path, cls: type[SqliteScatterCoordinator]
) -> None:
    state = tmp_path / "state" / "deeper"
    coordinator = cls({"path": "c.sqlite"}, state_dir=str(state))
    assert (state / "c.sqlite").is_file()
    coordinator.close()


def test_without_a_state_folder_a_relative_path_is_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    SqliteRoutingCoordinator().close()
    assert (tmp_path / "coordinators.sqlite").is_file()


def test_the_database_runs_in_wal_mode_at_the_current_schema_version(tmp_path: Path) -> None:
    SqliteParallelCoordinator({"path": str(tmp_path / "c.sqlite")}).close()
    conn = sqlite3.connect(tmp_path / "c.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


def test_a_database_from_a_newer_host_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StorageError) as caught:
        SqliteScatterCoordinator({"path": str(path)})
    assert caught.value.code == "storage_error"
    assert f"schema version {SCHEMA_VERSION + 1}" in str(caught.value)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_config_schema_fills_the_defaults(cls: type[SqliteScatterCoordinator]) -> None:
    validator = cerberus.Validator(dict(cls.config_schema or {}))
    assert validator.validate({})
    assert validator.document == {"path": "coordinators.sqlite", "busy_timeout_ms": 5000}
    assert not validator.validate({"path": "x", "busy_timeout_ms": -1})


@pytest.mark.parametrize(
    ("namespace", "cls"),
    [
        ("flowstone.scatter_coordinators", SqliteScatterCoordinator),
        ("flowstone.parallel_coordinators", SqliteParallelCoordinator),
        ("flowstone.routing_coordinators", SqliteRoutingCoordinator),
    ],
)
def test_registered_as_sqlite_in_each_namespace(namespace: str, cls: type) -> None:
    (entry_point,) = entry_points(group=namespace, name="sqlite")
    assert entry_point.load() is cls


def test_barriers_survive_a_restart(tmp_path: Path) -> None:
    config = {"path": str(tmp_path / "c.sqlite")}
    first = SqliteScatterCoordinator(config)
    barrier_id = first.create_barrier("run", "asset", "2024-01-01", tolerated_failures={"count": 1})
    first.insert_keys(barrier_id, ["a", "b", "c"], final=False)
    first.record_outcomes(barrier_id, {"a": {"rows": [1, 2]}}, {"b": "boom"})
    first.save_checkpoint(barrier_id, {"offset": 3})
    first.close()
    again = SqliteScatterCoordinator(config)
    assert again.find_barrier("run", "asset", "2024-01-01") == barrier_id
    assert again.load_checkpoint(barrier_id) == {"offset": 3}
    assert again.finished_keys(barrier_id, ["a", "b", "c"]) == {"a", "b"}
    again.insert_keys(barrier_id, [], final=True)
    assert again.complete(barrier_id, "c", 3) == "complete"
    assert again.gather(barrier_id) == {"a": {"rows": [1, 2]}, "c": 3}
    again.close()


@pytest.mark.parametrize("value", [(1, 2), {1: "x"}, {"s": {1, 2}}, math.nan, object()], ids=repr)
def test_a_value_that_is_not_json_safe_is_refused_naming_its_key(
    tmp_path: Path, value: object
) -> None:
    scatter = SqliteScatterCoordinator({"path": str(tmp_path / "c.sqlite")})
    barrier_id = scatter.create_barrier("run", "asset", None)
    scatter.insert_keys(barrier_id, ["good", "bad_key"])
    with pytest.raises(ValidationError) as caught:
        scatter.record_outcomes(barrier_id, {"good": 1, "bad_key": value})
    assert caught.value.code == "validation_error"
    assert caught.value.key == "bad_key" and "bad_key" in str(caught.value)
    assert scatter.status(barrier_id).completed == 0, "a refused batch records nothing"
    scatter.close()


def test_an_unknown_key_in_a_batch_records_nothing(tmp_path: Path) -> None:
    scatter = SqliteScatterCoordinator({"path": str(tmp_path / "c.sqlite")})
    barrier_id = scatter.create_barrier("run", "asset", None)
    scatter.insert_keys(barrier_id, ["a"])
    with pytest.raises(Exception, match="never_inserted"):
        scatter.record_outcomes(barrier_id, {"a": 1, "never_inserted": 2})
    assert scatter.status(barrier_id).completed == 0
    scatter.close()


def test_a_lock_held_past_the_busy_timeout_is_a_retryable_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    scatter = SqliteScatterCoordinator({"path": str(path), "busy_timeout_ms": 50})
    barrier_id = scatter.create_barrier("run", "asset", None)
    scatter.insert_keys(barrier_id, ["a"])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Unavailable) as caught:
            scatter.complete(barrier_id, "a", 1)
        assert caught.value.retryable and str(path) in str(caught.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert scatter.complete(barrier_id, "a", 1) == "complete"
    scatter.close()


def test_a_parallel_join_result_that_is_not_json_safe_leaves_the_execution_joinable(
    tmp_path: Path,
) -> None:
    parallel = SqliteParallelCoordinator({"path": str(tmp_path / "c.sqlite")})
    execution_id = parallel.create_execution("run", "asset", ["a"])
    parallel.schedule_branches(execution_id)
    parallel.complete_branch(execution_id, "a", 1)
    with pytest.raises(ValidationError):
        parallel.execute_join(execution_id, lambda results: {"bad": {1, 2}})
    assert parallel.status(execution_id).status == "ready_for_join"
    assert parallel.execute_join(execution_id, lambda results: dict(results)) == {"a": 1}
    parallel.close()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_health_is_ok_until_closed(tmp_path: Path, cls: type[SqliteScatterCoordinator]) -> None:
    coordinator = cls({"path": str(tmp_path / "c.sqlite")})
    assert coordinator.health_check().healthy
    coordinator.close()
    health = coordinator.health_check()
    assert not health.healthy and "closed" in (health.reason or "")


def test_an_unknown_key_among_failures_records_nothing_either(tmp_path: Path) -> None:
    scatter = SqliteScatterCoordinator({"path": str(tmp_path / "c.sqlite")})
    barrier_id = scatter.create_barrier("run", "asset", None, tolerated_failures={"count": 10})
    scatter.insert_keys(barrier_id, ["a", "b"])
    with pytest.raises(Exception, match="never_inserted"):
        scatter.record_outcomes(barrier_id, {"a": 1}, {"b": "x", "never_inserted": "y"})
    status = scatter.status(barrier_id)
    assert (status.completed, status.failed) == (0, 0)
    scatter.close()


def test_a_batch_whose_failures_cross_the_threshold_stops_counting_at_the_crossing(
    tmp_path: Path,
) -> None:
    """Completions go in first; failures count one by one up to the crossing, as the
    contract's one-outcome-at-a-time rule says, even when the batch goes in at once."""
    scatter = SqliteScatterCoordinator({"path": str(tmp_path / "c.sqlite")})
    barrier_id = scatter.create_barrier("run", "asset", None, tolerated_failures={"count": 1})
    keys = [f"k{i}" for i in range(10)]
    scatter.insert_keys(barrier_id, keys)
    recorded = scatter.record_outcomes(
        barrier_id, dict.fromkeys(keys[:5], 1), dict.fromkeys(keys[5:], "boom")
    )
    assert recorded.state == "threshold_exceeded" and recorded.transitioned
    status = scatter.status(barrier_id)
    assert (status.completed, status.failed) == (5, 2)
    assert scatter.finished_keys(barrier_id, keys) == set(keys[:7])
    scatter.close()


def test_keys_of_any_text_survive_the_batched_statements(tmp_path: Path) -> None:
    scatter = SqliteScatterCoordinator({"path": str(tmp_path / "c.sqlite")})
    barrier_id = scatter.create_barrier("run", "asset", None, tolerated_failures={"count": 3})
    keys = ['quo"te', "back\\slash", "ünï", "new\nline", "[1, 2]", "7"]
    scatter.insert_keys(barrier_id, keys)
    scatter.record_outcomes(barrier_id, {k: {"v": k} for k in keys[:3]}, {k: k for k in keys[3:]})
    assert scatter.gather(barrier_id) == {k: {"v": k} for k in keys[:3]}
    assert scatter.finished_keys(barrier_id, keys) == set(keys)
    assert scatter.status(barrier_id).status == "complete"
    scatter.close()


# -- a join claimed by a process: taken over from the dead, waited for from the living -------


def _joinable(path: Path) -> tuple[SqliteParallelCoordinator, str]:
    parallel = SqliteParallelCoordinator({"path": str(path)})
    execution_id = parallel.create_execution("run", "asset", ["a"])
    parallel.schedule_branches(execution_id)
    parallel.complete_branch(execution_id, "a", 1)
    return parallel, execution_id


def _write(path: Path, sql: str, *params: Any) -> None:
    """Change the file as another process would (its own connection, committed at once)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(sql, params)
    finally:
        conn.close()


def _claim_for(path: Path, execution_id: str, pid: int) -> None:
    """Leave the join claimed by process ``pid``, as its ``execute_join`` does."""
    _write(
        path,
        "UPDATE parallel_executions SET join_owner = ? WHERE execution_id = ?",
        pid,
        execution_id,
    )


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()  # reaped: no process has this id any more
    return child.pid


def _sleeps(monkeypatch: pytest.MonkeyPatch, sleep: Any) -> None:
    """Replace the waits of the coordinator's module (only there: time.sleep stays)."""
    monkeypatch.setattr(sqlite_parallel, "time", SimpleNamespace(time=time.time, sleep=sleep))


@pytest.mark.parametrize("owner", ["this process", "a dead process"])
def test_a_join_claimed_by_a_process_that_is_gone_is_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owner: str
) -> None:
    """A process that died while its join ran leaves its claim behind. So does one whose
    process id this process now has (a restarted container's host is pid 1 again); this
    process's own joins wait on a thread lock, never on a claim, so such a claim is stale."""
    path = tmp_path / "c.sqlite"
    parallel, execution_id = _joinable(path)
    _claim_for(path, execution_id, os.getpid() if owner == "this process" else _dead_pid())

    def no_wait(seconds: float) -> None:
        raise AssertionError(f"waited {seconds} s for a claim whose owner is gone")

    _sleeps(monkeypatch, no_wait)
    assert parallel.execute_join(execution_id, dict) == {"a": 1}
    assert parallel.status(execution_id).status == "complete"
    parallel.close()


@pytest.mark.parametrize("owner_then", ["records its result", "gives up"])
def test_a_join_claimed_by_a_live_process_is_waited_for_with_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owner_then: str
) -> None:
    """While the owner lives, the join is not run again: the caller looks again after a
    wait that doubles from the first to the largest of ``_POLL_S``, and returns what the
    owner recorded, or runs the join itself once the owner gave its claim up."""
    path = tmp_path / "c.sqlite"
    parallel, execution_id = _joinable(path)
    _claim_for(path, execution_id, os.getppid())  # the process that started this one: alive
    monkeypatch.setattr(sqlite_parallel, "_POLL_S", (0.001, 0.004))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) < 5:
            return
        if owner_then == "records its result":  # as the owner's execute_join does
            _write(
                path,
                "UPDATE parallel_executions SET state = 'complete', joined = 1, "
                "join_result = ?, join_owner = NULL WHERE execution_id = ?",
                '{"by": "owner"}',
                execution_id,
            )
        else:  # its join_fn raised
            _write(
                path,
                "UPDATE parallel_executions SET join_owner = NULL WHERE execution_id = ?",
                execution_id,
            )

    _sleeps(monkeypatch, sleep)
    calls: list[dict[str, Any]] = []

    def join(results: Any) -> dict[str, Any]:
        calls.append(dict(results))
        return {"by": "waiter"}

    result = parallel.execute_join(execution_id, join)
    assert waits == [0.001, 0.002, 0.004, 0.004, 0.004]
    if owner_then == "records its result":
        assert (result, calls) == ({"by": "owner"}, [])
    else:
        assert (result, calls) == ({"by": "waiter"}, [{"a": 1}])
    assert parallel.status(execution_id).status == "complete"
    parallel.close()


def test_a_joined_execution_leaves_no_thread_lock_behind(tmp_path: Path) -> None:
    """Threads of one process wait for a join on a lock of its execution; a host joins
    executions without end, so each lock goes once its execution is joined."""
    parallel = SqliteParallelCoordinator({"path": str(tmp_path / "c.sqlite")})
    for _ in range(3):
        execution_id = parallel.create_execution("run", "asset", ["a"])
        parallel.schedule_branches(execution_id)
        parallel.complete_branch(execution_id, "a", 1)
        assert parallel.execute_join(execution_id, dict) == {"a": 1}
    assert parallel._join_locks == {}
    parallel.close()
