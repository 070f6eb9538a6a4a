"""Backfills: --missing, --partition-range, concurrency across partitions, resuming."""

from __future__ import annotations

import datetime as dt
import importlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from flowstone_host.errors import FlowStoneError
from flowstone_host.manifest.model import Asset
from flowstone_host.runtime import RunRecords, materialize, partitioning
from tests.runtime.helpers import POLICY, snapshot

HERE = "tests.runtime.test_partitions_backfill:"
DAYS = {"daily": {"start": "2024-01-01", "end": "2029-06-22"}}  # 2,000 days
CALLS: list[Any] = []
FLIGHT = {"now": 0, "max": 0}
LOCK = threading.Lock()
FAIL_ON: set[dt.date] = set()


#: This module as the callables see it: pytest imports test files under another name.
SELF: Any = importlib.import_module(HERE[:-1])


@pytest.fixture(autouse=True)
def _reset() -> None:
    SELF.CALLS.clear()
    SELF.FAIL_ON.clear()
    SELF.FLIGHT.update(now=0, max=0)


def day_value(ctx: Any, **inputs: Any) -> int:
    if ctx.partition in FAIL_ON:
        raise ValueError(f"no data for {ctx.partition}")
    CALLS.append(ctx.partition)
    return int(ctx.partition.toordinal()) + sum(v for v in inputs.values() if isinstance(v, int))


def slow_day(ctx: Any, **inputs: Any) -> int:
    with LOCK:
        FLIGHT["now"] += 1
        FLIGHT["max"] = max(FLIGHT["max"], FLIGHT["now"])
    time.sleep(0.01)
    with LOCK:
        FLIGHT["now"] -= 1
    return day_value(ctx, **inputs)


def config(ctx: Any) -> int:
    CALLS.append("config")
    return 1


def _daily(name: str = "daily", compute: str = "day_value", **kw: Any) -> Asset:
    return Asset(name, compute=HERE + compute, partitions=kw.pop("partitions", DAYS), **kw)


def _store(snap: Any, name: str, days: list[dt.date]) -> None:
    io = snap.io_managers.resolve("default").instance
    for day in days:
        io.store(name, 0, day)


def test_missing_backfill_of_2000_days_after_500_stored_does_exactly_1500(
    tmp_path: Path,
) -> None:
    snap = snapshot([_daily()], tmp_path)
    asset = snap.assets.resolve("daily")
    assert asset.partitions is not None and asset.partitions.count() == 2000
    stored = [asset.partitions.value_at(i) for i in range(0, 2000, 4)]  # every 4th: 500
    _store(snap, "daily", stored)
    result = materialize(snap, ["daily"], missing=True, state_dir=tmp_path, callables=POLICY)
    assert result.ok, result.error
    assert (
        len(SELF.CALLS) == 1500
        and len(set(SELF.CALLS)) == 1500
        and not set(SELF.CALLS) & set(stored)
    )
    assert result.partitions == 1500
    assert result.record.partitions == ["@missing"]
    assert {s.status for s in result.record.steps} == {"succeeded"}
    io = snap.io_managers.resolve("default").instance
    assert all(io.exists("daily", d) for d in asset.partitions)
    SELF.CALLS.clear()
    again = materialize(snap, ["daily"], missing=True, state_dir=tmp_path, callables=POLICY)
    assert again.ok and not again.resumed and SELF.CALLS == [] and again.partitions == 0


def test_range_runs_only_its_partitions_reusing_what_is_stored(tmp_path: Path) -> None:
    snap = snapshot([_daily()], tmp_path)
    _store(snap, "daily", [dt.date(2024, 1, 12)])
    result = materialize(
        snap, ["daily"], partition_range="2024-01-10..2024-01-14", state_dir=tmp_path,
        callables=POLICY,
    )  # fmt: skip
    assert result.ok and result.partitions == 5
    assert [dt.date(2024, 1, d) for d in (10, 11, 13, 14)] == SELF.CALLS
    statuses = {s.partition: s.status for s in result.record.steps}
    assert statuses["~d2024-01-12"] == "reused" and len(statuses) == 5
    assert result.record.partitions == ["@range daily ~d2024-01-10 ~d2024-01-14"]
    SELF.CALLS.clear()
    tail = materialize(
        snap, ["daily"], partition_range="2029-06-20..", missing=True, state_dir=tmp_path,
        callables=POLICY,
    )  # fmt: skip
    assert tail.ok and [dt.date(2029, 6, d) for d in (20, 21, 22)] == SELF.CALLS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-01-10", "FIRST..LAST"),
        ("2024-01-14..2024-01-10", "ends before it starts"),
        ("2023-12-01..2024-01-10", "nearest: 2024-01-01"),
    ],
)
def test_bad_ranges_are_refused_before_the_run(tmp_path: Path, text: str, message: str) -> None:
    snap = snapshot([_daily()], tmp_path)
    with pytest.raises(FlowStoneError, match=message):
        materialize(snap, ["daily"], partition_range=text, state_dir=tmp_path, callables=POLICY)


def test_an_unknown_partition_lists_the_nearest(tmp_path: Path) -> None:
    snap = snapshot([_daily()], tmp_path)
    with pytest.raises(FlowStoneError, match=r"nearest: 2029-06-18, .*2029-06-22") as caught:
        materialize(snap, ["daily"], ["2030-01-01"], state_dir=tmp_path, callables=POLICY)
    assert "'daily'" in caught.value.message
    with pytest.raises(FlowStoneError, match="not both"):
        materialize(snap, ["daily"], ["2024-01-01"], missing=True, state_dir=tmp_path)


def test_partitions_run_concurrently_and_what_they_share_runs_once(tmp_path: Path) -> None:
    assets = [
        Asset("config", compute=HERE + "config"),
        _daily("raw", partitions={"daily": {"start": "2024-01-01", "end": "2024-02-29"}}),
        _daily(
            "daily",
            "slow_day",
            deps=("config", "raw"),
            partitions={"daily": {"start": "2024-01-01", "end": "2024-02-29"}},
        ),
    ]
    snap = snapshot(assets, tmp_path)
    result = materialize(
        snap, ["daily"], missing=True, concurrency=4, state_dir=tmp_path, callables=POLICY
    )
    assert result.ok, result.error
    assert SELF.CALLS.count("config") == 1
    assert len([c for c in SELF.CALLS if c != "config"]) == 2 * 60  # raw and daily, each day once
    assert 1 < SELF.FLIGHT["max"] <= 4
    io = snap.io_managers.resolve("default").instance
    day = dt.date(2024, 2, 1)
    assert io.load("daily", day) == 2 * day.toordinal() + 1
    records = {(s.asset, s.partition) for s in result.record.steps}
    assert len(records) == 1 + 60 + 60  # every step recorded, the workers' too


def test_a_failed_partition_stops_the_backfill_and_a_rerun_resumes_it(tmp_path: Path) -> None:
    days = {"daily": {"start": "2024-01-01", "end": "2024-07-18"}}  # 200 days
    snap = snapshot([_daily("daily", "slow_day", partitions=days)], tmp_path)
    SELF.FAIL_ON.add(dt.date(2024, 3, 1))
    first = materialize(
        snap, ["daily"], missing=True, concurrency=3, state_dir=tmp_path, callables=POLICY
    )
    assert not first.ok and first.error is not None and "no data" in first.error.message
    done_before = set(SELF.CALLS)
    assert dt.date(2024, 2, 29) in done_before and len(done_before) < 100  # it stopped
    SELF.FAIL_ON.clear()
    SELF.CALLS.clear()
    second = materialize(
        snap, ["daily"], missing=True, concurrency=3, state_dir=tmp_path, callables=POLICY
    )
    assert second.ok and second.resumed and second.run_id == first.run_id
    assert not set(SELF.CALLS) & done_before  # nothing finished was done again
    assert len(SELF.CALLS) == 200 - len(done_before)
    record = RunRecords.in_state_dir(tmp_path)
    try:
        assert record.get(second.run_id, steps=False).attempts == 2
    finally:
        record.close()


def test_listing_missing_partitions_pages_through_the_io_manager(tmp_path: Path) -> None:
    hours = {"hourly": {"start": "2000-01-01T00:00", "end": "2114-01-29T15:00"}}  # 1,000,000
    snap = snapshot([Asset("h", compute=HERE + "day_value", partitions=hours)], tmp_path)
    asset = snap.assets.resolve("h")
    assert asset.partitions is not None
    first = [asset.partitions.value_at(i) for i in range(3)]
    io = snap.io_managers.resolve("default").instance
    io.store("h", 1, first[0])
    io.store("h", 1, first[2])
    page = partitioning.page(snap, asset, limit=3, only_missing=True)
    assert page[0] == first[1] and len(page) == 3
    after = partitioning.spell(asset, page[-1])
    later = partitioning.page(snap, asset, after=after, limit=2, only_missing=True)
    assert later == [asset.partitions.value_at(5), asset.partitions.value_at(6)]
    last = asset.partitions.value_at(999_998)
    end = partitioning.page(snap, asset, after=partitioning.spell(asset, last), limit=50)
    assert end == [asset.partitions.value_at(999_999)]
