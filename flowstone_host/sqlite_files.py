"""Opening a SQLite file that several processes share (run records, the SQLite plugins).

Switching a new file to WAL takes a lock that SQLite does not wait for with the busy
handler: two processes opening a fresh file at the same instant (workers starting
together) get "database is locked" at once. :func:`connect` retries that switch until the
busy timeout has passed.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

__all__ = ["connect"]


def connect(path: Path, timeout_s: float) -> sqlite3.Connection:
    """Open ``path`` (created when missing) in autocommit mode (transactions are
    explicit), usable from any thread, in WAL mode with ``synchronous = NORMAL``.

    Raises:
        sqlite3.OperationalError: the file stayed locked for ``timeout_s``.
    """
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn
