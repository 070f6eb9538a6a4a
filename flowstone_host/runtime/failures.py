"""The errors a run itself raises (plugin errors come normalized from the boundary)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import FlowStoneError

__all__ = ["BranchFailed", "Cancelled", "RunFailure", "ThresholdExceeded"]


class RunFailure(FlowStoneError):
    """An error of the runtime with a fixed code, built from its message."""

    def __init__(
        self, message: str, *, details: Mapping[str, Any] | None = None, **context: Any
    ) -> None:
        super().__init__(type(self).code, message, details=details, **context)


class ThresholdExceeded(RunFailure):
    """A scatter stopped at its tolerated-failure threshold (or was cancelled)."""

    code = "threshold_exceeded"


class BranchFailed(RunFailure):
    """A required branch of a parallel asset failed."""

    code = "branch_failed"


class Cancelled(RunFailure):
    """The run was asked to stop (``POST /runs/{id}/cancel``); it stopped between steps or
    between scatter batches. Its record says ``cancelled``; resuming it continues."""

    code = "cancelled"
