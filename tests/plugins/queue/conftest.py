"""The ``cluster`` fixture: a fresh database on the session's server per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins.queue.cluster import Cluster


@pytest.fixture
def cluster(pg_dsn: str, tmp_path: Path) -> Iterator[Cluster]:
    import psycopg
    from psycopg.conninfo import make_conninfo

    database = f"queue_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    found = Cluster(make_conninfo(pg_dsn, dbname=database), tmp_path)
    try:
        yield found
    finally:
        found.stop()
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
