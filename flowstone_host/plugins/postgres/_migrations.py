"""Versioned schema migrations, applied at plugin setup, safe under concurrent setups.

Invariants:

- Each component (``io``, ``scatter``, ``parallel``, ``routing``) has an ordered list of
  migrations; version ``n`` is the ``n``-th entry, applied once per schema and recorded in
  ``<schema>.flowstone_migrations``. Entries are never edited once released: a change is a
  new entry.
- A setup takes a transaction-level advisory lock keyed on the schema before it looks at the
  migrations table, so concurrent setups (several hosts starting at once) apply each
  migration exactly once and never race on ``CREATE``.
- A migration and its record commit together, or not at all.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MIGRATIONS", "migrate"]

#: SQL per component and version; ``{schema}`` is the quoted schema name.
MIGRATIONS: dict[str, list[str]] = {
    "io": [
        """
        CREATE TABLE {schema}.io_values (
            asset text NOT NULL,
            partition_key text COLLATE "C" NOT NULL,
            format text NOT NULL,
            kind text NOT NULL,
            payload_json jsonb,
            payload_bytes bytea,
            stored_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (asset, partition_key)
        )
        """,
    ],
    "scatter": [
        """
        CREATE TABLE {schema}.scatter_barriers (
            barrier_id text PRIMARY KEY,
            run_id text NOT NULL,
            asset text NOT NULL,
            partition_key text NOT NULL,
            tolerated jsonb,
            final boolean NOT NULL DEFAULT false,
            status text NOT NULL DEFAULT 'pending',
            total integer NOT NULL DEFAULT 0,
            completed integer NOT NULL DEFAULT 0,
            failed integer NOT NULL DEFAULT 0,
            checkpoint jsonb,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        CREATE INDEX ON {schema}.scatter_barriers (run_id, asset, partition_key, created_at);
        CREATE TABLE {schema}.scatter_keys (
            barrier_id text NOT NULL
                REFERENCES {schema}.scatter_barriers ON DELETE CASCADE,
            key text COLLATE "C" NOT NULL,
            status text NOT NULL DEFAULT 'pending',
            result jsonb,
            error jsonb,
            PRIMARY KEY (barrier_id, key)
        )
        """,
    ],
    "parallel": [
        """
        CREATE TABLE {schema}.parallel_executions (
            execution_id text PRIMARY KEY,
            run_id text NOT NULL,
            asset text NOT NULL,
            status text NOT NULL DEFAULT 'pending',
            joined boolean NOT NULL DEFAULT false,
            join_result jsonb,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE {schema}.parallel_branches (
            execution_id text NOT NULL
                REFERENCES {schema}.parallel_executions ON DELETE CASCADE,
            branch text NOT NULL,
            position integer NOT NULL,
            required boolean NOT NULL,
            status text NOT NULL DEFAULT 'pending',
            result jsonb,
            error jsonb,
            PRIMARY KEY (execution_id, branch)
        )
        """,
    ],
    "routing": [
        """
        CREATE TABLE {schema}.routing_decisions (
            decision_id text PRIMARY KEY,
            run_id text NOT NULL,
            router_asset text NOT NULL,
            partition_key text NOT NULL,
            selected_branch text,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (run_id, router_asset, partition_key)
        )
        """,
    ],
}

_LEDGER = """
CREATE TABLE IF NOT EXISTS {schema}.flowstone_migrations (
    component text NOT NULL,
    version integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


def migrate(conn: Any, schema: str, component: str) -> int:
    """Bring ``component``'s tables in ``schema`` to the latest version; return it.

    Args:
        conn: A psycopg connection (not inside a transaction block of the caller's).
        schema: The schema to create if missing and migrate.
        component: A key of :data:`MIGRATIONS`.
    """
    from psycopg import sql

    quoted = sql.Identifier(schema)
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"flowstone_host.migrations:{schema}"],
        )
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(quoted))
        conn.execute(sql.SQL(_LEDGER).format(schema=quoted))
        row = conn.execute(
            sql.SQL(
                "SELECT coalesce(max(version), 0) FROM {schema}.flowstone_migrations "
                "WHERE component = %s"
            ).format(schema=quoted),
            [component],
        ).fetchone()
        current = int(row[0])
        steps = MIGRATIONS[component]
        for version in range(current + 1, len(steps) + 1):
            conn.execute(sql.SQL(steps[version - 1]).format(schema=quoted))
            conn.execute(
                sql.SQL(
                    "INSERT INTO {schema}.flowstone_migrations (component, version) VALUES (%s, %s)"
                ).format(schema=quoted),
                [component, version],
            )
        return len(steps)
