"""The parallel coordinator conformance tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial
from typing import Any

import pytest

from ..contracts.parallel import ParallelCoordinator
from ..errors import Conflict, NotFound, ValidationError
from ._checks import PluginChecks, expect_error, run_in_threads, unique_name

__all__ = ["ParallelCoordinatorContract"]

NewExecution = Callable[..., str]
#: What ``complete_branch`` / ``fail_branch`` may return while branches are still running.
UNFINISHED = ("pending", "running")


class JoinSpy:
    """A join function that records each call and returns the sorted branch names.

    ``linger_s`` keeps each call running a while, so calls racing it overlap.
    """

    def __init__(self, linger_s: float = 0.0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.linger_s = linger_s

    def __call__(self, results: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(dict(results))
        time.sleep(self.linger_s)
        return {"joined": sorted(results)}


class ParallelCoordinatorContract(PluginChecks):
    """Checks every invariant of :class:`~flowstone_host.ParallelCoordinator`.

    Subclass it in a test module, naming the subclass ``Test...``, and define one fixture:

    - ``parallel_coordinator``: a ready instance of your coordinator.

    Every test uses a fresh run id (override ``parallel_run_id`` to choose them). An
    execution is ``pending`` until a branch is scheduled and ``running`` from then on until
    it is ready for its join or failed; the kit checks both.

    Example::

        class TestSqlParallel(ParallelCoordinatorContract):
            @pytest.fixture
            def parallel_coordinator(self, tmp_path):
                return SqlParallelCoordinator({"path": str(tmp_path / "state.db")})
    """

    contract_abc = ParallelCoordinator

    @pytest.fixture
    def _plugin_under_test(self, parallel_coordinator: ParallelCoordinator) -> ParallelCoordinator:
        return parallel_coordinator

    @pytest.fixture
    def parallel_run_id(self) -> str:
        """A run id no other test uses."""
        return unique_name("run")

    @pytest.fixture
    def new_execution(
        self, parallel_coordinator: ParallelCoordinator, parallel_run_id: str
    ) -> NewExecution:
        """Create an execution over ``branches`` and schedule them; return its id."""

        def new(branches: Sequence[str] = ("a", "b"), optional: Collection[str] = ()) -> str:
            execution_id = parallel_coordinator.create_execution(
                parallel_run_id, "conformance_parallel", list(branches), optional=optional
            )
            parallel_coordinator.schedule_branches(execution_id)
            return execution_id

        return new

    def test_a_new_execution_has_every_branch_pending(
        self, parallel_coordinator: ParallelCoordinator, parallel_run_id: str
    ) -> None:
        execution_id = parallel_coordinator.create_execution(
            parallel_run_id, "conformance_parallel", ["a", "b"]
        )
        status = parallel_coordinator.status(execution_id)
        assert status.status == "pending"
        assert dict(status.branches) == {"a": "pending", "b": "pending"}

    def test_create_execution_returns_a_new_id_each_time(
        self, parallel_coordinator: ParallelCoordinator, parallel_run_id: str
    ) -> None:
        ids = {
            parallel_coordinator.create_execution(run, "conformance_parallel", ["a"])
            for run in (parallel_run_id, parallel_run_id, unique_name("run"))
        }
        assert len(ids) == 3, f"execution ids collide: {ids}"

    @pytest.mark.parametrize(
        ("branches", "optional"),
        [([], []), (["a", "a"], []), (["a"], ["b"])],
        ids=["no-branches", "duplicates", "unknown-optional"],
    )
    def test_invalid_branches_raise_validation_error(
        self,
        parallel_coordinator: ParallelCoordinator,
        parallel_run_id: str,
        branches: list[str],
        optional: list[str],
    ) -> None:
        with expect_error(ValidationError):
            parallel_coordinator.create_execution(
                parallel_run_id, "conformance_parallel", branches, optional=optional
            )

    def test_schedule_branches_returns_each_branch_once(
        self, parallel_coordinator: ParallelCoordinator, parallel_run_id: str
    ) -> None:
        execution_id = parallel_coordinator.create_execution(
            parallel_run_id, "conformance_parallel", ["a", "b", "c"]
        )
        assert sorted(parallel_coordinator.schedule_branches(execution_id)) == ["a", "b", "c"]
        assert parallel_coordinator.schedule_branches(execution_id) == []
        branches = parallel_coordinator.status(execution_id).branches
        assert dict(branches) == {"a": "running", "b": "running", "c": "running"}

    def test_ready_for_join_exactly_when_every_branch_completed(
        self, parallel_coordinator: ParallelCoordinator, new_execution: NewExecution
    ) -> None:
        execution_id = new_execution(["a", "b", "c"])
        returned = [parallel_coordinator.complete_branch(execution_id, b, b) for b in "abc"]
        assert returned[0] in UNFINISHED and returned[1] in UNFINISHED, returned
        assert returned[2] == "ready_for_join"
        status = parallel_coordinator.status(execution_id)
        assert status.status == "ready_for_join"
        assert dict(status.branches) == {"a": "complete", "b": "complete", "c": "complete"}

    def test_a_failed_required_branch_fails_the_execution_at_once(
        self, parallel_coordinator: ParallelCoordinator, new_execution: NewExecution
    ) -> None:
        execution_id = new_execution(["a", "b"])
        assert parallel_coordinator.fail_branch(execution_id, "a", "boom") == "failed"
        assert parallel_coordinator.complete_branch(execution_id, "b", "b") == "failed"
        assert parallel_coordinator.status(execution_id).status == "failed"

    def test_an_optional_branch_may_fail(
        self, parallel_coordinator: ParallelCoordinator, new_execution: NewExecution
    ) -> None:
        execution_id = new_execution(["a", "b"], optional=["b"])
        assert parallel_coordinator.fail_branch(execution_id, "b", "boom") in UNFINISHED
        assert parallel_coordinator.complete_branch(execution_id, "a", "a") == "ready_for_join"
        assert dict(parallel_coordinator.status(execution_id).branches) == {
            "a": "complete",
            "b": "failed",
        }

    def test_not_ready_while_an_optional_branch_runs(
        self, parallel_coordinator: ParallelCoordinator, new_execution: NewExecution
    ) -> None:
        execution_id = new_execution(["a", "b"], optional=["b"])
        assert parallel_coordinator.complete_branch(execution_id, "a", "a") in UNFINISHED
        assert parallel_coordinator.complete_branch(execution_id, "b", "b") == "ready_for_join"

    def test_a_branchs_first_outcome_is_final(
        self, parallel_coordinator: ParallelCoordinator, new_execution: NewExecution
    ) -> None:
        execution_id = new_execution(["a", "b", "c"], optional=["b"])
        parallel_coordinator.complete_branch(execution_id, "a", "first")
        parallel_coordinator.complete_branch(execution_id, "a", "second")
        parallel_coordinator.fail_branch(execution_id, "a", "late failure")
        parallel_coordinator.fail_branch(execution_id, "b", "boom")
        parallel_coordinator.complete_branch(execution_id, "b", "late result")
        assert parallel_coordinator.complete_branch(execution_id, "c", "c") == "ready_for_join"
        join = JoinSpy()
        parallel_coordinator.execute_join(execution_id, join)
        assert join.calls == [{"a": "first", "c": "c"}]

    def test_an_execution_runs_once_a_branch_is_scheduled(
        self, parallel_coordinator: ParallelCoordinator, parallel_run_id: str
    ) -> None:
        execution_id = parallel_coordinator.create_execution(
            parallel_run_id, "conformance_parallel", ["a", "b"]
        )
        assert parallel_coordinator.status(execution_id).status == "pending"
        parallel_coordinator.schedule_branches(execution_id)
        assert parallel_coordinator.status(execution_id).status == "running"
        assert parallel_coordinator.complete_branch(execution_id, "a", 1) == "running"
        assert parallel_coordinator.status(execution_id).status == "running"
        assert parallel_coordinator.complete_branch(execution_id, "b", 2) == "ready_for_join"

    def test_an_optional_failure_leaves_the_execution_running(
        self, parallel_coordinator: ParallelCoordinator, new_execution: NewExecution
    ) -> None:
        execution_id = new_execution(["a", "b", "c"], optional=["b"])
        assert parallel_coordinator.fail_branch(execution_id, "b", "boom") == "running"
        assert parallel_coordinator.complete_branch(execution_id, "a", 1) == "running"

    @pytest.mark.parametrize("late", ["complete_branch", "fail_branch"])
    def test_a_joined_execution_stays_complete_after_a_late_outcome(
        self,
        parallel_coordinator: ParallelCoordinator,
        new_execution: NewExecution,
        late: str,
    ) -> None:
        execution_id = new_execution(["a", "b"], optional=["b"])
        parallel_coordinator.complete_branch(execution_id, "a", 1)
        parallel_coordinator.fail_branch(execution_id, "b", "boom")
        join = JoinSpy()
        first = parallel_coordinator.execute_join(execution_id, join)
        for branch in ("a", "b"):
            assert getattr(parallel_coordinator, late)(execution_id, branch, "late") == "complete"
        status = parallel_coordinator.status(execution_id)
        assert status.status == "complete"
        assert dict(status.branches) == {"a": "complete", "b": "failed"}
        assert parallel_coordinator.execute_join(execution_id, join) == first
        assert join.calls == [{"a": 1}], "join_fn must run exactly once"

    def test_execute_join_runs_once_and_replays_its_result(
        self, parallel_coordinator: ParallelCoordinator, new_execution: NewExecution
    ) -> None:
        execution_id = new_execution(["a", "b"])
        parallel_coordinator.complete_branch(execution_id, "a", 1)
        parallel_coordinator.complete_branch(execution_id, "b", 2)
        join = JoinSpy()
        first = parallel_coordinator.execute_join(execution_id, join)
        second = parallel_coordinator.execute_join(execution_id, join)
        assert first == second == {"joined": ["a", "b"]}
        assert join.calls == [{"a": 1, "b": 2}], "join_fn must run exactly once"
        assert parallel_coordinator.status(execution_id).status == "complete"

    def test_concurrent_joins_run_join_fn_once(
        self, parallel_coordinator: ParallelCoordinator, new_execution: NewExecution
    ) -> None:
        execution_id = new_execution(["a", "b"])
        parallel_coordinator.complete_branch(execution_id, "a", 1)
        parallel_coordinator.complete_branch(execution_id, "b", 2)
        join = JoinSpy(linger_s=0.05)
        joined = run_in_threads(
            [partial(parallel_coordinator.execute_join, execution_id, join)] * 8
        )
        assert len(join.calls) == 1, f"join_fn ran {len(join.calls)} times for concurrent joins"
        assert all(result == {"joined": ["a", "b"]} for result in joined)

    @pytest.mark.parametrize("state", ["running", "failed"])
    def test_execute_join_before_ready_raises_conflict(
        self, parallel_coordinator: ParallelCoordinator, new_execution: NewExecution, state: str
    ) -> None:
        execution_id = new_execution(["a", "b"])
        if state == "failed":
            parallel_coordinator.fail_branch(execution_id, "a", "boom")
        parallel_coordinator.complete_branch(execution_id, "b", 2)
        join = JoinSpy()
        with expect_error(Conflict):
            parallel_coordinator.execute_join(execution_id, join)
        assert join.calls == [], "join_fn ran although the execution was not ready"

    @pytest.mark.parametrize(
        "call",
        [
            lambda pc, e: pc.schedule_branches(e),
            lambda pc, e: pc.complete_branch(e, "a", 1),
            lambda pc, e: pc.fail_branch(e, "a", "boom"),
            lambda pc, e: pc.execute_join(e, JoinSpy()),
            lambda pc, e: pc.status(e),
        ],
        ids=["schedule_branches", "complete_branch", "fail_branch", "execute_join", "status"],
    )
    def test_unknown_execution_raises_not_found(
        self, parallel_coordinator: ParallelCoordinator, call: Callable[..., Any]
    ) -> None:
        unknown = unique_name("no_such_execution")
        with expect_error(NotFound, unknown):
            call(parallel_coordinator, unknown)

    @pytest.mark.parametrize("outcome", ["complete_branch", "fail_branch"])
    def test_unknown_branch_raises_not_found(
        self,
        parallel_coordinator: ParallelCoordinator,
        new_execution: NewExecution,
        outcome: str,
    ) -> None:
        execution_id = new_execution(["a"])
        with expect_error(NotFound, "no_such_branch"):
            getattr(parallel_coordinator, outcome)(execution_id, "no_such_branch", 1)
        assert dict(parallel_coordinator.status(execution_id).branches) == {"a": "running"}
