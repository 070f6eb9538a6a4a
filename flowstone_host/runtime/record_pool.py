"""Idle connections to run records files, kept open across runs in this process.

Connections outlive a :class:`~.records.RunRecords`: its ``close`` hands them to the
per-process :data:`POOL` (keyed by the file's path and checked against its inode), and the
next :class:`~.records.RunRecords` of the same file takes them from it. The last connection
of a WAL database to close checkpoints it and deletes the WAL, and the next open recreates
it: four ``fdatasync`` calls per run that the pool spares. Pooled connections are closed at
exit (which checkpoints), and are never used in a forked child.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading

__all__ = ["POOL", "ConnectionPool"]


class ConnectionPool:
    """Idle connections to run records files, newest last, at most :attr:`size` of them.

    A connection is taken back only for the file it was opened on: the same path and the
    same ``(device, inode)`` (a state folder deleted and made again is another file).
    """

    size = 8

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[tuple[str, tuple[int, int], sqlite3.Connection]] = []
        self._pid = os.getpid()

    def take(self, path: str) -> tuple[sqlite3.Connection, tuple[int, int]] | None:
        """Return an idle connection to ``path`` and the file's identity, or ``None``."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        ident = (stat.st_dev, stat.st_ino)
        stale: list[sqlite3.Connection] = []
        found = None
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's connections are not ours
                _ABANDONED.extend(self._idle)  # nor to close: that could checkpoint its WAL
                self._idle, self._pid = [], os.getpid()
            for i in range(len(self._idle) - 1, -1, -1):
                held, held_ident, conn = self._idle[i]
                if held != path:
                    continue
                del self._idle[i]
                if held_ident == ident and found is None:
                    found = (conn, ident)
                else:
                    stale.append(conn)
        for conn in stale:
            conn.close()
        return found

    def give(self, path: str, ident: tuple[int, int], conn: sqlite3.Connection) -> None:
        """Keep ``conn`` for the next :meth:`take` of ``path`` (close it when it cannot be)."""
        evicted: list[sqlite3.Connection] = []
        with self._lock:
            if conn.in_transaction or self._pid != os.getpid():
                evicted.append(conn)
            else:
                self._idle.append((path, ident, conn))
                while len(self._idle) > self.size:
                    evicted.append(self._idle.pop(0)[2])
        for old in evicted:
            old.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
            mine = self._pid == os.getpid()
        if mine:
            for _, _, conn in idle:
                conn.close()


#: The pool of this process.
POOL = ConnectionPool()
#: Pooled connections a forked child inherited: kept, never used nor closed.
_ABANDONED: list[tuple[str, tuple[int, int], sqlite3.Connection]] = []
atexit.register(POOL.close)
