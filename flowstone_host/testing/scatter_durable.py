"""Scatter conformance tests of contract 1.1: ``record_outcomes`` and the durable-run methods.

``record_outcomes`` is checked on every coordinator (the contract gives it a default): a
duplicate counts 0, completions go before failures, exactly one call among any number of
concurrent callers sees ``transitioned``, and redelivered outcomes never complete a barrier
early. ``find_barrier``, checkpoints and ``finished_keys`` are optional, and so are the 1.2
``retry_failed`` (a redrive) and ``set_tolerated_failures`` (a live retune): a coordinator
that raises ``NotSupported`` from one of them skips only that one's checks, saying why.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest

from ..contracts.scatter import ScatterCoordinator
from ..contracts.types import BarrierStatus, Recorded
from ..errors import NotFound, NotSupported, ValidationError
from ._checks import expect_error, run_in_threads, unique_name

__all__ = ["DurableScatterChecks"]

NewBarrier = Callable[..., str]
ASSET = "conformance_scatter"


def _counts(status: BarrierStatus) -> tuple[str, int, int, int]:
    return status.status, status.completed, status.failed, status.total


@contextmanager
def optional_method(name: str) -> Iterator[None]:
    """Skip the test when the optional method ``name`` raises ``NotSupported``."""
    try:
        yield
    except NotSupported as exc:
        pytest.skip(f"{name}() is optional and this coordinator raises NotSupported: {exc}")


def _redeliveries(keys: list[str], seed: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Batches that report every key 2-3 times in random order (odd ``k<i>`` fail)."""
    rng = random.Random(seed)
    reports = [key for key in keys for _ in range(rng.randint(2, 3))]
    rng.shuffle(reports)
    batches = []
    for start in range(0, len(reports), 7):
        completed: dict[str, Any] = {}
        failed: dict[str, Any] = {}
        for key in reports[start : start + 7]:
            if int(key[1:]) % 2:
                failed[key] = {"error": key}
            else:
                completed[key] = {"result": key}
        batches.append((completed, failed))
    return batches


class DurableScatterChecks:
    """The 1.1 checks, mixed into ``ScatterCoordinatorContract`` (which owns the fixtures)."""

    def test_record_outcomes_counts_each_new_outcome_once(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(tolerated={"count": 2})
        first = scatter_coordinator.record_outcomes(barrier_id, {"a": 1, "b": 2})
        assert first == Recorded("pending", 2, False)
        again = scatter_coordinator.record_outcomes(barrier_id, {"a": 9}, {"b": "x", "c": "boom"})
        assert again == Recorded("pending", 1, False), "duplicates must count 0"
        assert _counts(scatter_coordinator.status(barrier_id)) == ("pending", 2, 1, 4)
        assert scatter_coordinator.gather(barrier_id) == {"a": 1, "b": 2}

    def test_record_outcomes_records_completions_before_failures(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(tolerated={"count": 3})
        recorded = scatter_coordinator.record_outcomes(barrier_id, {"a": "ok"}, {"a": "boom"})
        assert recorded == Recorded("pending", 1, False)
        assert _counts(scatter_coordinator.status(barrier_id)) == ("pending", 1, 0, 4)
        assert scatter_coordinator.gather(barrier_id) == {"a": "ok"}

    def test_record_outcomes_says_which_call_finished_the_barrier(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a", "b"])
        record = scatter_coordinator.record_outcomes
        assert record(barrier_id, {"a": 1}) == Recorded("pending", 1, False)
        assert record(barrier_id, {"b": 2}) == Recorded("complete", 1, True)
        assert record(barrier_id, {"b": 2}) == Recorded("complete", 0, False)
        assert record(barrier_id, None, {"a": "late"}) == Recorded("complete", 0, False)

    def test_record_outcomes_stops_counting_at_the_threshold(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(tolerated={"count": 1})
        failures = {"a": "boom", "b": "boom", "c": "boom"}
        recorded = scatter_coordinator.record_outcomes(barrier_id, None, failures)
        assert recorded == Recorded("threshold_exceeded", 2, True), (
            "outcomes after the one that trips the threshold are ignored, as one by one"
        )
        assert _counts(scatter_coordinator.status(barrier_id)) == ("threshold_exceeded", 0, 2, 4)

    def test_record_outcomes_of_an_unknown_barrier_raises_not_found(
        self, scatter_coordinator: ScatterCoordinator
    ) -> None:
        unknown = unique_name("no_such_barrier")
        with expect_error(NotFound, unknown):
            scatter_coordinator.record_outcomes(unknown, {"a": 1}, {"b": "boom"})

    def test_record_outcomes_of_an_unknown_key_raises_not_found(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a"])
        with expect_error(NotFound, "never_inserted"):
            scatter_coordinator.record_outcomes(barrier_id, {"never_inserted": 1})
        assert _counts(scatter_coordinator.status(barrier_id)) == ("pending", 0, 0, 1)

    def test_redelivered_outcomes_never_complete_the_barrier_early(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        keys = [f"k{i}" for i in range(20)]
        barrier_id = new_barrier([*keys, "last"], tolerated={"count": 10})
        recorded = [
            scatter_coordinator.record_outcomes(barrier_id, completed, failed)
            for completed, failed in _redeliveries(keys, seed=1)
        ]
        states = [scatter_coordinator.complete(barrier_id, k, "again") for k in keys[:3]]
        assert _counts(scatter_coordinator.status(barrier_id)) == ("pending", 10, 10, 21), (
            "every key reported 2-3 times must count once, and the barrier stay pending"
        )
        assert {r.state for r in recorded} | set(states) == {"pending"}
        assert sum(r.counted for r in recorded) == 20
        last = scatter_coordinator.record_outcomes(barrier_id, {"last": "done"})
        assert last == Recorded("complete", 1, True)
        expected = {k: {"result": k} for k in keys[::2]}
        assert scatter_coordinator.gather(barrier_id) == {**expected, "last": "done"}

    def test_concurrent_record_outcomes_count_once_and_transition_once(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        keys = [f"k{i}" for i in range(100)]
        barrier_id = new_barrier([*keys, "last"], tolerated={"count": 50})
        record = partial(scatter_coordinator.record_outcomes, barrier_id)
        storm = run_in_threads([partial(record, *batch) for batch in _redeliveries(keys, 2)])
        assert sum(r.counted for r in storm) == 100, "redelivered outcomes counted again"
        assert not any(r.transitioned for r in storm), "the barrier finished before 'last'"
        assert _counts(scatter_coordinator.status(barrier_id)) == ("pending", 50, 50, 101)
        finals = run_in_threads([partial(record, {"last": i}) for i in range(8)])
        assert sum(r.transitioned for r in finals) == 1, f"transitioned {finals}"
        assert sum(r.counted for r in finals) == 1
        assert all(r.state == "complete" for r in finals)
        gathered = scatter_coordinator.gather(barrier_id)
        assert {k: v for k, v in gathered.items() if k != "last"} == {
            k: {"result": k} for k in keys[::2]
        }

    def test_find_barrier_finds_the_barrier_of_a_run(
        self, scatter_coordinator: ScatterCoordinator, scatter_run_id: str
    ) -> None:
        partitions: list[Any] = ["p", None, dt.date(2024, 1, 31)]
        create = partial(scatter_coordinator.create_barrier, scatter_run_id, ASSET)
        ids = {repr(p): create(p) for p in partitions}
        with optional_method("find_barrier"):
            for partition in partitions:
                found = scatter_coordinator.find_barrier(scatter_run_id, ASSET, partition)
                assert found == ids[repr(partition)], f"barrier of partition {partition!r}"
            assert scatter_coordinator.find_barrier(scatter_run_id, "other_asset", "p") is None
            assert scatter_coordinator.find_barrier(unique_name("run"), ASSET, "p") is None

    def test_saved_checkpoint_loads_back(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(final=False)
        checkpoint: Mapping[str, Any] = {"offset": 10, "cursor": ["x", 2], "done": False}
        with optional_method("save_checkpoint"):
            assert scatter_coordinator.load_checkpoint(barrier_id) is None
            scatter_coordinator.save_checkpoint(barrier_id, checkpoint)
            assert scatter_coordinator.load_checkpoint(barrier_id) == checkpoint
            scatter_coordinator.save_checkpoint(barrier_id, {"offset": 20})
            assert scatter_coordinator.load_checkpoint(barrier_id) == {"offset": 20}

    @pytest.mark.parametrize("method", ["save_checkpoint", "load_checkpoint", "finished_keys"])
    def test_durable_methods_of_an_unknown_barrier_raise_not_found(
        self, scatter_coordinator: ScatterCoordinator, method: str
    ) -> None:
        unknown = unique_name("no_such_barrier")
        args = {"save_checkpoint": ({"offset": 1},), "finished_keys": (["a"],)}
        with expect_error(NotFound, unknown), optional_method(method):
            getattr(scatter_coordinator, method)(unknown, *args.get(method, ()))

    def test_finished_keys_are_those_with_an_outcome(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(tolerated={"count": 1})
        scatter_coordinator.complete(barrier_id, "a", 1)
        scatter_coordinator.fail(barrier_id, "b", "boom")
        with optional_method("finished_keys"):
            asked = ["a", "b", "c", "never_inserted"]
            assert scatter_coordinator.finished_keys(barrier_id, asked) == {"a", "b"}
            assert scatter_coordinator.finished_keys(barrier_id, []) == set()

    # -- contract 1.2: redrive and retune ------------------------------------------------

    def test_retry_failed_reopens_a_stopped_barrier_for_its_failed_keys(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a", "b", "c", "d"], tolerated={"count": 1})
        scatter_coordinator.record_outcomes(barrier_id, {"a": 1}, {"b": "boom", "c": "boom"})
        assert _counts(scatter_coordinator.status(barrier_id)) == ("threshold_exceeded", 1, 2, 4)
        with optional_method("retry_failed"):
            assert scatter_coordinator.retry_failed(barrier_id) == ["b", "c"]
        assert _counts(scatter_coordinator.status(barrier_id)) == ("pending", 1, 0, 4)
        assert scatter_coordinator.finished_keys(barrier_id, ["a", "b", "c", "d"]) == {"a"}
        recorded = scatter_coordinator.record_outcomes(barrier_id, {"b": 2, "c": 3, "d": 4})
        assert recorded == Recorded("complete", 3, True), "each retried key counts once more"
        assert scatter_coordinator.gather(barrier_id) == {"a": 1, "b": 2, "c": 3, "d": 4}
        assert scatter_coordinator.retry_failed(barrier_id) == []
        assert _counts(scatter_coordinator.status(barrier_id)) == ("complete", 4, 0, 4)

    def test_retry_failed_reopens_a_barrier_complete_with_failures(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a", "b"], tolerated={"percent": 50})
        scatter_coordinator.record_outcomes(barrier_id, {"a": 1}, {"b": "boom"})
        assert _counts(scatter_coordinator.status(barrier_id)) == ("complete", 1, 1, 2)
        with optional_method("retry_failed"):
            assert scatter_coordinator.retry_failed(barrier_id) == ["b"]
        assert _counts(scatter_coordinator.status(barrier_id)) == ("pending", 1, 0, 2)
        assert scatter_coordinator.fail(barrier_id, "b", "again") == "complete"
        assert scatter_coordinator.retry_failed(barrier_id) == ["b"], "as many times as needed"
        assert scatter_coordinator.complete(barrier_id, "b", 2) == "complete"
        assert scatter_coordinator.gather(barrier_id) == {"a": 1, "b": 2}

    def test_retry_failed_clears_the_checkpoint_and_keeps_a_streaming_key_set_open(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a", "b"], final=False)
        scatter_coordinator.fail(barrier_id, "a", "boom")
        with optional_method("retry_failed"):
            with contextlib.suppress(NotSupported):
                scatter_coordinator.save_checkpoint(barrier_id, {"offset": 2})
            scatter_coordinator.cancel(barrier_id)
            assert scatter_coordinator.retry_failed(barrier_id) == ["a"]
        assert _counts(scatter_coordinator.status(barrier_id)) == ("pending", 0, 0, 2)
        with contextlib.suppress(NotSupported):
            assert scatter_coordinator.load_checkpoint(barrier_id) is None
        scatter_coordinator.insert_keys(barrier_id, ["c"], final=True)
        scatter_coordinator.record_outcomes(barrier_id, {"a": 1, "b": 2, "c": 3})
        assert _counts(scatter_coordinator.status(barrier_id)) == ("complete", 3, 0, 3)

    def test_concurrent_retry_failed_returns_each_key_once(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        keys = [f"k{i}" for i in range(40)]
        barrier_id = new_barrier(keys, tolerated={"count": 100})
        scatter_coordinator.record_outcomes(barrier_id, None, {k: "boom" for k in keys[::2]})
        with optional_method("retry_failed"):
            returned = run_in_threads([partial(scatter_coordinator.retry_failed, barrier_id)] * 6)
        flat = [key for keys_of_call in returned for key in keys_of_call]
        assert sorted(flat) == sorted(keys[::2]), "every failed key returned exactly once"
        assert _counts(scatter_coordinator.status(barrier_id)) == ("pending", 0, 0, 40)

    def test_retry_failed_of_an_unknown_barrier_raises_not_found(
        self, scatter_coordinator: ScatterCoordinator
    ) -> None:
        unknown = unique_name("no_such_barrier")
        with expect_error(NotFound, unknown), optional_method("retry_failed"):
            scatter_coordinator.retry_failed(unknown)

    def test_set_tolerated_failures_judges_the_barrier_by_the_new_threshold(
        self, scatter_coordinator: ScatterCoordinator, new_barrier: NewBarrier
    ) -> None:
        barrier_id = new_barrier(["a", "b", "c", "d"], tolerated={"count": 0})
        with optional_method("set_tolerated_failures"):
            assert scatter_coordinator.set_tolerated_failures(barrier_id, {"count": 2}) == (
                "pending"
            )
        assert scatter_coordinator.fail(barrier_id, "a", "boom") == "pending", "loosened"
        assert scatter_coordinator.fail(barrier_id, "b", "boom") == "pending"
        tightened = scatter_coordinator.set_tolerated_failures(barrier_id, {"percent": 25})
        assert tightened == "threshold_exceeded", "2 of 4 exceed 25% of a final key set"
        assert scatter_coordinator.set_tolerated_failures(barrier_id, {"count": 9}) == (
            "threshold_exceeded"
        ), "a finished barrier keeps its status"
        with expect_error(ValidationError, "tolerated_failures"):
            scatter_coordinator.set_tolerated_failures(new_barrier(), {"percent": 120})
        with expect_error(NotFound, "no_such"):
            scatter_coordinator.set_tolerated_failures(unique_name("no_such"), None)
