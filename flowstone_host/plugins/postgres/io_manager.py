"""The ``postgres`` IO manager: asset values in a schema of the user's choice.

Invariants:

- One catalog row per ``(asset, partition key)`` in ``<schema>.io_values`` (its primary key):
  ``exists``, ``delete`` and ``list_partitions`` are index lookups on it, and the row says
  how the value is stored (format, and kind: json, pyarrow, pandas or pickle).
- ``json`` and ``arrow``/``pickle`` values live in the row itself (``jsonb`` / ``bytea``);
  a store is one upsert, so the last write wins and a load never sees half a value.
- ``table`` values live in a real table per asset, one slice table per partition (see
  :mod:`._tables`); a store locks the catalog row, replaces the partition's slice and
  updates the row in one transaction; a delete drops the slice with the row.
- The format comes from the config (``format``, default ``json``), overridable per call by
  the asset's ``io_config`` (``format=...``); ``pickle`` needs ``allow_pickle: true``, for
  storing and for loading.
- Driver errors are normalized: connection problems are retryable ``Unavailable``;
  constraint, data and SQL problems are not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ...contracts.io_manager import IOManager, Partition
from ...errors import ConfigError, NotFound
from ...partitions import parse_partition_key, partition_key
from ._base import PostgresBacked
from ._driver import SOURCE_SCHEMA, require
from ._formats import (
    FORMATS,
    VALUE_TYPES,
    check_format,
    decode,
    encode,
    from_table,
    pyarrow,
    to_table,
)
from ._json import dumps
from ._tables import drop_rows, load_rows, store_rows, table_name

__all__ = ["PostgresIOManager"]

_UPSERT = """INSERT INTO {schema}.io_values
(asset, partition_key, format, kind, payload_json, payload_bytes, stored_at)
VALUES (%s, %s, %s, %s, %s::jsonb, %b, now())
ON CONFLICT (asset, partition_key) DO UPDATE SET format = excluded.format,
kind = excluded.kind, payload_json = excluded.payload_json,
payload_bytes = excluded.payload_bytes, stored_at = excluded.stored_at"""
_LOAD = """SELECT format, kind, payload_json, payload_bytes FROM {schema}.io_values
WHERE asset = %s AND partition_key = %s"""
# What a store must know of the value it replaces: never its bytes, which may be large.
_LOCK = """SELECT format, kind, payload_json, NULL FROM {schema}.io_values
WHERE asset = %s AND partition_key = %s FOR UPDATE"""
_EXISTS = "SELECT 1 FROM {schema}.io_values WHERE asset = %s AND partition_key = %s"
_DELETE = """DELETE FROM {schema}.io_values WHERE asset = %s AND partition_key = %s
RETURNING format, payload_json"""
_LIST = "SELECT partition_key FROM {schema}.io_values WHERE asset = %s"


class PostgresIOManager(PostgresBacked, IOManager):
    """Stores values as JSONB, Arrow IPC bytes, pickles (opt-in) or real tables."""

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {
        **SOURCE_SCHEMA,
        "format": {"type": "string", "allowed": list(FORMATS), "default": "json"},
        "allow_pickle": {"type": "boolean", "default": False},
    }
    component = "io"

    def __init__(
        self, config: Mapping[str, Any] | None = None, *, resources: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(config)
        self.allow_pickle = bool(self.config.get("allow_pickle", False))
        self.format = check_format(self.config.get("format", "json"), self.allow_pickle)
        self.value_types = VALUE_TYPES[self.format]
        if self.format in ("arrow", "table"):
            pyarrow()
        self._connect(self.config, resources)

    def _format(self, opts: Mapping[str, Any]) -> str:
        return check_format(opts.get("format", self.format), self.allow_pickle)

    @staticmethod
    def _what(asset: str, key: str) -> str:
        return f"The value of asset {asset!r}, partition {key!r}"

    def store(self, asset: str, data: Any, partition: Partition, **opts: Any) -> None:
        key = partition_key(partition)
        fmt = self._format(opts)
        if fmt == "table":
            self._store_table(asset, key, data, opts)
            return
        text, payload, kind = encode(fmt, data, self._what(asset, key))
        with self.transaction() as conn:
            old = self._catalog_row(conn, asset, key, lock=True)
            conn.execute(self.sql(_UPSERT), [asset, key, fmt, kind, text, payload])
            self._drop_rows_of(conn, old, key)

    def _store_table(self, asset: str, key: str, data: Any, opts: Mapping[str, Any]) -> None:
        table, kind = to_table(data, self._what(asset, key))
        name = table_name(asset, dict(opts))
        with self.transaction() as conn:
            old = self._catalog_row(conn, asset, key, lock=True)
            meta = {"table": name}
            conn.execute(
                self.sql(_UPSERT),
                [asset, key, "table", kind, self._json(meta), memoryview(table.schema.serialize())],
            )
            if old is not None and old[0] == "table" and old[2] != meta:
                self._drop_rows_of(conn, old, key)
            store_rows(conn, self.schema, name, key, table)

    @staticmethod
    def _json(value: Any) -> str:
        return dumps(value, "table metadata")

    def _catalog_row(self, conn: Any, asset: str, key: str, *, lock: bool) -> Any:
        """The value's catalog row; locked, without its bytes, for a store to replace it."""
        if lock:
            return conn.execute(self.sql(_LOCK), [asset, key]).fetchone()
        # Binary results: bytea arrives as its bytes, not as hex text twice its size.
        with conn.cursor(binary=True) as cursor:
            return cursor.execute(self.sql(_LOAD), [asset, key]).fetchone()

    def _drop_rows_of(self, conn: Any, old: Any, key: str) -> None:
        """Remove the table rows a replaced or deleted ``table`` value left behind."""
        if old is not None and old[0] == "table":
            drop_rows(conn, self.schema, str(old[2]["table"]), key)

    def load(self, asset: str, partition: Partition, **opts: Any) -> Any:
        key = partition_key(partition)
        with self.transaction() as conn:
            row = self._catalog_row(conn, asset, key, lock=False)
            if row is not None and row[0] == "table":
                row = self._after_swaps(conn, asset, key, row)
            if row is None:
                raise NotFound(
                    f"No stored value for asset {asset!r}, partition {key!r}; materialize it "
                    "first.",
                    asset=asset,
                    partition=key,
                )
            fmt, kind, payload_json, payload_bytes = row
            if fmt == "pickle" and not self.allow_pickle:
                raise ConfigError(
                    f"Asset {asset!r}, partition {key!r} is a pickle; loading it runs code, so "
                    "set allow_pickle: true in the IO manager's config to opt in."
                )
            if fmt == "table":
                pa = pyarrow()
                schema = pa.ipc.read_schema(pa.py_buffer(payload_bytes))
                table = load_rows(conn, self.schema, payload_json["table"], key, schema)
                return from_table(table, kind)
        return decode(fmt, kind, payload_json, payload_bytes)

    def _after_swaps(self, conn: Any, asset: str, key: str, row: Any) -> Any:
        """Return the catalog row of a ``table`` value once no store is swapping its rows.

        A store swaps a partition's rows in with DDL, which is not MVCC-safe: a query that
        waited for the swap sees the new table but not its rows (an empty table). Holding
        the asset's table in ACCESS SHARE mode first lets a store in flight finish (and
        holds the next one off); the catalog row and the rows are read after that.
        """
        sql = require("psycopg.sql")
        for _ in range(3):
            name = str(row[2]["table"])
            table = sql.Identifier(self.schema, name)
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(table))
            row = self._catalog_row(conn, asset, key, lock=False)
            if row is None or row[0] != "table" or str(row[2]["table"]) == name:
                return row
        return row

    def exists(self, asset: str, partition: Partition, **opts: Any) -> bool:
        with self.connection() as conn:
            row = conn.execute(self.sql(_EXISTS), [asset, partition_key(partition)]).fetchone()
        return row is not None

    def delete(self, asset: str, partition: Partition, **opts: Any) -> None:
        key = partition_key(partition)
        with self.transaction() as conn:
            old = conn.execute(self.sql(_DELETE), [asset, key]).fetchone()
            if old is not None:
                self._drop_rows_of(conn, (old[0], None, old[1]), key)

    def list_partitions(self, asset: str, **opts: Any) -> list[Partition]:
        with self.connection() as conn:
            rows = conn.execute(self.sql(_LIST), [asset]).fetchall()
        return [parse_partition_key(row[0]) for row in rows]
