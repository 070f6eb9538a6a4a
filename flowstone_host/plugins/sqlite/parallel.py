"""The SQLite parallel coordinator: executions and branches in a file processes share.

Invariants, held across processes by the database:

- A branch is one row; its first outcome is written by ``UPDATE ... WHERE state NOT IN
  ('complete', 'failed')``, so a later outcome, from any process, changes nothing.
- Every change is one ``BEGIN IMMEDIATE`` transaction that settles the execution's state
  from its branch rows; ``complete`` and ``failed`` never change again.
- ``execute_join`` runs ``join_fn`` once: a caller claims the join with a conditional
  update (``join_owner`` is its process id), runs ``join_fn`` outside any transaction (the
  write lock is never held while user code runs), then records the result and ``complete``.
  Other callers wait: threads of this process on a lock, other processes by polling, and
  return the recorded result. A claim whose process has died is taken over; a ``join_fn``
  that raises releases the claim, leaving the execution ``ready_for_join`` for a retry.
  Liveness is a process id, so the processes sharing a file must share one machine and one
  PID namespace (as SQLite itself wants: no network file systems).
- Branch results and the join result are stored as JSON (refused when not JSON-safe).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from ...contracts.parallel import (
    ParallelCoordinator,
    check_branches,
    not_ready_for_join,
    unknown_branch,
    unknown_execution,
)
from ...contracts.types import BranchState, ExecutionState, ExecutionStatus
from ...processes import pid_alive
from . import _json
from ._store import SqliteBacked

__all__ = ["SqliteParallelCoordinator"]

_POLL_S = (0.005, 0.1)  # first and largest wait between looks at another process's join


def _state_of(conn: sqlite3.Connection, execution_id: str) -> Any:
    """The recorded state of an execution.

    Raises:
        NotFound: no such execution.
    """
    row = conn.execute(
        "SELECT state FROM parallel_executions WHERE execution_id = ?", (execution_id,)
    ).fetchone()
    if row is None:
        raise unknown_execution(execution_id)
    return row[0]


def _settled(state: str, branches: list[tuple[str, int, str]]) -> ExecutionState:
    """Return the execution's state from ``(branch, optional, state)`` rows."""
    if state in ("complete", "failed"):
        return state  # type: ignore[return-value]
    states = [s for _, _, s in branches]
    if any(s == "failed" and not optional for _, optional, s in branches):
        return "failed"
    if all(s in ("complete", "failed") for s in states):
        return "ready_for_join"
    if any(s != "pending" for s in states):
        return "running"
    return "pending"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process's joins hold a thread lock: a claim left is stale
    return pid_alive(pid)


class SqliteParallelCoordinator(SqliteBacked, ParallelCoordinator):
    """Parallel executions in an SQLite file; joins run once across threads and processes.

    Config: ``path`` (default ``coordinators.sqlite``, relative to the host's state folder)
    and ``busy_timeout_ms`` (default 5000).
    """

    contract_version = "1.0.0"
    plugin_version = "1.0.0"

    def __init__(
        self, config: Mapping[str, Any] | None = None, *, state_dir: str | None = None
    ) -> None:
        super().__init__(config, state_dir=state_dir)
        self._join_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

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
        rows = [(execution_id, b, i, int(b in optional)) for i, b in enumerate(names)]
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO parallel_executions (execution_id, run_id, asset, created_at) "
                "VALUES (?, ?, ?, ?)",
                (execution_id, str(run_id), str(asset), time.time()),
            )
            conn.executemany(
                "INSERT INTO parallel_branches (execution_id, branch, position, optional) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
        return execution_id

    @staticmethod
    def _settle(conn: sqlite3.Connection, execution_id: str) -> ExecutionState:
        recorded = _state_of(conn, execution_id)
        branches = conn.execute(
            "SELECT branch, optional, state FROM parallel_branches WHERE execution_id = ?",
            (execution_id,),
        ).fetchall()
        state = _settled(recorded, branches)
        if state != recorded:
            conn.execute(
                "UPDATE parallel_executions SET state = ? WHERE execution_id = ?",
                (state, execution_id),
            )
        return state

    def schedule_branches(self, execution_id: str) -> list[str]:
        with self._store.write() as conn:
            scheduled = [
                branch
                for (branch,) in conn.execute(
                    "SELECT branch FROM parallel_branches WHERE execution_id = ? "
                    "AND state = 'pending' ORDER BY position",
                    (execution_id,),
                )
            ]
            conn.execute(
                "UPDATE parallel_branches SET state = 'running' "
                "WHERE execution_id = ? AND state = 'pending'",
                (execution_id,),
            )
            self._settle(conn, execution_id)
        return scheduled

    def _finish(
        self, execution_id: str, branch: str, state: BranchState, value: Any
    ) -> ExecutionState:
        noun = "result" if state == "complete" else "error"
        what = f"{noun} of branch {branch!r} in execution {execution_id!r}"
        text = _json.dumps(value, what, execution_id=execution_id, branch=branch)
        with self._store.write() as conn:
            changed = conn.execute(
                "UPDATE parallel_branches SET state = ?, value = ? WHERE execution_id = ? "
                "AND branch = ? AND state NOT IN ('complete', 'failed')",
                (state, text, execution_id, branch),
            ).rowcount
            settled = self._settle(conn, execution_id)
            if (
                not changed
                and not conn.execute(
                    "SELECT 1 FROM parallel_branches WHERE execution_id = ? AND branch = ?",
                    (execution_id, branch),
                ).fetchone()
            ):
                raise unknown_branch(execution_id, branch)
        return settled

    def complete_branch(self, execution_id: str, branch: str, result: Any) -> ExecutionState:
        return self._finish(execution_id, str(branch), "complete", result)

    def fail_branch(self, execution_id: str, branch: str, error: Any) -> ExecutionState:
        return self._finish(execution_id, str(branch), "failed", error)

    def execute_join(self, execution_id: str, join_fn: Callable[[Mapping[str, Any]], Any]) -> Any:
        with self._locks_guard:
            lock = self._join_locks.setdefault(execution_id, threading.Lock())
        with lock:
            result = self._join_once(execution_id, join_fn)
        with self._locks_guard:  # joined: later callers only read the recorded result
            self._join_locks.pop(execution_id, None)
        return result

    def _join_once(self, execution_id: str, join_fn: Callable[[Mapping[str, Any]], Any]) -> Any:
        wait = _POLL_S[0]
        while True:
            claim = self._claim(execution_id)
            if isinstance(claim, tuple):
                return claim[0]
            if claim:
                return self._run_join(execution_id, join_fn)
            time.sleep(wait)
            wait = min(wait * 2, _POLL_S[1])

    def _claim(self, execution_id: str) -> tuple[Any] | bool:
        """Return ``(result,)`` when joined, else whether this call claimed the join."""
        with self._store.write() as conn:
            row = conn.execute(
                "SELECT state, joined, join_result, join_owner FROM parallel_executions "
                "WHERE execution_id = ?",
                (execution_id,),
            ).fetchone()
            if row is None:
                raise unknown_execution(execution_id)
            state, joined, result, owner = row
            if joined:
                return (_json.loads(result),)
            if state != "ready_for_join":
                raise not_ready_for_join(execution_id, state)
            if owner is not None and _pid_alive(owner):
                return False
            conn.execute(
                "UPDATE parallel_executions SET join_owner = ? WHERE execution_id = ?",
                (os.getpid(), execution_id),
            )
            return True

    def _run_join(self, execution_id: str, join_fn: Callable[[Mapping[str, Any]], Any]) -> Any:
        try:
            results = self._branch_results(execution_id)
            result = join_fn(results)
            what = f"join result of execution {execution_id!r}"
            text = _json.dumps(result, what, execution_id=execution_id)
        except BaseException:
            with self._store.write() as conn:
                conn.execute(
                    "UPDATE parallel_executions SET join_owner = NULL "
                    "WHERE execution_id = ? AND join_owner = ?",
                    (execution_id, os.getpid()),
                )
            raise
        with self._store.write() as conn:
            conn.execute(
                "UPDATE parallel_executions SET state = 'complete', joined = 1, "
                "join_result = ?, join_owner = NULL WHERE execution_id = ?",
                (text, execution_id),
            )
        return result

    def _branch_results(self, execution_id: str) -> dict[str, Any]:
        rows = self._store.read(
            "SELECT branch, value FROM parallel_branches "
            "WHERE execution_id = ? AND state = 'complete' ORDER BY position",
            (execution_id,),
        )
        return {branch: _json.loads(value) for branch, value in rows}

    def status(self, execution_id: str) -> ExecutionStatus:
        with self._store.reading() as conn:
            state = _state_of(conn, execution_id)
            branches = conn.execute(
                "SELECT branch, state FROM parallel_branches WHERE execution_id = ? "
                "ORDER BY position",
                (execution_id,),
            ).fetchall()
        return ExecutionStatus(state, dict(branches))
