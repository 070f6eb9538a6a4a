"""Plugins to run the conformance kit against: small correct ones, and broken variants.

Each broken variant subclasses a correct one and changes one method, so a kit test that
fails on it fails because of that one bug. The correct ones are written from the contract
docstrings alone, independent of the built-in plugins.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from flowstone_host import (
    BarrierStatus,
    Batch,
    Conflict,
    ExecutionStatus,
    Health,
    IOManager,
    ItemReader,
    NotFound,
    ParallelCoordinator,
    Resource,
    RoutingCoordinator,
    ScatterCoordinator,
    ValidationError,
    partition_key,
)
from flowstone_host.contracts import check_tolerated, threshold_exceeded
from flowstone_host.partitions import parse_partition_key

# --- IO managers -------------------------------------------------------------------------


class DictIOManager(IOManager):
    """Correct: values in a dict keyed by canonical partition key."""

    contract_version = "1.0.0"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._lock = threading.Lock()
        self._data: dict[tuple[str, str], Any] = {}

    def load(self, asset: str, partition: Any, **opts: Any) -> Any:
        try:
            return self._data[asset, partition_key(partition)]
        except KeyError:
            raise NotFound(f"Nothing stored for asset {asset!r}, {partition!r}") from None

    def store(self, asset: str, data: Any, partition: Any, **opts: Any) -> None:
        with self._lock:
            self._data[asset, partition_key(partition)] = data

    def exists(self, asset: str, partition: Any, **opts: Any) -> bool:
        return (asset, partition_key(partition)) in self._data

    def delete(self, asset: str, partition: Any, **opts: Any) -> None:
        with self._lock:
            self._data.pop((asset, partition_key(partition)), None)

    def list_partitions(self, asset: str, **opts: Any) -> list[Any]:
        with self._lock:
            return [parse_partition_key(key) for name, key in self._data if name == asset]


class StaleLoadIOManager(DictIOManager):
    """Broken: a read-through cache that keeps the first value it loaded."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._cache: dict[tuple[str, str], Any] = {}

    def load(self, asset: str, partition: Any, **opts: Any) -> Any:
        key = (asset, partition_key(partition))
        if key not in self._cache:
            self._cache[key] = super().load(asset, partition)
        return self._cache[key]


class DeleteMissingRaisesIOManager(DictIOManager):
    """Broken: deleting a partition never stored raises NotFound."""

    def delete(self, asset: str, partition: Any, **opts: Any) -> None:
        self.load(asset, partition)
        super().delete(asset, partition)


class StringPartitionsIOManager(DictIOManager):
    """Broken: ``list_partitions`` returns canonical keys instead of partition values."""

    def list_partitions(self, asset: str, **opts: Any) -> list[Any]:
        return [key for name, key in self._data if name == asset]


class AnyPartitionExistsIOManager(DictIOManager):
    """Broken: ``exists`` is true when any partition of the asset is stored."""

    def exists(self, asset: str, partition: Any, **opts: Any) -> bool:
        return any(name == asset for name, _ in self._data)


# --- item readers ------------------------------------------------------------------------


class ListReader(ItemReader):
    """Correct: reads ``config["items"]``; its checkpoint is the offset of the next item."""

    contract_version = "1.0.0"

    def __init__(
        self, config: Mapping[str, Any] | None = None, deps: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(config, deps)
        self.items: list[Any] = list(self.config["items"])
        self.offset = 0

    def read(self, batch_size: int) -> Batch:
        if batch_size < 1:
            raise ValidationError(f"batch_size must be at least 1, got {batch_size}")
        batch = self.items[self.offset : self.offset + batch_size]
        self.offset += len(batch)
        return Batch(batch, self.offset >= len(self.items))

    def count(self) -> int | None:
        return len(self.items)

    def checkpoint(self) -> dict[str, Any]:
        return {"offset": self.offset}

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        self.offset = int(checkpoint["offset"])


class LossyCheckpointReader(ListReader):
    """Broken: the checkpoint points one item too far, so a restore loses an item."""

    def checkpoint(self) -> dict[str, Any]:
        return {"offset": self.offset + 1}


class SetCheckpointReader(ListReader):
    """Broken: the checkpoint holds a set, which JSON cannot carry."""

    def checkpoint(self) -> dict[str, Any]:
        return {"seen": set(range(self.offset))}

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        self.offset = len(checkpoint["seen"])


class OverfullBatchReader(ListReader):
    """Broken: returns one item more than ``batch_size`` asks for."""

    def read(self, batch_size: int) -> Batch:
        return super().read(batch_size + 1)


# --- scatter coordinators ----------------------------------------------------------------


@dataclass
class _Barrier:
    tolerated: dict[str, Any] | None
    keys: set[str] = field(default_factory=set)
    results: dict[str, Any] = field(default_factory=dict)
    completed: int = 0
    failed: int = 0
    final: bool = False
    state: str = "pending"


class CountingScatterCoordinator(ScatterCoordinator):
    """Correct: barriers in a dict, counters updated under one lock."""

    contract_version = "1.0.0"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._lock = threading.Lock()
        self._barriers: dict[str, _Barrier] = {}

    def create_barrier(
        self,
        run_id: str,
        asset: str,
        partition: Any,
        *,
        tolerated_failures: Mapping[str, Any] | None = None,
        **opts: Any,
    ) -> str:
        barrier_id = f"{run_id}/{uuid.uuid4().hex}"
        self._barriers[barrier_id] = _Barrier(check_tolerated(tolerated_failures))
        return barrier_id

    def _get(self, barrier_id: str) -> _Barrier:
        if barrier_id not in self._barriers:
            raise NotFound(f"No barrier {barrier_id!r}")
        return self._barriers[barrier_id]

    def insert_keys(self, barrier_id: str, keys: Iterable[str], *, final: bool = True) -> None:
        with self._lock:
            barrier = self._get(barrier_id)
            if barrier.final:
                raise Conflict(f"Barrier {barrier_id!r} is final")
            barrier.keys.update(keys)
            barrier.final = final
            self._settle(barrier)

    def _settle(self, b: _Barrier) -> str:
        if b.state == "pending":
            if threshold_exceeded(b.failed, len(b.keys), b.tolerated, final=b.final):
                b.state = "threshold_exceeded"
            elif b.final and b.completed + b.failed == len(b.keys):
                b.state = "complete"
        return b.state

    def _is_new(self, b: _Barrier, key: str) -> bool:
        return b.state == "pending" and key not in b.results

    def _record(self, barrier_id: str, key: str, result: Any, succeeded: bool) -> Any:
        with self._lock:
            b = self._get(barrier_id)
            if key not in b.keys:
                raise NotFound(f"Key {key!r} is not in barrier {barrier_id!r}")
            if self._is_new(b, key):
                b.results[key] = (succeeded, result)
                b.completed += succeeded
                b.failed += not succeeded
            return self._settle(b)

    def complete(self, barrier_id: str, key: str, result: Any) -> Any:
        return self._record(barrier_id, key, result, True)

    def fail(self, barrier_id: str, key: str, error: Any) -> Any:
        return self._record(barrier_id, key, error, False)

    def gather(self, barrier_id: str) -> dict[str, Any]:
        with self._lock:
            results = self._get(barrier_id).results.items()
            return {key: value for key, (ok, value) in results if ok}

    def cancel(self, barrier_id: str) -> None:
        with self._lock:
            barrier = self._get(barrier_id)
            barrier.state = "cancelled" if barrier.state == "pending" else barrier.state

    def status(self, barrier_id: str) -> BarrierStatus:
        with self._lock:
            b = self._get(barrier_id)
            return BarrierStatus(b.state, b.completed, b.failed, len(b.keys))  # type: ignore[arg-type]


class DoubleCountingScatterCoordinator(CountingScatterCoordinator):
    """Broken: counts a repeated outcome again (and may complete early because of it)."""

    def _is_new(self, b: _Barrier, key: str) -> bool:
        return b.state == "pending"


class EagerScatterCoordinator(CountingScatterCoordinator):
    """Broken: completes when the keys inserted so far are done, final or not."""

    def _settle(self, b: _Barrier) -> str:
        if b.state == "pending" and b.keys and b.completed + b.failed == len(b.keys):
            b.final = True
        return super()._settle(b)


class CompletingCancelScatterCoordinator(CountingScatterCoordinator):
    """Broken: cancel marks a pending barrier complete instead of cancelled."""

    def cancel(self, barrier_id: str) -> None:
        with self._lock:
            barrier = self._get(barrier_id)
            barrier.state = "complete" if barrier.state == "pending" else barrier.state


class OpenByDefaultScatterCoordinator(CountingScatterCoordinator):
    """Broken: insert_keys leaves the key set open unless told ``final=True``."""

    def insert_keys(self, barrier_id: str, keys: Iterable[str], *, final: bool = False) -> None:
        super().insert_keys(barrier_id, keys, final=final)


# --- parallel coordinators ---------------------------------------------------------------


@dataclass
class _Execution:
    branches: dict[str, str]
    optional: frozenset[str]
    results: dict[str, Any] = field(default_factory=dict)
    joined: list[Any] = field(default_factory=list)


class DictParallelCoordinator(ParallelCoordinator):
    """Correct: executions in a dict; joins serialised by one lock."""

    contract_version = "1.0.0"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._executions: dict[str, _Execution] = {}
        self._join_lock = threading.Lock()

    def create_execution(
        self,
        run_id: str,
        asset: str,
        branches: Sequence[str],
        *,
        optional: Iterable[str] = (),
        **opts: Any,
    ) -> str:
        optional = frozenset(optional)
        if not branches or len(set(branches)) != len(branches) or optional - set(branches):
            raise ValidationError(f"Bad branches {branches!r} (optional {sorted(optional)})")
        execution_id = f"{run_id}/{uuid.uuid4().hex}"
        self._executions[execution_id] = _Execution(dict.fromkeys(branches, "pending"), optional)
        return execution_id

    def _get(self, execution_id: str) -> _Execution:
        if execution_id not in self._executions:
            raise NotFound(f"No execution {execution_id!r}")
        return self._executions[execution_id]

    def schedule_branches(self, execution_id: str) -> list[str]:
        execution = self._get(execution_id)
        pending = [b for b, state in execution.branches.items() if state == "pending"]
        execution.branches.update(dict.fromkeys(pending, "running"))
        return pending

    def _state(self, e: _Execution) -> Any:
        if e.joined:
            return "complete"
        if any(s == "failed" and b not in e.optional for b, s in e.branches.items()):
            return "failed"
        if all(s in ("complete", "failed") for s in e.branches.values()):
            return "ready_for_join"
        return "running" if "running" in e.branches.values() else "pending"

    def _finish(self, execution_id: str, branch: str, state: str, value: Any) -> Any:
        execution = self._get(execution_id)
        if branch not in execution.branches:
            raise NotFound(f"No branch {branch!r} in {execution_id!r}")
        if execution.branches[branch] not in ("complete", "failed"):
            execution.branches[branch] = state
            if state == "complete":
                execution.results[branch] = value
        return self._state(execution)

    def complete_branch(self, execution_id: str, branch: str, result: Any) -> Any:
        return self._finish(execution_id, branch, "complete", result)

    def fail_branch(self, execution_id: str, branch: str, error: Any) -> Any:
        return self._finish(execution_id, branch, "failed", error)

    def execute_join(self, execution_id: str, join_fn: Callable[[Mapping[str, Any]], Any]) -> Any:
        execution = self._get(execution_id)
        with self._join_lock:
            if not execution.joined:
                if self._state(execution) != "ready_for_join":
                    raise Conflict(f"Execution {execution_id!r} is not ready for its join")
                execution.joined.append(join_fn(dict(execution.results)))
            return execution.joined[0]

    def status(self, execution_id: str) -> ExecutionStatus:
        execution = self._get(execution_id)
        return ExecutionStatus(self._state(execution), dict(execution.branches))


class RejoiningParallelCoordinator(DictParallelCoordinator):
    """Broken: runs the join again on every call instead of replaying its result."""

    def execute_join(self, execution_id: str, join_fn: Callable[[Mapping[str, Any]], Any]) -> Any:
        execution = self._get(execution_id)
        execution.joined.clear()
        return super().execute_join(execution_id, join_fn)


class UnlockedJoinParallelCoordinator(DictParallelCoordinator):
    """Broken: checks and records its join without a lock, so racing joins all run."""

    def execute_join(self, execution_id: str, join_fn: Callable[[Mapping[str, Any]], Any]) -> Any:
        execution = self._get(execution_id)
        if not execution.joined:
            if self._state(execution) != "ready_for_join":
                raise Conflict(f"Execution {execution_id!r} is not ready for its join")
            execution.joined.append(join_fn(dict(execution.results)))
        return execution.joined[0]


# --- routing coordinators ----------------------------------------------------------------


class DictRoutingCoordinator(RoutingCoordinator):
    """Correct: decisions in two dicts (by place and by id)."""

    contract_version = "1.0.0"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._ids: dict[tuple[str, str, str], str] = {}
        self._decisions: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def record(
        self,
        run_id: str,
        router_asset: str,
        partition: Any,
        selected_branch: str | None,
        **opts: Any,
    ) -> str:
        place = (run_id, router_asset, partition_key(partition))
        with self._lock:
            if place in self._ids:
                recorded = self._decisions[self._ids[place]]["selected_branch"]
                if recorded != selected_branch:
                    raise Conflict(f"Router {router_asset!r} already chose {recorded!r}")
                return self._ids[place]
            return self._write(place, selected_branch)

    def _write(self, place: tuple[str, str, str], selected_branch: str | None) -> str:
        decision_id = self._ids.get(place) or uuid.uuid4().hex
        self._ids[place] = decision_id
        run_id, router_asset, key = place
        self._decisions[decision_id] = {
            "decision_id": decision_id,
            "run_id": run_id,
            "router_asset": router_asset,
            "partition": key,
            "selected_branch": selected_branch,
        }
        return decision_id

    def get(self, run_id: str, router_asset: str, partition: Any) -> str | None:
        place = (run_id, router_asset, partition_key(partition))
        if place not in self._ids:
            raise NotFound(f"No decision of {router_asset!r} in run {run_id!r}")
        return self._decisions[self._ids[place]]["selected_branch"]  # type: ignore[no-any-return]

    def to_output(self, decision_id: str) -> dict[str, Any]:
        if decision_id not in self._decisions:
            raise NotFound(f"No decision {decision_id!r}")
        return dict(self._decisions[decision_id])


class OverwritingRoutingCoordinator(DictRoutingCoordinator):
    """Broken: a new branch silently replaces the recorded decision."""

    def record(
        self,
        run_id: str,
        router_asset: str,
        partition: Any,
        selected_branch: str | None,
        **opts: Any,
    ) -> str:
        return self._write((run_id, router_asset, partition_key(partition)), selected_branch)


# --- resources ---------------------------------------------------------------------------


class Connection:
    """A stand-in for a client handle."""

    def __init__(self) -> None:
        self.open = True

    def close(self) -> None:
        if not self.open:
            raise RuntimeError("already closed")
        self.open = False


class ConnectionResource(Resource):
    """Correct: hands out a connection; teardown and health tolerate a broken one."""

    contract_version = "1.0.0"
    config_schema: ClassVar[Mapping[str, Any]] = {"name": {"type": "string", "default": "conn"}}

    def setup(self, config: Mapping[str, Any]) -> Connection:
        return Connection()

    def teardown(self, resource: Connection) -> None:
        if resource.open:
            resource.close()

    def health_check(self, resource: Connection | None = None) -> Health | None:
        if resource is None:
            return None
        return Health.ok() if resource.open else Health.unhealthy("connection closed")


class StrictTeardownResource(ConnectionResource):
    """Broken: teardown of an already-broken handle raises."""

    def teardown(self, resource: Connection) -> None:
        resource.close()


class RaisingHealthResource(ConnectionResource):
    """Broken: health_check raises instead of reporting an unhealthy handle."""

    def health_check(self, resource: Connection | None = None) -> Health | None:
        if resource is not None and not resource.open:
            raise ConnectionError("connection closed")
        return super().health_check(resource)


class ForgetfulJoinParallelCoordinator(DictParallelCoordinator):
    """Broken: a late outcome after the join forgets it, so the execution is no longer
    complete (and is ready for a second join)."""

    def _finish(self, execution_id: str, branch: str, state: str, value: Any) -> Any:
        execution = self._get(execution_id)
        if execution.joined and branch in execution.branches:
            execution.joined.clear()
        return super()._finish(execution_id, branch, state, value)


class NeverRunningParallelCoordinator(DictParallelCoordinator):
    """Broken: reports ``pending`` until the execution is ready or failed."""

    def _state(self, e: _Execution) -> Any:
        state = super()._state(e)
        return "pending" if state == "running" else state
