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
:func:`~flowstone_host.partitions.partition_key` is well defined); several dimensions a
``{dimension: value}`` dict. Each partition is spelled for people (:meth:`spell`:
``eu``, ``2024-01-31``, ``2024-11-03T01:00-04:00``, ``region=eu,day=2024-01-31``) and
:meth:`~PartitionsDef.parse` reads back a spelling or a canonical key.

The definitions live one to a module: :mod:`.base` (the sequence every definition is),
:mod:`.static` (a list), :mod:`.time_windows` (a daily or hourly range),
:mod:`.dimensions` (their product) and :mod:`.spec` (reading what the YAML says).
"""

from __future__ import annotations

from .base import PartitionsDef
from .dimensions import Dimensions
from .spec import partitions_def
from .static import StaticPartitions
from .time_windows import DAILY, HOURLY, TimeWindows

__all__ = [
    "DAILY",
    "HOURLY",
    "Dimensions",
    "PartitionsDef",
    "StaticPartitions",
    "TimeWindows",
    "partitions_def",
]
