"""The terminal's scatter progress bar (rich): items done, failed, rate and ETA."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["RichProgress"]


def RichProgress(lines: type[Any]) -> Any:
    """Return a progress observer that prints ``lines``' lines and draws scatter bars."""

    class _Rich(lines):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.console = Console()
            self.bars = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[red]{task.fields[failed]} failed"),
                TextColumn("{task.fields[rate]} items/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.tasks: dict[tuple[str, str], tuple[TaskID, float]] = {}
            self.bars.start()

        def scatter(
            self, asset: str, partition: Any, done: int, failed: int, total: int | None
        ) -> None:
            key = (asset, str(partition))
            if key not in self.tasks:
                name = asset if partition is None else f"{asset} [{partition}]"
                task = self.bars.add_task(name, total=total, failed=0, rate="-")
                self.tasks[key] = (task, time.monotonic())
            task, began = self.tasks[key]
            rate = (done + failed) / max(time.monotonic() - began, 1e-6)
            self.bars.update(task, completed=done + failed, failed=failed, rate=f"{rate:,.0f}")

        def close(self) -> None:
            self.bars.stop()

    return _Rich()
