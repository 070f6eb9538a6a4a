"""psycopg, imported on demand; connection pools from config; psycopg errors normalized.

Invariants:

- psycopg and psycopg_pool are imported only through :func:`require`, called when a plugin
  is built: ``import flowstone_host`` and importing these modules stay free of them.
- A DSN's password never appears in an error, a ``repr`` or a log line of ours:
  :func:`redact` masks it, and :func:`translate` scrubs it from driver messages.
- :func:`translate` maps driver errors to :class:`FlowStoneError`: connection problems,
  pool timeouts, serialization failures and deadlocks are retryable (``Unavailable``);
  constraint violations (``Conflict``), bad data and bad SQL (``ValidationError``) are not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ...config import password_in, redact_text
from ...errors import (
    ConfigError,
    Conflict,
    FlowStoneError,
    StorageError,
    Timeout,
    Unavailable,
    ValidationError,
    normalize,
)
from .. import _extras as extras

__all__ = [
    "POOL_SCHEMA",
    "SOURCE_SCHEMA",
    "Pools",
    "errors_translated",
    "open_pool",
    "redact",
    "require",
    "translate",
]


#: How a pool is built: the ``postgres`` resource's config, and a plugin's own ``dsn`` pool.
POOL_SCHEMA: dict[str, Any] = {
    "dsn": {"type": "string", "required": True, "empty": False},
    "min_size": {"type": "integer", "min": 0, "default": 1},
    "max_size": {"type": "integer", "min": 1, "default": 10},
    "timeout_s": {"type": "number", "min": 0, "default": 30},
    "application_name": {"type": "string", "default": "flowstone-host"},
}

#: Where a plugin gets connections: a named resource's pool, or its own from a DSN.
SOURCE_SCHEMA: dict[str, Any] = {
    "resource": {"type": "string", "empty": False, "excludes": "dsn"},
    "dsn": {"type": "string", "empty": False, "excludes": "resource"},
    "max_size": {"type": "integer", "min": 1, "default": 4},
    "timeout_s": {"type": "number", "min": 0, "default": 30},
    "schema": {"type": "string", "empty": False, "default": "flowstone"},
}


require = extras.require


#: Every DSN password in a text replaced (the host's one rule for URLs and DSNs).
redact = redact_text


def _password(dsn: str | None) -> str | None:
    return password_in(dsn) if dsn else None


def translate(exc: BaseException, dsn: str | None = None) -> FlowStoneError:
    """Return the :class:`FlowStoneError` for a psycopg or psycopg_pool exception.

    Args:
        exc: The driver's exception.
        dsn: The DSN in use, whose password is scrubbed from the message.
    """
    message = redact(str(exc).strip() or type(exc).__name__)
    password = _password(dsn)
    if password:
        message = message.replace(password, "***")
    cls = _error_class(exc)
    sqlstate = getattr(exc, "sqlstate", None)
    error = cls(f"PostgreSQL: {message}", details={"sqlstate": sqlstate} if sqlstate else None)
    error.__cause__ = exc
    return error


_Coded = type[Unavailable] | type[Timeout] | type[Conflict] | type[ValidationError]


def _error_class(exc: BaseException) -> _Coded | type[StorageError]:
    psycopg = require("psycopg")
    pool = require("psycopg_pool")
    errors = psycopg.errors
    if isinstance(exc, errors.QueryCanceled):
        return Timeout
    if isinstance(exc, pool.PoolTimeout | psycopg.OperationalError | psycopg.InterfaceError):
        return Unavailable
    if isinstance(exc, pool.PoolClosed):
        return Unavailable
    if isinstance(exc, psycopg.IntegrityError):
        return Conflict
    if isinstance(exc, psycopg.DataError | psycopg.ProgrammingError):
        return ValidationError
    return StorageError


@contextmanager
def errors_translated(dsn: str | None = None) -> Iterator[None]:
    """Re-raise psycopg and psycopg_pool errors inside the block as FlowStoneErrors."""
    psycopg = require("psycopg")
    pool = require("psycopg_pool")
    try:
        yield
    except (psycopg.Error, pool.PoolTimeout, pool.PoolClosed) as exc:
        raise translate(exc, dsn) from exc


def register_rules() -> None:
    """Teach :func:`normalize` the driver's errors (called once psycopg is imported)."""
    psycopg = require("psycopg")
    pool = require("psycopg_pool")
    for cls in (psycopg.Error, pool.PoolTimeout, pool.PoolClosed):
        if cls not in normalize.registry:  # type: ignore[attr-defined]
            normalize.register(cls, translate)  # type: ignore[attr-defined]


def open_pool(config: Mapping[str, Any], *, name: str = "flowstone") -> Any:
    """Open a psycopg_pool ConnectionPool from pool config and wait until it connects.

    Raises:
        ConfigError: the extra is missing or the DSN cannot be parsed.
        Unavailable: no connection within ``timeout_s`` (retryable).
    """
    psycopg = require("psycopg")
    pool_module = require("psycopg_pool")
    register_rules()
    dsn = str(config["dsn"])
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            f"Invalid PostgreSQL DSN {redact(dsn)!r}: {translate(exc, dsn)}"
        ) from None
    timeout = float(config.get("timeout_s", 30))
    pool = pool_module.ConnectionPool(
        dsn,
        min_size=int(config.get("min_size", 1)),
        max_size=max(int(config.get("max_size", 10)), int(config.get("min_size", 1)), 1),
        timeout=timeout,
        name=name,
        kwargs={"application_name": str(config.get("application_name", "flowstone-host"))},
        open=False,
    )
    try:
        with errors_translated(dsn):
            pool.open(wait=True, timeout=max(timeout, 0.1))
    except FlowStoneError:
        pool.close()
        raise
    return pool


class Pools:
    """Where a plugin gets connections: a shared resource pool, or one it owns.

    Args:
        config: The plugin config: ``resource`` (a name in ``resources``) or ``dsn``.
        resources: Resource handles the host passes (``{name: pool}``).
        owner: The plugin's name, for error messages and the pool's name.

    Raises:
        ConfigError: neither or both of ``resource`` and ``dsn``, or an unknown resource.
    """

    def __init__(
        self, config: Mapping[str, Any], resources: Mapping[str, Any] | None, owner: str
    ) -> None:
        self.dsn: str | None = config.get("dsn")
        name = config.get("resource")
        if bool(name) == bool(self.dsn):
            raise ConfigError(
                f"{owner}: set exactly one of 'resource' (a postgres Resource named in "
                "depends_on) or 'dsn'."
            )
        self._owned = name is None
        if name is not None:
            handles = dict(resources or {})
            if name not in handles:
                raise ConfigError(
                    f"{owner}: no resource {name!r} was handed over (given: "
                    f"{', '.join(sorted(handles)) or 'none'}); list it in spec.depends_on."
                )
            self.pool = handles[name]
            self.dsn = getattr(self.pool, "conninfo", None)
        else:
            pool_config = {
                "dsn": self.dsn,
                "min_size": 1,
                "max_size": int(config.get("max_size", 4)),
                "timeout_s": config.get("timeout_s", 30),
            }
            self.pool = open_pool(pool_config, name=owner)

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """Yield a pooled connection; driver errors inside become FlowStoneErrors."""
        with errors_translated(self.dsn), self.pool.connection() as conn:
            yield conn

    def close(self) -> None:
        """Close the pool if this plugin owns it; a shared pool is the resource's."""
        if self._owned:
            self.pool.close()
