"""The ``postgres`` routing coordinator: first writer wins, across processes.

Invariants:

- One row per ``(run_id, router_asset, partition_key)``, enforced by a unique constraint.
- ``record`` inserts with ``ON CONFLICT DO NOTHING`` and then reads the row that won, so
  racing processes agree on one branch: the loser gets the winner's decision id when it
  chose the same branch, and ``Conflict`` when it chose another (changing nothing).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from ...contracts.routing import RoutingCoordinator, no_decision, unknown_decision
from ...errors import Conflict
from ...partitions import partition_key
from ._base import PostgresBacked
from ._driver import SOURCE_SCHEMA

__all__ = ["PostgresRoutingCoordinator"]

_INSERT = """INSERT INTO {schema}.routing_decisions
(decision_id, run_id, router_asset, partition_key, selected_branch) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (run_id, router_asset, partition_key) DO NOTHING"""
_BY_KEY = """SELECT decision_id, selected_branch FROM {schema}.routing_decisions
WHERE run_id = %s AND router_asset = %s AND partition_key = %s"""
_BY_ID = """SELECT decision_id, run_id, router_asset, partition_key, selected_branch
FROM {schema}.routing_decisions WHERE decision_id = %s"""


class PostgresRoutingCoordinator(PostgresBacked, RoutingCoordinator):
    """Routing decisions in PostgreSQL (the ``routing_decisions`` table)."""

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = SOURCE_SCHEMA
    component = "routing"

    def __init__(
        self, config: Mapping[str, Any] | None = None, *, resources: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(config)
        self._connect(self.config, resources)

    def record(
        self,
        run_id: str,
        router_asset: str,
        partition: Any,
        selected_branch: str | None,
        **opts: Any,
    ) -> str:
        key = [str(run_id), str(router_asset), partition_key(partition)]
        branch = None if selected_branch is None else str(selected_branch)
        with self.connection() as conn:
            conn.execute(self.sql(_INSERT), [uuid.uuid4().hex, *key, branch])
            decision_id, recorded = conn.execute(self.sql(_BY_KEY), key).fetchone()
        if recorded != branch:
            raise Conflict(
                f"Router {router_asset!r} already chose {recorded!r} for run {run_id!r}, "
                f"partition {key[2]!r}; it cannot become {branch!r}.",
                decision_id=decision_id,
            )
        return str(decision_id)

    def get(self, run_id: str, router_asset: str, partition: Any) -> str | None:
        key = [str(run_id), str(router_asset), partition_key(partition)]
        with self.connection() as conn:
            row = conn.execute(self.sql(_BY_KEY), key).fetchone()
        if row is None:
            raise no_decision(*key)
        return None if row[1] is None else str(row[1])

    def to_output(self, decision_id: str) -> dict[str, Any]:
        with self.connection() as conn:
            row = conn.execute(self.sql(_BY_ID), [decision_id]).fetchone()
        if row is None:
            raise unknown_decision(decision_id)
        names = ("decision_id", "run_id", "router_asset", "partition", "selected_branch")
        return dict(zip(names, row, strict=True))
