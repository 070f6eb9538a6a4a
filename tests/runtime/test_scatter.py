"""Scatter: thresholds, exact gathers, resume from the barrier, both coordinators."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowstone_host.runtime import materialize
from tests.runtime import work
from tests.runtime.helpers import POLICY, scatter_asset, snapshot


@pytest.mark.parametrize("coordinator", ["memory", "sqlite"])
def test_2pct_failing_under_5pct_gathers_exactly_the_successes(
    tmp_path: Path, coordinator: str
) -> None:
    asset = scatter_asset("s", "fail_2pct", tolerated={"percent": 5}, batch_size=200)
    snap = snapshot([asset], tmp_path, coordinator=coordinator)
    result = materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY)
    assert result.ok, result.error
    gathered = snap.io_managers.resolve("default").instance.load("s", None)
    assert gathered["count"] == 9_800
    assert gathered["sum"] == sum(n for n in range(10_000) if n % 50)
    assert len(work.CALLS) == len(set(work.CALLS)) == 9_800
    (step,) = result.record.steps
    assert step.details["completed"] == 9_800 and step.details["failed"] == 200


def test_10pct_failing_stops_at_the_threshold_once_the_total_is_known(tmp_path: Path) -> None:
    asset = scatter_asset("s", "fail_10pct", tolerated={"percent": 5}, count=10_000, batch_size=100)
    snap = snapshot([asset], tmp_path)
    result = materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY)
    assert not result.ok and result.error is not None
    assert result.error.code == "threshold_exceeded"
    assert "tolerated_failures is {'percent': 5}" in result.error.message
    assert "--fresh" in result.error.message
    # 5% of the 10,000 the reader announced is 500: it stopped just past it
    assert 500 < result.error.details["failed"] <= 600
    assert len(work.CALLS) < 6_000  # pending work was cancelled, the rest never read
    assert not snap.io_managers.resolve("default").instance.exists("s", None)
    assert result.record.status == "failed"


def test_10pct_failing_without_a_count_fails_when_the_key_set_is_final(tmp_path: Path) -> None:
    asset = scatter_asset("s", "fail_10pct", tolerated={"percent": 5}, batch_size=500)
    snap = snapshot([asset], tmp_path, coordinator="sqlite")
    result = materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY)
    assert result.error is not None and result.error.code == "threshold_exceeded"
    assert result.error.details["status"] == "threshold_exceeded"
    # judged once the last batch made the key set final; it stopped there
    assert 500 < result.error.details["failed"] <= 1_000


def test_a_count_threshold_stops_at_once(tmp_path: Path) -> None:
    asset = scatter_asset("s", "fail_10pct", tolerated={"count": 3}, batch_size=20)
    snap = snapshot([asset], tmp_path)
    result = materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY)
    assert result.error is not None and result.error.code == "threshold_exceeded"
    assert len(work.CALLS) < 200


def test_a_resumed_run_skips_finished_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that failed at a count threshold, retried with a higher tolerance, runs only
    the keys without an outcome (finished_keys), from the saved checkpoint."""
    monkeypatch.setenv("FS_TEST_ITEMS", "1000")
    first = scatter_asset("s", "fail_10pct", tolerated={"count": 1000}, batch_size=100)
    snap = snapshot([first], tmp_path, coordinator="sqlite")
    result = materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY, run_id="r1")
    assert result.ok
    assert len(work.CALLS) == 1000
    snap.io_managers.resolve("default").instance.delete("s", None)
    again = materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY, run_id="r1")
    assert again.ok and again.resumed
    assert len(work.CALLS) == 1000  # the barrier was complete: gathered, no item ran again


def test_keys_and_outcomes_go_in_few_large_transactions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reader batches are inserted a group at a time, outcomes a reader batch at a time: a
    file-backed coordinator's commit costs far more than the rows it carries."""
    from flowstone_host.runtime import dispatch as module

    monkeypatch.setattr(module, "RECORD_INTERVAL_S", 60.0)  # only the size rule applies
    asset = scatter_asset("s", "double", tolerated={"count": 0}, batch_size=100)
    snap = snapshot([asset], tmp_path, coordinator="sqlite")
    coordinator = snap.scatter_coordinators.resolve("default").instance
    calls: list[tuple[str, int]] = []
    insert, record = coordinator.insert_keys, coordinator.record_outcomes

    def counted_insert(barrier: str, keys: list[str], **kw: object) -> None:
        calls.append(("insert_keys", len(keys)))
        insert(barrier, keys, **kw)

    def counted_record(barrier: str, completed: dict, failed: dict) -> object:  # type: ignore[type-arg]
        calls.append(("record_outcomes", len(completed) + len(failed)))
        return record(barrier, completed, failed)

    monkeypatch.setattr(coordinator, "insert_keys", counted_insert)
    monkeypatch.setattr(coordinator, "record_outcomes", counted_record)
    result = materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY)
    assert result.ok, result.error
    inserts = [n for name, n in calls if name == "insert_keys"]
    records = [n for name, n in calls if name == "record_outcomes"]
    assert sum(inserts) == sum(records) == 10_000
    assert len(inserts) <= -(-10_000 // module.GROUP_ITEMS) + 1
    assert len(records) <= 10_000 // 100 + 1  # a reader batch at a time, not chunk by chunk
    gathered = snap.io_managers.resolve("default").instance.load("s", None)
    assert gathered == {"count": 10_000, "sum": 2 * sum(range(10_000))}
