"""Runs started through the daemon: each on its own thread, on the snapshot leased at start.

:class:`DaemonRuns` is what the admin API's ``/runs`` endpoints (:mod:`.runs_api`) call.
``start`` leases the host's current snapshot, checks the request against it (unknown
assets, partitions or ranges are refused before anything runs), picks the run id and hands
both to a new thread that calls :func:`~flowstone_host.runtime.materialize`; the lease is
released when the run ends, so a reload that replaces what the run uses (an IO manager, a
resource) tears the old instance down only after it. At most ``max_in_flight`` runs go at
once. ``cancel`` sets the run's cancel event: the runtime stops before its next step or
scatter batch and records the run ``cancelled``.

The documents served are built by :mod:`.run_documents`, a bounded page at a time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import Conflict, FlowStoneError, NotFound, Unavailable, ValidationError, normalize
from ..manifest.host_config import HostConfig
from ..registry import Snapshot
from ..runtime import partitioning
from ..runtime.materialize import Leasing, materialize
from ..runtime.records import RunRecords
from ..runtime.redrive import retune
from .run_documents import run_document, runs_page

__all__ = ["MAX_IN_FLIGHT", "DaemonRuns", "RunRequest", "RunsAPI", "TooManyRuns"]

log = logging.getLogger(__name__)

#: Runs a daemon executes at once by default; one more is refused (429).
MAX_IN_FLIGHT = 4
#: Runs that failed before they were recorded (an id run by another process), kept so
#: that ``GET /runs/{id}`` can say why.
_EARLY_FAILURES = 100
_FIELDS = frozenset(
    {"asset", "assets", "partitions", "range", "missing", "concurrency", "force", "fresh", "run_id"}
)


class TooManyRuns(Unavailable):
    """The daemon already executes its limit of runs; try again when one ends (429)."""


class RunsAPI(Protocol):
    """What the ``/runs`` endpoints need. Every method must be thread-safe."""

    def start(self, request: RunRequest) -> dict[str, Any]:
        """Start a run and return ``{"run_id": ..., "status": "running"}`` at once."""
        ...

    def get(self, run_id: str, *, steps_limit: int, steps_offset: int) -> dict[str, Any]:
        """Return :func:`run_document` of the run (``live`` added)."""
        ...

    def page(
        self, *, limit: int, after: str | None, status: str | None, asset: str | None
    ) -> dict[str, Any]:
        """Return :func:`runs_page`."""
        ...

    def cancel(self, run_id: str) -> dict[str, Any]:
        """Ask a run of this daemon to stop."""
        ...

    def retune(self, run_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Record a retune of a run's scatters; return the recorded event."""
        ...


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What ``POST /runs`` asks for (the body's fields, checked).

    Attributes:
        assets: Target asset names (``asset`` or ``assets`` in the body).
        partitions: Partitions as typed on a command line; ``None``: every one.
        partition_range: ``FIRST..LAST`` (``range`` in the body).
        missing: Only the partitions not stored yet (a backfill).
        concurrency: Partitions run at once.
        force: Materialize again what is stored.
        fresh: Start a new run (what ``POST /runs`` does anyway without ``run_id``).
        run_id: Name the run; an existing one is resumed.
    """

    assets: tuple[str, ...]
    partitions: tuple[str, ...] | None = None
    partition_range: str | None = None
    missing: bool = False
    concurrency: int = 1
    force: bool = False
    fresh: bool = False
    run_id: str | None = None

    @classmethod
    def from_json(cls, body: Any) -> RunRequest:
        """Check a ``POST /runs`` body and return the request it makes.

        Raises:
            ValidationError: not an object, an unknown field, a field of the wrong type, or
                fields that exclude each other; the message names the field.
        """
        if not isinstance(body, dict):
            raise ValidationError('The body is a JSON object, e.g. {"asset": "report"}.')
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise ValidationError(
                f"Unknown field(s) {', '.join(map(repr, unknown))}; a run takes "
                f"{', '.join(sorted(_FIELDS))}."
            )
        assets = _assets(body)
        partitions = body.get("partitions")
        if partitions is not None and not _strings(partitions):
            raise ValidationError("'partitions' is a list of partition names (strings).")
        request = cls(
            assets,
            None if partitions is None else tuple(partitions),
            _typed(body, "range", str),
            bool(_typed(body, "missing", bool)),
            _typed(body, "concurrency", int, default=1),
            bool(_typed(body, "force", bool)),
            bool(_typed(body, "fresh", bool)),
            _typed(body, "run_id", str),
        )
        request._check()
        return request

    def _check(self) -> None:
        if self.partitions and (self.partition_range is not None or self.missing):
            raise ValidationError("Name 'partitions', or ask for a 'range' or 'missing', not both.")
        if self.concurrency < 1:
            raise ValidationError(f"'concurrency' is at least 1 (got {self.concurrency}).")
        if self.fresh and self.run_id is not None:
            raise ValidationError("'fresh' and 'run_id' exclude each other.")
        if self.run_id is not None and not (
            0 < len(self.run_id) <= 64 and self.run_id.isprintable()
        ):
            raise ValidationError("'run_id' is 1 to 64 printable characters.")


def _assets(body: Mapping[str, Any]) -> tuple[str, ...]:
    if ("asset" in body) == ("assets" in body):
        raise ValidationError("Give 'asset' (a name) or 'assets' (a list of names).")
    if "asset" in body:
        if not isinstance(body["asset"], str) or not body["asset"]:
            raise ValidationError("'asset' is an asset name (a string).")
        return (body["asset"],)
    if not _strings(body["assets"]) or not body["assets"]:
        raise ValidationError("'assets' is a non-empty list of asset names (strings).")
    return tuple(body["assets"])


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _typed(body: Mapping[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = body.get(name)
    if value is None:
        return default
    # bool is an int in Python, not in JSON: {"concurrency": true} is refused
    if value is not None and (not isinstance(value, kind) or (kind is int and value is True)):
        raise ValidationError(f"'{name}' is a {kind.__name__}, got {value!r}.", field=name)
    return value


@dataclass
class _Held:
    """A :class:`Leasing` over a snapshot the daemon already leased for the run."""

    config: HostConfig
    snapshot: Snapshot

    @contextlib.contextmanager
    def lease(self) -> Iterator[Snapshot]:
        yield self.snapshot


@dataclass
class _Live:
    cancel: threading.Event = field(default_factory=threading.Event)


class DaemonRuns:
    """The runs a daemon executes, and the records of all of them.

    Args:
        host: The started host (its ``lease()``, ``config.state_dir`` and callables policy).
        max_in_flight: Runs executed at once.
    """

    def __init__(self, host: Leasing, *, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._host = host
        self._max = max_in_flight
        self._lock = threading.Lock()
        self._live: dict[str, _Live] = {}
        self._early: OrderedDict[str, FlowStoneError] = OrderedDict()
        self._records: RunRecords | None = None

    @property
    def records(self) -> RunRecords:
        """The state folder's run records (opened on first use)."""
        with self._lock:
            if self._records is None:
                self._records = RunRecords.in_state_dir(self._host.config.state_dir)
            return self._records

    def close(self) -> None:
        """Ask every run in flight to stop and close the records (the daemon stops)."""
        with self._lock:
            for live in self._live.values():
                live.cancel.set()
            records, self._records = self._records, None
        if records is not None:
            records.close()

    def in_flight(self) -> list[str]:
        """The ids of the runs executing now."""
        with self._lock:
            return list(self._live)

    def start(self, request: RunRequest) -> dict[str, Any]:
        """Lease the current snapshot, check ``request`` on it, start the run's thread.

        Raises:
            TooManyRuns: ``max_in_flight`` runs execute already.
            Conflict: the run ``run_id`` names executes already.
            NotFound: an asset is unknown (the message suggests the nearest).
            ValidationError: a partition or range that the asset does not have.
            Unavailable: the host is stopping.
        """
        run_id = request.run_id or uuid.uuid4().hex[:12]
        live = self._reserve(run_id)
        held = contextlib.ExitStack()
        try:
            snapshot = held.enter_context(self._host.lease())
            _check(snapshot, request)
        except BaseException:
            held.close()
            with self._lock:
                self._live.pop(run_id, None)
            raise
        thread = threading.Thread(
            target=self._execute,
            args=(run_id, request, _Held(self._host.config, snapshot), held, live),
            name=f"flowstone-run-{run_id}",
            daemon=True,
        )
        thread.start()
        log.info("Run %s started: %s", run_id, ", ".join(request.assets), extra={"run_id": run_id})
        return {"run_id": run_id, "status": "running"}

    def _reserve(self, run_id: str) -> _Live:
        with self._lock:
            if run_id in self._live:
                raise Conflict(f"Run {run_id!r} is running already.", run_id=run_id)
            if len(self._live) >= self._max:
                raise TooManyRuns(
                    f"{len(self._live)} runs are in flight, the most this daemon runs at once; "
                    "try again when one ends (GET /runs?status=running).",
                    details={"in_flight": len(self._live), "limit": self._max},
                )
            self._early.pop(run_id, None)
            live = self._live[run_id] = _Live()
            return live

    def _execute(
        self,
        run_id: str,
        request: RunRequest,
        source: _Held,
        held: contextlib.ExitStack,
        live: _Live,
    ) -> None:
        try:
            result = materialize(
                source,
                request.assets,
                request.partitions,
                partition_range=request.partition_range,
                missing=request.missing,
                concurrency=request.concurrency,
                force=request.force,
                fresh=request.fresh,
                run_id=run_id,
                cancel=live.cancel,
            )
            log.info("Run %s %s", run_id, result.status, extra={"run_id": run_id})
        except Exception as exc:  # refused before it was recorded: keep why for GET
            error = normalize(exc)
            log.error("Run %s could not start: %s", run_id, error, extra={"run_id": run_id})
            with self._lock:
                self._early[run_id] = error
                while len(self._early) > _EARLY_FAILURES:
                    self._early.popitem(last=False)
        finally:
            held.close()
            with self._lock:
                self._live.pop(run_id, None)

    def get(self, run_id: str, *, steps_limit: int = 100, steps_offset: int = 0) -> dict[str, Any]:
        """Return the run's document, with ``live``: whether this daemon executes it.

        Raises:
            NotFound: no such run.
        """
        with self._lock:
            live, early = run_id in self._live, self._early.get(run_id)
        try:
            document = run_document(
                self.records, run_id, steps_limit=steps_limit, steps_offset=steps_offset
            )
        except NotFound:
            if live:  # its thread has not recorded it yet
                return {"run_id": run_id, "status": "running", "live": True, "steps": []}
            if early is None:
                raise
            error = early.to_dict()
            return {"run_id": run_id, "status": "failed", "live": False, "error": error}
        # a recorded end is the end, even while its thread is still letting go
        return {**document, "live": live and document["status"] == "running"}

    def page(
        self,
        *,
        limit: int = 20,
        after: str | None = None,
        status: str | None = None,
        asset: str | None = None,
    ) -> dict[str, Any]:
        """Return :func:`runs_page` of the records."""
        return runs_page(self.records, limit=limit, after=after, status=status, asset=asset)

    def cancel(self, run_id: str) -> dict[str, Any]:
        """Ask run ``run_id`` to stop before its next step or scatter batch.

        Raises:
            NotFound: no such run.
            Conflict: it is finished, or executed by another process.
        """
        with self._lock:
            live = self._live.get(run_id)
        if live is not None and not self._ended(run_id):
            live.cancel.set()
            log.info("Run %s: cancel requested", run_id, extra={"run_id": run_id})
            return {"run_id": run_id, "status": "cancelling"}
        record = self.records.get(run_id, steps=False)
        if record.finished:
            raise Conflict(f"Run {run_id!r} is {record.status} already.", run_id=run_id)
        raise Conflict(
            f"Run {run_id!r} is not executed by this daemon (process {record.pid} on "
            f"{record.host} runs it); stop that process to stop it.",
            run_id=run_id,
        )

    def _ended(self, run_id: str) -> bool:  # recorded, while its thread may still let go
        try:
            return self.records.get(run_id, steps=False).finished
        except NotFound:
            return False  # started here, not recorded yet

    def retune(self, run_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Record a retune of run ``run_id`` (``max_concurrency``, ``tolerated_failures``),
        which the process running it applies within a batch; return the recorded event.

        Raises: NotFound (no such run), ValidationError (a bad field or value).
        """
        unknown = set(changes) - {"max_concurrency", "tolerated_failures"}
        if unknown:
            raise ValidationError(
                f"Unknown retune field(s) {sorted(unknown)!r}: give max_concurrency and/or "
                "tolerated_failures ({count: N} or {percent: P})."
            )
        concurrency = changes.get("max_concurrency")
        if concurrency is not None and (type(concurrency) is not int):
            raise ValidationError(f"'max_concurrency' is a whole number (got {concurrency!r}).")
        return retune(
            self.records,
            run_id,
            max_concurrency=concurrency,
            tolerated_failures=changes.get("tolerated_failures"),
        )


def _check(snapshot: Snapshot, request: RunRequest) -> None:
    """Refuse what ``materialize`` would refuse of the request, before anything runs."""
    for name in request.assets:
        asset = snapshot.assets.resolve(name)
        if request.partitions:
            partitioning.parse(asset, request.partitions)
        if request.partition_range is not None:
            partitioning.parse_range(asset, request.partition_range)
