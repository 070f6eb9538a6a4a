"""Fixtures of the PostgreSQL plugin tests: one server per session, a pool per module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flowstone_host.plugins.postgres.resource import PostgresResource


@pytest.fixture(scope="module")
def pg_pool(pg_dsn: str) -> Iterator[Any]:
    """A pool from the ``postgres`` resource, shared by the plugins of one module."""
    resource = PostgresResource({"dsn": pg_dsn, "max_size": 12})
    pool = resource.setup(resource.config)
    yield pool
    resource.teardown(pool)


@pytest.fixture(scope="module")
def pg_resources(pg_pool: Any) -> dict[str, Any]:
    """What the host hands a plugin whose declaration says ``depends_on: [pg]``."""
    return {"pg": pg_pool}
