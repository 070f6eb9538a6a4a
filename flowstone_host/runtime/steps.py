"""One run's materialization of its steps: load inputs, compute, store, record.

A :class:`Run` is what every kind of asset shares while it runs: the leased snapshot, the
callables policy, the run records and the progress observer. Plain assets are computed
here; scatter, parallel and routing assets hand over to their modules. Every IO manager
call goes through the error boundary inside an ``io.load`` / ``io.store`` span, and every
step runs in a ``materialize`` span.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn

from ..boundary import call
from ..callables import CallablePolicy
from ..errors import FlowStoneError, normalize
from ..manifest.model import Asset, thaw
from ..partitions import partition_key
from ..registry import Entry, Snapshot
from ..telemetry import listening
from . import partitioning
from .context import RunContext
from .failures import Cancelled
from .plan import Step, plan
from .progress import Progress, tells_steps
from .records import RunRecords, StepRecord, plain_steps
from .spans import IO_LOAD, IO_STORE, MATERIALIZE, metadata, traced

__all__ = ["Run"]

_DONE = frozenset({"succeeded", "reused"})
#: The key of ``None`` (an unpartitioned step: the common case, so computed once).
NONE_KEY = partition_key(None)
#: The options an IO manager gets for an asset without ``io_config`` (never mutated:
#: it is passed as ``**opts``, which copies it).
_NO_OPTS: dict[str, Any] = {}
#: Longest time a plain step's record waits in memory before it is written.
FLUSH_S = 0.5


@dataclass
class Run:
    """The state one run shares across its steps.

    Attributes:
        run_id: The run.
        snapshot: The leased snapshot: every plugin and asset of this run comes from it.
        policy: The host's callables policy; every callable is resolved through it.
        records: Where steps are recorded.
        progress: Told what happens.
        force: Materialize steps again even when their output exists (not steps this run
            already finished: a resumed run keeps them).
    """

    run_id: str
    snapshot: Snapshot
    policy: CallablePolicy
    records: RunRecords
    progress: Progress = field(default_factory=Progress)
    force: bool = False
    finished: set[tuple[str, str]] = field(default_factory=set)
    _callables: dict[str, Callable[..., Any]] = field(default_factory=dict)
    # Per asset name: its IO manager entry and thawed config (the snapshot is leased for
    # the run, so neither changes during it).
    _io_by_asset: dict[str, tuple[Entry, Mapping[str, Any], Asset]] = field(default_factory=dict)
    _io_entries: dict[str, Entry] = field(default_factory=dict)
    _resources: Mapping[str, Any] | None = None
    # Plain steps that succeeded or were reused, written in one transaction at most every
    # FLUSH_S and before anything else is recorded: a kill loses at most their records,
    # and a resumed run then finds their outputs stored and reuses them.
    _pending: list[tuple[str, str, str, float, float]] = field(default_factory=list)
    _flush_due: float = field(default_factory=lambda: time.time() + FLUSH_S)
    # What flush() wrote, batch by batch, while only plain steps were recorded: a fresh
    # run's result lists them without reading them back (see written()).
    _written: list[list[tuple[str, str, str, float, float]]] | None = field(default_factory=list)
    # Set to stop the run: checked before each step and between scatter batches.
    cancelled: threading.Event = field(default_factory=threading.Event)
    # Whether the progress observer does anything with step events (see __post_init__).
    _tells: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        self._tells = tells_steps(self.progress)

    def flush(self) -> None:
        """Write the buffered plain-step records."""
        pending, self._pending = self._pending, []
        self.records.steps_finished(self.run_id, pending)
        if self._written is not None and pending:
            self._written.append(pending)
        self._flush_due = time.time() + FLUSH_S

    def written(self) -> tuple[StepRecord, ...] | None:
        """Return the step records this object wrote, as the run records list them when
        no other process wrote to this run: ``None`` once it wrote other records than
        plain steps' outcomes (a failure, a scatter's, parallel's or routing's)."""
        if self._written is None:
            return None
        return plain_steps(row for batch in self._written for row in batch)

    def _buffer(self, done: tuple[str, str], status: str, started: float) -> None:
        now = time.time()
        self._pending.append((done[0], done[1], status, started, now))
        if not self._flush_due - FLUSH_S <= now < self._flush_due:  # due, or the clock went back
            self.flush()

    @property
    def resources(self) -> Mapping[str, Any]:
        """Resource handles of the leased snapshot, by name (read-only, built once)."""
        if self._resources is None:
            handles = {entry.name: entry.handle for entry in self.snapshot.resources}
            self._resources = MappingProxyType(handles)
        return self._resources

    def callable(self, ref: str) -> Callable[..., Any]:
        """Return the function ``ref`` names, under the host's allow-list (cached per run)."""
        function = self._callables.get(ref)
        if function is None:
            function = self._callables[ref] = self.policy.resolve(ref)
        return function

    def ensure(self, targets: Iterable[Step]) -> None:
        """Materialize ``targets`` and what they read, in order; reuse what exists."""
        for name, partition in plan(self.snapshot.assets, targets):
            self.step(self.snapshot.assets.resolve(name), partition)

    # -- one step ----------------------------------------------------------------------

    def step(self, asset: Asset, partition: Any) -> None:
        """Materialize ``(asset, partition)`` unless it may be reused."""
        key = NONE_KEY if partition is None else partition_key(partition)
        done = (asset.name, key)
        if done in self.finished:
            return
        if self.cancelled.is_set():
            raise Cancelled(f"Run {self.run_id!r} was cancelled.", run_id=self.run_id)
        started = time.time()
        entry, opts = self._io(asset)
        if self.force:
            reusable = self._reusable(asset, partition, key)
        else:  # what _reusable does then, without its hops
            reusable = call(entry, "exists", asset.name, partition, **opts)
        status = "reused" if reusable else "succeeded"
        if reusable:
            self._buffer(done, status, started)
        elif asset.scatter is None and asset.parallel is None and asset.routing is None:
            self._plain(asset, partition, key, entry, opts)
            self._buffer(done, status, started)
        else:  # their modules record details as they go
            self._shaped(asset, partition, key)
        self.finished.add(done)
        if self._tells:
            self.progress.step_finished(asset.name, partition, status)

    def _reusable(self, asset: Asset, partition: Any, key: str) -> bool:
        if self.force:
            self.flush()
            prior = self.records.step(self.run_id, asset.name, key)
            if prior is None or prior.status not in _DONE:
                return False
        return bool(self.exists(asset, partition))

    def _plain(
        self, asset: Asset, partition: Any, key: str, entry: Entry, opts: Mapping[str, Any]
    ) -> None:
        """Materialize a plain asset, its record left to the caller. When no span is
        traced, :meth:`_compute` and :meth:`store` are done here: the same calls in the
        same order, through the boundary, in fewer hops."""
        if self._tells:
            self.progress.step_started(asset.name, partition)
        try:
            if listening(MATERIALIZE) or listening(IO_LOAD) or listening(IO_STORE):
                self._compute_and_store(asset, partition)
                return
            graph = self.snapshot.assets
            inputs: dict[str, Any] = {}
            for name in asset.deps:
                dep = graph.resolve(name)
                if dep.partitions is None:
                    dep_entry, dep_opts = self._io(dep)
                    inputs[name] = call(dep_entry, "load", name, None, **dep_opts)
                else:
                    inputs[name] = self._input(dep, partition)
            ctx = RunContext.create(self.run_id, asset.name, partition, self.resources)
            if asset.compute is None:
                raise _no_compute(asset)
            function = self._callables.get(asset.compute) or self.callable(asset.compute)
            call(entry, "store", asset.name, function(ctx, **inputs), partition, **opts)
        except Exception as exc:
            self._failed(asset, partition, key, exc)

    def _shaped(self, asset: Asset, partition: Any, key: str) -> None:
        """Materialize a scatter, parallel or routing asset, recorded as it goes."""
        self.flush()
        self._written = None
        self.records.step_started(self.run_id, asset.name, key)
        self.progress.step_started(asset.name, partition)
        try:
            self._compute_and_store(asset, partition)
        except Exception as exc:
            self._failed(asset, partition, key, exc)
        self.records.step_finished(self.run_id, asset.name, key, "succeeded")

    def _compute_and_store(self, asset: Asset, partition: Any) -> None:
        if listening(MATERIALIZE):
            with traced(MATERIALIZE, metadata(self.run_id, asset.name, partition)):
                self.store(asset, partition, self._compute(asset, partition))
        else:
            self.store(asset, partition, self._compute(asset, partition))

    def _failed(self, asset: Asset, partition: Any, key: str, exc: Exception) -> NoReturn:
        """Record the step failed (or cancelled) by ``exc``; raise ``exc`` normalized."""
        error = normalize(exc)
        self.flush()
        self._written = None
        status = "cancelled" if isinstance(error, Cancelled) else "failed"
        self.records.step_finished(self.run_id, asset.name, key, status, error)
        self.progress.step_finished(asset.name, partition, status)
        raise error from (None if error is exc else exc)

    def _compute(self, asset: Asset, partition: Any) -> Any:
        inputs = self.inputs(asset, partition)
        ctx = self.context(asset, partition)
        if asset.scatter is not None:
            from .scatter import run_scatter

            return run_scatter(self, asset, partition, inputs, ctx)
        if asset.parallel is not None:
            from .parallel import run_parallel

            return run_parallel(self, asset, partition, inputs, ctx)
        if asset.routing is not None:
            from .routing import run_routing

            return run_routing(self, asset, partition, inputs, ctx)
        if asset.compute is None:
            raise _no_compute(asset)
        return self.callable(asset.compute)(ctx, **inputs)

    def context(self, asset: Asset, partition: Any) -> RunContext:
        """Return the context of ``(asset, partition)`` in this run."""
        return RunContext.create(self.run_id, asset.name, partition, self.resources)

    # -- IO ----------------------------------------------------------------------------

    def inputs(self, asset: Asset, partition: Any) -> dict[str, Any]:
        """Load each dependency of ``(asset, partition)``, keyed by its name; a fan-in
        dependency as ``{partition value: value}``."""
        graph = self.snapshot.assets
        return {name: self._input(graph.resolve(name), partition) for name in asset.deps}

    def _input(self, dep: Asset, partition: Any) -> Any:
        """Load what a step at ``partition`` reads of ``dep``."""
        if dep.partitions is None:  # read at None: the common case, no planning needed
            return self.load(dep, None)
        if partitioning.fan_in(dep, partition):
            return {p: self.load(dep, p) for p in partitioning.expand(dep)}
        return self.load(dep, partitioning.reads(dep, partition)[0])

    def _io(self, asset: Asset) -> tuple[Entry, Mapping[str, Any]]:
        found = self._io_by_asset.get(asset.name)
        if found is None or found[2] is not asset:
            entry = self._io_entries.get(asset.io_manager)
            if entry is None:
                entry = self.snapshot.io_managers.resolve(asset.io_manager)
                self._io_entries[asset.io_manager] = entry
            config = asset.resolved_io_config
            opts = thaw(config) if config else _NO_OPTS
            found = self._io_by_asset[asset.name] = (entry, opts, asset)
        return found[0], found[1]

    def load(self, asset: Asset, partition: Any) -> Any:
        """Load ``(asset, partition)`` through its IO manager."""
        entry, opts = self._io(asset)
        if not listening(IO_LOAD):  # the boundary still normalizes and names errors
            return call(entry, "load", asset.name, partition, **opts)
        with traced(IO_LOAD, metadata(self.run_id, asset.name, partition, io_manager=entry.name)):
            return call(entry, "load", asset.name, partition, **opts)

    def store(self, asset: Asset, partition: Any, value: Any) -> None:
        """Store ``value`` as ``(asset, partition)`` through its IO manager."""
        entry, opts = self._io(asset)
        if not listening(IO_STORE):
            call(entry, "store", asset.name, value, partition, **opts)
            return
        meta = metadata(self.run_id, asset.name, partition, io_manager=entry.name)
        with traced(IO_STORE, meta):
            call(entry, "store", asset.name, value, partition, **opts)

    def exists(self, asset: Asset, partition: Any) -> bool:
        """Whether ``(asset, partition)`` is stored."""
        entry, opts = self._io(asset)
        return bool(call(entry, "exists", asset.name, partition, **opts))


def _no_compute(asset: Asset) -> FlowStoneError:
    return FlowStoneError(
        "config_error", f"Asset {asset.name!r} has no compute callable.", asset=asset.name
    )
