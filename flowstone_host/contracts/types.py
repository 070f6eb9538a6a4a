"""Value types passed across the contracts: frozen, slotted, comparable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "BarrierState",
    "BarrierStatus",
    "Batch",
    "BranchState",
    "ExecutionState",
    "ExecutionStatus",
    "Health",
    "Recorded",
]

BarrierState = Literal["pending", "complete", "threshold_exceeded", "cancelled"]
ExecutionState = Literal["pending", "running", "ready_for_join", "complete", "failed"]
BranchState = Literal["pending", "running", "complete", "failed"]


@dataclass(frozen=True, slots=True)
class Batch:
    """One read from an item reader.

    Attributes:
        items: The items of this batch, in source order (may be empty).
        done: True when the source is exhausted: no item follows this batch.
    """

    items: Sequence[Any]
    done: bool


@dataclass(frozen=True, slots=True)
class BarrierStatus:
    """Where a scatter barrier stands.

    Attributes:
        status: ``pending``, ``complete``, ``threshold_exceeded`` or ``cancelled``.
        completed: Keys that completed.
        failed: Keys that failed.
        total: Keys inserted so far.
    """

    status: BarrierState
    completed: int
    failed: int
    total: int

    @property
    def finished(self) -> bool:
        """Whether the barrier will change no more."""
        return self.status != "pending"


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one :meth:`~flowstone_host.ScatterCoordinator.record_outcomes` call did.

    Attributes:
        state: The barrier's status after recording.
        counted: How many of the given outcomes were new (a duplicate counts 0).
        transitioned: Whether this very call moved the barrier from ``pending`` to a
            finished state; across every caller, exactly one call sees it.
    """

    state: BarrierState
    counted: int
    transitioned: bool


@dataclass(frozen=True, slots=True)
class ExecutionStatus:
    """Where a parallel execution stands.

    Attributes:
        status: ``pending``, ``running``, ``ready_for_join``, ``complete`` or ``failed``.
        branches: Each branch's state: ``pending``, ``running``, ``complete`` or ``failed``.
    """

    status: ExecutionState
    branches: Mapping[str, BranchState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Health:
    """The result of a health check.

    Attributes:
        healthy: Whether the plugin or resource can serve calls.
        reason: Why not, when unhealthy.
        details: JSON-safe facts for operators (latency, versions, ...).
    """

    healthy: bool
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, **details: Any) -> Health:
        """Return a healthy result."""
        return cls(True, None, details)

    @classmethod
    def unhealthy(cls, reason: str, **details: Any) -> Health:
        """Return an unhealthy result with its reason."""
        return cls(False, reason, details)
