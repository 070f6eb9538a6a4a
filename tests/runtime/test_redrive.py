"""Redrive, live retune and items_per_call (issue 13, items 1-3)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowstone_host.errors import ValidationError
from flowstone_host.manifest.model import Asset
from flowstone_host.runtime import RunRecords, materialize
from flowstone_host.runtime.redrive import parse_tolerated, redrive, retune
from tests.runtime import work_ops
from tests.runtime.helpers import POLICY, scatter_asset, snapshot

OPS = "tests.runtime.work_ops:"
N = 1000
FAILING = [n for n in range(N) if n % 33 == 0]  # 31 of 1,000: 3.1%


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    work_ops.reset()
    yield
    work_ops.reset()


def _asset(name: str, item: str, **kw: Any) -> Asset:
    asset = scatter_asset(name, "double", count=kw.pop("count", N), **kw)
    spec = asset.scatter
    assert spec is not None
    from dataclasses import replace

    return replace(asset, scatter=replace(spec, item=OPS + item))


def step_barrier(snap: Any) -> str:
    found = snap.scatter_coordinators.resolve("default").instance.find_barrier("r1", "s", None)
    assert found is not None
    return str(found)


def _stored(snap: Any, name: str) -> Any:
    return snap.io_managers.resolve("default").instance.load(name, None)


@pytest.mark.parametrize("coordinator", ["memory", "sqlite"])
@pytest.mark.parametrize(
    "tolerated",
    [{"count": 30}, {"count": 0}],
    ids=["fails-at-the-last-failure", "stops-at-the-first-failure"],
)
def test_3pct_failing_redriven_after_the_fix_completes_every_item_exactly_once(
    tmp_path: Path, coordinator: str, tolerated: dict[str, Any]
) -> None:
    asset = _asset("s", "fail_3pct_until_fixed", tolerated=tolerated, batch_size=50)
    snap = snapshot([asset], tmp_path, coordinator=coordinator)
    first = materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY, run_id="r1")
    assert not first.ok and first.error is not None
    assert first.error.code == "threshold_exceeded"
    assert "redrive" in first.error.message
    completed_first = list(work_ops.COMPLETED)

    work_ops.FIXED["on"] = True
    outcome = redrive(snap, "r1", state_dir=tmp_path, callables=POLICY)
    assert outcome.ok and outcome.result is not None, outcome.result
    assert outcome.result.resumed
    # every item completed exactly once over both passes: the barrier counts N completions
    # and the first pass's recorded completions were kept, not run again. Only items whose
    # outcome came in after the threshold stopped the first pass (the barrier ignores
    # those) ran again: at most the chunks in flight then (4 chunks of 12 items).
    status = snap.scatter_coordinators.resolve("default").instance.status(step_barrier(snap))
    assert (status.status, status.completed, status.failed, status.total) == (
        "complete",
        N,
        0,
        N,
    )
    assert (
        set(work_ops.COMPLETED) == set(completed_first) | set(work_ops.COMPLETED)
        and len(set(work_ops.COMPLETED)) == N
    )
    assert len(work_ops.COMPLETED) - N <= 4 * 12
    assert _stored(snap, "s") == {"count": N, "sum": sum(range(N))}
    (step,) = outcome.result.record.steps
    assert (step.status, step.details["completed"], step.details["failed"]) == (
        "succeeded",
        N,
        0,
    )
    recorded = outcome.event
    assert recorded["outcome"] == "succeeded"
    assert recorded["keys_retried"] == outcome.retried["s"] > 0
    assert recorded["keys_retried"] == first.error.details["failed"]
    if tolerated == {"count": 30}:  # it ran every item, so every failing one was retried
        assert recorded["keys_retried"] == len(FAILING)


def test_a_redrive_run_twice_is_recorded_twice(tmp_path: Path) -> None:
    asset = _asset("s", "fail_3pct_until_fixed", tolerated={"count": 30}, batch_size=100)
    snap = snapshot([asset], tmp_path, coordinator="sqlite")
    assert not materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY, run_id="r").ok

    still_broken = redrive(snap, "r", state_dir=tmp_path, callables=POLICY)
    assert not still_broken.ok
    assert still_broken.retried == {"s": len(FAILING)}
    work_ops.FIXED["on"] = True
    fixed = redrive(snap, "r", state_dir=tmp_path, callables=POLICY)
    assert fixed.ok and fixed.retried == {"s": len(FAILING)}
    assert len(set(work_ops.COMPLETED)) == N
    assert len(work_ops.COMPLETED) - N <= 2 * 4 * 25  # in flight at the two stops, at most
    assert _stored(snap, "s") == {"count": N, "sum": sum(range(N))}

    records = RunRecords.in_state_dir(tmp_path)
    try:
        run = records.get("r")
        assert run.status == "succeeded"
        assert [r["outcome"] for r in run.redrives] == ["failed", "succeeded"]
        assert [r["keys_retried"] for r in run.redrives] == [len(FAILING)] * 2
        assert run.redrives[0]["error"]["code"] == "threshold_exceeded"
        assert sorted(run.redrives[1]["keys"]) == sorted(run.redrives[0]["keys"])
        assert run.redrives[0]["at"] <= run.redrives[1]["at"]
        assert run.to_dict()["redrives"][1]["outcome"] == "succeeded"
    finally:
        records.close()
    nothing = redrive(snap, "r", state_dir=tmp_path, callables=POLICY)
    assert (
        nothing.ok and nothing.result is None and nothing.event["outcome"] == ("nothing to redrive")
    )


def test_a_scatter_complete_within_its_tolerance_is_redriven_and_its_readers_rerun(
    tmp_path: Path,
) -> None:
    asset = _asset("s", "fail_3pct_until_fixed", tolerated={"percent": 5}, batch_size=100)
    after = Asset("after", compute=OPS + "reads_s", deps=("s",))
    snap = snapshot([asset, after], tmp_path, coordinator="sqlite")
    first = materialize(snap, ["after"], state_dir=tmp_path, callables=POLICY, run_id="r")
    assert first.ok
    partial = N - len(FAILING)
    assert _stored(snap, "s")["count"] == partial

    work_ops.FIXED["on"] = True
    outcome = redrive(snap, "r", state_dir=tmp_path, callables=POLICY)
    assert outcome.ok and outcome.retried == {"s": len(FAILING)}
    assert _stored(snap, "s") == {"count": N, "sum": sum(range(N))}
    assert _stored(snap, "after") == N + sum(range(N)) + 1
    steps = {step.asset: step.status for step in outcome.result.record.steps}
    assert steps == {"s": "succeeded", "after": "succeeded"}
    assert len(work_ops.COMPLETED) == len(set(work_ops.COMPLETED)) == N


def test_a_retune_from_2_to_8_mid_run_shows_in_the_items_in_flight(tmp_path: Path) -> None:
    asset = _asset(
        "s", "tracked", count=3000, max_concurrency=2, batch_size=100, tolerated={"count": 0}
    )
    snap = snapshot([asset], tmp_path, coordinator="sqlite", workers=16)
    results: list[Any] = []
    runner = threading.Thread(
        target=lambda: results.append(
            materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY, run_id="tune")
        )
    )
    runner.start()
    deadline = time.monotonic() + 30
    while work_ops.LIVE["done"] < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    records = RunRecords.in_state_dir(tmp_path)
    try:
        retuned_at = work_ops.LIVE["done"]
        event = retune(records, "tune", max_concurrency=8)
        assert event["max_concurrency"] == 8 and event["run_status"] == "running"
        runner.join(60)
        assert not runner.is_alive()
        (result,) = results
        assert result.ok, result.error
        before = [running for done, running in work_ops.SAMPLES if done < retuned_at]
        assert max(before) == 2, "at most max_concurrency items ran before the retune"
        raised = [done for done, running in work_ops.SAMPLES if running > 2]
        assert raised, "the retune never raised the number of items in flight"
        assert raised[0] - retuned_at <= 100, "applied within one batch (batch_size 100)"
        assert max(running for _, running in work_ops.SAMPLES) == 8
        run = records.get("tune")
        (step,) = run.steps
        assert step.details["tuning"] == {"max_concurrency": 8}
        assert [r["max_concurrency"] for r in run.retunes] == [8]
    finally:
        records.close()


@pytest.mark.parametrize("coordinator", ["memory", "sqlite"])
def test_a_tighter_tolerance_retuned_mid_run_stops_the_scatter(
    tmp_path: Path, coordinator: str
) -> None:
    asset = _asset(
        "s",
        "fail_3pct_until_fixed",
        count=3000,
        max_concurrency=1,
        batch_size=10,
        tolerated={"count": 1000},
    )
    snap = snapshot([asset], tmp_path, coordinator=coordinator)
    records = RunRecords.in_state_dir(tmp_path)
    try:
        records.create("tight", ["s"], None)
        records.finish("tight", "failed")
        retune(records, "tight", tolerated_failures=parse_tolerated("2"))
    finally:
        records.close()
    result = materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY, run_id="tight")
    assert result.error is not None and result.error.code == "threshold_exceeded"
    assert result.error.details["tolerated_failures"] == {"count": 2}
    assert result.error.details["failed"] == 3


def test_parse_tolerated_and_retune_validation(tmp_path: Path) -> None:
    assert parse_tolerated("5%") == {"percent": 5.0}
    assert parse_tolerated(" 2.5 %") == {"percent": 2.5}
    assert parse_tolerated("3") == {"count": 3}
    for bad in ("five", "120%", "-1", "3.5"):
        with pytest.raises(ValidationError):
            parse_tolerated(bad)
    records = RunRecords.in_state_dir(tmp_path)
    try:
        records.create("x", ["s"], None)
        with pytest.raises(ValidationError, match="Give --max-concurrency"):
            retune(records, "x")
        with pytest.raises(ValidationError, match="at least 1"):
            retune(records, "x", max_concurrency=0)
    finally:
        records.close()


@pytest.mark.parametrize("coordinator", ["memory", "sqlite"])
def test_items_per_call_hands_lists_and_keeps_one_outcome_per_item(
    tmp_path: Path, coordinator: str
) -> None:
    asset = _asset("s", "doubles", count=1000, items_per_call=16, batch_size=100)
    snap = snapshot([asset], tmp_path, coordinator=coordinator)
    result = materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY)
    assert result.ok, result.error
    assert _stored(snap, "s") == {"count": 1000, "sum": 2 * sum(range(1000))}
    sizes = [size for size, _ in work_ops.SAMPLES]
    assert max(sizes) == 16 and sum(sizes) == 1000
    (step,) = result.record.steps
    assert (step.details["completed"], step.details["total"]) == (1000, 1000)


def test_items_per_call_an_exception_fails_every_item_of_its_call(tmp_path: Path) -> None:
    asset = _asset(
        "s",
        "doubles_failing_on_7",
        count=100,
        items_per_call=10,
        batch_size=100,
        tolerated={"percent": 100},
    )
    snap = snapshot([asset], tmp_path, coordinator="sqlite")
    result = materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY)
    assert result.ok, result.error
    (step,) = result.record.steps
    # every call of 10 consecutive items holds a multiple of 7, except 50-59 and 80-89?
    failing_calls = [c for c in range(10) if any(n % 7 == 0 for n in range(c * 10, c * 10 + 10))]
    assert step.details["failed"] == 10 * len(failing_calls)
    assert _stored(snap, "s")["count"] == 100 - 10 * len(failing_calls)


def test_items_per_call_a_result_list_of_the_wrong_length_fails_each_item(
    tmp_path: Path,
) -> None:
    asset = _asset(
        "s",
        "one_short",
        count=40,
        items_per_call=8,
        batch_size=40,
        max_concurrency=1,
        tolerated={"percent": 100},
    )
    snap = snapshot([asset], tmp_path, coordinator="sqlite")
    result = materialize(snap, ["s"], state_dir=tmp_path, callables=POLICY)
    assert result.ok, result.error
    (step,) = result.record.steps
    assert (step.details["completed"], step.details["failed"]) == (24, 16)
    coordinator = snap.scatter_coordinators.resolve("default").instance
    import sqlite3

    conn = sqlite3.connect(tmp_path / "coordinators.sqlite")
    try:
        errors = [
            row[0] for row in conn.execute("SELECT value FROM scatter_outcomes WHERE succeeded = 0")
        ]
    finally:
        conn.close()
    assert coordinator is not None
    assert len(errors) == 16
    assert all("was given 8 items and returned" in e for e in errors)
    assert any("7 results" in e for e in errors) and any("'str'" in e for e in errors)
