"""The run records file: its schema, its migrations, and how a connection to it is set.

``runs.sqlite`` in WAL mode (``synchronous = NORMAL``) with a busy timeout. The schema is
versioned: ``PRAGMA user_version`` says how many of :data:`MIGRATIONS` a file has, and an
older file is migrated when opened.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .. import sqlite_files
from ..errors import StorageError
from . import run_events

__all__ = ["MIGRATIONS", "connect", "create_or_migrate"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, status TEXT NOT NULL, "
    "what TEXT NOT NULL, assets TEXT NOT NULL, partitions TEXT, user TEXT, host TEXT, "
    "pid INTEGER, created_at REAL NOT NULL, updated_at REAL NOT NULL, "
    "finished_at REAL, attempts INTEGER NOT NULL DEFAULT 1, error TEXT)",
    "CREATE INDEX IF NOT EXISTS runs_by_what ON runs (what, status)",
    "CREATE INDEX IF NOT EXISTS runs_by_time ON runs (created_at)",
    "CREATE TABLE IF NOT EXISTS steps (run_id TEXT NOT NULL, asset TEXT NOT NULL, "
    "partition TEXT NOT NULL, status TEXT NOT NULL, started_at REAL, finished_at REAL, "
    "error TEXT, details TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (run_id, asset, partition))",
)
#: The WAL is truncated back to this size when it is checkpointed (it is reused, not
#: deleted, while a pooled connection keeps it open).
_JOURNAL_SIZE_LIMIT = 4 << 20
#: Versioned migrations over the base schema; ``PRAGMA user_version`` says how many of them
#: a file has. 1: the base schema. 2: ``run_events``, each redrive and retune of a run.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (),
    run_events.SCHEMA,
)


def connect(path: Path, timeout_s: float) -> sqlite3.Connection:
    """Open a connection to the file at ``path`` (created when missing), in autocommit
    mode (transactions are explicit), usable from any thread, with its pragmas set."""
    conn = sqlite_files.connect(path, timeout_s)
    conn.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
    return conn


def create_or_migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Create the base schema where missing and apply the migrations the file lacks (in
    the caller's write transaction).

    Raises:
        StorageError: the file is newer than this host.
    """
    for statement in _SCHEMA:
        conn.execute(statement)
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise StorageError(
            f"Run records {str(path)!r} are at schema version {version}, newer than this "
            f"host's {len(MIGRATIONS)}: upgrade flowstone-host.",
            path=str(path),
        )
    for number, statements in enumerate(MIGRATIONS, start=1):
        if number > version:
            for statement in statements:
                conn.execute(statement)
    if version < len(MIGRATIONS):
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
