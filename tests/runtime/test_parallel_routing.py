"""Parallel join semantics and routing replay, on both coordinators."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowstone_host.manifest.model import Asset, Branch, Parallel, Routing, freeze
from flowstone_host.runtime import materialize
from tests.runtime import work
from tests.runtime.helpers import POLICY, W, snapshot

COORDINATORS = ["memory", "sqlite"]


def parallel(join: str = "join_all", **branches: tuple[str, bool]) -> Asset:
    spec = Parallel(
        branches=freeze({n: Branch(W + f, required) for n, (f, required) in branches.items()}),
        join=W + join,
    )
    return Asset("p", parallel=spec)


@pytest.mark.parametrize("coordinator", COORDINATORS)
def test_an_optional_branch_failing_reaches_the_join_as_an_error_value(
    tmp_path: Path, coordinator: str
) -> None:
    asset = parallel(a=("branch_ok", True), b=("branch_fails", False))
    snap = snapshot([asset], tmp_path, coordinator=coordinator)
    result = materialize(snap, ["p"], state_dir=tmp_path, callables=POLICY)
    assert result.ok, result.error
    out = snap.io_managers.resolve("default").instance.load("p", None)
    assert out == {"a": "a:ok", "b": "internal_error"}


@pytest.mark.parametrize("coordinator", COORDINATORS)
def test_a_required_branch_failing_fails_the_run(tmp_path: Path, coordinator: str) -> None:
    asset = parallel(a=("branch_ok", False), b=("branch_fails", True))
    snap = snapshot([asset], tmp_path, coordinator=coordinator)
    result = materialize(snap, ["p"], state_dir=tmp_path, callables=POLICY)
    assert result.error is not None and result.error.code == "branch_failed"
    assert result.error.details["failed"] == ["b"] and "b broke" in result.error.message


@pytest.mark.parametrize("coordinator", COORDINATORS)
def test_a_join_that_raises_leaves_the_run_retryable(tmp_path: Path, coordinator: str) -> None:
    asset = parallel(join="join_flaky", a=("branch_ok", True))
    snap = snapshot([asset], tmp_path, coordinator=coordinator)
    first = materialize(snap, ["p"], state_dir=tmp_path, callables=POLICY)
    assert first.error is not None and "join broke" in first.error.message
    execution = first.record.steps[0].details["execution"]
    coordinator_entry = snap.parallel_coordinators.resolve("default")
    assert coordinator_entry.instance.status(execution).status == "ready_for_join"
    work.JOIN_FAILS["on"] = False
    second = materialize(snap, ["p"], state_dir=tmp_path, callables=POLICY)
    assert second.ok and second.resumed and second.run_id == first.run_id
    assert snap.io_managers.resolve("default").instance.load("p", None) == "joined"


def routed() -> list[Asset]:
    return [
        Asset("source", compute=W + "source"),
        Asset("big", compute=W + "big", deps=("source",)),
        Asset("small", compute=W + "small", deps=("source",)),
        Asset(
            "route",
            deps=("source",),
            routing=Routing(router=W + "router", routes=freeze({"big": "big", "small": "small"})),
        ),
    ]


@pytest.mark.parametrize("coordinator", COORDINATORS)
def test_routing_materializes_only_the_chosen_route_and_replays_without_the_router(
    tmp_path: Path, coordinator: str
) -> None:
    snap = snapshot(routed(), tmp_path, coordinator=coordinator)
    io = snap.io_managers.resolve("default").instance
    first = materialize(snap, ["route"], state_dir=tmp_path, callables=POLICY, run_id="r")
    assert first.ok and io.load("route", None) == "big route"
    assert work.CALLS.count("router") == 1 and not io.exists("small", None)
    decision = next(s for s in first.record.steps if s.asset == "route").details["decision"]
    assert decision["selected_branch"] == "big" and decision["run_id"] == "r"
    io.delete("route", None)
    replay = materialize(snap, ["route"], state_dir=tmp_path, callables=POLICY, run_id="r")
    assert replay.ok and replay.resumed and io.load("route", None) == "big route"
    assert work.CALLS.count("router") == 1  # replayed from the coordinator


def test_a_router_choosing_an_unknown_route_fails_clearly(tmp_path: Path) -> None:
    assets = routed()
    assets[-1] = Asset(
        "route", deps=("source",), routing=Routing(router=W + "router", routes=freeze({"x": "big"}))
    )
    result = materialize(
        snapshot(assets, tmp_path), ["route"], state_dir=tmp_path, callables=POLICY
    )
    assert result.error is not None and result.error.code == "validation_error"
    assert "'big'" in result.error.message
