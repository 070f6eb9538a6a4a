"""Partition values as Hive-style folders: ``{dim}={value}``, one level per dimension.

Each folder value is the :func:`~flowstone_host.partitions.partition_key` of that
dimension's value, so ``"2024-01-01"`` stays ``2024-01-01`` (what DuckDB, Spark and
``pyarrow.dataset`` show as the partition column) while an ``int`` or a ``date`` keeps a
type tag (``~i7``, ``~d2024-01-31``) and comes back as the same type. Layout:

- ``None``: no folder (the file sits in the asset's folder).
- a scalar: ``{column}={key}`` (``column`` defaults to ``partition``).
- a tuple of scalars: one level per item, named by ``tuple_columns`` when given and of
  the same length, else ``{column}_0``, ``{column}_1``, ...
- a mapping of scalars: one level per key, in sorted key order, named by the key.
- anything that would not read back as itself (an empty or nested tuple, a mapping whose
  keys look like the names above): ``{column}={key of the whole value}``.

Invariant: ``parse_folders(partition_folders(p))`` equals ``p`` for every partition value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import ValidationError
from ...partitions import parse_partition_key, partition_key

__all__ = ["parse_folders", "partition_folders"]

_SCALARS = (str, int, dt.date)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, _SCALARS) and not isinstance(value, bool)


def _tuple_names(length: int, column: str, tuple_columns: Sequence[str] | None) -> list[str]:
    if tuple_columns and len(tuple_columns) == length:
        return list(tuple_columns)
    return [f"{column}_{i}" for i in range(length)]


def _layout(
    partition: Any, column: str, tuple_columns: Sequence[str] | None
) -> list[tuple[str, Any]]:
    if partition is None:
        return []
    if isinstance(partition, tuple) and partition and all(map(_is_scalar, partition)):
        return list(
            zip(_tuple_names(len(partition), column, tuple_columns), partition, strict=True)
        )
    if isinstance(partition, Mapping) and partition and all(map(_is_scalar, partition.values())):
        return [(partition_key(str(name)), partition[name]) for name in sorted(partition)]
    return [(column, partition)]


def partition_folders(
    partition: Any, column: str = "partition", tuple_columns: Sequence[str] | None = None
) -> list[str]:
    """Return the folder names (``dim=value``) that hold ``partition``, outermost first.

    Raises:
        ValidationError: ``partition`` is not a partition value.
    """
    whole = partition_key(partition)
    folders = [
        f"{name}={partition_key(value)}"
        for name, value in _layout(partition, column, tuple_columns)
    ]
    if partition_key(parse_folders(folders, column, tuple_columns)) != whole:
        folders = [f"{column}={whole}"]
    return folders


def parse_folders(
    folders: Sequence[str], column: str = "partition", tuple_columns: Sequence[str] | None = None
) -> Any:
    """Return the partition value held by ``folders`` (as :func:`partition_folders` made).

    Raises:
        ValidationError: a folder is not ``dim=value`` with a canonical partition key.
    """
    pairs = []
    for folder in folders:
        name, sep, value = folder.partition("=")
        if not sep or not name:
            raise ValidationError(f"Not a Hive partition folder: {folder!r}")
        pairs.append((name, parse_partition_key(value)))
    if not pairs:
        return None
    names = [name for name, _ in pairs]
    if names == [column]:
        return pairs[0][1]
    if names == _tuple_names(len(names), column, tuple_columns):
        return tuple(value for _, value in pairs)
    return {parse_partition_key(name): value for name, value in pairs}
