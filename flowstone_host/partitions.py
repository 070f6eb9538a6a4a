"""Canonical partition keys: one reversible, file-name-safe string per partition value.

Partition values are ``None`` (unpartitioned), ``str``, ``int``, ``datetime.date``,
``datetime.datetime``, tuples of these and mappings of ``str`` to these (multi-dimensional
partitions). :func:`partition_key` turns a value into a string made only of
``A-Z a-z 0-9 - _ . ~ ( ) !``, safe as a file name and an S3 key, and
:func:`parse_partition_key` turns it back into an equal value. Equal values give equal keys.

Grammar::

    key      := text | "~e" | "~n" | "~i" INT | "~d" DATE | "~t" DATETIME
              | "(" [key ("!" key)*] ")" | "~m(" [text "!" key ("!" text "!" key)*] ")"
    text     := ( [A-Za-z0-9_.-] | "~" HEX HEX )+      (a leading "." is escaped)
    DATE     := YYYY-MM-DD
    DATETIME := YYYY-MM-DDTHH.MM.SS[.ffffff][Z]     (aware values are converted to UTC: Z)

So ``"eu-west"`` stays ``eu-west``, ``date(2024, 1, 31)`` is ``~d2024-01-31`` and
``("eu", 7)`` is ``(eu!~i7)``.

Two limits: keys differ by case (``eu`` and ``EU``), so they are safe as file names only
on case-sensitive file systems; and an aware datetime at an ambiguous or skipped local
time (a clock change) is refused, since Python's comparison rules (PEP 495) never count it
equal to its instant in UTC: partition by UTC or naive datetimes, or by dates.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from typing import Any

from .errors import ValidationError

__all__ = ["MAX_KEY_LENGTH", "parse_partition_key", "partition_key"]

#: Longest key accepted: a file name may not exceed 255 bytes.
MAX_KEY_LENGTH = 255

_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_HEX = frozenset("0123456789ABCDEF")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2})\.(\d{2})\.(\d{2})(?:\.(\d{6}))?(Z?)")
_INT = re.compile(r"-?(?:0|[1-9]\d*)")
_SCALARS = frozenset({str, int, dt.date, dt.datetime, type(None)})
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def partition_key(partition: Any) -> str:
    """Return the canonical key of a partition value.

    Raises:
        ValidationError: the value is not a supported partition type, or its key would be
            longer than :data:`MAX_KEY_LENGTH`.
    """
    kind = type(partition)
    if kind in _SCALARS:  # the common case: one cached lookup, keyed by type so 1 != True
        return _scalar_key(kind.__name__, partition)
    return _checked(_encode(partition))


@functools.lru_cache(maxsize=4096)
def _scalar_key(type_name: str, partition: Any) -> str:
    return _checked(_encode(partition))


def _checked(key: str) -> str:
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"Partition key is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}. "
            "Use shorter partition values.",
            details={"length": len(key)},
        )
    return key


def _encode(value: Any) -> str:
    if value is None:
        return "~n"
    if isinstance(value, str):
        return _encode_text(value) if value else "~e"
    if isinstance(value, bool):
        raise ValidationError("A partition cannot be a bool; use a string such as 'true'.")
    if isinstance(value, int):
        return f"~i{value}"
    if isinstance(value, dt.datetime):
        return "~t" + _encode_datetime(value)
    if isinstance(value, dt.date):
        return f"~d{value.isoformat()}"
    if isinstance(value, tuple):
        return "(" + "!".join(_encode(v) for v in value) + ")"
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) and k for k in value):
            raise ValidationError("A mapping partition needs non-empty string keys.")
        pairs = (f"{_encode_text(k)}!{_encode(value[k])}" for k in sorted(value))
        return "~m(" + "!".join(pairs) + ")"
    raise ValidationError(
        f"Unsupported partition type {type(value).__name__}: use None, str, int, date, "
        "datetime, or a tuple or str-keyed mapping of these."
    )


def _encode_text(text: str) -> str:
    if _PLAIN_TEXT.fullmatch(text):
        return text
    out = []
    for i, char in enumerate(text):
        if char in _PLAIN and not (i == 0 and char == "."):
            out.append(char)
        else:
            out.extend(f"~{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    return "".join(out)


def _encode_datetime(value: dt.datetime) -> str:
    suffix = ""
    if value.tzinfo is dt.UTC:  # the common aware case (hourly partitions): no clock changes
        value, suffix = value.replace(tzinfo=None), "Z"
    elif value.utcoffset() is not None:
        if value.replace(fold=1 - value.fold).utcoffset() != value.utcoffset():
            raise ValidationError(
                f"Partition {value!r} is at an ambiguous or skipped local time (a clock "
                "change), which Python never counts equal to the same instant in UTC; use a "
                "UTC or naive datetime, or a date."
            )
        try:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValidationError(f"Partition {value!r} is out of range in UTC.") from None
        suffix = "Z"
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}.{value.minute:02d}.{value.second:02d}"
    )
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + suffix


def parse_partition_key(key: str) -> Any:
    """Return the partition value whose canonical key is ``key``.

    Raises:
        ValidationError: ``key`` is not a canonical partition key.
    """
    try:
        value, end = _decode(key, 0)
        if end != len(key) or _encode(value) != key:
            raise ValueError("not canonical")
    except (LookupError, ValueError, OverflowError, RecursionError):
        raise ValidationError(
            f"Not a canonical partition key: {key[:80]!r}", details={"key": key[:80]}
        ) from None
    return value


def _decode(key: str, i: int) -> tuple[Any, int]:
    if key.startswith("~m(", i):
        return _decode_mapping(key, i + 3)
    if key.startswith("(", i):
        return _decode_tuple(key, i + 1)
    if key.startswith("~", i) and key[i + 1 : i + 2] not in _HEX:
        return _decode_tagged(key, i)
    return _decode_text(key, i)


def _decode_tagged(key: str, i: int) -> tuple[Any, int]:
    tag, start = key[i + 1], i + 2
    if tag in "en":
        return ("" if tag == "e" else None), start
    pattern = {"i": _INT, "d": _DATE, "t": _DATETIME}[tag]
    match = pattern.match(key, start)
    if not match:
        raise ValueError(f"bad ~{tag} value")
    text = match.group(0)
    if tag == "i":
        return int(text), match.end()
    if tag == "d":
        return dt.date.fromisoformat(text), match.end()
    day, hh, mm, ss, micro, zulu = match.groups()
    value = dt.datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss}.{micro or '000000'}")
    return (value.replace(tzinfo=dt.UTC) if zulu else value), match.end()


def _decode_text(key: str, i: int) -> tuple[str, int]:
    raw = bytearray()
    while i < len(key):
        char = key[i]
        if char in _PLAIN:
            raw.append(ord(char))
            i += 1
        elif char == "~" and key[i + 1 : i + 2] in _HEX and key[i + 2 : i + 3] in _HEX:
            raw.append(int(key[i + 1 : i + 3], 16))
            i += 3
        else:
            break
    if not raw:
        raise ValueError("empty text")
    return raw.decode("utf-8", "surrogatepass"), i


def _decode_items(key: str, i: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    if key.startswith(")", i):
        return items, i + 1
    while True:
        item, i = _decode(key, i)
        items.append(item)
        if key.startswith(")", i):
            return items, i + 1
        if not key.startswith("!", i):
            raise ValueError("expected ! or )")
        i += 1


def _decode_tuple(key: str, i: int) -> tuple[tuple[Any, ...], int]:
    items, i = _decode_items(key, i)
    return tuple(items), i


def _decode_mapping(key: str, i: int) -> tuple[dict[str, Any], int]:
    items, i = _decode_items(key, i)
    if len(items) % 2 or not all(isinstance(k, str) for k in items[::2]):
        raise ValueError("bad mapping")
    return dict(zip(items[::2], items[1::2], strict=True)), i
