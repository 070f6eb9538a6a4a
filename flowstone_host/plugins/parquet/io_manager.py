"""The ``parquet`` IO manager: tables as Parquet files in Hive-style partition folders.

A value for ``(asset, partition)`` is the file ``{root}/{asset}/{folders}/part-0.parquet``,
``folders`` being one ``{dim}={value}`` level per partition dimension
(:mod:`.hive`), so ``pyarrow.dataset.dataset(f"{root}/{asset}", partitioning="hive")``,
DuckDB's ``read_parquet(..., hive_partitioning=true)`` or Spark read an asset directly,
with the partition columns recovered from the folder names. Invariants:

- Only tables are stored (a pyarrow Table or RecordBatch, or a pandas DataFrame); ``load``
  gives back the kind that was stored, equal to it.
- Writes are atomic: a reader sees the previous file or the new one (see :mod:`._storage`).
- ``load(columns=[...], filters=...)`` reads only those columns and rows (pyarrow's
  ``filters``: DNF lists of ``(column, op, value)`` or an expression).
- ``list_partitions`` returns each stored partition once, with its type.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from ...contracts.io_manager import IOManager, Partition
from ...contracts.types import Health
from ...errors import FlowStoneError, NotFound, StorageError, ValidationError, normalize
from ...partitions import partition_key
from ..aws._client import CLIENT_SCHEMA, checked_config, public_config
from ._storage import open_storage
from ._tables import from_table, to_table
from .hive import parse_folders, partition_folders

__all__ = ["ParquetIOManager"]

FILE_NAME = "part-0.parquet"
_ASSET = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_COMPRESSIONS = ["none", "snappy", "gzip", "brotli", "lz4", "zstd"]
_WRITE_OPTIONS = ("compression", "compression_level", "row_group_size")


class ParquetIOManager(IOManager):
    """Stores tables as Parquet, one file per partition, in Hive-style folders.

    Config:
        root: A local folder, or a URI pyarrow knows (``s3://bucket/prefix``); for S3 the
            client keys (``endpoint_url``, ``region_name``, credentials) apply.
        compression: ``snappy`` (default), ``zstd``, ``gzip``, ``brotli``, ``lz4`` or
            ``none``; ``compression_level`` beside it.
        row_group_size: Rows per row group (default: pyarrow's).
        partition_column: Folder name of a one-dimension partition (default ``partition``).
        tuple_columns: Folder names of the dimensions of tuple partitions.

    A call's options override ``compression``, ``compression_level`` and
    ``row_group_size`` (store) and pass ``columns`` and ``filters`` (load).
    """

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    #: Tables only: no plain Python value (the conformance kit's value types).
    value_types: ClassVar[frozenset[str]] = frozenset()
    config_schema: ClassVar[dict[str, Any]] = {
        **CLIENT_SCHEMA,
        "root": {"type": "string", "required": True, "empty": False},
        "compression": {"type": "string", "allowed": _COMPRESSIONS, "default": "snappy"},
        "compression_level": {"type": "integer", "nullable": True, "default": None},
        "row_group_size": {"type": "integer", "min": 1, "nullable": True, "default": None},
        "partition_column": {"type": "string", "empty": False, "default": "partition"},
        "tuple_columns": {
            "type": "list",
            "schema": {"type": "string", "empty": False},
            "nullable": True,
            "default": None,
        },
    }

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        checked = checked_config("parquet", self.config_schema, config)
        public, secrets = public_config(checked)
        super().__init__(public)
        self._storage = open_storage(public["root"], public, secrets)
        self._column: str = public["partition_column"]
        self._tuple_columns: list[str] | None = public["tuple_columns"]
        self._write_defaults = {key: public[key] for key in _WRITE_OPTIONS}

    def __repr__(self) -> str:
        return f"ParquetIOManager(root={self._storage.where!r})"

    def path_of(self, asset: str, partition: Partition) -> str:
        """Return the file of ``(asset, partition)``, relative to the root."""
        if not isinstance(asset, str) or not _ASSET.fullmatch(asset):
            raise ValidationError(
                f"Asset name {asset!r} cannot be a folder name: use letters, digits, '_', "
                "'.', '-'.",
                asset=str(asset),
            )
        folders = partition_folders(partition, self._column, self._tuple_columns)
        return "/".join([asset, *folders, FILE_NAME])

    def _fail(self, exc: Exception, asset: str, partition: Partition) -> FlowStoneError:
        key = partition_key(partition)
        if isinstance(exc, FileNotFoundError):
            return NotFound(
                f"No stored table for asset {asset!r}, partition {key!r} under "
                f"{self._storage.where}; materialize it first.",
                asset=asset,
                partition=key,
            )
        error = normalize(exc)
        if type(error).__name__ == "InternalError":
            error = StorageError(f"asset {asset!r}, partition {key!r}: {exc}", asset=asset)
        return error

    def _write_options(self, opts: dict[str, Any]) -> dict[str, Any]:
        options = {**self._write_defaults, **{k: opts[k] for k in _WRITE_OPTIONS if k in opts}}
        options = {key: value for key, value in options.items() if value is not None}
        if options.get("compression") == "none":
            options["compression"] = None
        return options

    def store(self, asset: str, data: Any, partition: Partition, **opts: Any) -> None:
        path = self.path_of(asset, partition)
        table = to_table(data, f"asset {asset!r}, partition {partition_key(partition)!r}")
        try:
            self._storage.write(path, table, **self._write_options(opts))
        except Exception as exc:
            raise self._fail(exc, asset, partition) from exc

    def load(self, asset: str, partition: Partition, **opts: Any) -> Any:
        path = self.path_of(asset, partition)
        options = {key: opts[key] for key in ("columns", "filters") if opts.get(key) is not None}
        if isinstance(options.get("filters"), list):
            options["filters"] = _dnf(options["filters"])
        try:
            return from_table(self._storage.read(path, **options))
        except Exception as exc:
            raise self._fail(exc, asset, partition) from exc

    def exists(self, asset: str, partition: Partition, **opts: Any) -> bool:
        path = self.path_of(asset, partition)
        try:
            return self._storage.exists(path)
        except Exception as exc:
            raise self._fail(exc, asset, partition) from exc

    def delete(self, asset: str, partition: Partition, **opts: Any) -> None:
        path = self.path_of(asset, partition)
        try:
            self._storage.delete(path, asset)
        except Exception as exc:
            raise self._fail(exc, asset, partition) from exc

    def list_partitions(self, asset: str, **opts: Any) -> list[Partition]:
        folder = self.path_of(asset, None).rpartition("/")[0]
        found: dict[str, Partition] = {}
        try:
            for rel in self._storage.files(folder):
                *folders, name = rel.split("/")[1:]
                if name != FILE_NAME:
                    continue
                try:
                    value = parse_folders(folders, self._column, self._tuple_columns)
                except ValidationError:
                    continue  # a folder someone else put there
                found.setdefault(partition_key(value), value)
        except Exception as exc:
            raise self._fail(exc, asset, None) from exc
        return list(found.values())

    def health_check(self) -> Health:
        try:
            self._storage.exists(FILE_NAME)
        except Exception as exc:
            return Health.unhealthy(f"{self._storage.where}: {normalize(exc)}")
        return Health.ok(root=self._storage.where)


def _dnf(filters: list[Any]) -> list[Any]:
    """Return YAML filters as pyarrow's DNF: lists become tuples at the predicate level."""
    if filters and isinstance(filters[0], list) and filters[0] and isinstance(filters[0][0], list):
        return [[tuple(p) for p in conjunction] for conjunction in filters]
    return [tuple(p) if isinstance(p, list) else p for p in filters]
