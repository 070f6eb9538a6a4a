"""What the conformance kit leaves open, on the memory and SQLite coordinators alike: the
errors name what they refused, checkpoints are copies, and a redrive of a barrier without
failures keeps or reopens it as the contract says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowstone_host.errors import Conflict, NotFound
from flowstone_host.plugins.memory_coordinators import (
    MemoryRoutingCoordinator,
    MemoryScatterCoordinator,
)
from flowstone_host.plugins.sqlite import SqliteRoutingCoordinator, SqliteScatterCoordinator


@pytest.fixture(params=["memory", "sqlite"])
def scatter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        coordinator: Any = MemoryScatterCoordinator()
    else:
        coordinator = SqliteScatterCoordinator({"path": str(tmp_path / "c.sqlite")})
    yield coordinator
    coordinator.close()


@pytest.fixture(params=["memory", "sqlite"])
def routing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        coordinator: Any = MemoryRoutingCoordinator()
    else:
        coordinator = SqliteRoutingCoordinator({"path": str(tmp_path / "c.sqlite")})
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
