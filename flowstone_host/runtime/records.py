"""Durable run records in the state folder: who ran what, when, and how it ended.

One SQLite file (``runs.sqlite`` in the host's state folder) in WAL mode with a busy
timeout; every write is one ``BEGIN IMMEDIATE`` transaction, so several processes (a
``materialize`` and a ``runs`` listing, or two materializations) share it safely.
``runs`` has one row per run; ``steps`` one row per ``(run, asset, partition)`` with its
outcome and details (scatter counts, a parallel execution id, a routing decision);
``run_events`` one row per redrive or retune of a run. The schema is versioned
(``PRAGMA user_version``, :data:`_MIGRATIONS`): an older file is migrated when opened.

Connections outlive a :class:`RunRecords`: :meth:`RunRecords.close` hands them to a small
per-process pool (:class:`_Pool`, keyed by the file's path and checked against its inode)
that the next :class:`RunRecords` of the same file takes them from. The last connection of
a WAL database to close checkpoints it and deletes the WAL, and the next open recreates it:
four ``fdatasync`` calls per run that the pool spares. Pooled connections are closed at
exit (which checkpoints), and are never used in a forked child.
"""

from __future__ import annotations

import atexit
import getpass
import json
import operator
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..errors import FlowStoneError, NotFound, StorageError
from ..processes import pid_alive

__all__ = ["RunRecord", "RunRecords", "RunStatus", "StepRecord", "plain_steps"]

RunStatus = Literal["running", "succeeded", "failed", "cancelled"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, status TEXT NOT NULL, "
    "what TEXT NOT NULL, assets TEXT NOT NULL, partitions TEXT, user TEXT, host TEXT, "
    "pid INTEGER, created_at REAL NOT NULL, updated_at REAL NOT NULL, "
    "finished_at REAL, attempts INTEGER NOT NULL DEFAULT 1, error TEXT)",
    "CREATE INDEX IF NOT EXISTS runs_by_what ON runs (what, status)",
    "CREATE INDEX IF NOT EXISTS runs_by_time ON runs (created_at)",
    "CREATE TABLE IF NOT EXISTS steps (run_id TEXT NOT NULL, asset TEXT NOT NULL, "
    "partition TEXT NOT NULL, status TEXT NOT NULL, started_at REAL, finished_at REAL, "
    "error TEXT, details TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (run_id, asset, partition))",
)
#: The WAL is truncated back to this size when it is checkpointed (it is reused, not
#: deleted, while a pooled connection keeps it open).
_JOURNAL_SIZE_LIMIT = 4 << 20
#: Versioned migrations over the base schema; ``PRAGMA user_version`` says how many of them
#: a file has. 1: the base schema. 2: ``run_events``, each redrive and retune of a run.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (),
    (
        "CREATE TABLE IF NOT EXISTS run_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "run_id TEXT NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL, details TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS run_events_by_run ON run_events (run_id, kind, seq)",
    ),
)
EventKind = Literal["redrive", "retune"]
_RUN_COLUMNS = (
    "run_id, status, assets, partitions, user, host, pid, created_at, updated_at, "
    "finished_at, attempts, error"
)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One ``(asset, partition)`` of a run: ``running``, ``succeeded``, ``reused``, ``failed``."""

    asset: str
    partition: str
    status: str
    started_at: float | None = None
    finished_at: float | None = None
    error: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run: who, what, when, and its outcome."""

    run_id: str
    status: RunStatus
    assets: list[str]
    partitions: list[str] | None
    user: str | None
    host: str | None
    pid: int | None
    created_at: float
    updated_at: float
    finished_at: float | None
    attempts: int
    error: dict[str, Any] | None
    steps: tuple[StepRecord, ...] = ()
    redrives: tuple[dict[str, Any], ...] = ()
    retunes: tuple[dict[str, Any], ...] = ()

    @property
    def finished(self) -> bool:
        """Whether the run ended (succeeded, failed or cancelled)."""
        return self.status != "running"

    def owner_alive(self) -> bool:
        """Whether the process that runs it is alive on this machine (never for finished)."""
        if self.finished or self.pid is None or self.host != socket.gethostname():
            return False
        if self.pid == os.getpid():
            return True
        return pid_alive(self.pid)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe form (for ``runs show --format json``)."""
        skip = ("steps", "redrives", "retunes")
        data = {name: getattr(self, name) for name in self.__slots__ if name not in skip}
        data["steps"] = [{n: getattr(s, n) for n in s.__slots__} for s in self.steps]
        data["redrives"] = [dict(r) for r in self.redrives]
        data["retunes"] = [dict(r) for r in self.retunes]
        return data


def what_key(assets: Sequence[str], partitions: Sequence[str] | None) -> str:
    """Return the identity of a request: its assets and partition keys, order ignored."""
    parts = None if partitions is None else sorted(partitions)
    return json.dumps([sorted(assets), parts], separators=(",", ":"))


class _Pool:
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


_POOL = _Pool()
#: Pooled connections a forked child inherited: kept, never used nor closed.
_ABANDONED: list[tuple[str, tuple[int, int], sqlite3.Connection]] = []
atexit.register(_POOL.close)


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
                for statement in _SCHEMA:
                    conn.execute(statement)
                _migrate(conn, self.path)

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
            conn = sqlite3.connect(
                self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
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
        parts = None if partitions is None else _dump(list(partitions))
        what = what_key(assets, partitions)
        row: tuple[Any, ...] = (run_id, "running", what, _dump(list(assets)), parts, _user())
        row += (socket.gethostname(), os.getpid(), now, now)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (run_id, status, what, assets, partitions, user, host, pid, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return self.get(run_id)

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
        text = None if error is None else _dump(error.to_dict())
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
            return _with_events(self, _run(found, ()))
        rows = conn.execute(
            "SELECT asset, partition, status, started_at, finished_at, error, details "
            "FROM steps WHERE run_id = ? ORDER BY COALESCE(started_at, 0), asset, partition",
            (run_id,),
        ).fetchall()
        return _with_events(self, _run(found, tuple(_step(s) for s in rows)))

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
        return [_run(row, ()) for row in rows]

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
            "SELECT asset, partition, status, started_at, finished_at, error, details "
            "FROM steps WHERE run_id = ? ORDER BY COALESCE(started_at, 0), asset, partition "
            "LIMIT ? OFFSET ?",
            (run_id, limit, offset),
        )
        return [_step(row) for row in rows]

    def list(self, limit: int = 20) -> list[RunRecord]:
        """Return the newest ``limit`` runs, newest first, without their steps."""
        rows = (
            self._conn()
            .execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC LIMIT ?", (limit,))
            .fetchall()
        )
        return [_run(row, ()) for row in rows]

    # -- redrives and retunes ----------------------------------------------------------

    def add_event(self, run_id: str, kind: EventKind, details: Mapping[str, Any]) -> int:
        """Record a redrive or a retune of run ``run_id``; return its sequence number.

        Raises:
            NotFound: no such run.
        """
        self.get(run_id, steps=False)
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO run_events (run_id, kind, at, details) VALUES (?, ?, ?, ?)",
                (run_id, kind, time.time(), _dump(dict(details))),
            )
            return int(cursor.lastrowid or 0)

    def update_event(self, seq: int, details: Mapping[str, Any]) -> None:
        """Merge ``details`` into event ``seq`` (a redrive's outcome once it ends)."""
        with self._write() as conn:
            row = conn.execute("SELECT details FROM run_events WHERE seq = ?", (seq,)).fetchone()
            if row is not None:
                merged = _dump({**json.loads(row[0]), **dict(details)})
                conn.execute("UPDATE run_events SET details = ? WHERE seq = ?", (merged, seq))

    def events(self, run_id: str, kind: EventKind) -> tuple[dict[str, Any], ...]:
        """Return run ``run_id``'s redrives or retunes, oldest first, each with its ``seq``
        and ``at`` (epoch seconds) over its details."""
        rows = self._conn().execute(
            "SELECT seq, at, details FROM run_events WHERE run_id = ? AND kind = ? ORDER BY seq",
            (run_id, kind),
        )
        return tuple({"seq": seq, "at": at, **json.loads(details)} for seq, at, details in rows)

    def tuning(self, run_id: str) -> tuple[int, dict[str, Any]] | None:
        """Return the latest retune of run ``run_id`` as ``(seq, details)``, or ``None``
        (one indexed lookup: scatter runners poll it between batches)."""
        row = (
            self._conn()
            .execute(
                "SELECT seq, details FROM run_events WHERE run_id = ? AND kind = 'retune' "
                "ORDER BY seq DESC LIMIT 1",
                (run_id,),
            )
            .fetchone()
        )
        return None if row is None else (int(row[0]), json.loads(row[1]))

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
            merged = _dump({**json.loads(old), **dict(details or {})})
            text = None if error is None else _dump(error.to_dict())
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
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO steps (run_id, asset, partition, status, started_at, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, asset, partition) DO UPDATE "
                "SET status = excluded.status, finished_at = excluded.finished_at, error = NULL",
                [(run_id, *step) for step in steps],
            )

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
                "SELECT asset, partition, status, started_at, finished_at, error, details "
                "FROM steps WHERE run_id = ? AND asset = ? AND partition = ?",
                (run_id, asset, partition),
            )
            .fetchone()
        )
        return None if row is None else _step(row)


def plain_steps(rows: Iterable[tuple[str, str, str, float, float]]) -> tuple[StepRecord, ...]:
    """Return the records :meth:`RunRecords.steps_finished` leaves for ``rows`` (written in
    this order to a run without other step records), in the order :meth:`RunRecords.get`
    lists them: a step written again keeps its first start and takes the last outcome."""
    rows = list(rows)
    if len({(row[0], row[1]) for row in rows}) < len(rows):  # some written again
        by_step: dict[tuple[str, str], tuple[str, str, str, float, float]] = {}
        for row in rows:
            old = by_step.get((row[0], row[1]))
            by_step[row[0], row[1]] = row if old is None else (*row[:3], old[3], row[4])
        rows = list(by_step.values())
    rows.sort(key=_STEP_ORDER)
    return tuple([_plain_step(*row) for row in rows])


_STEP_ORDER = operator.itemgetter(3, 0, 1)  # started, asset, partition: as get() orders
_STEP_FIELDS = ("asset", "partition", "status", "started_at", "finished_at", "error", "details")
assert StepRecord.__slots__ == _STEP_FIELDS, "_plain_step sets every field"
_s0, _s1, _s2, _s3, _s4, _s5, _s6 = (getattr(StepRecord, name).__set__ for name in _STEP_FIELDS)


def _plain_step(
    asset: str, partition: str, status: str, started: float, finished: float
) -> StepRecord:
    """Return ``StepRecord(asset, partition, status, started, finished)`` built through its
    slots: half the cost of the frozen dataclass's ``__init__``, once per step of a run."""
    step: StepRecord = object.__new__(StepRecord)
    _s0(step, asset)
    _s1(step, partition)
    _s2(step, status)
    _s3(step, started)
    _s4(step, finished)
    _s5(step, None)
    _s6(step, {})
    return step


def _with_events(records: RunRecords, record: RunRecord) -> RunRecord:
    redrives = records.events(record.run_id, "redrive")
    retunes = records.events(record.run_id, "retune")
    if redrives or retunes:
        record = replace(record, redrives=redrives, retunes=retunes)
    return record


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations a file lacks (in the caller's write transaction)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(_MIGRATIONS):
        raise StorageError(
            f"Run records {str(path)!r} are at schema version {version}, newer than this "
            f"host's {len(_MIGRATIONS)}: upgrade flowstone-host.",
            path=str(path),
        )
    for number, statements in enumerate(_MIGRATIONS, start=1):
        if number > version:
            for statement in statements:
                conn.execute(statement)
    if version < len(_MIGRATIONS):
        conn.execute(f"PRAGMA user_version = {len(_MIGRATIONS)}")


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=repr)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return None


def _run(row: Sequence[Any], steps: tuple[StepRecord, ...]) -> RunRecord:
    run_id, status, assets, partitions, user, host, pid, created, updated, finished = row[:10]
    attempts, error = row[10:]
    return RunRecord(
        run_id,
        status,
        json.loads(assets),
        None if partitions is None else json.loads(partitions),
        user,
        host,
        pid,
        created,
        updated,
        finished,
        attempts,
        None if error is None else json.loads(error),
        steps,
    )


def _step(row: Sequence[Any]) -> StepRecord:
    asset, partition, status, started, finished, error, details = row
    parsed_error = None if error is None else json.loads(error)
    # Most steps (every plain one) carry no details: no parse for those.
    parsed = {} if details == "{}" else json.loads(details)
    return StepRecord(asset, partition, status, started, finished, parsed_error, parsed)
