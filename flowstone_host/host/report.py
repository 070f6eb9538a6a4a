"""What a reload did, and what the host knows of each declaration: the shapes /status serves."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import redact
from ..contracts.types import Health
from ..manifest.issues import Issue
from ..manifest.model import Asset, Declaration, thaw
from ..registry import Entry

__all__ = ["Change", "DeclarationState", "ReloadReport"]

Action = Literal["added", "reused", "replaced", "removed", "failed"]
Outcome = Literal["applied", "unchanged", "partial", "error"]
State = Literal["active", "failed", "unhealthy"]


@dataclass(frozen=True, slots=True)
class Change:
    """What one reload did to one declaration or asset.

    ``failed`` with ``kept`` true means the new version failed and the previous one stays
    active.
    """

    kind: str
    name: str
    action: Action
    reason: str | None = None
    kept: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "name": self.name, "action": self.action}
        if self.reason:
            data["reason"] = self.reason
        if self.action == "failed":
            data["previous_version_kept"] = self.kept
        return data


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """The outcome of one reload transaction."""

    trigger: str
    started_at: float
    duration_s: float
    outcome: Outcome
    generation: int
    changes: tuple[Change, ...] = ()
    rejected_files: dict[str, tuple[Issue, ...]] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether everything asked for was applied (or nothing had changed)."""
        return self.outcome in ("applied", "unchanged")

    def count(self, action: Action) -> int:
        """Return how many changes had ``action``."""
        return sum(1 for c in self.changes if c.action == action)

    def summary(self) -> str:
        """Return one line for the log."""
        actions: tuple[Action, ...] = ("added", "replaced", "removed", "failed", "reused")
        counts = ", ".join(f"{n} {a}" for a in actions if (n := self.count(a)))
        rejected = f", {len(self.rejected_files)} file(s) rejected" if self.rejected_files else ""
        took = f"{self.duration_s * 1000:.0f} ms"
        return (
            f"reload ({self.trigger}) {self.outcome} in {took}: {counts or 'no changes'}{rejected}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "trigger": self.trigger,
            "outcome": self.outcome,
            "started_at": _iso(self.started_at),
            "duration_s": round(self.duration_s, 6),
            "generation": self.generation,
            "changes": [c.to_dict() for c in self.changes if c.action != "reused"],
            "reused": self.count("reused"),
            "rejected_files": [
                {"file": file, "errors": [i.to_dict() for i in issues]}
                for file, issues in self.rejected_files.items()
            ],
            **({"error": self.error} if self.error else {}),
        }


@dataclass(slots=True)
class DeclarationState:
    """What the host knows of one declaration (or asset) between reloads.

    Attributes:
        model: The validated declaration or asset.
        entry: The live entry, or ``None`` if it never loaded.
        state: ``active``, ``failed`` (never loaded, or its new version failed while
            ``entry`` is the previous one) or ``unhealthy`` (its last health check failed).
        reason: Why it is failed or unhealthy.
        health: The last health check's result, and when it ran (epoch seconds).
        facts: What is known of its plugin (distribution, version) when this version did
            not load; ``/status`` then shows the running previous version under ``running``.
    """

    model: Declaration | Asset
    entry: Entry | None
    state: State = "active"
    reason: str | None = None
    health: Health | None = None
    checked_at: float | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.model.kind

    def record(self, health: Health | None) -> None:
        """Remember a health check's result and when it ran."""
        if health is not None:
            self.health, self.checked_at = health, time.time()

    @property
    def name(self) -> str:
        return self.model.name

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form for /status, config redacted."""
        # a failed new version whose previous one still runs: describe each on its own
        running = self.entry if self.state == "failed" else None
        meta = dict(self.entry.metadata) if self.entry and not running else dict(self.facts)
        data: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "state": self.state,
            "reason": self.reason,
            "source": str(self.model.source) if self.model.source else None,
        }
        if isinstance(self.model, Declaration):
            data.update(
                plugin=self.model.plugin,
                distribution=meta.get("distribution"),
                version=meta.get("version"),
                plugin_version=meta.get("plugin_version"),
                contract_version=meta.get("contract_version"),
                compatibility=meta.get("compatibility"),
                isolation=meta.get("isolation", self.model.isolation),
                config=redact(thaw(self.model.config), self.model.env_paths),
            )
        else:
            data["io_manager"] = self.model.io_manager
        if running is not None:
            data["running"] = {
                "plugin": running.plugin,
                "distribution": running.metadata.get("distribution"),
                "version": running.metadata.get("version"),
                "source": running.source,
            }
        data["health"] = _health(self.health, self.checked_at)
        return data


def _health(health: Health | None, checked_at: float | None) -> dict[str, Any] | None:
    if health is None:
        return None
    return {"healthy": health.healthy, "reason": health.reason, "checked_at": _iso(checked_at)}


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"
