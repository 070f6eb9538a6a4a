"""What every pooled PostgreSQL plugin shares: its connections, its schema, its migrations.

Invariants:

- A plugin is built as ``cls(config, resources=...)``: ``config["resource"]`` names a pool in
  ``resources`` (shared, never closed by the plugin), or ``config["dsn"]`` builds a small pool
  the plugin owns and closes in :meth:`close`.
- The plugin's tables are created and migrated in its ``schema`` before the constructor
  returns (see :mod:`._migrations`).
- SQL naming the schema is composed once per text and cached; identifiers are always
  quoted by psycopg, never pasted into SQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from ...contracts.types import Health
from ...errors import FlowStoneError
from ._driver import Pools, require
from ._migrations import migrate

__all__ = ["PostgresBacked"]


class PostgresBacked:
    """Mixin giving a plugin pooled connections, its schema and its migrated tables."""

    #: The :data:`._migrations.MIGRATIONS` component whose tables the plugin uses.
    component: ClassVar[str | None] = None

    def _connect(self, config: Mapping[str, Any], resources: Mapping[str, Any] | None) -> None:
        require("psycopg")
        self.schema = str(config.get("schema") or "flowstone")
        self._sql_cache: dict[str, Any] = {}
        self._pools = Pools(config, resources, owner=type(self).__name__)
        if self.component is not None:
            try:
                with self._pools.connection() as conn:
                    migrate(conn, self.schema, self.component)
            except BaseException:
                self._pools.close()
                raise

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """Yield a pooled connection; driver errors become FlowStoneErrors."""
        with self._pools.connection() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Yield a connection inside one transaction, committed when the block succeeds."""
        with self._pools.connection() as conn, conn.transaction():
            yield conn

    def sql(self, text: str) -> Any:
        """Return ``text`` as composed SQL, ``{schema}`` replaced by the quoted schema."""
        composed = self._sql_cache.get(text)
        if composed is None:
            sql = require("psycopg.sql")
            composed = sql.SQL(text).format(schema=sql.Identifier(self.schema))
            self._sql_cache[text] = composed
        return composed

    def health_check(self) -> Health | None:
        """Run ``SELECT 1`` on a pooled connection; never raises."""
        try:
            with self.connection() as conn:
                conn.execute("SELECT 1").fetchone()
        except FlowStoneError as exc:
            return Health.unhealthy(str(exc), code=exc.code)
        return Health.ok(schema=self.schema)

    def close(self) -> None:
        """Close the pool if the plugin owns it."""
        pools = getattr(self, "_pools", None)
        if pools is not None:
            pools.close()
