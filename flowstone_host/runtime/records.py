"""Durable run records in the state folder: who ran what, when, and how it ended.

One SQLite file (``runs.sqlite`` in the host's state folder) in WAL mode with a busy
timeout; every write is one ``BEGIN IMMEDIATE`` transaction, so several processes (a
``materialize`` and a ``runs`` listing, or two materializations) share it safely.
``runs`` has one row per run; ``steps`` one row per ``(run, asset, partition)`` with its
outcome and details (scatter counts, a parallel execution id, a routing decision);
``run_events`` one row per redrive or retune of a run. The schema is versioned
(``PRAGMA user_version``, see :mod:`.record_file`): an older file is migrated when opened.

The record types and their rows are in :mod:`.run_record`, the events' SQL in
:mod:`.run_events`. :meth:`RunRecords.close` hands the connections to the per-process pool
of :mod:`.record_pool`, which the next :class:`RunRecords` of the same file takes them from.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import FlowStoneError, NotFound, StorageError
from . import record_file, run_events
from .record_pool import POOL as _POOL
from .run_events import EventKind
from .run_record import (
    RunRecord,
    RunStatus,
    StepRecord,
    dump,
    plain_steps,
    run_from_row,
    step_from_row,
    what_key,
)

__all__ = ["RunRecord", "RunRecords", "RunStatus", "StepRecord", "plain_steps"]

_RUN_COLUMNS = (
    "run_id, status, assets, partitions, user, host, pid, created_at, updated_at, "
    "finished_at, attempts, error"
)
_STEPS_OF_RUN = (
    "SELECT asset, partition, status, started_at, finished_at, error, details "
    "FROM steps WHERE run_id = ?"
)
_IN_ORDER = " ORDER BY COALESCE(started_at, 0), asset, partition"
_UPSERT_PLAIN_STEPS = (
    "INSERT INTO steps (run_id, asset, partition, status, started_at, finished_at) VALUES {} "
    "ON CONFLICT (run_id, asset, partition) DO UPDATE "
    "SET status = excluded.status, finished_at = excluded.finished_at, error = NULL"
)
_INSERT_PLAIN_STEP = _UPSERT_PLAIN_STEPS.format("(?, ?, ?, ?, ?, ?)")
#: Plain steps written by one statement: two thirds of the cost of a statement per step,
#: and 600 parameters (old SQLite builds allow 999).
_ROWS_PER_INSERT = 100
_INSERT_PLAIN_STEPS = _UPSERT_PLAIN_STEPS.format(
    ", ".join(["(?, ?, ?, ?, ?, ?)"] * _ROWS_PER_INSERT)
)


class RunRecords:
    """The run records of one state folder.

    Args:
        path: The database file (``<state_dir>/runs.sqlite``); created when missing.
        busy_timeout_ms: How long a write waits for another process's lock.
    """

    def __init__(self, path: str | os.PathLike[str], busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self._timeout_s = busy_timeout_ms / 1000
        self._key = os.path.abspath(self.path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[tuple[int, int], sqlite3.Connection]] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._connect():  # a new connection; a pooled one's file has the schema already
            with self._write() as conn:
                record_file.create_or_migrate(conn, self.path)

    @classmethod
    def in_state_dir(cls, state_dir: str | os.PathLike[str]) -> RunRecords:
        """Return the records of the state folder ``state_dir``."""
        return cls(Path(state_dir) / "runs.sqlite")

    # -- connections -------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self._connect()
            conn = self._local.conn
        return conn

    def _connect(self) -> bool:
        """Give this thread a connection, pooled or new; return whether it is new."""
        pooled = _POOL.take(self._key)
        fresh = pooled is None
        if pooled is None:
            conn = record_file.connect(self.path, self._timeout_s)
            stat = os.stat(self.path)
            pooled = (conn, (stat.st_dev, stat.st_ino))
        self._local.conn = pooled[0]
        with self._lock:
            self._open.append((pooled[1], pooled[0]))
        return fresh

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(
                f"Run records {str(self.path)!r}: {exc}", path=str(self.path)
            ) from exc

    def close(self) -> None:
        """Release every connection: each is kept open in this process for the next
        :class:`RunRecords` of the same file (see :class:`_Pool`)."""
        with self._lock:
            conns, self._open = self._open, []
        self._local = threading.local()
        for ident, conn in conns:
            _POOL.give(self._key, ident, conn)

    # -- runs --------------------------------------------------------------------------

    def create(
        self, run_id: str, assets: Sequence[str], partitions: Sequence[str] | None
    ) -> RunRecord:
        """Record a new run, ``running``, owned by this process.

        Raises:
            Conflict: is not raised; an existing id is the caller's check (:meth:`get`).
        """
        now = time.time()
        parts = None if partitions is None else dump(list(partitions))
        who = (_user(), socket.gethostname(), os.getpid())
        row = (run_id, "running", dump(list(assets)), parts, *who, now, now, None, 1, None)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (run_id, status, assets, partitions, user, host, pid, "
                "created_at, updated_at, finished_at, attempts, error, what) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, what_key(assets, partitions)),
            )
        # What get() would read back: the row as written (a new run has no steps nor
        # events yet).
        return run_from_row(row, ())

    def take_over(self, run_id: str) -> RunRecord:
        """Mark an existing run ``running`` again, owned by this process (a resume)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET status = 'running', user = ?, host = ?, pid = ?, "
                "updated_at = ?, finished_at = NULL, error = NULL, attempts = attempts + 1 "
                "WHERE run_id = ?",
                (_user(), socket.gethostname(), os.getpid(), time.time(), run_id),
            )
        return self.get(run_id)

    def finish(self, run_id: str, status: RunStatus, error: FlowStoneError | None = None) -> None:
        """Record how the run ended."""
        now = time.time()
        text = None if error is None else dump(error.to_dict())
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, error = ?, updated_at = ?, finished_at = ? "
                "WHERE run_id = ?",
                (status, text, now, now, run_id),
            )

    def get(self, run_id: str, *, steps: bool = True) -> RunRecord:
        """Return run ``run_id`` with its steps (``steps=False``: without them), redrives
        and retunes.

        Raises:
            NotFound: no such run.
        """
        conn = self._conn()
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        found = row.fetchone()
        if found is None:
            raise NotFound(f"No run {run_id!r} in {str(self.path)!r}.", run_id=run_id)
        if not steps:
            return run_events.attach(conn, run_from_row(found, ()))
        rows = conn.execute(_STEPS_OF_RUN + _IN_ORDER, (run_id,)).fetchall()
        return run_events.attach(conn, run_from_row(found, tuple(map(step_from_row, rows))))

    def find(self, run_id: str) -> RunRecord | None:
        """Return run ``run_id``, or ``None``."""
        try:
            return self.get(run_id)
        except NotFound:
            return None

    def unfinished(
        self, assets: Sequence[str], partitions: Sequence[str] | None
    ) -> RunRecord | None:
        """Return the newest run of exactly these assets and partitions not yet succeeded
        (``running`` after a kill, or ``failed``), or ``None``."""
        row = (
            self._conn()
            .execute(
                "SELECT run_id FROM runs WHERE what = ? AND status IN ('running', 'failed') "
                "ORDER BY created_at DESC LIMIT 1",
                (what_key(assets, partitions),),
            )
            .fetchone()
        )
        return None if row is None else self.get(row[0])

    def page(
        self,
        *,
        limit: int = 20,
        after: str | None = None,
        status: str | None = None,
        asset: str | None = None,
    ) -> list[RunRecord]:
        """Return up to ``limit`` runs older than run ``after``, newest first, without their
        steps; only those with ``status`` and/or targeting ``asset`` when given.

        Raises:
            NotFound: no run ``after``.
        """
        where, params = [], []
        if after is not None:
            cursor = self.get(after, steps=False)
            where.append("(created_at < ? OR (created_at = ? AND run_id < ?))")
            params += [cursor.created_at, cursor.created_at, cursor.run_id]
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if asset is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(runs.assets) WHERE value = ?)")
            params.append(asset)
        sql = f"SELECT {_RUN_COLUMNS} FROM runs"
        sql += f" WHERE {' AND '.join(where)}" if where else ""
        sql += " ORDER BY created_at DESC, run_id DESC LIMIT ?"
        rows = self._conn().execute(sql, (*params, limit)).fetchall()
        return [run_from_row(row, ()) for row in rows]

    def step_counts(self, run_id: str) -> dict[str, dict[str, int]]:
        """Return how many steps of run ``run_id`` have each status, by asset."""
        rows = self._conn().execute(
            "SELECT asset, status, COUNT(*) FROM steps WHERE run_id = ? GROUP BY asset, status",
            (run_id,),
        )
        counts: dict[str, dict[str, int]] = {}
        for asset, status, count in rows:
            counts.setdefault(asset, {})[status] = count
        return counts

    def steps(self, run_id: str, *, limit: int, offset: int = 0) -> list[StepRecord]:
        """Return up to ``limit`` steps of run ``run_id`` from ``offset``, in the order
        :meth:`get` lists them."""
        rows = self._conn().execute(
            _STEPS_OF_RUN + _IN_ORDER + " LIMIT ? OFFSET ?",
            (run_id, limit, offset),
        )
        return [step_from_row(row) for row in rows]

    def list(self, limit: int = 20) -> list[RunRecord]:
        """Return the newest ``limit`` runs, newest first, without their steps."""
        rows = (
            self._conn()
            .execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC LIMIT ?", (limit,))
            .fetchall()
        )
        return [run_from_row(row, ()) for row in rows]

    # -- redrives and retunes ----------------------------------------------------------

    def add_event(self, run_id: str, kind: EventKind, details: Mapping[str, Any]) -> int:
        """Record a redrive or a retune of run ``run_id``; return its sequence number.

        Raises:
            NotFound: no such run.
        """
        self.get(run_id, steps=False)
        with self._write() as conn:
            return run_events.add(conn, run_id, kind, details)

    def update_event(self, seq: int, details: Mapping[str, Any]) -> None:
        """Merge ``details`` into event ``seq`` (a redrive's outcome once it ends)."""
        with self._write() as conn:
            run_events.update(conn, seq, details)

    def events(self, run_id: str, kind: EventKind) -> tuple[dict[str, Any], ...]:
        """Return run ``run_id``'s redrives or retunes, oldest first, each with its ``seq``
        and ``at`` (epoch seconds) over its details."""
        return run_events.of_run(self._conn(), run_id, kind)

    def tuning(self, run_id: str) -> tuple[int, dict[str, Any]] | None:
        """Return the latest retune of run ``run_id`` as ``(seq, details)``, or ``None``
        (one indexed lookup: scatter runners poll it between batches)."""
        return run_events.latest_retune(self._conn(), run_id)

    # -- steps -------------------------------------------------------------------------

    def step_started(self, run_id: str, asset: str, partition: str) -> None:
        """Record that ``(asset, partition)`` started (again) in this run."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO steps (run_id, asset, partition, status, started_at) "
                "VALUES (?, ?, ?, 'running', ?) ON CONFLICT (run_id, asset, partition) DO "
                "UPDATE SET status = 'running', error = NULL, finished_at = NULL",
                (run_id, asset, partition, time.time()),
            )

    def step_finished(
        self,
        run_id: str,
        asset: str,
        partition: str,
        status: str,
        error: FlowStoneError | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a step's outcome; ``details`` are merged over those recorded before."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO steps (run_id, asset, partition, status, started_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, asset, partition) DO NOTHING",
                (run_id, asset, partition, status, time.time()),
            )
            old = conn.execute(
                "SELECT details FROM steps WHERE run_id = ? AND asset = ? AND partition = ?",
                (run_id, asset, partition),
            ).fetchone()[0]
            merged = dump({**json.loads(old), **dict(details or {})})
            text = None if error is None else dump(error.to_dict())
            conn.execute(
                "UPDATE steps SET status = ?, error = ?, details = ?, finished_at = ? "
                "WHERE run_id = ? AND asset = ? AND partition = ?",
                (status, text, merged, time.time(), run_id, asset, partition),
            )

    def steps_finished(
        self, run_id: str, steps: Sequence[tuple[str, str, str, float, float]]
    ) -> None:
        """Record many plain steps ``(asset, partition, status, started, finished)`` that
        carry no error nor details, in one transaction."""
        if not steps:
            return
        whole = len(steps) - len(steps) % _ROWS_PER_INSERT
        with self._write() as conn:
            for first in range(0, whole, _ROWS_PER_INSERT):
                chunk = steps[first : first + _ROWS_PER_INSERT]
                conn.execute(_INSERT_PLAIN_STEPS, [v for step in chunk for v in (run_id, *step)])
            if whole < len(steps):
                rest = [(run_id, *step) for step in steps[whole:]]
                conn.executemany(_INSERT_PLAIN_STEP, rest)

    def note(self, run_id: str, asset: str, partition: str, **details: Any) -> None:
        """Merge ``details`` into a step's record, keeping its status."""
        step = self.step(run_id, asset, partition)
        status = "running" if step is None else step.status
        self.step_finished(run_id, asset, partition, status, None, details)

    def step(self, run_id: str, asset: str, partition: str) -> StepRecord | None:
        """Return one step of a run, or ``None``."""
        row = (
            self._conn()
            .execute(
                _STEPS_OF_RUN + " AND asset = ? AND partition = ?",
                (run_id, asset, partition),
            )
            .fetchone()
        )
        return None if row is None else step_from_row(row)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return None
