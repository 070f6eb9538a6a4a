"""The routing coordinator conformance tests."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from ..contracts.routing import RoutingCoordinator
from ..errors import Conflict, NotFound
from ..partitions import partition_key
from ._checks import (
    PluginChecks,
    assert_json_round_trip,
    expect_error,
    run_in_threads,
    sample_partitions,
    unique_name,
)

__all__ = ["RoutingCoordinatorContract"]

ASSET = "conformance_router"
OUTPUT_KEYS = {"decision_id", "run_id", "router_asset", "partition", "selected_branch"}


class RoutingCoordinatorContract(PluginChecks):
    """Checks every invariant of :class:`~flowstone_host.RoutingCoordinator`.

    Subclass it in a test module, naming the subclass ``Test...``, and define one fixture:

    - ``routing_coordinator``: a ready instance of your coordinator.

    Override ``routing_partitions`` (default: one value of every supported partition kind)
    to restrict the partitions recorded, and ``routing_run_id`` to choose run ids.

    Example::

        class TestSqlRouting(RoutingCoordinatorContract):
            @pytest.fixture
            def routing_coordinator(self, tmp_path):
                return SqlRoutingCoordinator({"path": str(tmp_path / "state.db")})
    """

    contract_abc = RoutingCoordinator

    @pytest.fixture
    def _plugin_under_test(self, routing_coordinator: RoutingCoordinator) -> RoutingCoordinator:
        return routing_coordinator

    @pytest.fixture
    def routing_run_id(self) -> str:
        """A run id no other test uses."""
        return unique_name("run")

    @pytest.fixture
    def routing_partitions(self) -> list[Any]:
        """Partitions to record decisions for."""
        return sample_partitions()

    def test_get_returns_the_recorded_branch(
        self, routing_coordinator: RoutingCoordinator, routing_run_id: str
    ) -> None:
        routing_coordinator.record(routing_run_id, ASSET, "p", "left")
        assert routing_coordinator.get(routing_run_id, ASSET, "p") == "left"
        assert routing_coordinator.get(routing_run_id, ASSET, "p") == "left"

    def test_get_without_a_decision_raises_not_found(
        self, routing_coordinator: RoutingCoordinator, routing_run_id: str
    ) -> None:
        with expect_error(NotFound, routing_run_id):
            routing_coordinator.get(routing_run_id, ASSET, "p")

    def test_recording_the_same_branch_returns_the_same_id(
        self, routing_coordinator: RoutingCoordinator, routing_run_id: str
    ) -> None:
        first = routing_coordinator.record(routing_run_id, ASSET, "p", "left")
        assert routing_coordinator.record(routing_run_id, ASSET, "p", "left") == first

    def test_recording_another_branch_raises_conflict_and_changes_nothing(
        self, routing_coordinator: RoutingCoordinator, routing_run_id: str
    ) -> None:
        decision_id = routing_coordinator.record(routing_run_id, ASSET, "p", "left")
        output = routing_coordinator.to_output(decision_id)
        with expect_error(Conflict, "left"):
            routing_coordinator.record(routing_run_id, ASSET, "p", "right")
        assert routing_coordinator.get(routing_run_id, ASSET, "p") == "left"
        assert routing_coordinator.to_output(decision_id) == output
        assert routing_coordinator.record(routing_run_id, ASSET, "p", "left") == decision_id

    def test_racing_records_of_different_branches_leave_exactly_one(
        self, routing_coordinator: RoutingCoordinator, routing_run_id: str
    ) -> None:
        def record(partition: str, branch: str) -> str | None:
            try:
                return routing_coordinator.record(routing_run_id, ASSET, partition, branch)
            except Conflict:
                return None

        for round_ in range(20):  # a check-then-set without a lock loses some of these races
            partition = f"race-{round_}"
            outcomes = run_in_threads([partial(record, partition, f"b{i}") for i in range(8)])
            winners = [i for i, decision in enumerate(outcomes) if decision is not None]
            assert len(winners) == 1, f"{len(winners)} racing records of {partition} succeeded"
            assert routing_coordinator.get(routing_run_id, ASSET, partition) == f"b{winners[0]}"

    def test_no_branch_is_a_decision_too(
        self, routing_coordinator: RoutingCoordinator, routing_run_id: str
    ) -> None:
        decision_id = routing_coordinator.record(routing_run_id, ASSET, "p", None)
        assert routing_coordinator.get(routing_run_id, ASSET, "p") is None
        assert routing_coordinator.record(routing_run_id, ASSET, "p", None) == decision_id
        with expect_error(Conflict):
            routing_coordinator.record(routing_run_id, ASSET, "p", "left")
        assert routing_coordinator.get(routing_run_id, ASSET, "p") is None
        assert routing_coordinator.to_output(decision_id)["selected_branch"] is None

    def test_decisions_of_other_runs_assets_and_partitions_are_independent(
        self,
        routing_coordinator: RoutingCoordinator,
        routing_run_id: str,
        routing_partitions: list[Any],
    ) -> None:
        other_run = unique_name("run")
        places = [(routing_run_id, ASSET, p) for p in routing_partitions]
        places += [(other_run, ASSET, "p"), (routing_run_id, f"{ASSET}_other", "p")]
        ids = [routing_coordinator.record(*place, f"branch{i}") for i, place in enumerate(places)]
        assert len(set(ids)) == len(places), f"decision ids collide: {ids}"
        for i, place in enumerate(places):
            assert routing_coordinator.get(*place) == f"branch{i}", f"decision for {place!r}"

    def test_to_output_is_json_safe_with_the_canonical_partition_key(
        self,
        routing_coordinator: RoutingCoordinator,
        routing_run_id: str,
        routing_partitions: list[Any],
    ) -> None:
        for partition in routing_partitions:
            decision_id = routing_coordinator.record(routing_run_id, ASSET, partition, "left")
            output = routing_coordinator.to_output(decision_id)
            assert_json_round_trip(output, "to_output()")
            assert set(output) >= OUTPUT_KEYS, f"to_output() lacks {OUTPUT_KEYS - set(output)}"
            expected = {
                "decision_id": decision_id,
                "run_id": routing_run_id,
                "router_asset": ASSET,
                "partition": partition_key(partition),
                "selected_branch": "left",
            }
            assert {k: output[k] for k in OUTPUT_KEYS} == expected

    def test_to_output_of_an_unknown_id_raises_not_found(
        self, routing_coordinator: RoutingCoordinator
    ) -> None:
        unknown = unique_name("no_such_decision")
        with expect_error(NotFound, unknown):
            routing_coordinator.to_output(unknown)
