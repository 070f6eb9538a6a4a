"""What the conformance kit leaves open, on the memory, SQLite and PostgreSQL coordinators
alike: the errors name what they refused, checkpoints are copies, and a redrive of a barrier
without failures keeps or reopens it as the contract says."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowstone_host.errors import Conflict, NotFound, ValidationError
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
