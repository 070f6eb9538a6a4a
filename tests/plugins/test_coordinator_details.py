"""What the conformance kit leaves open, on the memory, SQLite and PostgreSQL coordinators
alike: the errors name what they refused, checkpoints are copies, and a redrive of a barrier
without failures keeps or reopens it as the contract says."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowstone_host.errors import Conflict, NotFound, ValidationError
from flowstone_host.partitions import partition_key
from flowstone_host.plugins.memory_coordinators import (
    MemoryRoutingCoordinator,
    MemoryScatterCoordinator,
)
from flowstone_host.plugins.sqlite import SqliteRoutingCoordinator, SqliteScatterCoordinator

#: The backends every test here runs on; PostgreSQL's on a real server (tests/conftest.py).
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.integration)]


def _coordinator(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> Any:
    """Return a new ``kind`` ("scatter" or "routing") coordinator of the backend asked for;
    on PostgreSQL in a schema of its own, so that no test sees another's barriers."""
    if request.param == "memory":
        memory = {"scatter": MemoryScatterCoordinator, "routing": MemoryRoutingCoordinator}
        return memory[kind]()
    if request.param == "sqlite":
        sqlite = {"scatter": SqliteScatterCoordinator, "routing": SqliteRoutingCoordinator}
        return sqlite[kind]({"path": str(tmp_path / "c.sqlite")})
    from flowstone_host.plugins.postgres.routing import PostgresRoutingCoordinator
    from flowstone_host.plugins.postgres.scatter import PostgresScatterCoordinator

    postgres = {"scatter": PostgresScatterCoordinator, "routing": PostgresRoutingCoordinator}
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
