"""In-memory scatter, parallel and routing coordinators: exact, thread-safe, one process.

They keep every invariant of their contracts; state lives as long as the plugin instance.
Shared or durable coordination needs the SQLite or PostgreSQL coordinators.

The scatter coordinator also implements the optional durable-run methods for the life of
the process: ``find_barrier``, reader checkpoints, ``finished_keys``, ``retry_failed``,
``set_tolerated_failures``, and a
``record_outcomes`` that records a whole batch under its one lock, so its ``counted`` and
``transitioned`` are exact among any number of threads (every key of the batch is checked
first: an unknown key records nothing).
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..contracts.parallel import (
    ParallelCoordinator,
    check_branches,
    not_ready_for_join,
    unknown_branch,
    unknown_execution,
)
from ..contracts.routing import RoutingCoordinator, no_decision, unknown_decision
from ..contracts.scatter import ScatterCoordinator, check_tolerated, threshold_exceeded
from ..contracts.types import (
    BarrierState,
    BarrierStatus,
    BranchState,
    ExecutionState,
    ExecutionStatus,
    Recorded,
)
from ..errors import Conflict, NotFound
from ..partitions import partition_key

__all__ = ["MemoryParallelCoordinator", "MemoryRoutingCoordinator", "MemoryScatterCoordinator"]


@dataclass
class _Barrier:
    tolerated: dict[str, Any] | None
    keys: set[str] = field(default_factory=set)
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, Any] = field(default_factory=dict)
    final: bool = False
    state: BarrierState = "pending"
    checkpoint: dict[str, Any] | None = None

    def add(self, key: str, succeeded: bool, value: Any) -> bool:
        """Record ``key``'s first outcome while pending; return whether it counted."""
        if self.state != "pending" or key in self.results or key in self.errors:
            return False
        (self.results if succeeded else self.errors)[key] = value
        self.settle()
        return True

    def settle(self) -> BarrierState:
        if self.state == "pending":
            failed, total = len(self.errors), len(self.keys)
            if threshold_exceeded(failed, total, self.tolerated, final=self.final):
                self.state = "threshold_exceeded"
            elif self.final and len(self.results) + failed == total:
                self.state = "complete"
        return self.state


class MemoryScatterCoordinator(ScatterCoordinator):
    """Scatter barriers in a dict, guarded by one lock."""

    contract_version = "1.2.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {}  # no settings: any config key is a typo

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._lock = threading.Lock()
        self._barriers: dict[str, _Barrier] = {}
        self._by_run: dict[tuple[str, str, str], str] = {}

    def create_barrier(
        self,
        run_id: str,
        asset: str,
        partition: Any,
        *,
        tolerated_failures: Mapping[str, Any] | None = None,
        **opts: Any,
    ) -> str:
        barrier = _Barrier(check_tolerated(tolerated_failures))
        place = (str(run_id), str(asset), partition_key(partition))
        barrier_id = f"{run_id}:{uuid.uuid4().hex}"
        with self._lock:
            self._barriers[barrier_id] = barrier
            self._by_run[place] = barrier_id
        return barrier_id

    def _get(self, barrier_id: str) -> _Barrier:
        try:
            return self._barriers[barrier_id]
        except KeyError:
            raise NotFound(f"No scatter barrier {barrier_id!r}.", barrier_id=barrier_id) from None

    def insert_keys(self, barrier_id: str, keys: Iterable[str], *, final: bool = True) -> None:
        new_keys = [str(k) for k in keys]
        with self._lock:
            barrier = self._get(barrier_id)
            if barrier.final:
                raise Conflict(f"Barrier {barrier_id!r} already has its final key set.")
            barrier.keys.update(new_keys)
            barrier.final = final
            barrier.settle()

    @staticmethod
    def _require_keys(barrier_id: str, barrier: _Barrier, keys: Iterable[str]) -> None:
        for key in keys:
            if key not in barrier.keys:
                raise NotFound(
                    f"Key {key!r} was never inserted into barrier {barrier_id!r}.",
                    barrier_id=barrier_id,
                    key=key,
                )

    def _record(self, barrier_id: str, key: str, succeeded: bool, value: Any) -> BarrierState:
        with self._lock:
            barrier = self._get(barrier_id)
            self._require_keys(barrier_id, barrier, (key,))
            barrier.add(key, succeeded, value)
            return barrier.state

    def complete(self, barrier_id: str, key: str, result: Any) -> BarrierState:
        return self._record(barrier_id, str(key), True, result)  # keys are stored as str

    def fail(self, barrier_id: str, key: str, error: Any) -> BarrierState:
        return self._record(barrier_id, str(key), False, error)

    def gather(self, barrier_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._get(barrier_id).results)

    def cancel(self, barrier_id: str) -> None:
        with self._lock:
            barrier = self._get(barrier_id)
            if barrier.state == "pending":
                barrier.state = "cancelled"

    def status(self, barrier_id: str) -> BarrierStatus:
        with self._lock:
            b = self._get(barrier_id)
            return BarrierStatus(b.state, len(b.results), len(b.errors), len(b.keys))

    def record_outcomes(
        self,
        barrier_id: str,
        completed: Mapping[str, Any] | None = None,
        failed: Mapping[str, Any] | None = None,
    ) -> Recorded:
        outcomes = [(str(k), True, v) for k, v in (completed or {}).items()]
        outcomes += [(str(k), False, v) for k, v in (failed or {}).items()]
        with self._lock:
            barrier = self._get(barrier_id)
            self._require_keys(barrier_id, barrier, (key for key, _, _ in outcomes))
            before = barrier.state
            counted = sum(barrier.add(key, ok, value) for key, ok, value in outcomes)
            return Recorded(barrier.state, counted, before != barrier.state)

    def find_barrier(self, run_id: str, asset: str, partition: Any) -> str | None:
        place = (str(run_id), str(asset), partition_key(partition))
        with self._lock:
            return self._by_run.get(place)

    def save_checkpoint(self, barrier_id: str, checkpoint: Mapping[str, Any] | None) -> None:
        saved = None if checkpoint is None else copy.deepcopy(dict(checkpoint))
        with self._lock:
            self._get(barrier_id).checkpoint = saved

    def load_checkpoint(self, barrier_id: str) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self._get(barrier_id).checkpoint)

    def finished_keys(self, barrier_id: str, keys: Iterable[str]) -> set[str]:
        wanted = [str(k) for k in keys]
        with self._lock:
            b = self._get(barrier_id)
            return {key for key in wanted if key in b.results or key in b.errors}

    def retry_failed(self, barrier_id: str) -> list[str]:
        with self._lock:
            b = self._get(barrier_id)
            keys = sorted(b.errors)
            if not keys and b.state not in ("threshold_exceeded", "cancelled"):
                return []
            b.errors.clear()
            b.state, b.checkpoint = "pending", None
            b.settle()
            return keys

    def set_tolerated_failures(
        self, barrier_id: str, tolerated_failures: Mapping[str, Any] | None
    ) -> BarrierState:
        tolerated = check_tolerated(tolerated_failures)
        with self._lock:
            b = self._get(barrier_id)
            if b.state == "pending":
                b.tolerated = tolerated
            return b.settle()


_FINISHED: frozenset[BranchState] = frozenset({"complete", "failed"})


@dataclass
class _Execution:
    branches: dict[str, BranchState]
    optional: frozenset[str]
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, Any] = field(default_factory=dict)
    state: ExecutionState = "pending"
    joined: bool = False
    join_result: Any = None
    join_lock: threading.Lock = field(default_factory=threading.Lock)

    def settle(self) -> ExecutionState:
        if self.state in ("complete", "failed"):
            return self.state
        states = self.branches.values()
        if any(s == "failed" and b not in self.optional for b, s in self.branches.items()):
            self.state = "failed"
        elif all(s in _FINISHED for s in states):
            self.state = "ready_for_join"
        elif any(s != "pending" for s in states):
            self.state = "running"
        return self.state


class MemoryParallelCoordinator(ParallelCoordinator):
    """Parallel executions in a dict, guarded by one lock; joins serialised per execution."""

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {}  # no settings: any config key is a typo

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._lock = threading.Lock()
        self._executions: dict[str, _Execution] = {}

    def create_execution(
        self,
        run_id: str,
        asset: str,
        branches: Sequence[str],
        *,
        optional: Collection[str] = (),
        **opts: Any,
    ) -> str:
        names = check_branches(branches, optional)
        execution_id = f"{run_id}:{uuid.uuid4().hex}"
        with self._lock:
            self._executions[execution_id] = _Execution(
                dict.fromkeys(names, "pending"), frozenset(optional)
            )
        return execution_id

    def _get(self, execution_id: str) -> _Execution:
        try:
            return self._executions[execution_id]
        except KeyError:
            raise unknown_execution(execution_id) from None

    def schedule_branches(self, execution_id: str) -> list[str]:
        with self._lock:
            execution = self._get(execution_id)
            scheduled = [b for b, s in execution.branches.items() if s == "pending"]
            execution.branches.update(dict.fromkeys(scheduled, "running"))
            execution.settle()
            return scheduled

    def _finish(
        self, execution_id: str, branch: str, state: BranchState, value: Any
    ) -> ExecutionState:
        with self._lock:
            execution = self._get(execution_id)
            if branch not in execution.branches:
                raise unknown_branch(execution_id, branch)
            if execution.branches[branch] not in _FINISHED:
                execution.branches[branch] = state
                outcomes = execution.results if state == "complete" else execution.errors
                outcomes[branch] = value
            return execution.settle()

    def complete_branch(self, execution_id: str, branch: str, result: Any) -> ExecutionState:
        return self._finish(execution_id, branch, "complete", result)

    def fail_branch(self, execution_id: str, branch: str, error: Any) -> ExecutionState:
        return self._finish(execution_id, branch, "failed", error)

    def execute_join(self, execution_id: str, join_fn: Callable[[Mapping[str, Any]], Any]) -> Any:
        with self._lock:
            execution = self._get(execution_id)
        with execution.join_lock:
            if execution.joined:
                return execution.join_result
            if execution.state != "ready_for_join":
                raise not_ready_for_join(execution_id, execution.state)
            result = join_fn(dict(execution.results))
            with self._lock:
                execution.join_result, execution.joined = result, True
                execution.state = "complete"
            return result

    def status(self, execution_id: str) -> ExecutionStatus:
        with self._lock:
            execution = self._get(execution_id)
            return ExecutionStatus(execution.state, dict(execution.branches))


@dataclass(frozen=True)
class _Decision:
    decision_id: str
    run_id: str
    router_asset: str
    partition: str
    selected_branch: str | None


class MemoryRoutingCoordinator(RoutingCoordinator):
    """Routing decisions in a dict, guarded by one lock."""

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {}  # no settings: any config key is a typo

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str, str, str], _Decision] = {}
        self._by_id: dict[str, _Decision] = {}

    def record(
        self,
        run_id: str,
        router_asset: str,
        partition: Any,
        selected_branch: str | None,
        **opts: Any,
    ) -> str:
        key = (run_id, router_asset, partition_key(partition))
        with self._lock:
            existing = self._by_key.get(key)
            if existing is not None:
                if existing.selected_branch != selected_branch:
                    raise Conflict(
                        f"Router {router_asset!r} already chose {existing.selected_branch!r} "
                        f"for run {run_id!r}, partition {key[2]!r}; it cannot become "
                        f"{selected_branch!r}.",
                        decision_id=existing.decision_id,
                    )
                return existing.decision_id
            decision = _Decision(uuid.uuid4().hex, *key, selected_branch)
            self._by_key[key] = self._by_id[decision.decision_id] = decision
            return decision.decision_id

    def get(self, run_id: str, router_asset: str, partition: Any) -> str | None:
        key = (run_id, router_asset, partition_key(partition))
        decision = self._by_key.get(key)
        if decision is None:
            raise no_decision(*key)
        return decision.selected_branch

    def to_output(self, decision_id: str) -> dict[str, Any]:
        decision = self._by_id.get(decision_id)
        if decision is None:
            raise unknown_decision(decision_id)
        return {
            "decision_id": decision.decision_id,
            "run_id": decision.run_id,
            "router_asset": decision.router_asset,
            "partition": decision.partition,
            "selected_branch": decision.selected_branch,
        }
