"""What a reload did, and what the host knows of each declaration: the shapes /status serves."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import FieldPath, redact
from ..contracts.types import Health
from ..kinds import PLUGIN_KINDS, kind_info
from ..loading import entry_points
from ..manifest.issues import Issue
from ..manifest.model import Asset, Declaration, thaw
from ..registry import Entry

__all__ = [
    "MAX_DETAILS",
    "MAX_TEXT",
    "Change",
    "DeclarationState",
    "ReloadReport",
    "capped",
    "installed_version",
]

Action = Literal["added", "reused", "replaced", "removed", "failed"]
Outcome = Literal["applied", "unchanged", "partial", "error"]
State = Literal["active", "failed", "unhealthy"]

#: Longest plugin-supplied text (a health reason, an error message) kept, in characters;
#: what is longer is cut, and says so. ``/status`` and log lines stay bounded whatever a
#: plugin answers.
MAX_TEXT = 4096
#: Longest ``Health.details`` shown, as JSON text; larger ones are replaced by a notice.
MAX_DETAILS = 16384


def capped(text: str, limit: int = MAX_TEXT) -> str:
    """Return ``text``, or its first ``limit`` characters and a marker saying how much was cut."""
    if not isinstance(text, str):
        text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [cut: {len(text) - limit} more characters]"


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
            data["reason"] = capped(self.reason)
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
            **({"error": capped(self.error)} if self.error else {}),
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
            not load; ``/status`` then shows the previous version, which still serves, and
            this one under ``newer_version_rejected``.
        secrets: Config paths its plugin's schema marks secret: redacted like the values
            read from the environment.
    """

    model: Declaration | Asset
    entry: Entry | None
    state: State = "active"
    reason: str | None = None
    health: Health | None = None
    checked_at: float | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    secrets: frozenset[FieldPath] = frozenset()

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

    def to_dict(self, rejected: Mapping[str, Sequence[Issue]] | None = None) -> dict[str, Any]:
        """Return the JSON form for /status, config redacted.

        The instance that serves is described first. A new version that failed while the
        previous one still serves, and a newer version of its file that was rejected, are
        described under ``newer_version_rejected``.

        Args:
            rejected: The rejected files and their issues, by file.
        """
        serving = self.entry if self.state == "failed" else None  # its new version failed
        data = self._serving_dict() if serving is not None else self._own_dict()
        newer = self._failed_version() if serving is not None else None
        file, issues = _rejected_file(self.model, rejected or {})
        if issues:
            newer = {**(newer or {}), "file": file, "errors": [i.to_dict() for i in issues]}
        if newer is not None:
            data["newer_version_rejected"] = newer
        if self.entry is not None and (installed := installed_version(self.entry)):
            data.update(installed_version=installed, restart_required=True)
        data["health"] = _health(self.health, self.checked_at)
        return data

    def _own_dict(self) -> dict[str, Any]:
        meta = dict(self.entry.metadata) if self.entry else dict(self.facts)
        data: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "state": self.state,
            "reason": _maybe_capped(self.reason),
            "source": str(self.model.source) if self.model.source else None,
        }
        if isinstance(self.model, Declaration):
            data.update(_versions(self.model.plugin, meta, self.model.isolation))
            data["config"] = redact(thaw(self.model.config), self.model.env_paths | self.secrets)
        else:
            data["io_manager"] = self.model.io_manager
        return data

    def _serving_dict(self) -> dict[str, Any]:
        """The previous instance, which still serves; its config is not repeated (the
        environment paths that redact it belong to its own, replaced, manifest)."""
        entry = self.entry
        assert entry is not None
        unhealthy = self.health is not None and not self.health.healthy
        return {
            "kind": self.kind,
            "name": self.name,
            "state": "unhealthy" if unhealthy else "active",
            "reason": _maybe_capped(self.health.reason) if unhealthy and self.health else None,
            "source": entry.source,
            **_versions(entry.plugin, entry.metadata, None),
        }

    def _failed_version(self) -> dict[str, Any]:
        model = self.model
        data: dict[str, Any] = {
            "state": "failed",
            "reason": _maybe_capped(self.reason),
            "source": str(model.source) if model.source else None,
        }
        if isinstance(model, Declaration):
            data.update(
                plugin=model.plugin,
                distribution=self.facts.get("distribution"),
                version=self.facts.get("version"),
                config=redact(thaw(model.config), model.env_paths | self.secrets),
            )
        return data


def _versions(plugin: str, meta: Mapping[str, Any], isolation: str | None) -> dict[str, Any]:
    data = {
        "plugin": plugin,
        "distribution": meta.get("distribution"),
        "version": meta.get("version"),
        "plugin_version": meta.get("plugin_version"),
        "contract_version": meta.get("contract_version"),
        "compatibility": meta.get("compatibility"),
        "isolation": meta.get("isolation", isolation),
    }
    if "containment" in meta:  # isolated: what holds the child (cgroup or process_group)
        data["containment"] = meta["containment"]
    return data


def _rejected_file(
    model: Declaration | Asset, rejected: Mapping[str, Sequence[Issue]]
) -> tuple[str | None, Sequence[Issue]]:
    """The rejected file ``model`` was declared in, and its issues (none if not rejected)."""
    for position in model.sources or ((model.source,) if model.source else ()):
        if position.file in rejected:
            return position.file, rejected[position.file]
    return None, ()


def installed_version(entry: Entry) -> str | None:
    """Return the installed version of ``entry``'s distribution if it is not the version
    whose code the entry runs (an upgrade a restart would apply), else ``None``."""
    meta = entry.metadata
    running, distribution = meta.get("version"), meta.get("distribution")
    if not running or not distribution or entry.kind not in PLUGIN_KINDS:
        return None
    info = entry_points.find(kind_info(entry.kind).namespace, entry.plugin)
    if info is None or info.distribution != distribution or not info.version:
        return None
    return info.version if info.version != running else None


def _health(health: Health | None, checked_at: float | None) -> dict[str, Any] | None:
    if health is None:
        return None
    data: dict[str, Any] = {
        "healthy": health.healthy,
        "reason": _maybe_capped(health.reason),
        "checked_at": _iso(checked_at),
    }
    if health.details:
        data["details"] = _details(health.details)
    return data


def _details(details: Mapping[str, Any]) -> dict[str, Any]:
    """``Health.details`` as shown: whole when small, else a notice of its size."""
    shown = dict(details)
    try:
        size = len(json.dumps(shown, default=str))
    except (TypeError, ValueError, RecursionError):
        return {"cut": "details are not JSON-safe"}
    if size <= MAX_DETAILS:
        return shown
    return {"cut": f"details were {size} characters of JSON; more than {MAX_DETAILS} are not shown"}


def _maybe_capped(text: str | None) -> str | None:
    return None if text is None else capped(text)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"
