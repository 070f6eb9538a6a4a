"""The ``postgres`` item reader: rows of a table or a query, by keyset pagination.

Config: ``table`` (optionally schema-qualified as ``schema.table``) or ``query`` (SQL whose
rows are the items), ``key`` (a unique, ordered column), optional ``columns``, and where
the connections come from: ``resource`` (a handle in ``deps``) or ``dsn``.

Invariants:

- Each ``read(n)`` runs one short query: ``... WHERE key > <last key> ORDER BY key LIMIT n``
  (never ``OFFSET``), so memory stays at one batch however large the source, no transaction
  stays open between reads, and the cost of a read does not grow with the position.
- Items are dicts of column name to value, in key order; the key must be unique.
- ``checkpoint()`` is ``{"after": <last key>, "done": bool}`` (the key JSON-encoded, dates
  and datetimes tagged); a reader restored from it resumes with the next key: no row lost,
  none repeated.
- ``count()`` is an exact ``count(*)`` for a table, computed once; ``None`` for a query
  (its count may be as costly as reading it), unless ``count: true``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

from ...contracts.item_reader import ItemReader
from ...contracts.types import Batch
from ...errors import ConfigError, ValidationError
from ._driver import Pools, errors_translated

__all__ = ["PostgresItemReader"]

_TAGS: dict[str, Any] = {"date": dt.date.fromisoformat, "datetime": dt.datetime.fromisoformat}


def _encode_key(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if value is None or isinstance(value, str | int | float):
        return value
    raise ValidationError(
        f"Key value {value!r} cannot be checkpointed; key on an int, text or date column."
    )


def _decode_key(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        if tag in _TAGS:
            return _TAGS[tag](text)
    return value


class PostgresItemReader(ItemReader):
    """Streams rows of a table or query, keyset-paginated on ``key``."""

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {
        "resource": {"type": "string", "empty": False, "excludes": "dsn"},
        "dsn": {"type": "string", "empty": False, "excludes": "resource"},
        "table": {"type": "string", "empty": False, "excludes": "query"},
        "query": {"type": "string", "empty": False, "excludes": "table"},
        "key": {"type": "string", "required": True, "empty": False},
        "columns": {"type": "list", "schema": {"type": "string"}, "nullable": True},
        "count": {"type": "boolean", "nullable": True, "default": None},
        "timeout_s": {"type": "number", "min": 0, "default": 30},
    }

    def __init__(
        self, config: Mapping[str, Any] | None = None, deps: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(config, deps)
        if bool(self.config.get("table")) == bool(self.config.get("query")):
            raise ConfigError("The postgres reader needs exactly one of 'table' or 'query'.")
        if not self.config.get("key"):
            raise ConfigError("The postgres reader needs 'key': a unique column to page on.")
        self._pools = Pools({**self.config, "max_size": 1}, self.deps, "PostgresItemReader")
        self._after: Any = None
        self._started = False
        self._done = False
        self._count: int | None = None
        self._queries = self._compose()

    def _compose(self) -> tuple[Any, Any, Any]:
        from psycopg import sql

        key = sql.Identifier(self.config["key"])
        if self.config.get("table"):
            source: Any = sql.Identifier(*str(self.config["table"]).split(".", 1))
        else:
            source = sql.SQL("({}) AS flowstone_source").format(sql.SQL(self.config["query"]))
        columns = self.config.get("columns")
        picked = sql.SQL(", ").join(map(sql.Identifier, columns)) if columns else sql.SQL("*")
        base = "SELECT {cols} FROM {src} {where} ORDER BY {key} LIMIT %s"
        first = sql.SQL(base).format(cols=picked, src=source, where=sql.SQL(""), key=key)
        where = sql.SQL("WHERE {} > %s").format(key)
        after = sql.SQL(base).format(cols=picked, src=source, where=where, key=key)
        count = sql.SQL("SELECT count(*) FROM {}").format(source)
        return first, after, count

    def read(self, batch_size: int) -> Batch:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError(f"batch_size must be an int >= 1, got {batch_size!r}.")
        if self._done:
            return Batch([], True)
        from psycopg.rows import dict_row

        first, after, _ = self._queries
        query, params = (
            (after, [self._after, batch_size]) if self._started else (first, [batch_size])
        )
        with self._pools.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(query, params).fetchall()
        key = self.config["key"]
        if rows and key not in rows[0]:
            raise ConfigError(f"The reader's key column {key!r} is not among the columns read.")
        if rows:
            self._after, self._started = rows[-1][key], True
        self._done = len(rows) < batch_size
        return Batch(rows, self._done)

    def count(self) -> int | None:
        wanted = self.config.get("count")
        if wanted is False or (wanted is None and not self.config.get("table")):
            return None
        if self._count is None:
            with self._pools.connection() as conn:
                self._count = int(conn.execute(self._queries[2]).fetchone()[0])
        return self._count

    def checkpoint(self) -> dict[str, Any]:
        after = _encode_key(self._after) if self._started else None
        return {"started": self._started, "after": after, "done": self._done}

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        if not isinstance(checkpoint, Mapping) or not {"started", "after", "done"} <= set(
            checkpoint
        ):
            raise ValidationError(f"Not a postgres reader checkpoint: {checkpoint!r}.")
        self._started = bool(checkpoint["started"])
        self._after = _decode_key(checkpoint["after"])
        self._done = bool(checkpoint["done"])

    def close(self) -> None:
        pools = getattr(self, "_pools", None)
        if pools is not None:
            with errors_translated():
                pools.close()
