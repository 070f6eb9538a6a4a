"""What the host says of itself: readiness and the ``/status`` document."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..kinds import Kind
from ..loading.timed import abandoned_calls
from .report import DeclarationState, ReloadReport

__all__ = ["readiness", "status_document"]


def readiness(
    last: ReloadReport | None, states: Sequence[DeclarationState], stopping: bool
) -> tuple[bool, list[str]]:
    """Whether the first load finished (``last`` is its report, or a later one) and every
    declared resource has a healthy live instance, and why not."""
    if last is None:
        return False, ["the first load has not finished"]
    reasons = [
        f"resource {s.name!r} is {s.state}: {s.reason}"
        for s in states
        if s.kind == Kind.RESOURCE and not _serving(s)
    ]
    if stopping:
        reasons.insert(0, "the host is stopping")
    return not reasons, reasons


def status_document(
    host: Mapping[str, Any],
    states: Sequence[DeclarationState],
    rejected: Mapping[str, Any],
    last: ReloadReport | None,
    watcher: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Return the JSON-safe, redacted ``/status`` document.

    Args:
        host: The host's own facts (config, process id, generation, runs in flight,
            readiness).
        states: What the host knows of each declaration and asset.
        rejected: The issues of each rejected manifest file, by file.
        last: The last reload's report.
        watcher: The file watcher's state, if one feeds the host.
    """
    return {
        "host": dict(host),
        "declarations": [s.to_dict(rejected) for s in states if s.kind != Kind.ASSET],
        "assets": [s.to_dict(rejected) for s in states if s.kind == Kind.ASSET],
        "rejected_files": [
            {"file": file, "errors": [issue.to_dict() for issue in issues]}
            for file, issues in rejected.items()
        ],
        "last_reload": last.to_dict() if last else None,
        "watcher": watcher,
        "abandoned_calls": [
            {**call, "running_since": _iso(call["running_since"])} for call in abandoned_calls()
        ],
    }


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _serving(state: DeclarationState) -> bool:
    """Whether a live instance serves and its last health check (if any) passed; a failed
    new version whose predecessor still runs healthy does not make the host unready."""
    return state.entry is not None and (state.health is None or state.health.healthy)
