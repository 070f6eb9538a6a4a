"""Partition definitions: which partitions an asset has, as a lazy, ordered sequence.

An asset's ``partitions`` in YAML is one of:

- a static list of values: ``[eu, us]`` (strings or integers);
- a date range, one partition per day or per hour:
  ``{daily: {start: "2024-01-01", end: "2024-12-31", timezone: Europe/Paris}}`` or
  ``{hourly: {start: "2024-01-01T00:00", end: "2024-12-31T23:00"}}``; ``end`` is the
  last partition (inclusive), and without it the range runs up to the last *complete* day
  or hour (it grows with time); ``timezone`` (default ``UTC``) is where days and hours
  are counted;
- several dimensions, every combination: a mapping of dimension name to one of the above
  (``{region: [eu, us], day: {daily: {start: "2024-01-01"}}}``).

:func:`partitions_def` turns that into a :class:`PartitionsDef`. Every definition is an
ordered sequence that never holds its partitions: :meth:`~PartitionsDef.count`,
membership, :meth:`~PartitionsDef.value_at`, :meth:`~PartitionsDef.index_of`,
iteration from a position and :meth:`~PartitionsDef.page` (``after``, ``limit``) cost
the same for ten partitions as for a million. Several dimensions are their cartesian
product in mixed radix (the first dimension varies slowest), never materialized.

Values: a static value as written; a day a ``datetime.date``; an hour an aware
``datetime`` in UTC (so hours across a clock change stay distinct, and their
:func:`~.partitions.partition_key` is well defined); several dimensions a
``{dimension: value}`` dict. Each partition is spelled for people (:meth:`spell`:
``eu``, ``2024-01-31``, ``2024-11-03T01:00-04:00``, ``region=eu,day=2024-01-31``) and
:meth:`~PartitionsDef.parse` reads back a spelling or a canonical key.
"""

from __future__ import annotations

import datetime as dt
import difflib
import zoneinfo
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .errors import ValidationError
from .partitions import parse_partition_key, partition_key

__all__ = [
    "DAILY",
    "HOURLY",
    "Dimensions",
    "PartitionsDef",
    "StaticPartitions",
    "TimeWindows",
    "partitions_def",
]

DAILY = "daily"
HOURLY = "hourly"
_HOUR = dt.timedelta(hours=1)
_DAY = dt.timedelta(days=1)

#: Where "now" comes from (tests replace it): an aware datetime.
clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)  # noqa: E731


class PartitionsDef(ABC):
    """An ordered, lazy sequence of partition values (see the module docstring)."""

    __slots__ = ()

    @abstractmethod
    def count(self) -> int:
        """How many partitions there are now."""

    @abstractmethod
    def value_at(self, index: int) -> Any:
        """The partition at ``index`` (0-based).

        Raises:
            IndexError: outside ``0 .. count() - 1``.
        """

    @abstractmethod
    def index_of(self, value: Any) -> int | None:
        """The position of ``value``, or ``None`` if it is not a partition."""

    @abstractmethod
    def spell(self, value: Any) -> str:
        """How ``value`` is written on a command line and in listings."""

    @abstractmethod
    def parse(self, text: str) -> Any:
        """The partition ``text`` names: a spelling (:meth:`spell`) or a canonical key.

        Raises:
            ValidationError: ``text`` names no partition; the message lists near ones.
        """

    @abstractmethod
    def covers(self, other: PartitionsDef) -> bool:
        """Whether every partition of ``other`` is one of this definition's, at any time."""

    @property
    @abstractmethod
    def bounded(self) -> bool:
        """Whether the set is fixed (no range runs up to now)."""

    @abstractmethod
    def fixed(self) -> PartitionsDef:
        """This definition with every open range ended where it ends now, so that a long
        paging pass sees one consistent sequence."""

    @abstractmethod
    def describe(self) -> str:
        """A short description, e.g. ``hourly from 2024-01-01T00:00 (UTC)``."""

    # -- derived -------------------------------------------------------------------------

    def __contains__(self, value: Any) -> bool:
        return self.index_of(value) is not None

    def __iter__(self) -> Iterator[Any]:
        return self.iter_from(0)

    def iter_from(self, start: int = 0, stop: int | None = None) -> Iterator[Any]:
        """Yield the partitions from position ``start`` up to ``stop`` (default: the end),
        one at a time."""
        fixed = self.fixed()
        end = fixed.count() if stop is None else min(stop, fixed.count())
        for index in range(max(0, start), end):
            yield fixed.value_at(index)

    def page(self, after: Any = None, limit: int = 100) -> list[Any]:
        """Up to ``limit`` partitions following ``after`` (a value; ``None``: from the first).

        Raises:
            ValidationError: ``after`` is not a partition.
        """
        start = 0 if after is None else self.position(after) + 1
        return list(self.iter_from(start, start + max(0, limit)))

    def position(self, value: Any) -> int:
        """:meth:`index_of`, or an error naming the near partitions."""
        index = self.index_of(value)
        if index is None:
            raise self.unknown(self.spell_any(value))
        return index

    def spell_any(self, value: Any) -> str:
        """:meth:`spell` of a value that may not be a partition."""
        try:
            return self.spell(value)
        except Exception:
            return str(value)

    def key(self, value: Any) -> str:
        """The canonical key of a partition value."""
        return partition_key(value)

    def value_of(self, key: str) -> Any:
        """The partition whose canonical key is ``key``.

        Raises:
            ValidationError: ``key`` is no key, or not the key of a partition.
        """
        value = parse_partition_key(key)
        self.position(value)
        return value

    def unknown(self, text: str) -> ValidationError:
        """The error for ``text`` naming no partition, listing near ones."""
        near = self.near(text)
        shown = ", ".join(near) if near else "none"
        return ValidationError(
            f"No partition {text!r}: the partitions are {self.describe()} "
            f"({self.count()}{'' if self.bounded else ' now'}); nearest: {shown}.",
            details={"partition": text, "near": near},
        )

    def near(self, text: str, n: int = 5) -> list[str]:
        """Spellings of up to ``n`` partitions close to ``text``."""
        total = self.count()
        if total == 0:
            return []
        shown = [self.spell(v) for v in self.iter_from(0, 200)]
        close = difflib.get_close_matches(text, shown, n=n, cutoff=0.5)
        if close:
            return close
        ends = [self.spell(self.value_at(0))]
        if total > 1:
            ends.append(self.spell(self.value_at(total - 1)))
        return ends


class StaticPartitions(PartitionsDef):
    """A list of values as written (strings or integers), in their order."""

    __slots__ = ("_by_key", "values")

    def __init__(self, values: Sequence[Any]) -> None:
        self.values = tuple(values)
        self._by_key = {partition_key(v): i for i, v in enumerate(self.values)}
        if len(self._by_key) != len(self.values):
            raise ValidationError("A partition list repeats a value; list each one once.")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StaticPartitions) and other.values == self.values

    def __hash__(self) -> int:
        return hash(self.values)

    def __repr__(self) -> str:
        return f"StaticPartitions({list(self.values)!r})"

    def count(self) -> int:
        return len(self.values)

    def value_at(self, index: int) -> Any:
        if index < 0:
            raise IndexError(index)
        return self.values[index]

    def index_of(self, value: Any) -> int | None:
        try:
            return self._by_key.get(partition_key(value))
        except ValidationError:
            return None

    def spell(self, value: Any) -> str:
        return str(value)

    def parse(self, text: str) -> Any:
        for value in self.values:
            if str(value) == text:
                return value
        index = self._by_key.get(text)
        if index is not None:
            return self.values[index]
        raise self.unknown(text)

    def covers(self, other: PartitionsDef) -> bool:
        if not isinstance(other, StaticPartitions):
            return False
        return all(key in self._by_key for key in other._by_key)

    @property
    def bounded(self) -> bool:
        return True

    def fixed(self) -> PartitionsDef:
        return self

    def describe(self) -> str:
        return f"the list {', '.join(str(v) for v in self.values[:5])}" + (
            ", ..." if len(self.values) > 5 else ""
        )


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

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TimeWindows) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def _identity(self) -> tuple[Any, ...]:
        return (self.unit, self.start, self.end, self.timezone)

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


class Dimensions(PartitionsDef):
    """Every combination of several dimensions, as ``{dimension: value}``; the first
    dimension varies slowest."""

    __slots__ = ("dims",)

    def __init__(self, dims: Sequence[tuple[str, PartitionsDef]]) -> None:
        if not dims:
            raise ValidationError("A multi-dimensional partitioning needs a dimension.")
        for name, definition in dims:
            if isinstance(definition, Dimensions):
                raise ValidationError(f"Dimension {name!r} cannot have dimensions of its own.")
        self.dims = tuple(dims)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dimensions) and other.dims == self.dims

    def __hash__(self) -> int:
        return hash(self.dims)

    def __repr__(self) -> str:
        return f"Dimensions({list(self.dims)!r})"

    @property
    def names(self) -> tuple[str, ...]:
        """The dimension names, in order."""
        return tuple(name for name, _ in self.dims)

    def count(self) -> int:
        total = 1
        for _, definition in self.dims:
            total *= definition.count()
        return total

    def value_at(self, index: int) -> Any:
        return self._at(index, [d.count() for _, d in self.dims], self.dims)

    @staticmethod
    def _at(index: int, sizes: list[int], dims: Sequence[tuple[str, PartitionsDef]]) -> Any:
        total = 1
        for size in sizes:
            total *= size
        if index < 0 or index >= total:
            raise IndexError(index)
        digits = []
        for size in reversed(sizes):
            index, digit = divmod(index, size)
            digits.append(digit)
        digits.reverse()
        return {name: d.value_at(i) for (name, d), i in zip(dims, digits, strict=True)}

    def iter_from(self, start: int = 0, stop: int | None = None) -> Iterator[Any]:
        fixed = [(name, d.fixed()) for name, d in self.dims]
        sizes = [d.count() for _, d in fixed]
        total = 1
        for size in sizes:
            total *= size
        end = total if stop is None else min(stop, total)
        for index in range(max(0, start), end):
            yield self._at(index, sizes, fixed)

    def index_of(self, value: Any) -> int | None:
        if not isinstance(value, Mapping) or set(value) != set(self.names):
            return None
        index = 0
        for name, definition in self.dims:
            position = definition.index_of(value[name])
            if position is None:
                return None
            index = index * definition.count() + position
        return index

    def spell(self, value: Any) -> str:
        return ",".join(f"{name}={d.spell(value[name])}" for name, d in self.dims)

    def parse(self, text: str) -> Any:
        if text.startswith("~m("):
            try:
                value = parse_partition_key(text)
            except ValidationError:
                raise self.unknown(text) from None
            if self.index_of(value) is None:
                raise self.unknown(text)
            return value
        parts: dict[str, str] = {}
        for piece in text.split(","):
            name, sep, rest = piece.partition("=")
            if not sep or name not in self.names or name in parts:
                raise ValidationError(
                    f"No partition {text!r}: name one value per dimension as "
                    f"{','.join(f'{n}=...' for n in self.names)} (e.g. "
                    f"{self.spell(self.value_at(0)) if self.count() else '...'}).",
                    details={"partition": text},
                )
            parts[name] = rest
        missing = [n for n in self.names if n not in parts]
        if missing:
            raise ValidationError(
                f"Partition {text!r} names no value for dimension(s) {', '.join(missing)}.",
                details={"partition": text},
            )
        value = {}
        for name, definition in self.dims:
            try:
                value[name] = definition.parse(parts[name])
            except ValidationError as exc:
                raise ValidationError(
                    f"Dimension {name!r}: {exc.message}", details={"partition": text}
                ) from None
        return value

    def near(self, text: str, n: int = 5) -> list[str]:
        return [self.spell(v) for v in self.iter_from(0, n)]

    def covers(self, other: PartitionsDef) -> bool:
        if not isinstance(other, Dimensions) or set(other.names) != set(self.names):
            return False
        mine = dict(self.dims)
        return all(mine[name].covers(d) for name, d in other.dims)

    @property
    def bounded(self) -> bool:
        return all(d.bounded for _, d in self.dims)

    def fixed(self) -> PartitionsDef:
        if self.bounded:
            return self
        return Dimensions([(name, d.fixed()) for name, d in self.dims])

    def describe(self) -> str:
        return " x ".join(f"{name}: {d.describe()}" for name, d in self.dims)


def partitions_def(spec: Any) -> PartitionsDef | None:
    """Return the definition of an asset's ``partitions`` as written (see the module
    docstring); ``None`` for ``None``; a definition as it is.

    Raises:
        ValidationError: a shape or value that defines no partitions; the message says
            what to write.
    """
    if spec is None or isinstance(spec, PartitionsDef):
        return spec
    if isinstance(spec, Mapping):
        window = _window(spec)
        if window is not None:
            return window
        if not spec:
            raise ValidationError("A partition mapping needs at least one dimension.")
        dims: list[tuple[str, PartitionsDef]] = []
        for name, body in spec.items():
            definition: PartitionsDef | None = None
            if isinstance(body, Mapping):
                definition = _window(body)
            if definition is None:
                if isinstance(body, Mapping | str | bytes):
                    raise ValidationError(
                        f"Dimension {name!r} is a list of values, {{daily: {{...}}}} or "
                        "{hourly: {...}}."
                    )
                definition = _static(body)
            dims.append((str(name), definition))
        return Dimensions(dims)
    if isinstance(spec, str | bytes):
        raise ValidationError("Partitions are a list, a date range or a mapping of dimensions.")
    return _static(spec)


def _static(values: Any) -> StaticPartitions:
    values = tuple(values)
    if not values:
        raise ValidationError("A partition list needs at least one value.")
    return StaticPartitions(values)


def _window(spec: Mapping[str, Any]) -> TimeWindows | None:
    if len(spec) != 1:
        return None
    ((unit, body),) = spec.items()
    if unit not in (DAILY, HOURLY) or not isinstance(body, Mapping):
        return None
    unknown = set(body) - {"start", "end", "timezone"}
    if unknown or "start" not in body:
        raise ValidationError(
            f"A {unit} range is {{start, end, timezone}} with start required"
            + (f"; remove {', '.join(sorted(map(str, unknown)))}" if unknown else "")
            + "."
        )
    return TimeWindows(unit, body["start"], body.get("end"), body.get("timezone") or "UTC")


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
