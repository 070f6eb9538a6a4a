"""The SQLite scatter coordinator: barriers in a file that several processes share.

Invariants, each held across processes by the database, not by a Python lock:

- A key is one row of ``scatter_keys``; inserting it again changes nothing, and only an
  insert that happened moves ``total``.
- A key's outcome is one row of ``scatter_outcomes``, written with ``INSERT ... ON CONFLICT
  DO NOTHING`` (and only when the key was inserted): a redelivered outcome inserts nothing
  and moves no counter, so redelivery never completes a barrier early.
- Every change is one ``BEGIN IMMEDIATE`` transaction that reads the barrier's counters
  after taking the write lock; ``record_outcomes`` does its whole batch in one.
- The move out of ``pending`` is ``UPDATE ... WHERE state = 'pending'``: the one call whose
  update changed a row reports ``transitioned``; every other call, in any process, does not.
- Results and errors are stored as JSON; a value that would not come back equal is refused
  with a ``ValidationError`` naming its key, before anything is written.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...contracts.scatter import ScatterCoordinator, check_tolerated, threshold_exceeded
from ...contracts.types import BarrierState, BarrierStatus, Recorded
from ...errors import Conflict, NotFound
from ...partitions import partition_key
from . import _json
from ._store import SqliteBacked

__all__ = ["SqliteScatterCoordinator"]

_BARRIER = (
    "SELECT state, final, total, completed, failed, tolerated FROM scatter_barriers "
    "WHERE barrier_id = ?"
)
# The outcome row is written only for a key that was inserted: no row means duplicate or
# unknown, told apart afterwards (the rare path).
_ADD_OUTCOME = (
    "INSERT INTO scatter_outcomes (barrier_id, key, succeeded, value) "
    "SELECT ?1, ?2, ?3, ?4 WHERE EXISTS "
    "(SELECT 1 FROM scatter_keys WHERE barrier_id = ?1 AND key = ?2) "
    "ON CONFLICT DO NOTHING"
)
# The same for a whole batch in one statement (one step of SQLite, not one per row):
# ?3 is a JSON array of [key, JSON text of the value] pairs.
_ADD_OUTCOMES = (
    "INSERT INTO scatter_outcomes (barrier_id, key, succeeded, value) "
    "SELECT ?1, j.value ->> 0, ?2, j.value ->> 1 FROM json_each(?3) AS j WHERE EXISTS "
    "(SELECT 1 FROM scatter_keys WHERE barrier_id = ?1 AND key = j.value ->> 0) "
    "ON CONFLICT DO NOTHING"
)
_FIRST_UNKNOWN = (
    "SELECT j.value ->> 0 FROM json_each(?2) AS j WHERE NOT EXISTS "
    "(SELECT 1 FROM scatter_keys WHERE barrier_id = ?1 AND key = j.value ->> 0) LIMIT 1"
)
# ?2 is a JSON array of keys.
_ADD_KEYS = (
    "INSERT INTO scatter_keys (barrier_id, key) SELECT ?1, value FROM json_each(?2) "
    "WHERE true ON CONFLICT DO NOTHING"
)
_HAS_KEY = "SELECT 1 FROM scatter_keys WHERE barrier_id = ? AND key = ?"
_FINISH = "UPDATE scatter_barriers SET state = ? WHERE barrier_id = ? AND state = 'pending'"
_CHUNK = 500  # keys per IN (...) query, well under SQLite's variable limit

Outcome = tuple[str, int, str]  # key, succeeded (1 or 0), JSON value


@dataclass
class _Tally:
    """A barrier's counters as read under the write lock, advanced outcome by outcome."""

    state: BarrierState
    final: bool
    total: int
    completed: int
    failed: int
    tolerated: dict[str, Any] | None

    @classmethod
    def read(cls, conn: sqlite3.Connection, barrier_id: str) -> _Tally:
        row = conn.execute(_BARRIER, (barrier_id,)).fetchone()
        if row is None:
            raise NotFound(f"No scatter barrier {barrier_id!r}.", barrier_id=barrier_id)
        state, final, total, completed, failed, tolerated = row
        tolerated = None if tolerated is None else _json.loads(tolerated)
        return cls(state, bool(final), total, completed, failed, tolerated)

    def count(self, succeeded: int) -> None:
        """Count one new outcome, then settle: the same rule as the contract's one by one."""
        if succeeded:
            self.completed += 1
        else:
            self.failed += 1
        self.settle()

    def settle(self) -> None:
        if self.state != "pending":
            return
        if threshold_exceeded(self.failed, self.total, self.tolerated, final=self.final):
            self.state = "threshold_exceeded"
        elif self.final and self.completed + self.failed == self.total:
            self.state = "complete"


def _finish(conn: sqlite3.Connection, barrier_id: str, tally: _Tally) -> bool:
    """Write a settled state; return whether this very call moved it out of ``pending``."""
    if tally.state == "pending":
        return False
    return conn.execute(_FINISH, (tally.state, barrier_id)).rowcount == 1


def _require_key(conn: sqlite3.Connection, barrier_id: str, key: str) -> None:
    if conn.execute(_HAS_KEY, (barrier_id, key)).fetchone() is None:
        raise NotFound(
            f"Key {key!r} was never inserted into barrier {barrier_id!r}.",
            barrier_id=barrier_id,
            key=key,
        )


class SqliteScatterCoordinator(SqliteBacked, ScatterCoordinator):
    """Scatter barriers in an SQLite file, exact when threads and processes share it.

    Config: ``path`` (default ``coordinators.sqlite``, relative to the host's state folder)
    and ``busy_timeout_ms`` (default 5000).
    """

    contract_version = "1.2.0"
    plugin_version = "1.0.0"

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
        row = (
            barrier_id,
            str(run_id),
            str(asset),
            partition_key(partition),
            None if tolerated is None else _json.dumps(tolerated, "tolerated_failures"),
            time.time(),
        )
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO scatter_barriers "
                "(barrier_id, run_id, asset, partition_key, tolerated, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
        return barrier_id

    def insert_keys(self, barrier_id: str, keys: Iterable[str], *, final: bool = True) -> None:
        keys_json = _json.encode([str(key) for key in keys])
        with self._store.write() as conn:
            tally = _Tally.read(conn, barrier_id)
            if tally.final:
                raise Conflict(
                    f"Barrier {barrier_id!r} already has its final key set.",
                    barrier_id=barrier_id,
                )
            added = conn.execute(_ADD_KEYS, (barrier_id, keys_json)).rowcount
            tally.total, tally.final = tally.total + max(added, 0), final
            conn.execute(
                "UPDATE scatter_barriers SET total = ?, final = ? WHERE barrier_id = ?",
                (tally.total, int(final), barrier_id),
            )
            tally.settle()
            _finish(conn, barrier_id, tally)

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
        outcomes = _encode(barrier_id, completed, failed)
        with self._store.write() as conn:
            tally = _Tally.read(conn, barrier_id)
            new = self._add_outcomes(conn, barrier_id, tally, outcomes)
            if new[0] or new[1]:
                conn.execute(
                    "UPDATE scatter_barriers SET completed = completed + ?, "
                    "failed = failed + ? WHERE barrier_id = ?",
                    (*new, barrier_id),
                )
            transitioned = _finish(conn, barrier_id, tally)
        return Recorded(tally.state, new[0] + new[1], transitioned)

    @staticmethod
    def _add_outcomes(
        conn: sqlite3.Connection, barrier_id: str, tally: _Tally, outcomes: list[Outcome]
    ) -> tuple[int, int]:
        """Insert each outcome while the barrier is pending; return (completed, failed) added.

        The rule is one outcome at a time (count it, settle; once settled, insert nothing
        more). Completions come first and never cross the threshold, and the one that
        completes the barrier is its last key without an outcome (any later one in the batch
        is a duplicate), so they go in one statement; so do the failures when even all of
        them would not cross the threshold. Otherwise the failures go one by one.
        """
        completions = [(key, value) for key, succeeded, value in outcomes if succeeded]
        failures = [(key, value) for key, succeeded, value in outcomes if not succeeded]
        added_completed = _add_many(conn, barrier_id, tally, 1, completions)
        tally.completed += added_completed
        tally.settle()
        added_failed = 0
        bulk = tally.state == "pending" and not threshold_exceeded(
            tally.failed + len(failures), tally.total, tally.tolerated, final=tally.final
        )
        if bulk:
            added_failed = _add_many(conn, barrier_id, tally, 0, failures)
            tally.failed += added_failed
            tally.settle()
            return added_completed, added_failed
        for key, value in failures:
            if tally.state != "pending":
                _require_key(conn, barrier_id, key)
            elif conn.execute(_ADD_OUTCOME, (barrier_id, key, 0, value)).rowcount == 1:
                added_failed += 1
                tally.count(0)
            else:
                _require_key(conn, barrier_id, key)  # a duplicate: counts nothing
        return added_completed, added_failed

    def gather(self, barrier_id: str) -> dict[str, Any]:
        loads = _json.loads
        with self._store.reading() as conn:
            _Tally.read(conn, barrier_id)
            rows = conn.execute(
                "SELECT key, value FROM scatter_outcomes "
                "WHERE barrier_id = ? AND succeeded = 1 ORDER BY key",
                (barrier_id,),
            )
            return {key: loads(value) for key, value in rows}

    def cancel(self, barrier_id: str) -> None:
        with self._store.write() as conn:
            tally = _Tally.read(conn, barrier_id)
            tally.state = "cancelled" if tally.state == "pending" else tally.state
            _finish(conn, barrier_id, tally)

    def status(self, barrier_id: str) -> BarrierStatus:
        rows = self._store.read(_BARRIER, (barrier_id,))
        if not rows:
            raise NotFound(f"No scatter barrier {barrier_id!r}.", barrier_id=barrier_id)
        state, _final, total, completed, failed, _tolerated = rows[0]
        return BarrierStatus(state, completed, failed, total)

    def find_barrier(self, run_id: str, asset: str, partition: Any) -> str | None:
        rows = self._store.read(
            "SELECT barrier_id FROM scatter_barriers WHERE run_id = ? AND asset = ? "
            "AND partition_key = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (str(run_id), str(asset), partition_key(partition)),
        )
        return str(rows[0][0]) if rows else None

    def save_checkpoint(self, barrier_id: str, checkpoint: Mapping[str, Any] | None) -> None:
        text = None
        if checkpoint is not None:
            what = f"reader checkpoint of barrier {barrier_id!r}"
            text = _json.dumps(dict(checkpoint), what, barrier_id=barrier_id)
        with self._store.write() as conn:
            updated = conn.execute(
                "UPDATE scatter_barriers SET checkpoint = ? WHERE barrier_id = ?",
                (text, barrier_id),
            ).rowcount
            if not updated:
                raise NotFound(f"No scatter barrier {barrier_id!r}.", barrier_id=barrier_id)

    def load_checkpoint(self, barrier_id: str) -> dict[str, Any] | None:
        rows = self._store.read(
            "SELECT checkpoint FROM scatter_barriers WHERE barrier_id = ?", (barrier_id,)
        )
        if not rows:
            raise NotFound(f"No scatter barrier {barrier_id!r}.", barrier_id=barrier_id)
        return None if rows[0][0] is None else dict(_json.loads(rows[0][0]))

    def finished_keys(self, barrier_id: str, keys: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(str(key) for key in keys))
        found: set[str] = set()
        with self._store.reading() as conn:
            _Tally.read(conn, barrier_id)
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key FROM scatter_outcomes WHERE barrier_id = ? AND key IN ({marks})",
                    (barrier_id, *chunk),
                )
                found.update(key for (key,) in rows)
        return found

    def retry_failed(self, barrier_id: str) -> list[str]:
        with self._store.write() as conn:
            tally = _Tally.read(conn, barrier_id)
            rows = conn.execute(
                "DELETE FROM scatter_outcomes WHERE barrier_id = ? AND succeeded = 0 RETURNING key",
                (barrier_id,),
            ).fetchall()
            keys = sorted(key for (key,) in rows)
            if not keys and tally.state not in ("threshold_exceeded", "cancelled"):
                return []
            tally.failed -= len(keys)
            tally.state = "pending"
            tally.settle()
            conn.execute(
                "UPDATE scatter_barriers SET state = ?, failed = ?, checkpoint = NULL "
                "WHERE barrier_id = ?",
                (tally.state, tally.failed, barrier_id),
            )
        return keys

    def set_tolerated_failures(
        self, barrier_id: str, tolerated_failures: Mapping[str, Any] | None
    ) -> BarrierState:
        tolerated = check_tolerated(tolerated_failures)
        text = None if tolerated is None else _json.dumps(tolerated, "tolerated_failures")
        with self._store.write() as conn:
            tally = _Tally.read(conn, barrier_id)
            if tally.state != "pending":
                return tally.state
            conn.execute(
                "UPDATE scatter_barriers SET tolerated = ? WHERE barrier_id = ?", (text, barrier_id)
            )
            tally.tolerated = tolerated
            tally.settle()
            _finish(conn, barrier_id, tally)
        return tally.state


def _add_many(
    conn: sqlite3.Connection,
    barrier_id: str,
    tally: _Tally,
    succeeded: int,
    rows: list[tuple[str, str]],
) -> int:
    """Insert ``rows`` (key, JSON value) in one statement while the barrier is pending;
    return how many were new. A row not inserted is a duplicate or an unknown key: the
    latter raises ``NotFound`` (and the caller's transaction rolls back)."""
    if not rows:
        return 0
    pairs = _json.encode(rows)  # strings only: always safe
    added = 0
    if tally.state == "pending":
        added = conn.execute(_ADD_OUTCOMES, (barrier_id, succeeded, pairs)).rowcount
    if added < len(rows):
        unknown = conn.execute(_FIRST_UNKNOWN, (barrier_id, pairs)).fetchone()
        if unknown is not None:
            _require_key(conn, barrier_id, unknown[0])
    return max(added, 0)


def _encode(
    barrier_id: str, completed: Mapping[str, Any] | None, failed: Mapping[str, Any] | None
) -> list[Outcome]:
    """Return completions then failures as rows, refusing a value that is not JSON-safe."""
    outcomes: list[Outcome] = []
    for succeeded, values, noun in ((1, completed, "result"), (0, failed, "error")):
        for key, value in (values or {}).items():
            key = str(key)
            if type(value) in _json.PLAIN:  # always JSON-safe: no round trip to check
                outcomes.append((key, succeeded, _json.encode(value)))
                continue
            what = f"{noun} of key {key!r} in barrier {barrier_id!r}"
            outcomes.append((key, succeeded, _json.dumps(value, what, key=key)))
    return outcomes
