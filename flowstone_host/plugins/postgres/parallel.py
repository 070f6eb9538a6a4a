"""The ``postgres`` parallel coordinator: branches and a join shared by many processes.

Invariants, held across processes:

- One row per execution, one per ``(execution, branch)``.
- Every change locks the execution row (``SELECT ... FOR UPDATE``) first and settles the
  execution's status in the same transaction as the branch update that causes it.
- A branch's first outcome is final: the update only applies to a ``pending`` or
  ``running`` branch.
- ``execute_join`` holds the execution row's lock while ``join_fn`` runs, so across every
  process it runs once; its (JSON) result is stored with the status ``complete`` in the same
  transaction, and later calls return the stored result.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar

from ...contracts.parallel import (
    ParallelCoordinator,
    check_branches,
    not_ready_for_join,
    unknown_branch,
    unknown_execution,
)
from ...contracts.types import BranchState, ExecutionState, ExecutionStatus
from ._base import PostgresBacked
from ._driver import SOURCE_SCHEMA
from ._json import dumps

__all__ = ["PostgresParallelCoordinator"]

_LOCK = """SELECT status, joined, join_result FROM {schema}.parallel_executions
WHERE execution_id = %s FOR UPDATE"""
_BRANCHES = """SELECT branch, status, required FROM {schema}.parallel_branches
WHERE execution_id = %s ORDER BY position"""
_SET_STATUS = "UPDATE {schema}.parallel_executions SET status = %s WHERE execution_id = %s"
_FINISH = {
    "complete": """UPDATE {schema}.parallel_branches SET status = 'complete', result = %s::jsonb
WHERE execution_id = %s AND branch = %s AND status IN ('pending', 'running')""",
    "failed": """UPDATE {schema}.parallel_branches SET status = 'failed', error = %s::jsonb
WHERE execution_id = %s AND branch = %s AND status IN ('pending', 'running')""",
}


def _settled(current: str, branches: list[tuple[str, str, bool]]) -> ExecutionState:
    """Return the status the branch states call for; ``complete``/``failed`` stay."""
    if current in ("complete", "failed"):
        return current  # type: ignore[return-value]
    states = [state for _, state, _ in branches]
    if any(state == "failed" and required for _, state, required in branches):
        return "failed"
    if all(state in ("complete", "failed") for state in states):
        return "ready_for_join"
    if any(state != "pending" for state in states):
        return "running"
    return "pending"


class PostgresParallelCoordinator(PostgresBacked, ParallelCoordinator):
    """Parallel executions in PostgreSQL (``parallel_executions``, ``parallel_branches``)."""

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = SOURCE_SCHEMA
    component = "parallel"

    def __init__(
        self, config: Mapping[str, Any] | None = None, *, resources: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(config)
        self._connect(self.config, resources)

    def create_execution(
        self,
        run_id: str,
        asset: str,
        branches: Sequence[str],
        *,
        optional: Collection[str] = (),
        **opts: Any,
    ) -> str:
        names = check_branches(branches, optional)
        execution_id = f"{run_id}:{uuid.uuid4().hex}"
        rows = [(execution_id, name, i, name not in optional) for i, name in enumerate(names)]
        with self.transaction() as conn:
            conn.execute(
                self.sql(
                    "INSERT INTO {schema}.parallel_executions (execution_id, run_id, asset) "
                    "VALUES (%s, %s, %s)"
                ),
                [execution_id, str(run_id), str(asset)],
            )
            with conn.cursor() as cursor:
                cursor.executemany(
                    self.sql(
                        "INSERT INTO {schema}.parallel_branches "
                        "(execution_id, branch, position, required) VALUES (%s, %s, %s, %s)"
                    ),
                    rows,
                )
        return execution_id

    def _lock(self, conn: Any, execution_id: str) -> tuple[str, bool, Any]:
        row = conn.execute(self.sql(_LOCK), [execution_id]).fetchone()
        if row is None:
            raise unknown_execution(execution_id)
        return str(row[0]), bool(row[1]), row[2]

    def _settle(self, conn: Any, execution_id: str, current: str) -> ExecutionState:
        branches = conn.execute(self.sql(_BRANCHES), [execution_id]).fetchall()
        state = _settled(current, branches)
        if state != current:
            conn.execute(self.sql(_SET_STATUS), [state, execution_id])
        return state

    def schedule_branches(self, execution_id: str) -> list[str]:
        with self.transaction() as conn:
            current, _, _ = self._lock(conn, execution_id)
            rows = conn.execute(
                self.sql(
                    "UPDATE {schema}.parallel_branches SET status = 'running' "
                    "WHERE execution_id = %s AND status = 'pending' RETURNING branch, position"
                ),
                [execution_id],
            ).fetchall()
            self._settle(conn, execution_id, current)
        return [branch for branch, _ in sorted(rows, key=lambda row: row[1])]

    def _finish(self, execution_id: str, branch: str, state: str, value: Any) -> ExecutionState:
        noun = "result" if state == "complete" else "error"
        what = f"The {noun} of branch {branch!r} in execution {execution_id!r}"
        text = dumps(value, what, execution_id=execution_id, branch=branch)
        with self.transaction() as conn:
            current, _, _ = self._lock(conn, execution_id)
            updated = conn.execute(self.sql(_FINISH[state]), [text, execution_id, branch]).rowcount
            if not updated:
                self._require_branch(conn, execution_id, branch)
            return self._settle(conn, execution_id, current)

    def _require_branch(self, conn: Any, execution_id: str, branch: str) -> None:
        row = conn.execute(
            self.sql(
                "SELECT 1 FROM {schema}.parallel_branches WHERE execution_id = %s AND branch = %s"
            ),
            [execution_id, branch],
        ).fetchone()
        if row is None:
            raise unknown_branch(execution_id, branch)

    def complete_branch(self, execution_id: str, branch: str, result: Any) -> ExecutionState:
        return self._finish(execution_id, str(branch), "complete", result)

    def fail_branch(self, execution_id: str, branch: str, error: Any) -> ExecutionState:
        return self._finish(execution_id, str(branch), "failed", error)

    def execute_join(self, execution_id: str, join_fn: Callable[[Mapping[str, Any]], Any]) -> Any:
        """Run ``join_fn`` once across every process, holding the execution's row lock.

        Raises:
            NotFound: unknown execution.
            Conflict: the execution is not ``ready_for_join`` (nor already ``complete``).
            ValidationError: ``join_fn`` returned a value JSON cannot hold.
        """
        with self.transaction() as conn:
            current, joined, stored = self._lock(conn, execution_id)
            if joined:
                return stored
            if current != "ready_for_join":
                raise not_ready_for_join(execution_id, current)
            rows = conn.execute(
                self.sql(
                    "SELECT branch, result FROM {schema}.parallel_branches "
                    "WHERE execution_id = %s AND status = 'complete' ORDER BY position"
                ),
                [execution_id],
            ).fetchall()
            result = join_fn(dict(rows))
            what = f"The join result of execution {execution_id!r}"
            conn.execute(
                self.sql(
                    "UPDATE {schema}.parallel_executions SET status = 'complete', joined = true, "
                    "join_result = %s::jsonb WHERE execution_id = %s"
                ),
                [dumps(result, what, execution_id=execution_id), execution_id],
            )
            return result

    def status(self, execution_id: str) -> ExecutionStatus:
        with self.connection() as conn:
            row = conn.execute(
                self.sql("SELECT status FROM {schema}.parallel_executions WHERE execution_id = %s"),
                [execution_id],
            ).fetchone()
            if row is None:
                raise unknown_execution(execution_id)
            branches = conn.execute(self.sql(_BRANCHES), [execution_id]).fetchall()
        states: dict[str, BranchState] = {branch: state for branch, state, _ in branches}
        return ExecutionStatus(row[0], states)
