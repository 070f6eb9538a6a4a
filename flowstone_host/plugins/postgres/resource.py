"""The ``postgres`` resource: one psycopg_pool ConnectionPool shared by every plugin.

Invariants:

- ``setup`` returns an open pool that has connected once, or raises (``Unavailable`` when
  the server cannot be reached, ``ConfigError`` for a bad DSN or a missing extra).
- ``teardown`` closes the pool and never raises, even for a broken or closed pool.
- ``health_check`` runs ``SELECT 1`` on a pooled connection and never raises.
- The DSN's password appears in no error and no ``repr``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from ...contracts.resource import Resource
from ...contracts.types import Health
from ...errors import FlowStoneError
from ._driver import POOL_SCHEMA, errors_translated, open_pool, redact

__all__ = ["PostgresResource"]

log = logging.getLogger(__name__)


class PostgresResource(Resource):
    """A PostgreSQL connection pool: config ``dsn``, ``min_size``, ``max_size``, ``timeout_s``."""

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = POOL_SCHEMA

    def __repr__(self) -> str:
        return f"PostgresResource(dsn={redact(str(self.config.get('dsn', '')))!r})"

    def setup(self, config: Mapping[str, Any]) -> Any:
        """Open the pool and wait for its first connection.

        Raises:
            ConfigError: bad DSN, or psycopg / psycopg_pool not installed.
            Unavailable: the server could not be reached within ``timeout_s``.
        """
        merged = {**self.config, **dict(config)}
        return open_pool(merged, name="flowstone-resource")

    def teardown(self, resource: Any) -> None:
        """Close the pool; never raises."""
        try:
            resource.close()
        except Exception:  # a broken pool is closed as far as it can be
            log.warning("Closing a postgres pool failed; it is dropped.", exc_info=True)

    def health_check(self, resource: Any = None) -> Health | None:
        """Run ``SELECT 1``; report the round trip's latency. Never raises."""
        if resource is None:
            return None
        started = time.perf_counter()
        try:
            conninfo = getattr(resource, "conninfo", None)
            with errors_translated(conninfo), resource.connection(timeout=5) as conn:
                conn.execute("SELECT 1").fetchone()
        except FlowStoneError as exc:
            return Health.unhealthy(str(exc), code=exc.code)
        except Exception as exc:  # health checks report, never raise
            return Health.unhealthy(redact(f"{type(exc).__name__}: {exc}"))
        return Health.ok(latency_ms=round((time.perf_counter() - started) * 1000, 3))
