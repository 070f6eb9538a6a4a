"""Partition definitions: static, daily, hourly (across clock changes), dimensions; lazy."""

from __future__ import annotations

import datetime as dt
import tracemalloc
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from flowstone_host.errors import ValidationError
from flowstone_host.partition_defs import (
    Dimensions,
    StaticPartitions,
    TimeWindows,
    partitions_def,
    time_windows,
)
from flowstone_host.partitions import parse_partition_key, partition_key

NY = ZoneInfo("America/New_York")


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dt.datetime]]:
    now = [dt.datetime(2024, 3, 5, 10, 30, tzinfo=dt.UTC)]
    monkeypatch.setattr(time_windows, "clock", lambda: now[0])
    yield now


def test_static_list_keeps_its_order_membership_and_pages() -> None:
    d = partitions_def(["eu", "us", 7])
    assert isinstance(d, StaticPartitions)
    assert d.count() == 3 and list(d) == ["eu", "us", 7]
    assert "us" in d and 7 in d and "7" not in d and "asia" not in d
    assert d.page(limit=2) == ["eu", "us"] and d.page(after="us", limit=2) == [7]
    assert d.parse("7") == 7 and d.parse("~i7") == 7
    with pytest.raises(ValidationError, match=r"nearest: eu"):
        d.parse("eux")
    with pytest.raises(ValidationError, match="repeats"):
        partitions_def(["a", "a"])


def test_daily_range_is_inclusive_and_maps_keys_both_ways() -> None:
    d = partitions_def({"daily": {"start": "2024-01-01", "end": "2024-12-31"}})
    assert isinstance(d, TimeWindows)
    assert d.count() == 366  # a leap year, both ends included
    assert d.value_at(0) == dt.date(2024, 1, 1) and d.value_at(365) == dt.date(2024, 12, 31)
    assert d.index_of(dt.date(2024, 3, 1)) == 60
    assert dt.date(2023, 12, 31) not in d and dt.date(2025, 1, 1) not in d
    assert dt.datetime(2024, 1, 1) not in d  # a datetime is not a day
    key = d.key(dt.date(2024, 2, 29))
    assert key == "~d2024-02-29" and d.value_of(key) == dt.date(2024, 2, 29)
    assert d.page(after=dt.date(2024, 12, 30), limit=5) == [dt.date(2024, 12, 31)]
    assert d.parse("2024-07-04") == d.parse("~d2024-07-04") == dt.date(2024, 7, 4)
    with pytest.raises(
        ValidationError,
        match=r"\(366\); nearest: 2024-12-27, 2024-12-28, 2024-12-29, 2024-12-30, 2024-12-31",
    ):
        d.parse("2025-01-02")


def test_open_daily_range_runs_to_the_last_complete_day_in_its_timezone(
    frozen_now: list[dt.datetime],
) -> None:
    utc = partitions_def({"daily": {"start": "2024-03-01"}})
    tokyo = partitions_def({"daily": {"start": "2024-03-01", "timezone": "Asia/Tokyo"}})
    assert utc is not None and tokyo is not None and not utc.bounded
    assert list(utc) == [dt.date(2024, 3, d) for d in (1, 2, 3, 4)]  # 5 March is not over
    assert tokyo.count() == 4  # 19:30 on 5 March in Tokyo: 5 March is not over either
    frozen_now[0] = dt.datetime(2024, 3, 5, 15, 30, tzinfo=dt.UTC)  # 00:30 on 6 March
    assert utc.count() == 4 and tokyo.count() == 5
    frozen_now[0] = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)  # before the start
    assert utc.count() == 0 and utc.page() == []


def test_open_hourly_range_ends_at_the_last_complete_hour(
    frozen_now: list[dt.datetime],
) -> None:
    d = partitions_def({"hourly": {"start": "2024-03-05T08:00"}})
    assert d is not None
    assert [v.hour for v in d] == [8, 9]  # 10:00-11:00 is under way at 10:30
    fixed = d.fixed()
    frozen_now[0] += dt.timedelta(hours=5)
    assert d.count() == 7 and fixed.count() == 2  # a paging pass sees one sequence


def test_hourly_across_the_spring_clock_change_skips_the_missing_hour() -> None:
    d = partitions_def(
        {"hourly": {"start": "2024-03-10T00:00", "end": "2024-03-10T05:00", "timezone": NY.key}}
    )
    assert d is not None and d.count() == 5  # 02:00 never happens in New York that day
    local = [v.astimezone(NY).strftime("%H:%M") for v in d]
    assert local == ["00:00", "01:00", "03:00", "04:00", "05:00"]
    assert all(v.tzinfo is dt.UTC for v in d)
    assert [d.spell(v) for v in d.page(limit=3)] == [
        "2024-03-10T00:00-05:00",
        "2024-03-10T01:00-05:00",
        "2024-03-10T03:00-04:00",
    ]
    with pytest.raises(ValidationError, match="does not exist"):
        d.parse("2024-03-10T02:00")
    with pytest.raises(ValidationError, match="does not exist"):
        partitions_def({"hourly": {"start": "2024-03-10T02:00", "timezone": NY.key}})


def test_hourly_across_the_autumn_clock_change_has_both_one_oclocks() -> None:
    d = partitions_def(
        {"hourly": {"start": "2024-11-03T00:00", "end": "2024-11-03T03:00", "timezone": NY.key}}
    )
    assert d is not None and d.count() == 5
    spelled = [d.spell(v) for v in d]
    assert spelled[1:3] == ["2024-11-03T01:00-04:00", "2024-11-03T01:00-05:00"]
    keys = [d.key(v) for v in d]
    assert len(set(keys)) == 5 and [parse_partition_key(k) for k in keys] == list(d)
    second = d.parse("2024-11-03T01:00-05:00")
    assert d.index_of(second) == 2 and d.page(after=second, limit=1)[0].hour == 7  # 02:00 EST
    with pytest.raises(ValidationError, match="happens twice") as caught:
        d.parse("2024-11-03T01:00")
    assert caught.value.details["near"] == spelled[1:3]
    # Paging across the change, one at a time, visits every hour once.
    seen, after = [], None
    while page := d.page(after=after, limit=1):
        seen += page
        after = page[-1]
    assert seen == list(d)


def test_a_daily_range_in_a_timezone_has_every_day_once_across_clock_changes() -> None:
    d = partitions_def(
        {"daily": {"start": "2024-03-09", "end": "2024-03-11", "timezone": "America/New_York"}}
    )
    assert d is not None and list(d) == [dt.date(2024, 3, 9 + i) for i in range(3)]


def test_dimensions_are_a_lazy_cartesian_product_in_mixed_radix() -> None:
    d = partitions_def(
        {"region": ["eu", "us"], "day": {"daily": {"start": "2024-01-01", "end": "2024-01-03"}}}
    )
    assert isinstance(d, Dimensions) and d.names == ("region", "day")
    assert d.count() == 6
    values = list(d)
    assert values[0] == {"region": "eu", "day": dt.date(2024, 1, 1)}
    assert values[3] == {"region": "us", "day": dt.date(2024, 1, 1)}
    assert [d.index_of(v) for v in values] == list(range(6))
    assert {"region": "asia", "day": dt.date(2024, 1, 1)} not in d
    assert {"region": "eu"} not in d
    after = d.parse("region=eu,day=2024-01-03")
    assert d.page(after=after, limit=2) == values[3:5]
    assert d.parse("day=2024-01-02,region=us") == values[4]
    assert d.parse(partition_key(values[5])) == values[5]
    with pytest.raises(ValidationError, match="Dimension 'day'"):
        d.parse("region=eu,day=2024-02-01")
    with pytest.raises(ValidationError, match="dimension"):
        d.parse("region=eu")


def test_a_million_hourly_partitions_page_without_being_listed() -> None:
    d = partitions_def({"hourly": {"start": "2000-01-01T00:00", "end": "2114-01-29T15:00"}})
    assert d is not None and d.count() == 1_000_000
    last = d.value_at(999_999)
    assert d.page(after=d.value_at(999_997), limit=10) == [d.value_at(999_998), last]
    assert d.index_of(last) == 999_999 and d.value_of(d.key(last)) == last
    tracemalloc.start()
    try:
        after, pages = None, 0
        while page := d.page(after=after, limit=10_000):
            after, pages = page[-1], pages + 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pages == 100
    assert peak < 5_000_000  # one page of datetimes, never a million


def test_a_million_combinations_of_dimensions_page_lazily() -> None:
    d = partitions_def(
        {
            "shard": list(range(1000)),
            "hour": {"hourly": {"start": "2024-01-01T00:00", "end": "2024-02-11T15:00"}},
        }
    )
    assert d is not None and d.count() == 1000 * 1000
    tracemalloc.start()
    try:
        value = d.value_at(654_321)
        assert value == {"shard": 654, "hour": dt.datetime(2024, 1, 14, 9, tzinfo=dt.UTC)}
        assert d.index_of(value) == 654_321
        assert len(d.page(after=value, limit=1000)) == 1000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"daily": {"start": "2024-02-30"}}, "not a date"),
        ({"daily": {"start": "2024-02-01", "end": "2024-01-01"}}, "before it starts"),
        ({"hourly": {"start": "2024-02-01T00:30"}}, "not on the hour"),
        ({"daily": {"start": "2024-02-01", "timezone": "Mars/Olympus"}}, "Unknown timezone"),
        ({"daily": {"start": "2024-02-01", "every": 2}}, "remove every"),
        ({"region": {"weekly": {"start": "2024-01-01"}}}, "Dimension 'region'"),
        ([], "at least one"),
    ],
)
def test_bad_definitions_are_refused_with_what_to_write(spec: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        partitions_def(spec)


def test_covers_says_when_a_partition_maps_to_the_same_partition_of_another() -> None:
    year = partitions_def({"daily": {"start": "2024-01-01", "end": "2024-12-31"}})
    march = partitions_def({"daily": {"start": "2024-03-01", "end": "2024-03-31"}})
    open_ = partitions_def({"daily": {"start": "2024-01-01"}})
    hours = partitions_def({"hourly": {"start": "2024-03-01T00:00", "end": "2024-03-01T05:00"}})
    assert year is not None and march is not None and open_ is not None and hours is not None
    assert year.covers(march) and not march.covers(year)
    assert open_.covers(year) and not year.covers(open_)  # an open range grows past 2024
    assert not year.covers(hours) and not hours.covers(year)
    static = partitions_def(["a", "b"])
    assert static is not None and static.covers(partitions_def(["b"]))  # type: ignore[arg-type]
    assert not static.covers(year)
