"""Canonical partition keys: reversible, safe, equal values giving equal keys."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from flowstone_host import ValidationError, parse_partition_key, partition_key
from flowstone_host.partitions import MAX_KEY_LENGTH

SAFE = re.compile(r"^[A-Za-z0-9_.~()!-]+$")

#: Characters that a key's grammar gives a meaning to, hex digits (``~`` + two of them is
#: an escape, so ``!2F`` and ``~2F`` must not be confused), and text that needs escaping:
#: non-ASCII, astral and lone surrogates (which Python strings may hold).
special = st.sampled_from(list("~!().-_ABCDEFabcdef0123456789/ \x00é€"))
characters = st.one_of(
    special,
    st.characters(codec="utf-8"),
    st.characters(min_codepoint=0x10000),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone surrogates
)
texts = st.text(characters, max_size=12)
scalars = st.one_of(
    st.none(),
    texts,
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
        st.dictionaries(st.text(characters, min_size=1, max_size=6), inner, max_size=3),
    ),
    max_leaves=6,
)


def _key_or_stated_refusal(value: Any) -> str | None:
    """Return ``value``'s key, or ``None`` if it was refused for a documented reason: too
    long, a local time a clock change made ambiguous, or out of range in UTC. Any other refusal
    fails the test (a property must not pass by refusing what it should accept)."""
    try:
        return partition_key(value)
    except ValidationError as exc:
        long = exc.details.get("length", 0) > MAX_KEY_LENGTH and "limit is 255" in exc.message
        clock = "ambiguous or skipped local time" in exc.message
        assert long or clock or "out of range in UTC" in exc.message, exc.message
        return None


def _same_type_tree(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and all(map(_same_type_tree, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and all(_same_type_tree(a[k], b[k]) for k in a)
    return type(a) is type(b)


@given(partitions)
def test_round_trip_gives_an_equal_value_of_the_same_type(value: Any) -> None:
    key = _key_or_stated_refusal(value)
    assume(key is not None)
    assert key is not None
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
    ka, kb = _key_or_stated_refusal(a), _key_or_stated_refusal(b)
    assume(ka is not None and kb is not None)
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


@pytest.mark.parametrize(
    "key",
    [
        "~m(~i1!a)",  # a mapping key that is not text
        "~m(a!b!c)",  # a key without its value
        "(a~21",  # no closing parenthesis after an item
        "(a!b",
        "~q1",  # an unknown tag
        "~t2024-01-31",  # a datetime without its time
        "~2" + "x" * 100,  # long: the error quotes its first 80 characters only
    ],
)
def test_a_refused_key_is_named_in_the_error_cut_to_80_characters(key: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_partition_key(key)
    assert info.value.details == {"key": key[:80]}
    assert info.value.message == f"Not a canonical partition key: {key[:80]!r}"


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


@given(st.text(characters, max_size=20))
def test_any_short_text_round_trips(text: str) -> None:
    # 20 characters of at most 4 UTF-8 bytes, each escaped as ~XX: 240 <= 255, never refused.
    key = partition_key(text)
    assert parse_partition_key(key) == text and SAFE.match(key)


@given(st.tuples(st.text(characters, max_size=9), st.text(characters, max_size=9)))
def test_any_pair_of_short_texts_round_trips(pair: tuple[str, str]) -> None:
    key = partition_key(pair)
    assert parse_partition_key(key) == pair
    assert key.startswith("(") and key.endswith(")")


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (("eu", "2024"), "(eu!2024)"),
        (("eu", "AB"), "(eu!AB)"),
        (("eu!2F",), "(eu~212F)"),
        (("eu", "!"), "(eu!~21)"),
        ("~2F", "~7E2F"),
        ("(a!b)", "~28a~21b~29"),
        ({"a!b": "c"}, "~m(a~21b!c)"),
        ("\udc80", "~ED~B2~80"),
        ("é", "~C3~A9"),
        ("x.", "x."),
        ("-1", "-1"),
        (("",), "(~e)"),
        ((), "()"),
        ({}, "~m()"),
        (-7, "~i-7"),
        (0, "~i0"),
        (dt.datetime(2024, 1, 31, 10, 30, 0, 5), "~t2024-01-31T10.30.00.000005"),
        (dt.datetime(1, 1, 1), "~t0001-01-01T00.00.00"),
    ],
)
def test_keys_with_separators_escapes_and_edges(value: Any, key: str) -> None:
    assert partition_key(value) == key
    assert parse_partition_key(key) == value


@pytest.mark.parametrize(
    ("value", "length"),
    [("x" * 255, 255), ("é" * 42, 252), (("x" * 253,), 255), ("~" * 85, 255)],
)
def test_keys_of_up_to_255_characters_are_accepted(value: Any, length: int) -> None:
    key = partition_key(value)
    assert len(key) == length and parse_partition_key(key) == value


@pytest.mark.parametrize(
    ("value", "length"),
    [("x" * 256, 256), ("é" * 43, 258), (("x" * 254,), 256), ("~" * 86, 258)],
)
def test_keys_of_256_characters_or_more_are_refused(value: Any, length: int) -> None:
    with pytest.raises(ValidationError) as info:
        partition_key(value)
    assert info.value.details == {"length": length}
    assert f"{length} characters long; the limit is 255" in info.value.message


@pytest.fixture(params=["UTC", "America/New_York", "Asia/Kolkata"])
def local_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the test with the process's local time zone set to each of these in turn."""
    import time

    from flowstone_host import partitions

    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    partitions._scalar_key.cache_clear()  # keys are cached by value: compute them in this zone
    yield request.param
    monkeypatch.undo()
    time.tzset()
    partitions._scalar_key.cache_clear()


def test_aware_datetimes_are_keyed_in_utc_whatever_the_local_zone(local_zone: str) -> None:
    from zoneinfo import ZoneInfo

    paris = dt.datetime(2024, 1, 31, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))
    assert partition_key(paris) == "~t2024-01-31T09.30.00Z"
    offset = dt.datetime(2024, 7, 1, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert partition_key(offset) == "~t2024-07-02T04.00.00Z"
    assert partition_key(dt.datetime(2024, 7, 1, 23, 0)) == "~t2024-07-01T23.00.00"  # naive
    back = parse_partition_key("~t2024-07-02T04.00.00Z")
    assert back == offset and back.tzinfo is dt.UTC


def test_an_aware_datetime_out_of_range_in_utc_is_refused() -> None:
    edge = dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    with pytest.raises(ValidationError, match="out of range in UTC"):
        partition_key(edge)
