"""What a run reports as it goes: a small observer the command line renders."""

from __future__ import annotations

from typing import Any

__all__ = ["Progress", "tells_steps"]


class Progress:
    """Receives run events; every method does nothing by default. Called on the run's
    thread, so keep them quick."""

    def run_started(self, run_id: str, resumed: bool, attempts: int) -> None:
        """A run began (``resumed``: an earlier attempt of it exists)."""

    def step_started(self, asset: str, partition: Any) -> None:
        """``(asset, partition)`` is being materialized."""

    def step_finished(self, asset: str, partition: Any, status: str) -> None:
        """``(asset, partition)`` ended: ``succeeded``, ``reused`` or ``failed``."""

    def scatter(
        self, asset: str, partition: Any, done: int, failed: int, total: int | None
    ) -> None:
        """Outcomes of a scatter so far (``total`` when the reader knows its count)."""

    def scatter_finished(self, asset: str, partition: Any) -> None:
        """A scatter stopped dispatching (done, failed or cancelled)."""


def tells_steps(progress: Progress) -> bool:
    """Whether ``progress`` does anything when a step starts or ends: whether either
    method is another than :class:`Progress`'s own do-nothing one (a run skips calling
    them otherwise, twice per step)."""
    return any(
        getattr(getattr(progress, name), "__func__", None) is not getattr(Progress, name)
        for name in ("step_started", "step_finished")
    )
