"""The conformance kit fails deliberately broken plugins, and passes correct ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import flowstone_host.testing  # noqa: F401 - imported once here, not again by every run

SUBJECT_MODULE = """
import pytest
import subjects
from flowstone_host.testing import {kit}

class TestSubject({kit}):
    @pytest.fixture
    def {fixture}(self):
        return {factory}
"""


@dataclass(frozen=True)
class Kit:
    """A kit class, the fixture it needs, and how to build a subject from a class name."""

    name: str
    fixture: str
    factory: str


IO = Kit("IOManagerContract", "io_manager", "subjects.{}()")
READER = Kit(
    "ItemReaderContract", "make_item_reader", "lambda items: subjects.{}({{'items': items}})"
)
SCATTER = Kit("ScatterCoordinatorContract", "scatter_coordinator", "subjects.{}()")
PARALLEL = Kit("ParallelCoordinatorContract", "parallel_coordinator", "subjects.{}()")
ROUTING = Kit("RoutingCoordinatorContract", "routing_coordinator", "subjects.{}()")
RESOURCE = Kit("ResourceContract", "resource_plugin", "subjects.{}()")

RunKit = Callable[[Kit, str], pytest.RunResult]


@pytest.fixture
def run_kit(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> RunKit:
    """Run a kit against ``subjects.<subject>`` in a fresh in-process pytest session."""
    pytester.syspathinsert(Path(__file__).parent)
    # Third-party plugins (hypothesis's above all) cost more than the kit itself.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def run(kit: Kit, subject: str) -> pytest.RunResult:
        factory = kit.factory.format(subject)
        source = SUBJECT_MODULE.format(kit=kit.name, fixture=kit.fixture, factory=factory)
        pytester.makepyfile(source)
        return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")

    return run


def failed_tests(result: pytest.RunResult) -> set[str]:
    """Return the names (with parameters) of the tests that failed or errored."""
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    return {r.nodeid.split("::")[-1] for r in reports if r.failed}


@pytest.mark.parametrize(
    ("kit", "subject"),
    [
        (IO, "DictIOManager"),
        (READER, "ListReader"),
        (SCATTER, "CountingScatterCoordinator"),
        (PARALLEL, "DictParallelCoordinator"),
        (ROUTING, "DictRoutingCoordinator"),
        (RESOURCE, "ConnectionResource"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_a_correct_plugin_passes_every_test(run_kit: RunKit, kit: Kit, subject: str) -> None:
    result = run_kit(kit, subject)
    assert failed_tests(result) == set()
    assert result.ret == pytest.ExitCode.OK
    assert result.parseoutcomes()["passed"] >= 5


BROKEN = [
    (
        IO,
        "StaleLoadIOManager",
        {"test_last_store_wins", "test_store_then_load_returns_an_equal_value"},
    ),
    (IO, "DeleteMissingRaisesIOManager", {"test_delete_of_missing_is_not_an_error"}),
    (
        IO,
        "StringPartitionsIOManager",
        {"test_list_partitions_returns_stored_values_with_their_types"},
    ),
    (IO, "AnyPartitionExistsIOManager", {"test_exists_exactly_between_store_and_delete"}),
    (
        READER,
        "LossyCheckpointReader",
        {
            "test_restore_resumes_with_no_item_lost_or_repeated[1]",
            "test_restore_resumes_with_no_item_lost_or_repeated[5]",
            "test_restore_chains_across_several_readers",
        },
    ),
    (
        READER,
        "SetCheckpointReader",
        {
            "test_checkpoint_is_json_serialisable",
            "test_restore_resumes_with_no_item_lost_or_repeated[2]",
        },
    ),
    (
        READER,
        "OverfullBatchReader",
        {
            "test_batches_hold_at_most_batch_size_items[1]",
            "test_batches_hold_at_most_batch_size_items[7]",
        },
    ),
    (
        SCATTER,
        "DoubleCountingScatterCoordinator",
        {
            "test_complete_of_the_same_key_twice_counts_once",
            "test_fail_of_the_same_key_twice_counts_once",
            "test_a_keys_first_outcome_is_final",
            "test_concurrent_outcomes_from_threads_count_exactly",
        },
    ),
    (SCATTER, "EagerScatterCoordinator", {"test_never_completes_before_the_key_set_is_final"}),
    (
        SCATTER,
        "CompletingCancelScatterCoordinator",
        {
            "test_cancel_of_a_pending_barrier_makes_it_cancelled",
            "test_cancel_of_a_barrier_still_taking_keys_makes_it_cancelled",
        },
    ),
    (
        SCATTER,
        "OpenByDefaultScatterCoordinator",
        {"test_insert_keys_makes_the_key_set_final_by_default"},
    ),
    (
        PARALLEL,
        "ForgetfulJoinParallelCoordinator",
        {
            "test_a_joined_execution_stays_complete_after_a_late_outcome[complete_branch]",
            "test_a_joined_execution_stays_complete_after_a_late_outcome[fail_branch]",
        },
    ),
    (
        PARALLEL,
        "NeverRunningParallelCoordinator",
        {
            "test_an_execution_runs_once_a_branch_is_scheduled",
            "test_an_optional_failure_leaves_the_execution_running",
        },
    ),
    (
        PARALLEL,
        "RejoiningParallelCoordinator",
        {"test_execute_join_runs_once_and_replays_its_result"},
    ),
    (PARALLEL, "UnlockedJoinParallelCoordinator", {"test_concurrent_joins_run_join_fn_once"}),
    (
        ROUTING,
        "OverwritingRoutingCoordinator",
        {
            "test_recording_another_branch_raises_conflict_and_changes_nothing",
            "test_no_branch_is_a_decision_too",
        },
    ),
    (RESOURCE, "StrictTeardownResource", {"test_teardown_of_a_broken_handle_does_not_raise"}),
    (RESOURCE, "RaisingHealthResource", {"test_health_check_of_a_broken_handle_does_not_raise"}),
]


@pytest.mark.parametrize(
    ("kit", "subject", "must_fail"), BROKEN, ids=[subject for _, subject, _ in BROKEN]
)
def test_a_broken_plugin_fails_the_tests_of_its_bug(
    run_kit: RunKit, kit: Kit, subject: str, must_fail: set[str]
) -> None:
    failed = failed_tests(run_kit(kit, subject))
    assert must_fail <= failed, f"the kit let {subject} pass {sorted(must_fail - failed)}"
