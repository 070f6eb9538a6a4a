"""The SQLite routing coordinator: durable routing decisions shared by processes.

Invariants, held across processes by the database:

- A decision is one row, unique on ``(run_id, router_asset, partition_key)``; it is written
  with ``INSERT ... ON CONFLICT DO NOTHING`` in a ``BEGIN IMMEDIATE`` transaction, so the
  first writer wins and every later ``record`` sees its branch: the same branch returns the
  same id, another raises ``Conflict`` and changes nothing.
- ``selected_branch`` may be ``NULL`` (the router chose no branch); it is compared as such.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ...contracts.routing import RoutingCoordinator, no_decision, unknown_decision
from ...errors import Conflict
from ...partitions import partition_key
from ._store import SqliteBacked

__all__ = ["SqliteRoutingCoordinator"]

_COLUMNS = "decision_id, run_id, router_asset, partition_key, selected_branch"


class SqliteRoutingCoordinator(SqliteBacked, RoutingCoordinator):
    """Routing decisions in an SQLite file; the first writer wins across processes.

    Config: ``path`` (default ``coordinators.sqlite``, relative to the host's state folder)
    and ``busy_timeout_ms`` (default 5000).
    """

    contract_version = "1.0.0"
    plugin_version = "1.0.0"

    def record(
        self,
        run_id: str,
        router_asset: str,
        partition: Any,
        selected_branch: str | None,
        **opts: Any,
    ) -> str:
        place = (str(run_id), str(router_asset), partition_key(partition))
        branch = None if selected_branch is None else str(selected_branch)
        decision_id = uuid.uuid4().hex
        with self._store.write() as conn:
            inserted = conn.execute(
                f"INSERT INTO routing_decisions ({_COLUMNS}, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (decision_id, *place, branch, time.time()),
            ).rowcount
            if inserted:
                return decision_id
            existing_id, existing = conn.execute(
                "SELECT decision_id, selected_branch FROM routing_decisions "
                "WHERE run_id = ? AND router_asset = ? AND partition_key = ?",
                place,
            ).fetchone()
        if existing != branch:
            raise Conflict(
                f"Router {router_asset!r} already chose {existing!r} for run {run_id!r}, "
                f"partition {place[2]!r}; it cannot become {branch!r}.",
                decision_id=existing_id,
            )
        return str(existing_id)

    def get(self, run_id: str, router_asset: str, partition: Any) -> str | None:
        place = (str(run_id), str(router_asset), partition_key(partition))
        rows = self._store.read(
            "SELECT selected_branch FROM routing_decisions "
            "WHERE run_id = ? AND router_asset = ? AND partition_key = ?",
            place,
        )
        if not rows:
            raise no_decision(*place)
        branch: str | None = rows[0][0]
        return branch

    def to_output(self, decision_id: str) -> dict[str, Any]:
        rows = self._store.read(
            f"SELECT {_COLUMNS} FROM routing_decisions WHERE decision_id = ?", (decision_id,)
        )
        if not rows:
            raise unknown_decision(decision_id)
        names = ("decision_id", "run_id", "router_asset", "partition", "selected_branch")
        return dict(zip(names, rows[0], strict=True))
