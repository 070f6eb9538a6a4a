"""The ``postgres`` scatter coordinator: barriers shared by any number of processes.

Invariants, held across processes and machines:

- One row per barrier, one row per ``(barrier, key)`` (the primary key makes keys unique).
- Every change to a barrier locks its row (``SELECT ... FOR UPDATE``) first, and the
  counts and the status are updated in that same transaction: the status change is
  decided together with the update that causes it, so exactly one transaction moves a
  barrier out of ``pending`` and ``Recorded.transitioned`` is exact.
- An outcome counts only if its key row moves from ``pending`` (a conditional
  ``UPDATE ... WHERE status = 'pending'``): duplicates are ignored, never counted.
- A batch of outcomes is all-or-nothing: an unknown key rolls the whole batch back.
- ``gather`` streams results in key order (byte order) through a server-side cursor.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ...contracts.scatter import ScatterCoordinator, check_tolerated, threshold_exceeded
from ...contracts.types import BarrierState, BarrierStatus, Recorded
from ...errors import Conflict, NotFound
from ...partitions import partition_key
from ._base import PostgresBacked
from ._driver import SOURCE_SCHEMA
from ._json import dumps

__all__ = ["PostgresScatterCoordinator"]

_CHUNK = 10_000

_LOCK = """SELECT status, final, total, completed, failed, tolerated
FROM {schema}.scatter_barriers WHERE barrier_id = %s FOR UPDATE"""
_SAVE = """UPDATE {schema}.scatter_barriers
SET status = %s, final = %s, total = %s, completed = %s, failed = %s WHERE barrier_id = %s"""
_INSERT_KEYS = """INSERT INTO {schema}.scatter_keys (barrier_id, key)
SELECT %s, k FROM unnest(%s::text[]) AS k ON CONFLICT DO NOTHING"""
# One statement per key, pipelined: a lookup by the full primary key whatever the planner's
# statistics say (before a fresh table's first ANALYZE they claim a barrier has few keys,
# and a join of a batch against them then scans every key of the barrier once per key).
_OUTCOME = {
    True: """UPDATE {schema}.scatter_keys SET status = 'complete', result = %s::jsonb
WHERE barrier_id = %s AND key = %s AND status = 'pending'""",
    False: """UPDATE {schema}.scatter_keys SET status = 'failed', error = %s::jsonb
WHERE barrier_id = %s AND key = %s AND status = 'pending'""",
}
_PENDING_AMONG = """SELECT key FROM {schema}.scatter_keys
WHERE barrier_id = %s AND key = ANY(%s::text[]) AND status = 'pending'"""
_UNKNOWN_AMONG = """SELECT g FROM unnest(%s::text[]) AS g WHERE NOT EXISTS (
SELECT 1 FROM {schema}.scatter_keys k WHERE k.barrier_id = %s AND k.key = g) LIMIT 3"""
_EXISTS = "SELECT 1 FROM {schema}.scatter_barriers WHERE barrier_id = %s"


@dataclass(frozen=True, slots=True)
class _Barrier:
    status: BarrierState
    final: bool
    total: int
    completed: int
    failed: int
    tolerated: dict[str, Any] | None

    def settled(self) -> _Barrier:
        """Return the barrier with the status its counts call for (finished ones stay)."""
        if self.status != "pending":
            return self
        if threshold_exceeded(self.failed, self.total, self.tolerated, final=self.final):
            return replace(self, status="threshold_exceeded")
        if self.final and self.completed + self.failed == self.total:
            return replace(self, status="complete")
        return self

    def failures_before_trip(self) -> int | None:
        """How many more failures the barrier takes, the tripping one included; None: any."""
        tolerated = self.tolerated
        if not tolerated:
            return 1 - self.failed
        if "count" in tolerated:
            return int(tolerated["count"]) + 1 - self.failed
        if not self.final:
            return None
        # threshold_exceeded() solved for the failure count: the least n with
        # n * 100 > P * total, in the same float arithmetic.
        trip = int(float(tolerated["percent"]) * self.total // 100) + 1
        return trip - self.failed


def _chunks(items: list[str], size: int = _CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class PostgresScatterCoordinator(PostgresBacked, ScatterCoordinator):
    """Scatter barriers in PostgreSQL (``scatter_barriers`` and ``scatter_keys`` tables)."""

    contract_version = "1.2.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = SOURCE_SCHEMA
    component = "scatter"

    def __init__(
        self, config: Mapping[str, Any] | None = None, *, resources: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(config)
        self._connect(self.config, resources)

    def _lock(self, conn: Any, barrier_id: str) -> _Barrier:
        row = conn.execute(self.sql(_LOCK), [barrier_id]).fetchone()
        if row is None:
            raise NotFound(f"No scatter barrier {barrier_id!r}.", barrier_id=barrier_id)
        return _Barrier(*row)

    def _save(self, conn: Any, barrier_id: str, b: _Barrier) -> None:
        params = [b.status, b.final, b.total, b.completed, b.failed, barrier_id]
        conn.execute(self.sql(_SAVE), params)

    def _require(self, conn: Any, barrier_id: str) -> None:
        if conn.execute(self.sql(_EXISTS), [barrier_id]).fetchone() is None:
            raise NotFound(f"No scatter barrier {barrier_id!r}.", barrier_id=barrier_id)

    def create_barrier(
        self,
        run_id: str,
        asset: str,
        partition: Any,
        *,
        tolerated_failures: Mapping[str, Any] | None = None,
        **opts: Any,
    ) -> str:
        tolerated = check_tolerated(tolerated_failures)
        barrier_id = f"{run_id}:{uuid.uuid4().hex}"
        with self.connection() as conn:
            conn.execute(
                self.sql(
                    "INSERT INTO {schema}.scatter_barriers "
                    "(barrier_id, run_id, asset, partition_key, tolerated) "
                    "VALUES (%s, %s, %s, %s, %s::jsonb)"
                ),
                [
                    barrier_id,
                    str(run_id),
                    str(asset),
                    partition_key(partition),
                    None if tolerated is None else dumps(tolerated, "tolerated_failures"),
                ],
            )
        return barrier_id

    def insert_keys(self, barrier_id: str, keys: Iterable[str], *, final: bool = True) -> None:
        new_keys = list(dict.fromkeys(str(key) for key in keys))
        with self.transaction() as conn:
            barrier = self._lock(conn, barrier_id)
            if barrier.final:
                raise Conflict(f"Barrier {barrier_id!r} already has its final key set.")
            added = 0
            for chunk in _chunks(new_keys):
                added += conn.execute(self.sql(_INSERT_KEYS), [barrier_id, chunk]).rowcount
            barrier = replace(barrier, total=barrier.total + added, final=final)
            self._save(conn, barrier_id, barrier.settled())

    def complete(self, barrier_id: str, key: str, result: Any) -> BarrierState:
        return self.record_outcomes(barrier_id, {key: result}).state

    def fail(self, barrier_id: str, key: str, error: Any) -> BarrierState:
        return self.record_outcomes(barrier_id, None, {key: error}).state

    def record_outcomes(
        self,
        barrier_id: str,
        completed: Mapping[str, Any] | None = None,
        failed: Mapping[str, Any] | None = None,
    ) -> Recorded:
        """Record a batch in one transaction; ``transitioned`` is exact across processes.

        Raises:
            NotFound: unknown barrier, or a key never inserted (nothing is recorded).
            ValidationError: a result or error is not JSON-serialisable.
        """
        done = {str(k): dumps(v, f"The result of key {k!r}") for k, v in (completed or {}).items()}
        lost = {str(k): dumps(v, f"The error of key {k!r}") for k, v in (failed or {}).items()}
        with self.transaction() as conn:
            before = self._lock(conn, barrier_id)
            if before.status != "pending":
                self._check_known(conn, barrier_id, [*done, *lost])
                return Recorded(before.status, 0, False)
            n_done = self._apply(conn, barrier_id, True, done)
            after = replace(before, completed=before.completed + n_done)
            n_lost = self._apply(
                conn, barrier_id, False, self._within_trip(conn, barrier_id, after, lost)
            )
            if n_done < len(done) or n_lost < len(lost):
                self._check_known(conn, barrier_id, [*done, *lost])
            after = replace(after, failed=after.failed + n_lost).settled()
            self._save(conn, barrier_id, after)
        return Recorded(after.status, n_done + n_lost, after.status != "pending")

    def _apply(self, conn: Any, barrier_id: str, succeeded: bool, values: dict[str, str]) -> int:
        if not values:
            return 0
        with conn.cursor() as cursor:
            cursor.executemany(
                self.sql(_OUTCOME[succeeded]),
                [(value, barrier_id, key) for key, value in values.items()],
            )
            return int(cursor.rowcount)  # the sum over the statements

    def _within_trip(
        self, conn: Any, barrier_id: str, barrier: _Barrier, failures: dict[str, str]
    ) -> dict[str, str]:
        """Keep the failures that count one by one: none after the one that trips."""
        room = barrier.failures_before_trip()
        if room is None or len(failures) <= room:
            return failures
        rows = conn.execute(self.sql(_PENDING_AMONG), [barrier_id, list(failures)]).fetchall()
        pending = {row[0] for row in rows}
        kept = [key for key in failures if key in pending][:room]
        return {key: failures[key] for key in kept}

    def _check_known(self, conn: Any, barrier_id: str, keys: list[str]) -> None:
        if not keys:
            return
        rows = conn.execute(self.sql(_UNKNOWN_AMONG), [keys, barrier_id]).fetchall()
        if rows:
            raise NotFound(
                f"Key {rows[0][0]!r} was never inserted into barrier {barrier_id!r}.",
                barrier_id=barrier_id,
                key=rows[0][0],
            )

    def iter_results(self, barrier_id: str, *, batch_size: int = 2000) -> Iterator[tuple[str, Any]]:
        """Yield ``(key, result)`` of every completed key in key order, streamed.

        Raises:
            NotFound: unknown barrier.
        """
        with self.transaction() as conn:
            self._require(conn, barrier_id)
            with conn.cursor(name=f"gather_{uuid.uuid4().hex}") as cursor:
                cursor.itersize = batch_size
                cursor.execute(
                    self.sql(
                        "SELECT key, result FROM {schema}.scatter_keys "
                        "WHERE barrier_id = %s AND status = 'complete' ORDER BY key"
                    ),
                    [barrier_id],
                )
                yield from cursor

    def gather(self, barrier_id: str) -> dict[str, Any]:
        return dict(self.iter_results(barrier_id))

    def cancel(self, barrier_id: str) -> None:
        with self.transaction() as conn:
            barrier = self._lock(conn, barrier_id)
            if barrier.status == "pending":
                self._save(conn, barrier_id, replace(barrier, status="cancelled"))

    def status(self, barrier_id: str) -> BarrierStatus:
        with self.connection() as conn:
            row = conn.execute(
                self.sql(
                    "SELECT status, completed, failed, total FROM {schema}.scatter_barriers "
                    "WHERE barrier_id = %s"
                ),
                [barrier_id],
            ).fetchone()
        if row is None:
            raise NotFound(f"No scatter barrier {barrier_id!r}.", barrier_id=barrier_id)
        return BarrierStatus(*row)

    def find_barrier(self, run_id: str, asset: str, partition: Any) -> str | None:
        with self.connection() as conn:
            row = conn.execute(
                self.sql(
                    "SELECT barrier_id FROM {schema}.scatter_barriers WHERE run_id = %s "
                    "AND asset = %s AND partition_key = %s ORDER BY created_at DESC LIMIT 1"
                ),
                [str(run_id), str(asset), partition_key(partition)],
            ).fetchone()
        return None if row is None else str(row[0])

    def save_checkpoint(self, barrier_id: str, checkpoint: Mapping[str, Any] | None) -> None:
        text = None if checkpoint is None else dumps(dict(checkpoint), "A reader checkpoint")
        with self.connection() as conn:
            updated = conn.execute(
                self.sql(
                    "UPDATE {schema}.scatter_barriers SET checkpoint = %s::jsonb "
                    "WHERE barrier_id = %s"
                ),
                [text, barrier_id],
            ).rowcount
        if not updated:
            raise NotFound(f"No scatter barrier {barrier_id!r}.", barrier_id=barrier_id)

    def load_checkpoint(self, barrier_id: str) -> dict[str, Any] | None:
        with self.connection() as conn:
            row = conn.execute(
                self.sql("SELECT checkpoint FROM {schema}.scatter_barriers WHERE barrier_id = %s"),
                [barrier_id],
            ).fetchone()
        if row is None:
            raise NotFound(f"No scatter barrier {barrier_id!r}.", barrier_id=barrier_id)
        return None if row[0] is None else dict(row[0])

    def finished_keys(self, barrier_id: str, keys: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(str(key) for key in keys))
        with self.transaction() as conn:
            self._require(conn, barrier_id)
            finished: set[str] = set()
            for chunk in _chunks(wanted):
                rows = conn.execute(
                    self.sql(
                        "SELECT key FROM {schema}.scatter_keys WHERE barrier_id = %s "
                        "AND key = ANY(%s::text[]) AND status <> 'pending'"
                    ),
                    [barrier_id, chunk],
                ).fetchall()
                finished.update(row[0] for row in rows)
        return finished

    def retry_failed(self, barrier_id: str) -> list[str]:
        with self.transaction() as conn:
            barrier = self._lock(conn, barrier_id)
            rows = conn.execute(
                self.sql(
                    "UPDATE {schema}.scatter_keys SET status = 'pending', error = NULL "
                    "WHERE barrier_id = %s AND status = 'failed' RETURNING key"
                ),
                [barrier_id],
            ).fetchall()
            keys = sorted(str(row[0]) for row in rows)
            if not keys and barrier.status not in ("threshold_exceeded", "cancelled"):
                return []
            reopened = replace(barrier, status="pending", failed=barrier.failed - len(keys))
            self._save(conn, barrier_id, reopened.settled())
            conn.execute(
                self.sql(
                    "UPDATE {schema}.scatter_barriers SET checkpoint = NULL WHERE barrier_id = %s"
                ),
                [barrier_id],
            )
        return keys

    def set_tolerated_failures(
        self, barrier_id: str, tolerated_failures: Mapping[str, Any] | None
    ) -> BarrierState:
        tolerated = check_tolerated(tolerated_failures)
        text = None if tolerated is None else dumps(tolerated, "tolerated_failures")
        with self.transaction() as conn:
            barrier = self._lock(conn, barrier_id)
            if barrier.status != "pending":
                return barrier.status
            conn.execute(
                self.sql(
                    "UPDATE {schema}.scatter_barriers SET tolerated = %s::jsonb "
                    "WHERE barrier_id = %s"
                ),
                [text, barrier_id],
            )
            settled = replace(barrier, tolerated=tolerated).settled()
            self._save(conn, barrier_id, settled)
        return settled.status
