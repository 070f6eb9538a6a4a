"""The scatter coordinator conformance tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from ..contracts.scatter import ScatterCoordinator
from ..contracts.types import BarrierStatus
from ..errors import Conflict, NotFound, ValidationError
from ._checks import PluginChecks, expect_error, run_in_threads, unique_name
from .scatter_durable import DurableScatterChecks

__all__ = ["ScatterCoordinatorContract"]

NewBarrier = Callable[..., str]
KEYS = ["a", "b", "c", "d"]


def counts(status: BarrierStatus) -> tuple[str, int, int, int]:
    """Return a status as ``(status, completed, failed, total)``."""
    return status.status, status.completed, status.failed, status.total


def _reach_complete(sc: ScatterCoordinator, barrier_id: str) -> None:
    for key in KEYS:
        sc.complete(barrier_id, key, key)


def _reach_threshold_exceeded(sc: ScatterCoordinator, barrier_id: str) -> None:
    sc.complete(barrier_id, "a", "a")
    sc.fail(barrier_id, "b", "boom")


def _reach_cancelled(sc: ScatterCoordinator, barrier_id: str) -> None:
    sc.complete(barrier_id, "a", "a")
    sc.cancel(barrier_id)


class ScatterCoordinatorContract(DurableScatterChecks, PluginChecks):
    """Checks every invariant of :class:`~flowstone_host.ScatterCoordinator`.

    The checks of contract 1.1 (``record_outcomes``, and the optional durable-run methods,
    skipped when they raise ``NotSupported``) come from
    :class:`~flowstone_host.testing.scatter_durable.DurableScatterChecks`.

    Subclass it in a test module, naming the subclass ``Test...``, and define one fixture:

    - ``scatter_coordinator``: a ready instance of your coordinator.

    Every test uses a fresh run id (override ``scatter_run_id`` to choose them), so a
    shared or durable backend needs no cleanup between tests.

    Example::

        class TestSqlScatter(ScatterCoordinatorContract):
            @pytest.fixture
            def scatter_coordinator(self, tmp_path):
                return SqlScatterCoordinator({"path": str(tmp_path / "state.db")})
    """

    contract_abc = ScatterCoordinator

    @pytest.fixture
    def _plugin_under_test(self, scatter_coordinator: ScatterCoordinator) -> ScatterCoordinator:
        return scatter_coordinator

    @pytest.fixture
    def scatter_run_id(self) -> str:
        """A run id no other test uses."""
        return unique_name("run")

    @pytest.fixture
    def new_barrier(
        self, scatter_coordinator: ScatterCoordinator, scatter_run_id: str
    ) -> NewBarrier:
        """Create a barrier, insert ``keys`` and return its id."""

        def new(
            keys: Sequence[str] = KEYS,
            *,
            final: bool = True,
            tolerated: Mapping[str, Any] | None = None,
        ) -> str:
            barrier_id = scatter_coordinator.create_barrier(
                scatter_run_id, "conformance_scatter", "p", tolerated_failures=tolerated
            )
            scatter_coordinator.insert_keys(barrier_id, list(keys), final=final)
            return barrier_id

        return new

    def test_create_barrier_returns_a_new_id_each_time(
        self, scatter_coordinator: ScatterCoordinator, scatter_run_id: str
    ) -> None:
        ids = [
            scatter_coordinator.create_barrier(run, "conformance_scatter", "p")
            for run in (scatter_run_id, scatter_run_id, unique_name("run"))
        ]
        assert len(set(ids)) == 3, f"barrier ids collide: {ids}"

    def test_new_barrier_is_pending_and_empty(
        self, scatter_coordinator: ScatterCoordinator, scatter_run_id: str
    ) -> None:
        barrier_id = scatter_coordinator.create_barrier(scatter_run_id, "conformance_scatter", None)
        assert counts(scatter_coordinator.status(barrier_id)) == ("pending", 0, 0, 0)

    def test_inserting_present_keys_adds_nothing(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a", "b", "a"], final=False)
        assert scatter_coordinator.status(barrier_id).total == 2
        scatter_coordinator.insert_keys(barrier_id, ["b", "c"], final=True)
        assert counts(scatter_coordinator.status(barrier_id)) == ("pending", 0, 0, 3)

    def test_complete_of_the_same_key_twice_counts_once(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a", "b"])
        assert scatter_coordinator.complete(barrier_id, "a", 1) == "pending"
        assert scatter_coordinator.complete(barrier_id, "a", 1) == "pending"
        assert counts(scatter_coordinator.status(barrier_id)) == ("pending", 1, 0, 2)

    def test_fail_of_the_same_key_twice_counts_once(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a", "b"], tolerated={"count": 1})
        assert scatter_coordinator.fail(barrier_id, "a", "boom") == "pending"
        assert scatter_coordinator.fail(barrier_id, "a", "boom") == "pending"
        assert counts(scatter_coordinator.status(barrier_id)) == ("pending", 0, 1, 2)

    def test_a_keys_first_outcome_is_final(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(tolerated={"count": 3})
        scatter_coordinator.complete(barrier_id, "a", "first")
        scatter_coordinator.complete(barrier_id, "a", "second")
        scatter_coordinator.fail(barrier_id, "a", "late failure")
        scatter_coordinator.fail(barrier_id, "b", "boom")
        scatter_coordinator.complete(barrier_id, "b", "late result")
        assert counts(scatter_coordinator.status(barrier_id)) == ("pending", 1, 1, 4)
        assert scatter_coordinator.gather(barrier_id) == {"a": "first"}

    def test_completes_exactly_when_every_key_is_done(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier()
        returned = [scatter_coordinator.complete(barrier_id, key, key) for key in KEYS]
        assert returned == ["pending", "pending", "pending", "complete"]
        assert counts(scatter_coordinator.status(barrier_id)) == ("complete", 4, 0, 4)

    def test_never_completes_before_the_key_set_is_final(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a", "b"], final=False)
        assert scatter_coordinator.complete(barrier_id, "a", 1) == "pending"
        assert scatter_coordinator.complete(barrier_id, "b", 2) == "pending"
        assert counts(scatter_coordinator.status(barrier_id)) == ("pending", 2, 0, 2)
        scatter_coordinator.insert_keys(barrier_id, ["c"], final=True)
        assert scatter_coordinator.status(barrier_id).status == "pending"
        assert scatter_coordinator.complete(barrier_id, "c", 3) == "complete"

    def test_finalising_after_every_key_is_done_completes(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a"], final=False)
        scatter_coordinator.complete(barrier_id, "a", 1)
        scatter_coordinator.insert_keys(barrier_id, [], final=True)
        assert counts(scatter_coordinator.status(barrier_id)) == ("complete", 1, 0, 1)

    def test_empty_final_key_set_completes(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier([])
        assert counts(scatter_coordinator.status(barrier_id)) == ("complete", 0, 0, 0)
        assert scatter_coordinator.gather(barrier_id) == {}

    @pytest.mark.parametrize("tolerated", [{"count": 1}, {"percent": 25}])
    def test_failures_within_the_threshold_still_complete(
        self,
        scatter_coordinator: ScatterCoordinator,
        new_barrier: NewBarrier,
        tolerated: dict[str, Any],
    ) -> None:
        barrier_id = new_barrier(tolerated=tolerated)
        assert scatter_coordinator.fail(barrier_id, "a", "boom") == "pending"
        returned = [scatter_coordinator.complete(barrier_id, key, key) for key in KEYS[1:]]
        assert returned == ["pending", "pending", "complete"]
        assert counts(scatter_coordinator.status(barrier_id)) == ("complete", 3, 1, 4)

    def test_count_threshold_trips_at_once(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(final=False, tolerated={"count": 1})
        assert scatter_coordinator.fail(barrier_id, "a", "boom") == "pending"
        assert scatter_coordinator.fail(barrier_id, "b", "boom") == "threshold_exceeded"
        assert counts(scatter_coordinator.status(barrier_id)) == ("threshold_exceeded", 0, 2, 4)

    def test_without_tolerance_the_first_failure_trips(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier()
        assert scatter_coordinator.complete(barrier_id, "a", 1) == "pending"
        assert scatter_coordinator.fail(barrier_id, "b", "boom") == "threshold_exceeded"

    def test_percent_threshold_is_judged_on_the_final_key_set(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a", "b"], final=False, tolerated={"percent": 25})
        assert scatter_coordinator.fail(barrier_id, "a", "boom") == "pending"
        scatter_coordinator.insert_keys(barrier_id, list("cdefgh"), final=True)
        assert scatter_coordinator.status(barrier_id).status == "pending"
        assert scatter_coordinator.fail(barrier_id, "b", "boom") == "pending"  # 2 of 8: 25%
        assert scatter_coordinator.fail(barrier_id, "c", "boom") == "threshold_exceeded"

    def test_percent_threshold_trips_when_the_key_set_becomes_final(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a", "b"], final=False, tolerated={"percent": 25})
        scatter_coordinator.fail(barrier_id, "a", "boom")
        scatter_coordinator.fail(barrier_id, "b", "boom")
        scatter_coordinator.insert_keys(barrier_id, ["c"], final=True)
        assert counts(scatter_coordinator.status(barrier_id)) == ("threshold_exceeded", 0, 2, 3)

    @pytest.mark.parametrize(
        "reach",
        [_reach_complete, _reach_threshold_exceeded, _reach_cancelled],
        ids=["complete", "threshold_exceeded", "cancelled"],
    )
    def test_a_finished_status_never_changes(
        self,
        scatter_coordinator: ScatterCoordinator,
        new_barrier: NewBarrier,
        reach: Callable[[ScatterCoordinator, str], None],
    ) -> None:
        barrier_id = new_barrier()
        reach(scatter_coordinator, barrier_id)
        finished = scatter_coordinator.status(barrier_id)
        gathered = scatter_coordinator.gather(barrier_id)
        assert finished.finished, f"expected a finished barrier, got {finished!r}"
        for key in KEYS:
            assert scatter_coordinator.complete(barrier_id, key, "late") == finished.status
            assert scatter_coordinator.fail(barrier_id, key, "late") == finished.status
        scatter_coordinator.cancel(barrier_id)
        assert scatter_coordinator.status(barrier_id) == finished
        assert scatter_coordinator.gather(barrier_id) == gathered

    def test_cancel_of_a_pending_barrier_makes_it_cancelled(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier()
        scatter_coordinator.complete(barrier_id, "a", "a")
        scatter_coordinator.cancel(barrier_id)
        assert counts(scatter_coordinator.status(barrier_id)) == ("cancelled", 1, 0, 4)
        assert scatter_coordinator.complete(barrier_id, "b", "b") == "cancelled"
        assert scatter_coordinator.gather(barrier_id) == {"a": "a"}

    def test_cancel_of_a_barrier_still_taking_keys_makes_it_cancelled(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a"], final=False)
        scatter_coordinator.cancel(barrier_id)
        assert counts(scatter_coordinator.status(barrier_id)) == ("cancelled", 0, 0, 1)

    def test_insert_keys_makes_the_key_set_final_by_default(
        self, scatter_coordinator: ScatterCoordinator, scatter_run_id: str
    ) -> None:
        barrier_id = scatter_coordinator.create_barrier(scatter_run_id, "conformance_scatter", 1)
        scatter_coordinator.insert_keys(barrier_id, ["a", "b"])
        assert scatter_coordinator.complete(barrier_id, "a", 1) == "pending"
        assert scatter_coordinator.complete(barrier_id, "b", 2) == "complete"
        with expect_error(Conflict):
            scatter_coordinator.insert_keys(barrier_id, ["c"])

    def test_gather_returns_completed_results_without_failures(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(tolerated={"count": 2})
        scatter_coordinator.complete(barrier_id, "a", {"rows": 1})
        scatter_coordinator.complete(barrier_id, "b", [1, 2])
        scatter_coordinator.fail(barrier_id, "c", {"error": "boom"})
        assert scatter_coordinator.gather(barrier_id) == {"a": {"rows": 1}, "b": [1, 2]}

    @pytest.mark.parametrize(
        "call",
        [
            lambda sc, b: sc.insert_keys(b, ["a"]),
            lambda sc, b: sc.complete(b, "a", 1),
            lambda sc, b: sc.fail(b, "a", "boom"),
            lambda sc, b: sc.gather(b),
            lambda sc, b: sc.cancel(b),
            lambda sc, b: sc.status(b),
        ],
        ids=["insert_keys", "complete", "fail", "gather", "cancel", "status"],
    )
    def test_unknown_barrier_raises_not_found(
        self, scatter_coordinator: ScatterCoordinator, call: Callable[..., Any]
    ) -> None:
        unknown = unique_name("no_such_barrier")
        with expect_error(NotFound, unknown):
            call(scatter_coordinator, unknown)

    @pytest.mark.parametrize("outcome", ["complete", "fail"])
    def test_unknown_key_raises_not_found(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier, outcome: str
    ) -> None:
        barrier_id = new_barrier(["a"])
        with expect_error(NotFound, "never_inserted"):
            getattr(scatter_coordinator, outcome)(barrier_id, "never_inserted", 1)
        assert counts(scatter_coordinator.status(barrier_id)) == ("pending", 0, 0, 1)

    def test_insert_after_the_key_set_is_final_raises_conflict(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a"])
        with expect_error(Conflict):
            scatter_coordinator.insert_keys(barrier_id, ["b"])
        assert scatter_coordinator.status(barrier_id).total == 1

    @pytest.mark.parametrize(
        "tolerated", [{"bogus": 1}, {"count": -1}, {"count": "many"}, {"percent": 150}]
    )
    def test_malformed_tolerated_failures_raise_validation_error(
        self,
        scatter_coordinator: ScatterCoordinator,
        scatter_run_id: str,
        tolerated: dict[str, Any],
    ) -> None:
        with expect_error(ValidationError):
            scatter_coordinator.create_barrier(
                scatter_run_id, "conformance_scatter", "p", tolerated_failures=tolerated
            )

    def test_barriers_are_independent(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        first, second = new_barrier(), new_barrier()
        _reach_complete(scatter_coordinator, first)
        assert counts(scatter_coordinator.status(second)) == ("pending", 0, 0, 4)
        assert scatter_coordinator.gather(second) == {}

    def test_concurrent_outcomes_from_threads_count_exactly(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        keys = [f"k{i}" for i in range(100)]
        barrier_id = new_barrier(keys, tolerated={"count": 50})

        def outcome(i: int) -> Callable[[], Any]:
            if i % 2:
                return lambda: scatter_coordinator.fail(barrier_id, keys[i], "boom")
            return lambda: scatter_coordinator.complete(barrier_id, keys[i], i)

        run_in_threads([outcome(i) for i in range(100) for _twice in range(2)])
        assert counts(scatter_coordinator.status(barrier_id)) == ("complete", 50, 50, 100)
        assert scatter_coordinator.gather(barrier_id) == {keys[i]: i for i in range(0, 100, 2)}
