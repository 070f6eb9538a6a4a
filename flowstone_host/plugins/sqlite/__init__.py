"""The SQLite coordinators: the host's embedded, durable default.

Scatter, parallel and routing coordinators share one database file (``path``, by default
``coordinators.sqlite`` in the host's state folder) and keep every contract invariant when
several threads and processes use it at once. How: ``_store`` (WAL, busy timeout,
``BEGIN IMMEDIATE`` for every write, one connection per thread), ``schema`` (versioned
migrations), and one module per coordinator stating its own invariants.
"""

from __future__ import annotations

from .parallel import SqliteParallelCoordinator
from .routing import SqliteRoutingCoordinator
from .scatter import SqliteScatterCoordinator

__all__ = ["SqliteParallelCoordinator", "SqliteRoutingCoordinator", "SqliteScatterCoordinator"]
