"""The SQLite coordinators' schema, as numbered migrations tracked in ``PRAGMA user_version``.

Invariants:

- ``MIGRATIONS[i]`` brings a database from version ``i`` to ``i + 1``; a shipped migration is
  never edited, a change is a new one appended.
- Migrations run in one ``BEGIN IMMEDIATE`` transaction together with the version bump, so a
  crash leaves the old version or the new one, and concurrent openers apply each once.
- A database newer than this code is refused, not written to.
- Each scatter key and each outcome is one row under a primary key, so an idempotent
  ``INSERT ... ON CONFLICT DO NOTHING`` tells by its row count whether it was new.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ...errors import StorageError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

_V1 = (
    """
    CREATE TABLE scatter_barriers (
        barrier_id    TEXT PRIMARY KEY,
        run_id        TEXT NOT NULL,
        asset         TEXT NOT NULL,
        partition_key TEXT NOT NULL,
        tolerated     TEXT,
        final         INTEGER NOT NULL DEFAULT 0,
        state         TEXT NOT NULL DEFAULT 'pending',
        total         INTEGER NOT NULL DEFAULT 0,
        completed     INTEGER NOT NULL DEFAULT 0,
        failed        INTEGER NOT NULL DEFAULT 0,
        checkpoint    TEXT,
        created_at    REAL NOT NULL
    )
    """,
    "CREATE INDEX scatter_barriers_by_run ON scatter_barriers (run_id, asset, partition_key)",
    """
    CREATE TABLE scatter_keys (
        barrier_id TEXT NOT NULL,
        key        TEXT NOT NULL,
        PRIMARY KEY (barrier_id, key)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE scatter_outcomes (
        barrier_id TEXT NOT NULL,
        key        TEXT NOT NULL,
        succeeded  INTEGER NOT NULL,
        value      TEXT NOT NULL,
        PRIMARY KEY (barrier_id, key)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE parallel_executions (
        execution_id    TEXT PRIMARY KEY,
        run_id          TEXT NOT NULL,
        asset           TEXT NOT NULL,
        state           TEXT NOT NULL DEFAULT 'pending',
        join_owner      INTEGER,
        joined          INTEGER NOT NULL DEFAULT 0,
        join_result     TEXT,
        created_at      REAL NOT NULL
    )
    """,
    """
    CREATE TABLE parallel_branches (
        execution_id TEXT NOT NULL,
        branch       TEXT NOT NULL,
        position     INTEGER NOT NULL,
        optional     INTEGER NOT NULL,
        state        TEXT NOT NULL DEFAULT 'pending',
        value        TEXT,
        PRIMARY KEY (execution_id, branch)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE routing_decisions (
        decision_id     TEXT PRIMARY KEY,
        run_id          TEXT NOT NULL,
        router_asset    TEXT NOT NULL,
        partition_key   TEXT NOT NULL,
        selected_branch TEXT,
        created_at      REAL NOT NULL,
        UNIQUE (run_id, router_asset, partition_key)
    )
    """,
)

#: Migration ``i`` takes the schema from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1,)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`; return the version it had.

    Raises:
        StorageError: the database was written by a newer flowstone-host.
        sqlite3.Error: the database cannot be read or written.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        (found,) = conn.execute("PRAGMA user_version").fetchone()
        if found > SCHEMA_VERSION:
            raise StorageError(
                f"SQLite database {str(path)!r} has schema version {found}; this "
                f"flowstone-host knows versions up to {SCHEMA_VERSION}. Upgrade "
                "flowstone-host, or point the coordinator at another path.",
                path=str(path),
            )
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return int(found)
