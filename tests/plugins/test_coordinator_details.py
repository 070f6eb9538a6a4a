"""What the conformance kit leaves open, on the memory, SQLite and PostgreSQL coordinators
alike: the errors name what they refused, checkpoints are copies, a redrive of a barrier
without failures keeps or reopens it as the contract says, and a parallel execution keeps
its branches' order and its join's result, whatever that result is."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowstone_host.errors import Conflict, NotFound, ValidationError
from flowstone_host.partitions import partition_key
from flowstone_host.plugins.memory_coordinators import (
    MemoryParallelCoordinator,
    MemoryRoutingCoordinator,
    MemoryScatterCoordinator,
)
from flowstone_host.plugins.sqlite import (
    SqliteParallelCoordinator,
    SqliteRoutingCoordinator,
    SqliteScatterCoordinator,
)

#: The backends every test here runs on; PostgreSQL's on a real server (tests/conftest.py).
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.integration)]


def _coordinator(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> Any:
    """Return a new ``kind`` ("scatter", "routing" or "parallel") coordinator of the backend
    asked for; on PostgreSQL in a schema of its own, so that no test sees another's rows."""
    if request.param == "memory":
        memory = {
            "scatter": MemoryScatterCoordinator,
            "routing": MemoryRoutingCoordinator,
            "parallel": MemoryParallelCoordinator,
        }
        return memory[kind]()
    if request.param == "sqlite":
        sqlite = {
            "scatter": SqliteScatterCoordinator,
            "routing": SqliteRoutingCoordinator,
            "parallel": SqliteParallelCoordinator,
        }
        return sqlite[kind]({"path": str(tmp_path / "c.sqlite")})
    from flowstone_host.plugins.postgres.parallel import PostgresParallelCoordinator
    from flowstone_host.plugins.postgres.routing import PostgresRoutingCoordinator
    from flowstone_host.plugins.postgres.scatter import PostgresScatterCoordinator

    postgres = {
        "scatter": PostgresScatterCoordinator,
        "routing": PostgresRoutingCoordinator,
        "parallel": PostgresParallelCoordinator,
    }
    schema = f"details_{uuid.uuid4().hex[:12]}"
    return postgres[kind]({"dsn": request.getfixturevalue("pg_dsn"), "schema": schema})


@pytest.fixture(params=BACKENDS)
def scatter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    coordinator = _coordinator(request, tmp_path, "scatter")
    yield coordinator
    coordinator.close()


@pytest.fixture(params=BACKENDS)
def routing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    coordinator = _coordinator(request, tmp_path, "routing")
    yield coordinator
    coordinator.close()


@pytest.fixture(params=BACKENDS)
def parallel(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    coordinator = _coordinator(request, tmp_path, "parallel")
    yield coordinator
    coordinator.close()


def test_an_unknown_barrier_is_named_in_its_not_found(scatter: Any) -> None:
    for call in (scatter.status, scatter.gather, scatter.load_checkpoint, scatter.cancel):
        with pytest.raises(NotFound) as info:
            call("run:nope")
        assert info.value.barrier_id == "run:nope", call
        assert "'run:nope'" in info.value.message


def test_a_key_never_inserted_is_refused_naming_it_and_its_barrier(scatter: Any) -> None:
    barrier = scatter.create_barrier("run", "asset", None)
    scatter.insert_keys(barrier, ["a"])
    for record in (
        lambda: scatter.complete(barrier, "zz", 1),
        lambda: scatter.fail(barrier, "zz", "boom"),
        lambda: scatter.record_outcomes(barrier, {"a": 1, "zz": 2}),
    ):
        with pytest.raises(NotFound) as info:
            record()
        assert "'zz'" in info.value.message and repr(barrier) in info.value.message
        assert (info.value.barrier_id, info.value.key) == (barrier, "zz")
    assert scatter.status(barrier).completed == 0  # nothing of the refused batch counted


def test_a_checkpoint_is_a_copy_in_and_out(scatter: Any) -> None:
    barrier = scatter.create_barrier("run", "asset", None)
    checkpoint: dict[str, Any] = {"after": {"page": 3, "seen": [1, 2]}}
    scatter.save_checkpoint(barrier, checkpoint)
    checkpoint["after"]["seen"].append(99)  # the caller's object changes later
    loaded = scatter.load_checkpoint(barrier)
    assert loaded == {"after": {"page": 3, "seen": [1, 2]}}
    loaded["after"]["page"] = 7  # and so does what it loaded
    assert scatter.load_checkpoint(barrier) == {"after": {"page": 3, "seen": [1, 2]}}
    scatter.save_checkpoint(barrier, None)
    assert scatter.load_checkpoint(barrier) is None


def test_a_redrive_without_failures_leaves_a_pending_barrier_and_its_checkpoint(
    scatter: Any,
) -> None:
    barrier = scatter.create_barrier("run", "asset", None)
    scatter.insert_keys(barrier, ["a", "b"])
    scatter.complete(barrier, "a", 1)
    scatter.save_checkpoint(barrier, {"after": "a"})
    assert scatter.retry_failed(barrier) == []
    assert scatter.status(barrier).status == "pending"
    assert scatter.load_checkpoint(barrier) == {"after": "a"}


def test_a_redrive_reopens_a_cancelled_barrier_even_without_failures(scatter: Any) -> None:
    barrier = scatter.create_barrier("run", "asset", None)
    scatter.insert_keys(barrier, ["a", "b"])
    scatter.complete(barrier, "a", 1)
    scatter.save_checkpoint(barrier, {"after": "a"})
    scatter.cancel(barrier)
    assert scatter.retry_failed(barrier) == []
    assert scatter.status(barrier).status == "pending"
    assert scatter.load_checkpoint(barrier) is None  # a resumed run reads from the start
    assert scatter.complete(barrier, "b", 2) == "complete"


def test_a_conflicting_route_names_the_decision_it_conflicts_with(routing: Any) -> None:
    decision = routing.record("run", "router", "2024-01-01", "left")
    with pytest.raises(Conflict) as info:
        routing.record("run", "router", "2024-01-01", "right")
    assert info.value.decision_id == decision
    assert routing.get("run", "router", "2024-01-01") == "left"


def test_a_missing_decision_is_named_in_its_not_found(routing: Any) -> None:
    with pytest.raises(NotFound) as info:
        routing.get("run", "router", "2024-01-01")
    context = (info.value.run_id, info.value.router_asset, info.value.partition)
    assert context == ("run", "router", partition_key("2024-01-01"))
    assert "'router'" in info.value.message and "'run'" in info.value.message
    with pytest.raises(NotFound) as unknown:
        routing.to_output("nope")
    assert unknown.value.decision_id == "nope" and "'nope'" in unknown.value.message


def test_more_unknown_barrier_calls_name_it(scatter: Any) -> None:
    calls = (
        lambda: scatter.save_checkpoint("run:nope", {"a": 1}),
        lambda: scatter.insert_keys("run:nope", ["a"]),
        lambda: scatter.retry_failed("run:nope"),
        lambda: scatter.set_tolerated_failures("run:nope", None),
        lambda: scatter.finished_keys("run:nope", ["a"]),
    )
    for call in calls:
        with pytest.raises(NotFound) as info:
            call()
        assert info.value.barrier_id == "run:nope"


def test_a_batch_of_failures_counts_only_up_to_the_threshold(scatter: Any) -> None:
    barrier = scatter.create_barrier("run", "asset", None, tolerated_failures={"percent": 20})
    scatter.insert_keys(barrier, [f"k{i}" for i in range(10)])
    recorded = scatter.record_outcomes(barrier, None, {f"k{i}": "boom" for i in range(5)})
    # 2 of 10 are tolerated; the third crosses it, and nothing after it is recorded.
    assert (recorded.state, recorded.counted, recorded.transitioned) == (
        "threshold_exceeded",
        3,
        True,
    )
    assert scatter.status(barrier).failed == 3


@pytest.mark.parametrize(
    ("tolerated", "before", "batch", "failed"),
    [
        (None, 0, 3, 1),  # none tolerated: the first failure trips it
        ({"count": 2}, 1, 5, 3),  # one failed before: two more count
        ({"percent": 20}, 1, 5, 3),  # 2 of 10 tolerated, one failed before
        ({"percent": 4}, 0, 5, 1),  # under one item tolerated: the first trips it
        ({"percent": 25}, 0, 5, 3),  # 2.5 of 10 tolerated
        ({"percent": 50}, 2, 8, 6),  # 5 of 10 tolerated, two failed before
    ],
    ids=["none", "count", "percent-after-one", "percent-under-one", "percent-half", "half"],
)
def test_a_batch_of_failures_counts_up_to_the_one_that_trips_the_barrier(
    scatter: Any, tolerated: dict[str, Any] | None, before: int, batch: int, failed: int
) -> None:
    barrier = scatter.create_barrier("run", "asset", None, tolerated_failures=tolerated)
    keys = [f"k{i}" for i in range(10)]
    scatter.insert_keys(barrier, keys)
    for key in keys[:before]:
        assert scatter.fail(barrier, key, "boom") == "pending"
    recorded = scatter.record_outcomes(barrier, None, dict.fromkeys(keys[before:][:batch], "x"))
    assert (recorded.state, recorded.counted) == ("threshold_exceeded", failed - before)
    assert scatter.status(barrier).failed == failed


def test_a_percent_is_not_judged_before_the_key_set_is_final(scatter: Any) -> None:
    barrier = scatter.create_barrier("run", "asset", None, tolerated_failures={"percent": 10})
    keys = [f"k{i}" for i in range(10)]
    scatter.insert_keys(barrier, keys, final=False)
    recorded = scatter.record_outcomes(barrier, None, dict.fromkeys(keys[:5], "x"))
    assert (recorded.state, recorded.counted) == ("pending", 5)  # every failure counts
    scatter.insert_keys(barrier, [], final=True)  # 5 of 10 over 10%
    assert scatter.status(barrier).status == "threshold_exceeded"


def test_one_call_inserts_more_keys_than_a_statement_holds(scatter: Any) -> None:
    keys = [f"k{i:05d}" for i in range(25_001)]  # the PostgreSQL coordinator's chunk: 10,000
    barrier = scatter.create_barrier("run", "asset", None)
    scatter.insert_keys(barrier, keys)
    assert scatter.status(barrier).total == 25_001
    scatter.record_outcomes(barrier, {keys[0]: 0, keys[-1]: 1})
    assert scatter.finished_keys(barrier, keys) == {keys[0], keys[-1]}


def test_an_unknown_key_is_refused_by_a_finished_barrier_too(scatter: Any) -> None:
    barrier = scatter.create_barrier("run", "asset", None)
    scatter.insert_keys(barrier, ["a"])
    scatter.cancel(barrier)
    assert scatter.complete(barrier, "a", 1) == "cancelled"  # a known key: ignored
    with pytest.raises(NotFound) as info:
        scatter.record_outcomes(barrier, {"zz": 1})
    assert (info.value.barrier_id, info.value.key) == (barrier, "zz")


@given(
    percent=st.floats(min_value=0, max_value=100, allow_nan=False),
    total=st.integers(min_value=1, max_value=10**9),
)
def test_the_postgres_trip_point_is_the_shared_rule_solved(percent: float, total: int) -> None:
    """The PostgreSQL coordinator computes where a percent threshold trips instead of
    asking threshold_exceeded() failure by failure: the least count that exceeds it."""
    from flowstone_host.contracts.scatter import threshold_exceeded
    from flowstone_host.plugins.postgres.scatter import _Barrier

    tolerated = {"percent": percent}
    trip = _Barrier("pending", True, total, 0, 0, tolerated).failures_before_trip()
    assert trip is not None and threshold_exceeded(trip, total, tolerated)
    assert trip == 1 or not threshold_exceeded(trip - 1, total, tolerated)


def test_a_failure_batch_after_earlier_failures_can_complete_the_barrier(scatter: Any) -> None:
    barrier = scatter.create_barrier("run", "asset", None, tolerated_failures={"count": 5})
    scatter.insert_keys(barrier, ["a", "b", "c"])
    scatter.fail(barrier, "a", "boom")
    scatter.complete(barrier, "b", 1)
    recorded = scatter.record_outcomes(barrier, None, {"c": "boom"})
    assert (recorded.state, recorded.counted, recorded.transitioned) == ("complete", 1, True)


def test_loosening_the_threshold_keeps_a_barrier_with_failures_pending(scatter: Any) -> None:
    barrier = scatter.create_barrier("run", "asset", None, tolerated_failures={"count": 1})
    scatter.insert_keys(barrier, ["a", "b", "c"])
    scatter.fail(barrier, "a", "boom")
    assert scatter.set_tolerated_failures(barrier, {"count": 5}) == "pending"
    assert scatter.fail(barrier, "b", "boom") == "pending"  # 2 <= 5: judged by the new one


def test_finished_keys_are_found_among_many(scatter: Any) -> None:
    keys = [f"k{i:04d}" for i in range(1200)]
    barrier = scatter.create_barrier("run", "asset", None)
    scatter.insert_keys(barrier, keys)
    scatter.record_outcomes(barrier, {"k0000": 0, "k0600": 1, "k1199": 2}, {"k1100": "x"})
    assert scatter.finished_keys(barrier, keys) == {"k0000", "k0600", "k1100", "k1199"}


# -- parallel executions -----------------------------------------------------------------------

#: The backends that store values as JSON, and so refuse what JSON cannot hold.
DURABLE = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]


def _joinable(parallel: Any, results: Mapping[str, Any]) -> str:
    """Return a new execution whose branches, one per key of ``results``, completed."""
    execution_id = parallel.create_execution("run", "asset", list(results))
    parallel.schedule_branches(execution_id)
    for branch, result in results.items():
        parallel.complete_branch(execution_id, branch, result)
    return execution_id


def test_an_unknown_execution_is_named_in_its_not_found(parallel: Any) -> None:
    calls = (
        lambda: parallel.schedule_branches("run:nope"),
        lambda: parallel.complete_branch("run:nope", "a", 1),
        lambda: parallel.fail_branch("run:nope", "a", "boom"),
        lambda: parallel.execute_join("run:nope", dict),
        lambda: parallel.status("run:nope"),
    )
    for call in calls:
        with pytest.raises(NotFound) as info:
            call()
        assert info.value.execution_id == "run:nope"
        assert "'run:nope'" in info.value.message


def test_an_unknown_branch_is_named_with_its_execution(parallel: Any) -> None:
    execution_id = parallel.create_execution("run", "asset", ["a"])
    for record in (parallel.complete_branch, parallel.fail_branch):
        with pytest.raises(NotFound) as info:
            record(execution_id, "zz", 1)
        assert (info.value.execution_id, info.value.branch) == (execution_id, "zz")
        assert "'zz'" in info.value.message and repr(execution_id) in info.value.message
    assert parallel.status(execution_id).branches == {"a": "pending"}


def test_a_join_before_ready_names_the_execution_and_its_state(parallel: Any) -> None:
    execution_id = parallel.create_execution("run", "asset", ["a", "b"])
    parallel.schedule_branches(execution_id)
    parallel.complete_branch(execution_id, "a", 1)
    with pytest.raises(Conflict) as info:
        parallel.execute_join(execution_id, dict)
    assert (info.value.execution_id, info.value.state) == (execution_id, "running")
    assert repr(execution_id) in info.value.message and "running" in info.value.message


def test_branches_keep_the_order_they_were_created_in(parallel: Any) -> None:
    names = ["m", "b", "z", "a"]
    execution_id = parallel.create_execution("run", "asset", names)
    assert list(parallel.status(execution_id).branches) == names
    assert parallel.schedule_branches(execution_id) == names
    assert list(parallel.status(execution_id).branches) == names


def test_scheduling_again_leaves_a_joined_or_failed_execution_as_it_is(parallel: Any) -> None:
    joined = _joinable(parallel, {"a": 1})
    parallel.execute_join(joined, dict)
    assert parallel.schedule_branches(joined) == []
    assert parallel.status(joined).status == "complete"
    failed = parallel.create_execution("run", "asset", ["a", "b"])
    assert parallel.fail_branch(failed, "a", "boom") == "failed"  # before any scheduling
    parallel.schedule_branches(failed)
    assert parallel.status(failed).status == "failed"


@pytest.mark.parametrize("result", [None, 0, False, "", [], {}], ids=repr)
def test_a_join_result_that_is_falsy_is_replayed_too(parallel: Any, result: Any) -> None:
    execution_id = _joinable(parallel, {"a": 1})
    calls: list[dict[str, Any]] = []

    def join(results: Mapping[str, Any]) -> Any:
        calls.append(dict(results))
        return result

    first = parallel.execute_join(execution_id, join)
    second = parallel.execute_join(execution_id, join)
    assert (type(first), first) == (type(second), second) == (type(result), result)
    assert calls == [{"a": 1}], "join_fn must run exactly once"
    assert parallel.status(execution_id).status == "complete"


def test_a_join_that_raises_records_nothing_and_may_run_again(parallel: Any) -> None:
    execution_id = _joinable(parallel, {"a": 1})

    def broken(results: Mapping[str, Any]) -> Any:
        raise RuntimeError("join broke")

    with pytest.raises(RuntimeError, match="join broke"):
        parallel.execute_join(execution_id, broken)
    assert parallel.status(execution_id).status == "ready_for_join"
    assert parallel.execute_join(execution_id, dict) == {"a": 1}
    assert parallel.status(execution_id).status == "complete"


def test_joins_of_different_executions_do_not_wait_for_each_other(parallel: Any) -> None:
    """A join may wait for another execution's join (a join that materializes a parallel
    asset of its own): joins are serialized per execution, not across executions."""
    outer = _joinable(parallel, {"a": 1})
    inner = _joinable(parallel, {"b": 2})
    inner_outcome: list[Any] = []
    inner_done = threading.Event()

    def join_inner() -> None:
        try:
            inner_outcome.append(parallel.execute_join(inner, dict))
        except Exception as exc:  # shown by the assertion below
            inner_outcome.append(exc)
        finally:
            inner_done.set()

    def join_outer(results: Mapping[str, Any]) -> Any:
        threading.Thread(target=join_inner, daemon=True).start()
        assert inner_done.wait(timeout=60), "the inner join waited for the outer one to end"
        return dict(results)

    assert parallel.execute_join(outer, join_outer) == {"a": 1}
    assert inner_outcome == [{"b": 2}]


@pytest.mark.parametrize("parallel", DURABLE, indirect=True)
def test_values_json_cannot_hold_are_refused_naming_the_branch_and_execution(
    parallel: Any,
) -> None:
    execution_id = parallel.create_execution("run", "asset", ["a"])
    parallel.schedule_branches(execution_id)
    for record, noun in ((parallel.complete_branch, "result"), (parallel.fail_branch, "error")):
        with pytest.raises(ValidationError) as info:
            record(execution_id, "a", {1, 2})
        assert f"{noun} of branch 'a' in execution {execution_id!r}" in info.value.message
        assert (info.value.execution_id, info.value.branch) == (execution_id, "a")
    assert parallel.status(execution_id).branches == {"a": "running"}  # nothing recorded
    parallel.complete_branch(execution_id, "a", 1)
    with pytest.raises(ValidationError) as refused:
        parallel.execute_join(execution_id, lambda results: {"bad": {1, 2}})
    assert f"join result of execution {execution_id!r}" in refused.value.message
    assert refused.value.execution_id == execution_id
    assert parallel.status(execution_id).status == "ready_for_join"


def _stored_run_and_asset(parallel: Any, execution_id: str) -> tuple[str, str]:
    """Read an execution's run and asset from its database, as an operator would."""
    if isinstance(parallel, SqliteParallelCoordinator):
        conn = sqlite3.connect(parallel.config["path"])
        try:
            query = "SELECT run_id, asset FROM parallel_executions WHERE execution_id = ?"
            (row,) = conn.execute(query, (execution_id,)).fetchall()
        finally:
            conn.close()
    else:
        query = "SELECT run_id, asset FROM {schema}.parallel_executions WHERE execution_id = %s"
        with parallel.connection() as pg:
            (row,) = pg.execute(parallel.sql(query), [execution_id]).fetchall()
    return tuple(row)  # type: ignore[return-value]


@pytest.mark.parametrize("parallel", DURABLE, indirect=True)
def test_a_durable_execution_names_its_run_and_asset(parallel: Any) -> None:
    execution_id = parallel.create_execution("run-7", "sales", ["a"])
    assert _stored_run_and_asset(parallel, execution_id) == ("run-7", "sales")


# -- what only the SQLite coordinator adds: context on its errors, JSON checks ---------------


@pytest.fixture
def sqlite_scatter(tmp_path: Path) -> Iterator[SqliteScatterCoordinator]:
    coordinator = SqliteScatterCoordinator({"path": str(tmp_path / "c.sqlite")})
    yield coordinator
    coordinator.close()


def test_sqlite_errors_carry_the_barrier_and_key(sqlite_scatter: Any) -> None:
    barrier = sqlite_scatter.create_barrier("run", "asset", None)
    sqlite_scatter.insert_keys(barrier, ["a", "b"])
    for batch in ({"zz": 1}, {"a": 1, "zz": 2}):
        with pytest.raises(NotFound) as info:
            sqlite_scatter.record_outcomes(barrier, batch)
        assert (info.value.barrier_id, info.value.key) == (barrier, "zz")
    with pytest.raises(Conflict) as conflict:
        sqlite_scatter.insert_keys(barrier, ["c"])
    assert conflict.value.barrier_id == barrier


def test_sqlite_refuses_values_it_cannot_store_naming_what_and_where(sqlite_scatter: Any) -> None:
    barrier = sqlite_scatter.create_barrier("run", "asset", None)
    sqlite_scatter.insert_keys(barrier, ["a"])
    for call, noun in (
        (lambda: sqlite_scatter.complete(barrier, "a", {1, 2}), "result"),
        (lambda: sqlite_scatter.fail(barrier, "a", {1, 2}), "error"),
    ):
        with pytest.raises(ValidationError) as info:
            call()
        assert f"{noun} of key 'a' in barrier {barrier!r}" in info.value.message
        assert info.value.key == "a"
    with pytest.raises(ValidationError) as refused:
        sqlite_scatter.save_checkpoint(barrier, {"after": {1, 2}})
    assert f"reader checkpoint of barrier {barrier!r}" in refused.value.message
    assert refused.value.barrier_id == barrier
    assert sqlite_scatter.status(barrier).completed == 0


@pytest.mark.integration
@pytest.mark.parametrize("scatter", ["postgres"], indirect=True)
def test_postgres_refuses_values_it_cannot_store_naming_what(scatter: Any) -> None:
    barrier = scatter.create_barrier("run", "asset", None)
    scatter.insert_keys(barrier, ["a"])
    for call, what in (
        (lambda: scatter.complete(barrier, "a", {1, 2}), "The result of key 'a'"),
        (lambda: scatter.fail(barrier, "a", {1, 2}), "The error of key 'a'"),
        (lambda: scatter.save_checkpoint(barrier, {"after": {1, 2}}), "A reader checkpoint"),
    ):
        with pytest.raises(ValidationError) as info:
            call()
        assert info.value.message.startswith(f"{what} must be JSON-serialisable"), what
    status = scatter.status(barrier)
    assert (status.completed, status.failed) == (0, 0)
    assert scatter.load_checkpoint(barrier) is None
