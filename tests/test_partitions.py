"""Canonical partition keys: reversible, safe, equal values giving equal keys."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from flowstone_host import ValidationError, parse_partition_key, partition_key

SAFE = re.compile(r"^[A-Za-z0-9_.~()!-]+$")

scalars = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.timezones()),
)
partitions = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.tuples(inner, inner),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3),
    ),
    max_leaves=6,
)


def _same_type_tree(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and all(map(_same_type_tree, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and all(_same_type_tree(a[k], b[k]) for k in a)
    return type(a) is type(b)


@given(partitions)
def test_round_trip_gives_an_equal_value_of_the_same_type(value: Any) -> None:
    try:
        key = partition_key(value)
    except ValidationError:
        return  # refused: over the length limit, or a local time a clock change made ambiguous
    back = parse_partition_key(key)
    assert back == value
    assert _same_type_tree(back, value)
    assert SAFE.match(key) and key not in {".", ".."} and len(key) <= 255


@given(st.datetimes(timezones=st.timezones()), st.timezones())
def test_equal_instants_give_equal_keys(moment: dt.datetime, zone: dt.tzinfo) -> None:
    other = moment.astimezone(zone)
    assume(moment == other)  # PEP 495: an ambiguous local time equals no other zone's
    try:
        key = partition_key(moment)
    except ValidationError:  # a local time a clock change made ambiguous: refused
        assume(False)
    assert key == partition_key(other)


@given(partitions, partitions)
def test_keys_are_equal_exactly_when_values_are(a: Any, b: Any) -> None:
    try:
        ka, kb = partition_key(a), partition_key(b)
    except ValidationError:
        return
    assert (ka == kb) == (a == b)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("eu-west", "eu-west"),
        ("", "~e"),
        (None, "~n"),
        (7, "~i7"),
        (dt.date(2024, 1, 31), "~d2024-01-31"),
        (dt.datetime(2024, 1, 31, 10, 30), "~t2024-01-31T10.30.00"),
        (dt.datetime(2024, 1, 31, 10, 30, tzinfo=dt.UTC), "~t2024-01-31T10.30.00Z"),
        (("eu", 7), "(eu!~i7)"),
        ({"region": "eu", "day": dt.date(2024, 1, 1)}, "~m(day!~d2024-01-01!region!eu)"),
        ("a/b", "a~2Fb"),
        (".hidden", "~2Ehidden"),
        ("2024-01-31", "2024-01-31"),
    ],
)
def test_readable_keys(value: Any, key: str) -> None:
    assert partition_key(value) == key
    assert parse_partition_key(key) == value


@pytest.mark.parametrize("value", [True, 1.5, [1], {1: "a"}, {"": 1}, object()])
def test_unsupported_values_are_refused_with_guidance(value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        partition_key(value)
    assert info.value.code == "validation_error"


@pytest.mark.parametrize(
    "key", ["", "~", "~x1", "~i01", "(a", "~m(a)", "~2e", "a b", "~d2024-13-01", ".", "~i1~i2"]
)
def test_non_canonical_keys_are_refused(key: str) -> None:
    with pytest.raises(ValidationError):
        parse_partition_key(key)


def test_overlong_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="limit is 255"):
        partition_key("x" * 256)


def test_an_ambiguous_local_time_is_refused_not_mangled() -> None:
    from zoneinfo import ZoneInfo

    ambiguous = dt.datetime(2016, 8, 13, 22, 0, tzinfo=ZoneInfo("Chile/EasterIsland"))
    with pytest.raises(ValidationError, match="ambiguous or skipped local time"):
        partition_key(ambiguous)
    plain = dt.datetime(2016, 1, 13, 22, 0, tzinfo=ZoneInfo("Chile/EasterIsland"))
    assert parse_partition_key(partition_key(plain)) == plain
