"""A date range: one partition per day (a ``date``) or per hour (an aware UTC
``datetime``), counted in a timezone, up to a fixed end or to the last complete one now."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import ValidationError
from ..partitions import parse_partition_key
from .base import PartitionsDef

__all__ = ["DAILY", "HOURLY", "TimeWindows", "clock"]

DAILY = "daily"
HOURLY = "hourly"
_HOUR = dt.timedelta(hours=1)
_DAY = dt.timedelta(days=1)

#: Where "now" comes from (tests replace it): an aware datetime.
clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)  # noqa: E731


class TimeWindows(PartitionsDef):
    """One partition per day (a ``date``) or per hour (an aware UTC ``datetime``).

    Attributes:
        unit: ``daily`` or ``hourly``.
        start: The first partition.
        end: The last partition (inclusive), or ``None``: up to the last complete one now.
        timezone: Where days and hours are counted (an IANA name).
    """

    __slots__ = ("_step", "_zone", "end", "start", "timezone", "unit")

    def __init__(self, unit: str, start: Any, end: Any = None, timezone: str = "UTC") -> None:
        if unit not in (DAILY, HOURLY):
            raise ValidationError(f"Unknown partition range {unit!r}: use daily or hourly.")
        self.unit = unit
        self.timezone = timezone
        self._zone = _zone(timezone)
        self._step = _DAY if unit == DAILY else _HOUR
        self.start = self._bound(start, "start")
        self.end = None if end is None else self._bound(end, "end")
        if self.end is not None and self.end < self.start:
            raise ValidationError(
                f"The range ends ({self.spell(self.end)}) before it starts "
                f"({self.spell(self.start)}); swap them or fix one."
            )
        if self.end is not None and (self.end - self.start) % self._step:
            raise ValidationError("The range's end is not a whole number of hours after its start.")

    def _bound(self, value: Any, which: str) -> Any:
        if self.unit == DAILY:
            if isinstance(value, dt.datetime) or not isinstance(value, dt.date | str):
                raise ValidationError(f'A daily {which} is a date such as "2024-01-31".')
            try:
                return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
            except ValueError:
                raise ValidationError(
                    f"The daily {which} {value!r} is not a date: write YYYY-MM-DD."
                ) from None
        if isinstance(value, dt.datetime):
            local = value
        elif isinstance(value, str):
            try:
                local = dt.datetime.fromisoformat(value)
            except ValueError:
                raise ValidationError(
                    f"The hourly {which} {value!r} is not a time: write YYYY-MM-DDTHH:00."
                ) from None
        else:
            raise ValidationError(f'An hourly {which} is a time such as "2024-01-31T00:00".')
        if local.minute or local.second or local.microsecond:
            raise ValidationError(f"The hourly {which} {value!r} is not on the hour (HH:00).")
        if local.tzinfo is not None:
            return local.astimezone(dt.UTC)
        return _local_to_utc(local, self._zone, which, later=which == "end")

    def _identity(self) -> tuple[Any, ...]:
        return (TimeWindows, self.unit, self.start, self.end, self.timezone)

    def __repr__(self) -> str:
        return f"TimeWindows({self.unit!r}, {self.start!r}, {self.end!r}, {self.timezone!r})"

    # -- the sequence --------------------------------------------------------------------

    def last(self) -> Any:
        """The last partition now (``start - 1 step`` when there is none yet)."""
        if self.end is not None:
            return self.end
        now = clock()
        if self.unit == DAILY:
            return now.astimezone(self._zone).date() - _DAY  # the last complete day
        steps = (now - self.start) // _HOUR  # hours begun since start
        return self.start + (steps - 1) * _HOUR  # the last complete hour

    def count(self) -> int:
        last = self.last()
        return max(0, int((last - self.start) // self._step) + 1)

    def value_at(self, index: int) -> Any:
        if index < 0 or index >= self.count():
            raise IndexError(index)
        return self.start + index * self._step

    def iter_from(self, start: int = 0, stop: int | None = None) -> Iterator[Any]:
        total = self.count()
        end = total if stop is None else min(stop, total)
        value, step = self.start + max(0, start) * self._step, self._step
        for _ in range(max(0, start), end):
            yield value
            value += step

    def index_of(self, value: Any) -> int | None:
        if self.unit == DAILY:
            if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
                return None
            index = int((value - self.start).days)
        else:
            if not isinstance(value, dt.datetime):
                return None
            if value.tzinfo is None:
                value = value.replace(tzinfo=self._zone)
            delta = value - self.start
            if delta % _HOUR:
                return None
            index = int(delta // _HOUR)
        if index < 0 or index >= self.count():
            return None
        return index

    def spell(self, value: Any) -> str:
        if self.unit == DAILY:
            return str(value.isoformat())
        local = value.astimezone(self._zone)
        if self.timezone == "UTC":
            return str(local.strftime("%Y-%m-%dT%H:%MZ"))
        return str(local.isoformat(timespec="minutes"))

    def parse(self, text: str) -> Any:
        value = self._read(text)
        if value is None:
            raise self.unknown(text)
        if self.index_of(value) is None:
            raise self.unknown(text)
        return value

    def _read(self, text: str) -> Any:
        if text.startswith("~"):
            try:
                return parse_partition_key(text)
            except ValidationError:
                return None
        if self.unit == DAILY:
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                return None
        try:
            local = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if local.tzinfo is not None:
            return local.astimezone(dt.UTC)
        return _local_to_utc(local, self._zone, "partition", later=False, text=text)

    def near(self, text: str, n: int = 5) -> list[str]:
        total = self.count()
        if total == 0:
            return []
        try:
            value = self._read(text)
        except ValidationError:
            value = None
        if value is None:
            return [self.spell(self.value_at(0)), self.spell(self.value_at(total - 1))]
        delta = value - self.start
        guess = delta.days if self.unit == DAILY else int(delta // _HOUR)
        first = min(max(0, guess - n // 2), max(0, total - n))
        return [self.spell(v) for v in self.iter_from(first, first + n)]

    def covers(self, other: PartitionsDef) -> bool:
        if not isinstance(other, TimeWindows) or other.unit != self.unit:
            return False
        if other.start < self.start or (other.start - self.start) % self._step:
            return False
        if self.end is None:
            return True
        return other.end is not None and other.end <= self.end

    @property
    def bounded(self) -> bool:
        return self.end is not None

    def fixed(self) -> PartitionsDef:
        if self.end is not None:
            return self
        last = self.last()
        if last < self.start:
            return _Empty(self)
        return TimeWindows(self.unit, self.start, last, self.timezone)

    def describe(self) -> str:
        end = f"to {self.spell(self.end)}" if self.end is not None else "up to now"
        return f"{self.unit} from {self.spell(self.start)} {end} ({self.timezone})"


class _Empty(TimeWindows):
    """An open range that has no complete partition yet."""

    __slots__ = ()

    def __init__(self, of: TimeWindows) -> None:
        super().__init__(of.unit, of.start, None, of.timezone)

    def count(self) -> int:
        return 0

    def fixed(self) -> PartitionsDef:
        return self


def _zone(name: str) -> dt.tzinfo:
    if name == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationError(
            f"Unknown timezone {name!r}: use an IANA name such as UTC or Europe/Paris."
        ) from None


def _local_to_utc(
    local: dt.datetime, zone: dt.tzinfo, which: str, *, later: bool, text: str | None = None
) -> dt.datetime:
    """Return the UTC instant of a wall-clock time in ``zone``; refuse a skipped one, and
    take the first (``later``: the second) of an ambiguous one unless ``text`` asks."""
    first = local.replace(tzinfo=zone, fold=0)
    second = local.replace(tzinfo=zone, fold=1)
    back = first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
    if back != local:
        raise ValidationError(
            f"The {which} {local.isoformat(timespec='minutes')} does not exist in {zone} "
            "(the clocks skip it); use the hour after."
        )
    if first.utcoffset() != second.utcoffset():
        if text is not None:
            options = [v.isoformat(timespec="minutes") for v in (first, second)]
            raise ValidationError(
                f"{text!r} happens twice in {zone} (the clocks go back); write "
                f"{options[0]} or {options[1]}.",
                details={"partition": text, "near": options},
            )
        return (second if later else first).astimezone(dt.UTC)
    return first.astimezone(dt.UTC)
