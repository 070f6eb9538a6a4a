"""The redrives and retunes of runs: the ``run_events`` table of the run records.

One row per event, ``(seq, run_id, kind, at, details)``: ``seq`` orders them, ``details``
is a JSON object. :class:`~.records.RunRecords` owns the connection and the transaction;
these functions are the SQL, each run inside the caller's transaction when it writes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

from .run_record import RunRecord, dump

__all__ = ["SCHEMA", "EventKind", "add", "attach", "latest_retune", "of_run", "update"]

EventKind = Literal["redrive", "retune"]

#: The table and its index (migration 2 of the run records).
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS run_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "run_id TEXT NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL, details TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS run_events_by_run ON run_events (run_id, kind, seq)",
)


def add(conn: sqlite3.Connection, run_id: str, kind: EventKind, details: Mapping[str, Any]) -> int:
    """Insert an event of run ``run_id``; return its sequence number."""
    cursor = conn.execute(
        "INSERT INTO run_events (run_id, kind, at, details) VALUES (?, ?, ?, ?)",
        (run_id, kind, time.time(), dump(dict(details))),
    )
    return int(cursor.lastrowid or 0)


def update(conn: sqlite3.Connection, seq: int, details: Mapping[str, Any]) -> None:
    """Merge ``details`` into event ``seq`` (none: nothing happens)."""
    row = conn.execute("SELECT details FROM run_events WHERE seq = ?", (seq,)).fetchone()
    if row is not None:
        merged = dump({**json.loads(row[0]), **dict(details)})
        conn.execute("UPDATE run_events SET details = ? WHERE seq = ?", (merged, seq))


def of_run(conn: sqlite3.Connection, run_id: str, kind: EventKind) -> tuple[dict[str, Any], ...]:
    """Return run ``run_id``'s events of ``kind``, oldest first, each with its ``seq`` and
    ``at`` (epoch seconds) over its details."""
    rows = conn.execute(
        "SELECT seq, at, details FROM run_events WHERE run_id = ? AND kind = ? ORDER BY seq",
        (run_id, kind),
    )
    return tuple({"seq": seq, "at": at, **json.loads(details)} for seq, at, details in rows)


def attach(conn: sqlite3.Connection, record: RunRecord) -> RunRecord:
    """Return ``record`` with its run's redrives and retunes, each as :func:`of_run` lists
    them (in one query: every read of a run asks for both)."""
    found: dict[str, list[dict[str, Any]]] = {"redrive": [], "retune": []}
    rows = conn.execute(
        "SELECT kind, seq, at, details FROM run_events WHERE run_id = ? "
        "AND kind IN ('redrive', 'retune') ORDER BY kind, seq",
        (record.run_id,),
    )
    for kind, seq, at, details in rows:
        found[kind].append({"seq": seq, "at": at, **json.loads(details)})
    if found["redrive"] or found["retune"]:
        record = replace(record, redrives=tuple(found["redrive"]), retunes=tuple(found["retune"]))
    return record


def latest_retune(conn: sqlite3.Connection, run_id: str) -> tuple[int, dict[str, Any]] | None:
    """Return the latest retune of run ``run_id`` as ``(seq, details)``, or ``None``."""
    row = conn.execute(
        "SELECT seq, details FROM run_events WHERE run_id = ? AND kind = 'retune' "
        "ORDER BY seq DESC LIMIT 1",
        (run_id,),
    ).fetchone()
    return None if row is None else (int(row[0]), json.loads(row[1]))
