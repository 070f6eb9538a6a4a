"""One SQLite database file shared by threads and processes: connections and transactions.

Invariants:

- Every connection runs in WAL mode (readers never block the writer), with the configured
  busy timeout and ``synchronous=NORMAL`` (a killed process loses nothing committed; an
  operating-system crash may roll back the last transactions, never corrupts the file).
- Every write is one ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front,
  waiting on the busy timeout. A deferred transaction that reads and then writes fails at
  once with "database is locked" when another connection wrote in between.
- Connections live one per thread (``threading.local``); ``close()`` closes every one.
- The schema is migrated at construction, under the write lock, so processes opening a new
  file at once apply each migration exactly once.
- SQLite errors leave as ``FlowStoneError``: lock timeouts as retryable ``Unavailable``,
  everything else as ``StorageError``, naming the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from ... import sqlite_files
from ...contracts.types import Health
from ...errors import FlowStoneError, StorageError, Unavailable
from .schema import migrate

__all__ = ["CONFIG_SCHEMA", "SqliteBacked", "SqliteStore", "resolve_path"]

#: The cerberus schema every SQLite coordinator shares.
CONFIG_SCHEMA: dict[str, Any] = {
    "path": {"type": "string", "empty": False, "default": "coordinators.sqlite"},
    "busy_timeout_ms": {"type": "integer", "min": 0, "default": 5000},
}


def resolve_path(path: str | Path, state_dir: str | Path | None) -> Path:
    """Return ``path``, a relative one resolved against ``state_dir`` (or the current folder)."""
    candidate = Path(path).expanduser()
    if not candidate.is_absolute() and state_dir is not None:
        candidate = Path(state_dir) / candidate
    return candidate.absolute()


def storage_error(exc: sqlite3.Error, path: Path) -> FlowStoneError:
    """Return the ``FlowStoneError`` for an SQLite error on the database at ``path``."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return Unavailable(
            f"SQLite database {str(path)!r} stayed locked past the busy timeout ({text}); "
            "retry, or raise busy_timeout_ms.",
            path=str(path),
        )
    return StorageError(f"SQLite database {str(path)!r}: {text}", path=str(path))


class SqliteStore:
    """Per-thread connections to one database file, and its write transactions.

    Args:
        path: The database file; its folder is created when missing.
        busy_timeout_ms: How long a connection waits for another one's lock.
    """

    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._timeout_s = busy_timeout_ms / 1000
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"Cannot create the folder of {str(path)!r}: {exc}") from exc
        with self._translated():
            migrate(self.connection(), path)

    def connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StorageError(f"SQLite database {str(self.path)!r} was closed.")
            with self._translated():
                conn = sqlite_files.connect(self.path, self._timeout_s)
            self._connections.append(conn)
            return conn

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path) from exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one ``BEGIN IMMEDIATE`` transaction; roll back if it raises."""
        conn = self.connection()
        with self._translated():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # SQLite may already have rolled back (disk full)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def read(self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()) -> list[Any]:
        """Return every row of one query (one statement: a consistent snapshot)."""
        with self._translated():
            return self.connection().execute(sql, params).fetchall()

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one read transaction (a consistent snapshot across statements)."""
        conn = self.connection()
        with self._translated():
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection; later calls raise ``StorageError``."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()


class SqliteBacked:
    """Mixin of the SQLite coordinators: config, the store, health and close.

    The host builds plugins as ``cls(config, state_dir=...)``; a relative ``path`` is
    resolved against that folder (the current folder without one).
    """

    config_schema: ClassVar[Mapping[str, Any] | None] = CONFIG_SCHEMA
    config: dict[str, Any]

    def __init__(
        self, config: Mapping[str, Any] | None = None, *, state_dir: str | None = None
    ) -> None:
        super().__init__(config)  # type: ignore[call-arg]  # the contract ABC's Plugin
        path = resolve_path(self.config.get("path", "coordinators.sqlite"), state_dir)
        timeout = int(self.config.get("busy_timeout_ms", 5000))
        self._store = SqliteStore(path, timeout)

    def health_check(self) -> Health:
        """Run a trivial query; report the database unhealthy when it fails."""
        try:
            self._store.read("SELECT 1")
        except FlowStoneError as exc:
            return Health.unhealthy(str(exc), path=str(self._store.path))
        return Health.ok(path=str(self._store.path))

    def close(self) -> None:
        """Close the database connections."""
        self._store.close()
